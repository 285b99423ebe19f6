"""SLA clocks with time frozen: at risk at 80%, breached after the target minute, paused while waiting."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import mail

from console.models import AuditEvent
from tests.tickets.conftest import T0
from tickets import services, tasks
from tickets.models import SlaNotice, SlaPolicy, Ticket
from tickets.selectors import ticket_sla

S = Ticket.Status


def clock(ticket: Ticket, name: str) -> dict:
    ticket.refresh_from_db()
    return next(c for c in ticket_sla(ticket) if c["name"] == name)


@pytest.fixture
def p1(customer_a, engineer):
    """An enterprise P1 opened at T0: acknowledge 15 min, first update 30, mitigation 60."""
    with time_machine.travel(T0, tick=False):
        return services.ticket_create(customer=customer_a, title="P1", severity="P1", user=engineer)


def test_policies_are_seeded_for_every_plan_and_priority(db):
    assert SlaPolicy.objects.count() == 16
    enterprise = SlaPolicy.objects.get(plan="enterprise", severity="P1")
    assert (enterprise.acknowledge_minutes, enterprise.first_update_minutes, enterprise.mitigation_minutes) == (
        15,
        30,
        60,
    )
    free = SlaPolicy.objects.get(plan="free", severity="P1")
    assert free.acknowledge_minutes > enterprise.acknowledge_minutes


def test_acknowledge_clock_is_at_risk_at_80_percent_and_breached_after_the_target_minute(p1):
    for minutes, state in [(0, "ok"), (11, "ok"), (12, "at_risk"), (14, "at_risk"), (15, "at_risk"), (16, "breached")]:
        with time_machine.travel(T0 + timedelta(minutes=minutes), tick=False):
            assert clock(p1, "acknowledge")["state"] == state, minutes


def test_sla_check_flags_the_breach_at_the_right_minute_once(p1, django_capture_on_commit_callbacks):
    with time_machine.travel(T0 + timedelta(minutes=11, seconds=59), tick=False):
        assert services.tickets_sla_check() == 0
    with time_machine.travel(T0 + timedelta(minutes=12), tick=False):
        assert services.tickets_sla_check() == 1  # acknowledge at risk
        assert services.tickets_sla_check() == 0
    with time_machine.travel(T0 + timedelta(minutes=15), tick=False):
        assert services.tickets_sla_check() == 0  # exactly on target: not yet breached
    with time_machine.travel(T0 + timedelta(minutes=15, seconds=1), tick=False):
        assert services.tickets_sla_check() == 1
        assert services.tickets_sla_check() == 0
    breach = p1.timeline.get(kind="sla_breach")
    assert breach.at == T0 + timedelta(minutes=15, seconds=1)
    assert "Acknowledge SLA breached" in breach.body
    assert p1.timeline.filter(kind="sla_warning").count() == 1
    assert set(SlaNotice.objects.values_list("clock", "state")) == {
        ("acknowledge", "at_risk"),
        ("acknowledge", "breached"),
    }
    assert AuditEvent.objects.filter(action="ticket.sla_breach").count() == 1
    p1.refresh_from_db()
    assert p1.sla_state == "breached"


def test_acknowledging_in_time_meets_the_clock(p1, engineer):
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        services.ticket_transition(ticket=p1, to=S.INVESTIGATING, user=engineer)
    with time_machine.travel(T0 + timedelta(minutes=50), tick=False):
        assert clock(p1, "acknowledge")["state"] == "met"
        services.tickets_sla_check()
        assert not SlaNotice.objects.filter(clock="acknowledge").exists()


def test_clocks_pause_while_waiting_on_the_customer_and_resume(p1, engineer):
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        services.ticket_transition(ticket=p1, to=S.INVESTIGATING, user=engineer)
    with time_machine.travel(T0 + timedelta(minutes=20), tick=False):
        services.ticket_transition(ticket=p1, to=S.WAITING, user=engineer)
    # An hour waiting: the mitigation clock (60 min) stays at 20 minutes, paused.
    with time_machine.travel(T0 + timedelta(minutes=80), tick=False):
        c = clock(p1, "mitigation")
        assert c["paused"] and c["state"] == "ok" and c["elapsed_seconds"] == 20 * 60
        assert services.tickets_sla_check() == 0
        services.ticket_transition(ticket=p1, to=S.INVESTIGATING, user=engineer)
    with time_machine.travel(T0 + timedelta(minutes=107, seconds=59), tick=False):
        assert clock(p1, "mitigation")["state"] == "ok"  # 47:59 used
    with time_machine.travel(T0 + timedelta(minutes=108), tick=False):
        c = clock(p1, "mitigation")
        assert c["state"] == "at_risk" and not c["paused"] and c["remaining_seconds"] == 12 * 60
    with time_machine.travel(T0 + timedelta(minutes=120), tick=False):
        assert clock(p1, "mitigation")["state"] == "at_risk"
    with time_machine.travel(T0 + timedelta(minutes=120, seconds=1), tick=False):
        assert clock(p1, "mitigation")["state"] == "breached"
        services.tickets_sla_check()
        assert SlaNotice.objects.filter(clock="mitigation", state="breached").exists()


def test_a_pause_after_a_clock_stopped_does_not_change_it(p1, engineer):
    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        services.ticket_transition(ticket=p1, to=S.INVESTIGATING, user=engineer)
        services.ticket_transition(ticket=p1, to=S.WAITING, user=engineer)
    with time_machine.travel(T0 + timedelta(minutes=90), tick=False):
        ack = clock(p1, "acknowledge")
        assert ack["state"] == "met" and ack["elapsed_seconds"] == 5 * 60


def test_first_customer_update_stops_its_clock(p1, engineer, mailoutbox):
    with time_machine.travel(T0 + timedelta(minutes=25), tick=False):
        services.ticket_log_contact(ticket=p1, channel="phone", summary="Called the NOC", user=engineer)
    with time_machine.travel(T0 + timedelta(minutes=45), tick=False):
        assert clock(p1, "first_update")["state"] == "met"


def test_breach_notifies_by_email_and_slack_webhook(p1, settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.NOTIFICATION_WEBHOOK_URLS = ["https://hooks.example.test/services/T000"]
    settings.SOC_NOTIFICATION_EMAILS = ["soc@shieldwall.invalid"]
    posted = []
    monkeypatch.setattr(tasks.outbound, "check_destination", lambda url: None)
    monkeypatch.setattr(
        tasks.outbound,
        "request",
        lambda url, **kw: posted.append((url, kw)) or tasks.outbound.Response(200, b"ok", {}),
    )
    mail.outbox.clear()
    with time_machine.travel(T0 + timedelta(minutes=16), tick=False), django_capture_on_commit_callbacks(execute=True):
        services.tickets_sla_check()
    # The breach itself, then the automatic escalation it causes (one level up, to L2).
    assert len(posted) == 2
    url, kw = posted[0]
    assert url == "https://hooks.example.test/services/T000"
    import json

    text = json.loads(kw["body"])["text"]
    assert p1.number in text and "breached" in text
    assert "escalated to L2 network security" in json.loads(posted[1][1]["body"])["text"]
    assert any("breached" in m.body and m.to == ["soc@shieldwall.invalid"] for m in mail.outbox)


def test_a_failing_webhook_never_blocks_the_action(
    p1, engineer, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.NOTIFICATION_WEBHOOK_URLS = ["https://hooks.example.test/down"]
    calls = []

    def down(url, **kw):
        calls.append(url)
        raise tasks.outbound.OutboundRefused("connection refused")

    monkeypatch.setattr(tasks.outbound, "check_destination", lambda url: None)
    monkeypatch.setattr(tasks.outbound, "request", down)
    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_escalate(ticket=p1, level="operations", reason="Need a transit reroute", user=engineer)
    p1.refresh_from_db()
    assert p1.escalation_level == "operations"
    assert calls  # tried, failed, and the escalation stands


def test_webhook_to_a_private_address_is_refused_without_retry(settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    assert tasks.post_webhook("http://127.0.0.1:9/hook", {"text": "x"}) == 0


def test_p1_creation_notifies_the_soc(customer_a, engineer, settings, django_capture_on_commit_callbacks):
    settings.SOC_NOTIFICATION_EMAILS = ["soc@shieldwall.invalid"]
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        ticket = services.ticket_create(customer=customer_a, title="Big one", severity="P1", user=engineer)
    assert [m.to for m in mail.outbox] == [["soc@shieldwall.invalid"]]
    assert ticket.number in mail.outbox[0].subject


def test_beat_task_runs_the_check(p1):
    with time_machine.travel(T0 + timedelta(minutes=20), tick=False):
        tasks.sla_check()
    assert p1.timeline.filter(kind="sla_breach").exists()
