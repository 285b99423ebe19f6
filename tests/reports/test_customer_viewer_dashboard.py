"""A customer viewer's home is their own dashboard: attacks, vectors, peaks, active mitigations,
assets and reports, without the provider's tickets and with no link into a page they cannot open."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import time_machine

from reports.dashboards import rollups_refresh
from tests.reports.conftest import END

pytestmark = pytest.mark.django_db


@pytest.fixture
def seen_incident(incident, build_report):
    """The seeded incident seen an hour after it ended (inside the dashboard's window)."""
    incident["report"] = build_report(attack=incident["attack"])
    rollups_refresh(now=END, full=True)
    with time_machine.travel(END + timedelta(hours=1), tick=False):
        yield incident


def _links(html: str) -> set[str]:
    body = html.split("<main", 1)[-1]
    return {h for h in re.findall(r'href="(/[^"#]*)"', body) if not h.startswith("/static/")}


def _figure(html: str, name: str) -> str:
    return re.search(rf'<script id="chart-customer-{name}" type="application/json">(.*?)</script>', html, re.S)[1]


def test_the_viewers_home_is_their_dashboard_without_tickets(seen_incident, client, customer_viewer):
    client.force_login(customer_viewer)

    html = client.get("/").content.decode()

    assert "Acme Corp" in html and "· dashboard" in html
    assert "Drop DNS/NTP reflection to 203.0.113.10" not in html  # expired: not an active mitigation
    assert "203.0.113.10" in html  # the largest attack, named without a link
    assert "SW-2026-0001" not in html and "<h2>Tickets</h2>" not in html
    assert seen_incident["report"].get_absolute_url() in html


def test_every_link_on_the_viewers_dashboard_opens_for_them(seen_incident, client, customer_viewer):
    client.force_login(customer_viewer)
    html = client.get("/").content.decode()

    links = _links(html)

    assert links, "the dashboard links at least its reports"
    for href in sorted(links):
        assert client.get(href).status_code == 200, href


def test_the_viewers_charts_carry_no_links_into_staff_pages(seen_incident, client, customer_viewer):
    client.force_login(customer_viewer)
    html = client.get(f"/customers/{seen_incident['customer'].slug}/dashboard/").content.decode()

    figures = re.findall(r'<script id="chart-customer-[a-z]+" type="application/json">(.*?)</script>', html, re.S)

    assert len(figures) >= 3  # attacks per day, vectors, largest attacks
    assert json.loads(_figure(html, "vectors"))["data"][0]["values"]
    for figure in figures:
        for trace in json.loads(figure)["data"]:
            assert not trace.get("customdata"), trace.get("name")


def test_another_customers_dashboard_is_a_404_for_the_viewer(seen_incident, customer_b, client, customer_viewer):
    client.force_login(customer_viewer)

    assert client.get(f"/customers/{customer_b.slug}/dashboard/").status_code == 404


def test_staff_still_see_tickets_and_links(seen_incident, engineer_client):
    html = engineer_client.get(f"/customers/{seen_incident['customer'].slug}/dashboard/").content.decode()

    assert "SW-2026-0001" in html
    assert f'href="{seen_incident["attack"].get_absolute_url()}"' in html
    assert any(trace.get("customdata") for trace in json.loads(_figure(html, "attacks"))["data"])
