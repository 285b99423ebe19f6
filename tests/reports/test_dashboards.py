"""Rollups (incremental, rerunnable) and the dashboards that read them instead of the alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts.models import Alert
from reports import dashboards
from reports.models import AlertRollup, AttackRollup, RollupWatermark
from tests.reports.conftest import T0, make_alert, make_attack

pytestmark = pytest.mark.django_db


def rollup_rows():
    return sorted(AlertRollup.objects.values_list("bucket", "customer_id", "severity", "layer", "alerts", "events"))


def test_alert_rollup_counts_alerts_per_hour_customer_severity_and_layer(incident, other_incident):
    dashboards.rollups_refresh()

    acme, globex = incident["customer"].pk, other_incident["customer"].pk
    assert rollup_rows() == [
        (datetime(2026, 3, 3, 7, tzinfo=UTC), acme, "critical", "L4", 3, 3),
        (datetime(2026, 3, 3, 7, tzinfo=UTC), globex, "critical", "L7", 1, 1),
    ]
    assert sorted(AttackRollup.objects.values_list("customer_id", "attacks", "peak_bps", "vectors")) == sorted(
        [
            (acme, 1, 312e9, {"dns_amplification": 1, "ntp_amplification": 1}),
            (globex, 1, None, {"http_flood": 1}),
        ]
    )


def test_rerunning_the_rollup_gives_the_same_rows(incident):
    dashboards.rollups_refresh()
    first = rollup_rows()
    RollupWatermark.objects.all().update(value=None)  # as after a crash before the watermark moved

    dashboards.rollups_refresh()
    dashboards.rollups_refresh()

    assert rollup_rows() == first
    assert AttackRollup.objects.count() == 1


def test_rollup_resumes_from_its_watermark_and_recomputes_whole_buckets(incident, feed):
    now = timezone.now()
    dashboards.rollups_refresh(now=now)
    # A repeat of an old alert (count bumped, updated now) and a new alert in the same hour.
    Alert.objects.filter(fingerprint="fp-acme-1").update(count=5, updated_at=now + timedelta(seconds=5))
    make_alert(
        feed,
        incident["customer"],
        incident["attack"],
        4,
        vector="dns_amplification",
        at=T0 + timedelta(minutes=40),
        severity="high",
    )
    Alert.objects.filter(fingerprint="fp-acme-4").update(updated_at=now + timedelta(seconds=6))

    with CaptureQueriesContext(connection) as queries:
        result = dashboards.rollups_refresh(now=now + timedelta(minutes=1))

    assert result["alert_buckets"] == 1
    hour = datetime(2026, 3, 3, 7, tzinfo=UTC)
    acme = incident["customer"].pk
    assert rollup_rows() == [(hour, acme, "critical", "L4", 3, 7), (hour, acme, "high", "L4", 1, 1)]
    # Only changed alerts were looked for: the query filters on updated_at.
    assert any("updated_at" in q["sql"] for q in queries.captured_queries)


def test_soc_overview_reads_rollups_not_alerts(incident, engineer_client):
    dashboards.rollups_refresh()
    now = datetime(2026, 3, 3, 12, tzinfo=UTC)

    with CaptureQueriesContext(connection) as queries:
        data = dashboards.soc_overview(now=now)

    assert not any('FROM "alerts_alert"' in q["sql"] for q in queries.captured_queries)
    severity = {t["name"]: t for t in data["rate"]["by_severity"]["data"]}
    assert sum(severity["critical"]["y"]) == 3
    link = severity["critical"]["customdata"][severity["critical"]["y"].index(3)]
    assert link.startswith("/alerts/?severity=critical&since=2026-03-03T07%3A00%3A00%2B00%3A00")
    top = data["top_customers"]
    assert [r["customer"].name for r in top["rows"]] == ["Acme Corp"]
    assert top["chart"]["data"][0]["customdata"] == ["/attacks/?customer=acme"]


def test_dashboard_page_and_its_polled_fragment(incident, engineer_client):
    incident["attack"].__class__.objects.filter(pk=incident["attack"].pk).update(ongoing=True)
    dashboards.rollups_refresh()

    page = engineer_client.get("/").content.decode()
    fragment = engineer_client.get("/?fragment=1", HTTP_HX_REQUEST="true")

    assert "<h1>SOC overview</h1>" in page
    assert 'hx-trigger="every 30s"' in page and 'hx-get="/?fragment=1"' in page
    assert 'data-chart="chart-ongoing"' in page and "312 Gbps" in page
    assert fragment.status_code == 200 and b"<h1>" not in fragment.content
    assert b"chart-rate-severity" in fragment.content


def test_ongoing_attack_chart_links_each_bar_to_its_attack(incident):
    Attack = incident["attack"].__class__
    Attack.objects.filter(pk=incident["attack"].pk).update(ongoing=True)

    data = dashboards.soc_overview()

    (trace,) = data["ongoing_chart"]["data"]
    assert trace["customdata"] == [f"/attacks/{incident['attack'].pk}/"]
    assert trace["x"] == [312e9]


def test_customer_dashboard_shows_attacks_vectors_peaks_and_assets(incident, engineer_client):
    dashboards.rollups_refresh()
    now = T0 + timedelta(days=2)

    data = dashboards.customer_overview(incident["customer"], now=now)

    attacks = data["attacks_chart"]["data"][0]
    assert attacks["y"][attacks["x"].index("2026-03-03")] == 1
    assert data["vectors_chart"]["data"][0]["labels"] == ["DNS amplification", "NTP amplification"]
    assert data["peaks_chart"]["data"][0]["x"] == [312e9]
    assert [a.value for a in data["assets"]] == ["203.0.113.0/24", "acme.example"]
    page = engineer_client.get("/customers/acme/dashboard/")
    assert page.status_code == 200 and b"Largest attacks" in page.content


def test_customer_dashboard_is_the_customers_own_or_a_404(customer_a, customer_b, customer_viewer, outsider, client):
    client.force_login(customer_viewer)
    own = client.get("/customers/acme/dashboard/")
    assert own.status_code == 200 and b"<h2>Tickets</h2>" not in own.content
    assert client.get("/customers/globex/dashboard/").status_code == 404
    client.force_login(outsider)
    assert client.get("/customers/acme/dashboard/").status_code == 404


def test_second_attack_day_is_its_own_rollup(incident, feed):
    make_attack(incident["customer"], start=T0 + timedelta(days=1), end=T0 + timedelta(days=1, minutes=5), bps=1e9)
    dashboards.rollups_refresh()

    assert list(AttackRollup.objects.order_by("day").values_list("day", "attacks", "peak_bps")) == [
        (T0.date(), 1, 312e9),
        ((T0 + timedelta(days=1)).date(), 1, 1e9),
    ]
