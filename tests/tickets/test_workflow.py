"""Tickets from alerts, numbers, the transition map, concurrency, assignment, escalation, linking."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from alerts.models import Alert
from console.models import AuditEvent
from tests.tickets.conftest import make_alert
from tickets import services
from tickets.models import Ticket, TimelineEntry

S = Ticket.Status
ALLOWED = {
    S.NEW: {S.INVESTIGATING, S.WAITING},
    S.INVESTIGATING: {S.MITIGATING, S.WAITING},
    S.MITIGATING: {S.MONITORING, S.WAITING},
    S.MONITORING: {S.RESOLVED, S.MITIGATING, S.WAITING},
    S.RESOLVED: {S.CLOSED, S.INVESTIGATING},
    S.CLOSED: set(),
    # Waiting returns to the state it left (here: investigating), nowhere else.
    S.WAITING: {S.INVESTIGATING},
}
# Threads with their own connections racing for one row: SQLite serialises every write
# transaction, so only PostgreSQL shows whether the row lock holds.
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="racing transactions need PostgreSQL (SQLite serialises writers)"
)
PAIRS = [(a, b) for a in S.values for b in S.values if a != b]


def _put(ticket: Ticket, status: str) -> Ticket:
    extra = {"status_before_wait": S.INVESTIGATING, "paused_since": timezone.now()} if status == S.WAITING else {}
    Ticket.objects.filter(pk=ticket.pk).update(status=status, outcome="tp_impact", **extra)
    ticket.refresh_from_db()
    return ticket


def test_escalating_alerts_prefills_the_ticket_from_the_attack(ticket, attack_a, customer_a, engineer):
    assert ticket.customer == customer_a
    assert ticket.title == attack_a.title
    assert ticket.severity == "P1"  # urgency 90
    assert "UDP flood" in ticket.summary and "SYN flood" in ticket.summary
    assert "18.7 Gbps" in ticket.summary and "2.45 Mpps" in ticket.summary
    assert set(ticket.alerts.all()) == set(attack_a.alerts.all())
    assert list(ticket.attacks.all()) == [attack_a]
    assert ticket.event_at == min(a.event_time for a in attack_a.alerts.all())
    assert ticket.detected_at == min(a.first_seen for a in attack_a.alerts.all())
    assert ticket.created_at > ticket.detected_at
    assert set(attack_a.alerts.values_list("status", flat=True)) == {Alert.Status.ESCALATED}
    kinds = list(ticket.timeline.values_list("kind", flat=True))
    assert kinds == ["created", "alert_linked", "attack_linked"]
    assert AuditEvent.objects.filter(action="ticket.create", object_id=str(ticket.pk)).exists()
    assert AuditEvent.objects.filter(action="alert.escalate").count() == 3


@pytest.mark.parametrize(
    ("urgency", "severity"),
    [(100, "P1"), (85, "P1"), (84, "P2"), (65, "P2"), (64, "P3"), (40, "P3"), (39, "P4"), (0, "P4")],
)
def test_severity_follows_the_highest_urgency(make_attack, customer_a, engineer, urgency, severity):
    attack = make_attack(customer_a, urgency=urgency)
    ticket = services.ticket_create_from_alerts(alerts=attack.alerts.all(), user=engineer)
    assert ticket.severity == severity


def test_alerts_of_several_customers_are_refused_with_a_clear_error(make_attack, customer_a, customer_b, engineer):
    a = make_attack(customer_a)
    b = make_attack(customer_b, target="198.51.100.7")
    with pytest.raises(services.TicketError, match="several customers.*Acme Corp, Globex"):
        services.ticket_create_from_alerts(alerts=[*a.alerts.all(), *b.alerts.all()], user=engineer)
    assert not Ticket.objects.exists()


def test_ticket_numbers_are_readable_and_per_year(customer_a, engineer):
    first = services.ticket_create(customer=customer_a, title="one", user=engineer)
    second = services.ticket_create(customer=customer_a, title="two", user=engineer)
    year = timezone.now().year
    assert first.number == f"SW-{year}-0001"
    assert second.number == f"SW-{year}-0002"
    assert services.ticket_next_number(year=year + 1) == f"SW-{year + 1}-0001"


@pytest.mark.parametrize(("source", "target"), PAIRS)
def test_transition_map(ticket, engineer, source, target):
    _put(ticket, source)
    entries = ticket.timeline.count()
    if target in ALLOWED[source]:
        services.ticket_transition(ticket=ticket, to=target, user=engineer, outcome="tp_impact")
        ticket.refresh_from_db()
        assert ticket.status == target
        change = ticket.timeline.get(kind=TimelineEntry.Kind.STATUS_CHANGE)
        assert change.data["from"] == source and change.data["to"] == target
        assert change.actor == engineer
        audit = AuditEvent.objects.get(action="ticket.transition", object_id=str(ticket.pk))
        assert audit.before["status"] == source and audit.after["status"] == target
    else:
        with pytest.raises(services.TransitionRefused, match="cannot go from"):
            services.ticket_transition(ticket=ticket, to=target, user=engineer, outcome="tp_impact")
        ticket.refresh_from_db()
        assert ticket.status == source
        assert ticket.timeline.count() == entries
        assert not AuditEvent.objects.filter(action="ticket.transition").exists()


def test_transition_to_the_current_status_is_a_no_op(ticket, engineer):
    services.ticket_transition(ticket=ticket, to=S.INVESTIGATING, user=engineer)
    services.ticket_transition(ticket=ticket, to=S.INVESTIGATING, user=engineer)
    assert ticket.timeline.filter(kind="status_change").count() == 1
    assert AuditEvent.objects.filter(action="ticket.transition").count() == 1


def test_waiting_on_customer_remembers_where_to_return(ticket, engineer):
    services.ticket_transition(ticket=ticket, to=S.INVESTIGATING, user=engineer)
    services.ticket_transition(ticket=ticket, to=S.MITIGATING, user=engineer)
    services.ticket_transition(ticket=ticket, to=S.WAITING, user=engineer)
    assert ticket.status_before_wait == S.MITIGATING
    assert ticket.allowed_targets() == {S.MITIGATING}
    with pytest.raises(services.TransitionRefused):
        services.ticket_transition(ticket=ticket, to=S.INVESTIGATING, user=engineer)
    services.ticket_transition(ticket=ticket, to=S.MITIGATING, user=engineer)
    ticket.refresh_from_db()
    assert ticket.status == S.MITIGATING and ticket.status_before_wait == "" and ticket.paused_since is None
    assert len(ticket.pauses) == 1


def test_resolving_needs_an_outcome_and_stamps_the_times(ticket, engineer):
    for to in (S.INVESTIGATING, S.MITIGATING, S.MONITORING):
        services.ticket_transition(ticket=ticket, to=to, user=engineer)
    with pytest.raises(services.TicketError, match="outcome"):
        services.ticket_transition(ticket=ticket, to=S.RESOLVED, user=engineer)
    services.ticket_transition(ticket=ticket, to=S.RESOLVED, user=engineer, outcome="tp_no_impact")
    services.ticket_transition(ticket=ticket, to=S.CLOSED, user=engineer)
    ticket.refresh_from_db()
    assert ticket.outcome == "tp_no_impact"
    assert ticket.acknowledged_at <= ticket.mitigated_at <= ticket.resolved_at <= ticket.closed_at


def test_a_stale_expected_status_is_refused(ticket, engineer, senior):
    services.ticket_transition(ticket=ticket, to=S.INVESTIGATING, user=senior)
    stale = Ticket.objects.get(pk=ticket.pk)
    services.ticket_transition(ticket=ticket, to=S.WAITING, user=senior)
    with pytest.raises(services.TransitionRefused, match="changed by someone else"):
        services.ticket_transition(ticket=stale, to=S.MITIGATING, user=engineer, expected=S.INVESTIGATING)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_racing_transitions_one_wins_no_lost_update(customer_a, engineer, senior):
    ticket = services.ticket_create(customer=customer_a, title="race", user=engineer)
    Ticket.objects.filter(pk=ticket.pk).update(status=S.RESOLVED, outcome="benign")
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def run(name: str, to: str, user) -> None:
        try:
            barrier.wait(timeout=10)
            services.ticket_transition(ticket=Ticket.objects.get(pk=ticket.pk), to=to, user=user)
            results[name] = "ok"
        except services.TransitionRefused:
            results[name] = "refused"
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=run, args=("close", S.CLOSED, engineer)),
        threading.Thread(target=run, args=("reopen", S.INVESTIGATING, senior)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results.values()) == ["ok", "refused"], results
    ticket.refresh_from_db()
    winner = next(name for name, result in results.items() if result == "ok")
    assert ticket.status == (S.CLOSED if winner == "close" else S.INVESTIGATING)
    changes = list(ticket.timeline.filter(kind="status_change"))
    assert len(changes) == 1 and changes[0].data == {"from": S.RESOLVED, "to": ticket.status}


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_racing_identical_transitions_write_one_timeline_entry(customer_a, engineer, senior):
    ticket = services.ticket_create(customer=customer_a, title="race", user=engineer)
    barrier = threading.Barrier(4)

    def run(user) -> None:
        try:
            barrier.wait(timeout=10)
            services.ticket_transition(ticket=Ticket.objects.get(pk=ticket.pk), to=S.INVESTIGATING, user=user)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(u,)) for u in (engineer, senior, engineer, senior)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert ticket.timeline.filter(kind="status_change").count() == 1


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_creations_get_distinct_numbers(customer_a, engineer):
    barrier = threading.Barrier(6)
    numbers: list[str] = []

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            numbers.append(services.ticket_create(customer=customer_a, title="n", user=engineer).number)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(set(numbers)) == 6


def test_assign_acknowledges_and_is_on_the_timeline(ticket, engineer, senior):
    services.ticket_assign(ticket=ticket, assignee=senior, user=engineer)
    ticket.refresh_from_db()
    assert ticket.assignee == senior and ticket.acknowledged_at is not None
    entry = ticket.timeline.get(kind="assignment")
    assert entry.data == {"from": "", "to": "sam"}
    assert AuditEvent.objects.filter(action="ticket.assign").exists()


def test_escalation_needs_a_handoff_summary(ticket, engineer):
    with pytest.raises(services.TicketError, match="handoff summary"):
        services.ticket_escalate(ticket=ticket, level="engineering", reason="  ", user=engineer)
    services.ticket_escalate(ticket=ticket, level="engineering", reason="Scrubbing saturates in FRA", user=engineer)
    ticket.refresh_from_db()
    assert ticket.escalation_level == "engineering"
    assert ticket.timeline.get(kind="escalation").body == "Scrubbing saturates in FRA"
    assert AuditEvent.objects.filter(action="ticket.escalate").exists()


def test_add_alerts_to_an_existing_ticket(ticket, feed, customer_a, customer_b, engineer):
    extra = make_alert(feed, customer_a, i=9, target="203.0.113.99")
    assert services.ticket_add_alerts(ticket=ticket, alerts=[extra], user=engineer) == 1
    assert services.ticket_add_alerts(ticket=ticket, alerts=[extra], user=engineer) == 0
    assert ticket.alerts.filter(pk=extra.pk).exists()
    foreign = make_alert(feed, customer_b, i=1, target="198.51.100.1")
    with pytest.raises(services.TicketError, match="not Acme Corp's"):
        services.ticket_add_alerts(ticket=ticket, alerts=[foreign], user=engineer)


def test_new_alerts_of_a_linked_attack_attach_themselves(ticket, attack_a, feed, customer_a):
    late = make_alert(feed, customer_a, attack=attack_a, i=7, start=attack_a.started_at + timedelta(minutes=5))
    assert services.tickets_attach_new_attack_alerts() == 1
    assert services.tickets_attach_new_attack_alerts() == 0
    assert ticket.alerts.filter(pk=late.pk).exists()
    entry = ticket.timeline.filter(kind="alert_linked").last()
    assert entry.data["alerts"] == [late.pk] and "linked attack" in entry.body
    late.refresh_from_db()
    assert late.status == Alert.Status.ESCALATED


def test_beat_task_attaches_alerts(ticket, attack_a, feed, customer_a):
    from tickets.tasks import attach_new_attack_alerts

    make_alert(feed, customer_a, attack=attack_a, i=8)
    attach_new_attack_alerts()
    assert ticket.alerts.count() == 4


def test_alerts_app_does_not_import_tickets():
    import pathlib

    for path in pathlib.Path("alerts").rglob("*.py"):
        text = path.read_text()
        assert "import tickets" not in text and "from tickets" not in text, path
