"""MTTA, MTTR and SLA compliance per customer and week, from the tickets' own clocks."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import time_machine

from tests.tickets.conftest import T0
from tickets.models import Ticket
from tickets.selectors import service_levels

pytestmark = pytest.mark.django_db
MIN = timedelta(minutes=1)


def ticket(customer, number, created, severity="P1", **times):
    return Ticket.objects.create(
        number=number,
        customer=customer,
        title=f"Attack {number}",
        severity=severity,
        status="resolved" if times.get("resolved_at") else "new",
        created_at=created,
        **times,
    )


@pytest.fixture
def weeks_of_tickets(customer_a, customer_b):
    """Acme (enterprise P1: acknowledge 15 min, first update 30, mitigation 60) in the week of
    2 March: one ticket inside every target, one late to acknowledge and mitigate, one still open;
    Globex (pro) one ticket the week before."""
    ticket(
        customer_a,
        "SW-2026-0001",
        T0,
        acknowledged_at=T0 + 5 * MIN,
        first_update_at=T0 + 10 * MIN,
        mitigated_at=T0 + 30 * MIN,
        resolved_at=T0 + 120 * MIN,
    )
    late = T0 + timedelta(days=1)
    ticket(
        customer_a,
        "SW-2026-0002",
        late,
        acknowledged_at=late + 20 * MIN,
        first_update_at=late + 25 * MIN,
        mitigated_at=late + 70 * MIN,
        resolved_at=late + 180 * MIN,
    )
    ticket(customer_a, "SW-2026-0003", T0 + timedelta(days=2))
    before = T0 - timedelta(days=7)
    ticket(
        customer_b,
        "SW-2026-0004",
        before,
        severity="P2",
        acknowledged_at=before + 10 * MIN,
        resolved_at=before + 60 * MIN,
    )


def test_each_customer_week_has_its_mean_times_and_share_of_clocks_met(weeks_of_tickets, engineer):
    rows = service_levels(engineer, now=T0 + timedelta(days=2, minutes=5))

    acme, globex = rows
    assert (acme.customer.slug, acme.week, acme.tickets) == ("acme", date(2026, 3, 2), 3)
    assert acme.mtta_seconds == 12.5 * 60  # (5 + 20) / 2; the open ticket is not acknowledged yet
    assert acme.mttr_seconds == 150 * 60  # (120 + 180) / 2
    assert (acme.clocks_met, acme.clocks_breached, acme.clocks_running) == (4, 2, 3)
    assert acme.compliance == pytest.approx(4 / 6)
    assert (globex.customer.slug, globex.week, globex.tickets) == ("globex", date(2026, 2, 23), 1)
    assert globex.mtta_seconds == 600 and globex.mttr_seconds == 3600


def test_weeks_without_tickets_have_no_invented_row(weeks_of_tickets, engineer):
    rows = service_levels(engineer, weeks=1, now=T0 + timedelta(days=2, minutes=5))

    assert [(r.customer.slug, r.week) for r in rows] == [("acme", date(2026, 3, 2))]
    assert service_levels(engineer, customer="globex", weeks=1, now=T0 + timedelta(days=2)) == []


def test_the_page_shows_the_figures_with_the_one_formatter(weeks_of_tickets, client, engineer):
    client.force_login(engineer)

    with time_machine.travel(T0 + timedelta(days=2, minutes=5), tick=False):
        html = client.get("/tickets/service-levels/").content.decode()

    assert "12 min" in html and "2 h 30 min" in html
    assert "66.66 %" in html  # floored, never rounded up


def test_a_customer_viewer_does_not_see_service_levels(weeks_of_tickets, client, customer_viewer):
    client.force_login(customer_viewer)

    assert client.get("/tickets/service-levels/").status_code == 404
