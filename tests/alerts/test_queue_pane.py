"""The queue's detail pane: one alert's facts as an htmx fragment, escaped, scoped like the alert page."""

from __future__ import annotations

import pytest

from alerts.models import Alert, Feed
from console.units import rate, vector_title
from tests.alerts.test_queue_page import alert

pytestmark = pytest.mark.django_db

HOSTILE = "<img src=x onerror=alert(1)> UDP flood"


@pytest.fixture
def feed(db):
    feed = Feed(name="FastNetMon", slug="fastnetmon", format="fastnetmon")
    feed.set_secret()
    feed.save()
    return feed


@pytest.fixture
def flood(feed, customer_a):
    a = alert(feed, 7, urgency=80, severity="critical", customer=customer_a)
    a.title = HOSTILE
    a.vector = "udp_flood"
    a.bps, a.pps = 18.7e9, 2.45e6
    a.source_ips = ["198.51.100.7", "198.51.100.8", "192.0.2.33"]
    a.source_asns = [64500, 64501]
    a.source_countries = ["NL"]
    a.direction_rule = "destination is a customer asset (203.0.113.7/32)"
    a.raw = {"attack_details": {"attack_direction": "incoming", "note": "</pre><script>alert(2)</script>"}}
    a.save()
    return a


def test_the_pane_shows_the_alert_with_sources_counted_and_rates_formatted(engineer_client, flood):
    response = engineer_client.get(f"/alerts/{flood.pk}/pane/", HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html  # a fragment, not a page
    assert "3 IPs · 2 ASes · 1 country" in html
    assert "destination is a customer asset (203.0.113.7/32)" in html
    assert rate(flood.bps, "bps") in html and rate(flood.pps, "pps") in html  # the one formatter
    assert vector_title("udp_flood") in html and "FastNetMon" in html


def test_attacker_written_title_and_raw_fields_are_escaped_in_the_pane(engineer_client, flood):
    html = engineer_client.get(f"/alerts/{flood.pk}/pane/", HTTP_HX_REQUEST="true").content.decode()

    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script>alert(2)</script>" not in html and "&lt;/pre&gt;&lt;script&gt;" in html


def test_the_pane_of_another_customers_alert_is_not_found(client, flood, customer_viewer, customer_b, feed):
    other = alert(feed, 8, customer=customer_b)
    other.save()
    client.force_login(customer_viewer)

    assert client.get(f"/alerts/{other.pk}/pane/").status_code == 404
    assert client.get(f"/alerts/{Alert.objects.order_by('-pk').first().pk + 1}/pane/").status_code == 404
