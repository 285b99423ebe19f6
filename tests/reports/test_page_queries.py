"""The SOC overview, a customer's dashboard and a customer viewer's report pages run a fixed number of
queries, whatever the alerts, attacks and reports behind them."""

from __future__ import annotations

from datetime import timedelta
from itertools import count

import pytest
from django.utils import timezone

from reports import dashboards
from reports.models import Report
from tests.querycount import assert_same_queries_at_3n
from tests.reports.conftest import make_alert, make_attack

pytestmark = pytest.mark.django_db
SERIAL = count(1000)


def attacks_with_alerts(feed, customer, k):
    """``k`` attacks of the last days with three alerts each, folded into the rollups as beat would."""
    now = timezone.now()
    for _ in range(k):
        i = next(SERIAL)
        start = now - timedelta(hours=i % 150)
        attack = make_attack(customer, target=f"203.0.113.{i % 250}", start=start, end=start + timedelta(minutes=30))
        for j in range(3):
            make_alert(feed, customer, attack, i * 10 + j, vector="dns_amplification", at=start, bps=1e9 * j)
    dashboards.rollups_refresh()


def test_soc_overview_runs_the_same_queries_for_n_and_3n_attacks(
    engineer_client, feed, customer_a, customer_b, django_assert_num_queries
):
    def add(k):
        attacks_with_alerts(feed, customer_a, k)
        attacks_with_alerts(feed, customer_b, k)

    for path, headers in (("/", {}), ("/?fragment=1", {"HTTP_HX_REQUEST": "true"})):
        assert_same_queries_at_3n(
            engineer_client, path, add, n=5, most=18, django_assert_num_queries=django_assert_num_queries, **headers
        )


def test_customer_dashboard_runs_the_same_queries_for_n_and_3n_attacks(
    engineer_client, feed, customer_a, django_assert_num_queries
):
    assert_same_queries_at_3n(
        engineer_client,
        f"/customers/{customer_a.slug}/dashboard/",
        lambda k: attacks_with_alerts(feed, customer_a, k),
        n=5,
        most=14,
        django_assert_num_queries=django_assert_num_queries,
    )


@pytest.fixture
def viewer_client(client, customer_viewer):
    client.force_login(customer_viewer)
    return client


def reports_of(customer, report, k):
    Report.objects.bulk_create(
        [
            Report(
                customer=customer,
                kind=report.kind,
                title=f"{report.title} #{next(SERIAL)}",
                parameters=report.parameters,
                period_start=report.period_start,
                period_end=report.period_end,
                status=Report.Status.DONE,
                html=report.html,
                figures=report.figures,
                generated_at=report.generated_at,
                created_by=report.created_by,
            )
            for _ in range(k)
        ]
    )


def test_customer_viewer_report_list_runs_the_same_queries_for_n_and_3n_reports(
    viewer_client, incident, other_incident, build_report, django_assert_num_queries
):
    mine = build_report(attack=incident["attack"])
    theirs = build_report(attack=other_incident["attack"])

    def add(k):
        reports_of(incident["customer"], mine, k)
        reports_of(other_incident["customer"], theirs, k)  # never listed for this viewer

    response = assert_same_queries_at_3n(
        viewer_client, "/reports/", add, n=8, most=8, django_assert_num_queries=django_assert_num_queries
    )
    assert response.context["page"].paginator.count == 1 + 3 * 8
    assert all(r.customer_id == incident["customer"].pk for r in response.context["page"].object_list)


def test_customer_viewer_report_page_runs_the_same_queries_for_n_and_3n_alerts(
    viewer_client, incident, feed, build_report, django_assert_num_queries
):
    report = build_report(attack=incident["attack"])

    def add(k):
        # More alerts of the attack behind the report: the page shows what was generated, it never rereads them.
        for _ in range(k):
            i = next(SERIAL)
            make_alert(
                feed, incident["customer"], incident["attack"], i, vector="ntp_amplification", at=report.period_start
            )

    assert_same_queries_at_3n(
        viewer_client, report.get_absolute_url(), add, n=10, most=6, django_assert_num_queries=django_assert_num_queries
    )
