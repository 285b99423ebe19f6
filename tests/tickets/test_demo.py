"""The demo: tickets in several states with live SLA clocks, seeded idempotently."""

from __future__ import annotations

from alerts import demo as alerts_demo
from console.demo import seed_customers, seed_users
from tickets import demo
from tickets.models import Ticket
from tickets.selectors import ticket_sla


def test_demo_seeds_tickets_in_several_states_with_live_clocks(db, mailoutbox):
    seed_customers()
    seed_users("demo password 123")
    alerts_demo.seed_feeds()
    first = demo.seed()
    assert first["tickets"] >= 2
    assert demo.seed()["tickets"] == 0
    tickets = list(Ticket.objects.all())
    assert len(tickets) == first["tickets"]
    assert {"new", "investigating"} <= {t.status for t in tickets}
    running = [c for t in tickets for c in ticket_sla(t) if c["running"]]
    assert running, "no live SLA clock in the demo"
