"""In a real browser: from an attack with traffic samples, a signature is simulated, proposed,
approved by another senior engineer, applied (export backend), shown active with its
countdown on the ledger, and rolled back."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import pyarrow.parquet as pq
import pytest
from django.utils import timezone

from alerts.models import Attack
from mitigations.models import Mitigation
from tests.browser.support import PageProblems, login
from tests.mitigations.conftest import traffic
from traffic.models import TrafficSample

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIGNATURE = "ip.src in {198.18.0.0/24} and udp.dstport eq 53"


@pytest.fixture
def attack_with_samples(customer_a, tmp_path):
    now = timezone.now()
    attack = Attack.objects.create(
        customer=customer_a,
        target="203.0.113.10",
        title="DNS flood on 203.0.113.10",
        vectors=["udp_flood"],
        started_at=now - timedelta(minutes=20),
        last_seen=now,
    )
    tables = {
        "attack": traffic([("198.18.0.7", 17, 53)] * 90 + [("198.19.5.5", 17, 53)] * 10),
        # The customer's normal traffic has UDP too: without it the rule's collateral would be unknown.
        "baseline": traffic([("192.0.2.200", 6, 443)] * 190 + [("198.51.100.9", 17, 53)] * 10),
    }
    for label, table in tables.items():
        path = tmp_path / f"{label}.parquet"
        pq.write_table(table, path)
        TrafficSample.objects.create(
            customer=customer_a,
            attack=attack,
            name=f"{label}.pcap",
            label=label,
            kind="pcap",
            original=f"traffic/originals/{label}.pcap",
            status="ready",
            columnar_path=str(path),
            record_count=table.num_rows,
        )
    return attack


def logout(page) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name="Log out").click()


def test_a_signature_goes_from_simulation_to_active_and_back(
    page, page_problems: PageProblems, live_server, engineer, senior, attack_with_samples
):
    page.on("dialog", lambda dialog: dialog.accept())
    login(page, live_server, engineer)

    # The suggested signature arrives as ?expression=&attack= (the traffic comparison's "Propose mitigation").
    page.goto(f"{live_server.url}/mitigations/new/?attack={attack_with_samples.pk}&expression={quote(SIGNATURE)}")
    # Prefilled limited to the attacked customer's prefix.
    assert page.locator("#id_expression").input_value() == f"ip.dst in {{203.0.113.0/24}} and ({SIGNATURE})"
    assert page.locator("#id_customer").input_value() == "acme"
    page.locator("#id_ttl_minutes").fill("30")
    page.get_by_role("button", name="Save draft and simulate").click()
    page.wait_for_url(re.compile(r"/mitigations/\d+/$"))
    mitigation = Mitigation.objects.get()

    simulation = page.locator("#simulation")
    assert simulation.locator('[data-sim="attack"]').inner_text() == "90%"
    assert "0 of 200" in simulation.inner_text()
    assert "ip saddr 198.18.0.0/24 udp dport 53" in page.locator("#compiled").inner_text()
    page_problems.assert_clean("draft page")

    with page.expect_navigation():
        page.get_by_role("button", name="Propose for approval").click()
    page.wait_for_load_state("networkidle")  # interacting before the scripts load would abort them
    assert page.locator("#state").inner_text() == "Proposed"
    assert page.get_by_role("link", name="Review and approve").count() == 0  # the author cannot approve
    logout(page)

    login(page, live_server, senior)
    page.goto(f"{live_server.url}/mitigations/")
    page.locator("#awaiting").get_by_role("link", name="Review").click()
    page.wait_for_url(re.compile(r"/approve/$"))
    assert page.locator('#simulation [data-sim="attack"]').inner_text() == "90%"
    assert "table inet shieldwall" in page.locator("#compiled").inner_text()
    page.locator("#approve").click()
    page.wait_for_url(re.compile(rf"/mitigations/{mitigation.pk}/$"))
    assert page.locator("#state").inner_text() == "Approved"

    page.get_by_role("button", name=re.compile("^Apply to export")).click()
    page.wait_for_url(re.compile(rf"/mitigations/{mitigation.pk}/$"))
    assert page.locator("#state").inner_text() == "Active"
    countdown = page.locator("h1 .countdown")
    page.wait_for_function("el => /^(29|30)m \\d\\ds$/.test(el.textContent)", arg=countdown.element_handle())
    first = countdown.inner_text()
    page.wait_for_function("([el, t]) => el.textContent !== t", arg=[countdown.element_handle(), first])
    page_problems.assert_clean("active mitigation page")

    with page.expect_navigation():
        page.get_by_role("link", name="← Ledger").click()
    page.wait_for_load_state("networkidle")  # interacting before the scripts load would abort them
    row = page.locator(f'tr[data-mitigation="{mitigation.name}"]')
    assert row.locator(".countdown").is_visible()
    assert "Active" in row.inner_text() and engineer.username in row.inner_text()
    with page.expect_navigation():
        row.get_by_role("button", name="Roll back").click()
    page.wait_for_load_state("networkidle")  # interacting before the scripts load would abort them
    assert page.locator(f'tr[data-mitigation="{mitigation.name}"]').count() == 0  # no longer live
    mitigation.refresh_from_db()
    assert mitigation.state == Mitigation.State.ROLLED_BACK
    page.goto(f"{live_server.url}{mitigation.get_absolute_url()}")
    assert page.locator("#state").inner_text() == "Rolled back"
    assert "rolled back" in page.locator("#history").inner_text()
    page_problems.assert_clean("ledger and rollback")
