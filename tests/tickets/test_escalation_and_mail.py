"""Escalation reaches the level's people with the handoff; customer mail can be answered and threads."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import timedelta

import pytest
import time_machine
from django.core import mail

from tests.factories import UserFactory
from tests.tickets.conftest import T0
from tickets import services
from tickets.mail import reply_address, ticket_number_from_addresses
from tickets.models import EscalationTeam, TicketTemplate, TimelineEntry

pytestmark = pytest.mark.django_db

HANDOFF = "Scrubbing in FRA saturates at 400 Gbps; need a BGP diversion to AMS. Tried: rate limits, ACL on 53/udp."
SECRET = "inbound-test-secret"


@pytest.fixture
def l2_team(db):
    team = EscalationTeam.objects.create(level="l2", email="l2-oncall@shieldwall.invalid")
    team.members.add(
        UserFactory(username="nora", email="nora@shieldwall.invalid"),
        UserFactory(username="omar", email="omar@shieldwall.invalid"),
    )
    return team


@pytest.fixture
def eng_team(db):
    team = EscalationTeam.objects.create(level="engineering")
    team.members.add(UserFactory(username="pia", email="pia@shieldwall.invalid"))
    return team


def test_escalation_mails_the_levels_members_and_contact_with_the_handoff(
    ticket, engineer, l2_team, django_capture_on_commit_callbacks, settings
):
    engineer.email = "eli@shieldwall.invalid"
    engineer.save()
    ticket.assignee = engineer
    ticket.save()
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_escalate(ticket=ticket, level="l2", reason=HANDOFF, user=engineer)

    (message,) = [m for m in mail.outbox if "escalated" in m.subject]
    assert sorted(message.to) == ["l2-oncall@shieldwall.invalid", "nora@shieldwall.invalid", "omar@shieldwall.invalid"]
    assert "eli@shieldwall.invalid" not in message.to  # not the engineer who escalated
    assert HANDOFF in message.body
    assert ticket.number in message.subject and "L2 network security" in message.subject
    assert f"/tickets/{ticket.number}/" in message.body


def test_an_sla_breach_escalates_one_level_with_the_handoff(
    customer_a, engineer, l2_team, eng_team, django_capture_on_commit_callbacks
):
    with time_machine.travel(T0, tick=False):
        p1 = services.ticket_create(customer=customer_a, title="P1 flood", severity="P1", user=engineer)
    mail.outbox.clear()
    with time_machine.travel(T0 + timedelta(minutes=16), tick=False), django_capture_on_commit_callbacks(execute=True):
        services.tickets_sla_check()
    p1.refresh_from_db()
    assert p1.escalation_level == "l2"
    entry = p1.timeline.get(kind="escalation")
    assert entry.body.startswith("Automatic escalation: Acknowledge SLA breached")
    assert any(sorted(m.to)[0] == "l2-oncall@shieldwall.invalid" for m in mail.outbox)
    # Only one level per breach: a second check changes nothing.
    with time_machine.travel(T0 + timedelta(minutes=17), tick=False):
        services.tickets_sla_check()
    p1.refresh_from_db()
    assert p1.escalation_level == "l2"


def test_customer_mail_has_reply_to_threading_and_greets_the_contact(ticket, engineer):
    ticket.customer.contacts = [{"name": "Dana Ops", "email": "dana@acme.example", "reports": True}]
    ticket.customer.save()
    ack = TicketTemplate.objects.get(slug="acknowledgement")
    mail.outbox.clear()

    first = services.ticket_send_customer_message(ticket=ticket, template=ack, user=engineer)
    second = services.ticket_send_customer_message(ticket=ticket, subject="Update", body="Still on it.", user=engineer)

    m1, m2 = mail.outbox
    assert m1.reply_to == [reply_address(ticket)] == m2.reply_to
    assert m1.body.startswith("Hello Dana Ops,")
    assert m1.extra_headers["Message-ID"] == first.data["message_id"]
    assert m2.extra_headers["In-Reply-To"] == first.data["message_id"]
    assert m2.extra_headers["References"] == first.data["message_id"]
    assert m2.extra_headers["Message-ID"] == second.data["message_id"] != first.data["message_id"]
    # The reply address names this ticket, and a forged one names none.
    assert ticket_number_from_addresses(f"Acme SOC <{reply_address(ticket)}>") == ticket.number
    forged = reply_address(ticket).replace(ticket.number, "SW-2026-9999")
    assert ticket_number_from_addresses(forged) is None


def _signed(**fields):
    timestamp, token = str(int(time.time())), "tok-" + str(time.time_ns())
    signature = hmac.new(SECRET.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {"timestamp": timestamp, "token": token, "signature": signature, **fields}


def test_a_reply_to_the_ticket_address_lands_on_the_timeline(client, ticket, engineer, settings):
    settings.INBOUND_MAIL_SECRET = SECRET
    sent = services.ticket_send_customer_message(ticket=ticket, subject="Hi", body="We are on it.", user=engineer)
    headers = (
        f"Message-ID: <reply-1@acme.example>\nIn-Reply-To: {sent.data['message_id']}\nTo: {reply_address(ticket)}\n"
    )
    payload = _signed(
        to=reply_address(ticket),
        sender="Dana Ops <dana@acme.example>",
        subject=f"Re: [{ticket.number}] Hi",
        text="Thanks — the origin is 203.0.113.10 only. <script>alert(1)</script>",
        headers=headers,
    )

    response = client.post("/inbound/mail/", payload)
    again = client.post("/inbound/mail/", _signed(**{k: v for k, v in payload.items() if k not in ("timestamp",)}))

    assert response.status_code == 200 and response.json()["ticket"] == ticket.number
    assert again.status_code == 200
    (reply,) = ticket.timeline.filter(kind=TimelineEntry.Kind.CUSTOMER_REPLY)
    assert "the origin is 203.0.113.10 only" in reply.body
    assert reply.data["message_id"] == "<reply-1@acme.example>"
    assert reply.actor_name == "Dana Ops <dana@acme.example>"
    client.force_login(engineer)
    page = client.get(ticket.get_absolute_url()).content.decode()
    assert "the origin is 203.0.113.10 only" in page and "<script>alert(1)</script>" not in page


def test_the_inbound_endpoint_refuses_unsigned_or_stale_posts(client, ticket, settings):
    settings.INBOUND_MAIL_SECRET = SECRET
    body = {"to": reply_address(ticket), "sender": "x@evil.example", "subject": "Re", "text": "forged"}

    unsigned = client.post("/inbound/mail/", body)
    wrong = client.post("/inbound/mail/", {**_signed(**body), "signature": "0" * 64})
    stale = _signed(**body)
    stale["timestamp"] = str(int(time.time()) - 3600)
    stale["signature"] = hmac.new(
        SECRET.encode(), f"{stale['timestamp']}{stale['token']}".encode(), hashlib.sha256
    ).hexdigest()
    old = client.post("/inbound/mail/", stale)

    assert unsigned.status_code == wrong.status_code == old.status_code == 403
    assert not ticket.timeline.filter(kind=TimelineEntry.Kind.CUSTOMER_REPLY).exists()


def test_a_report_mailed_to_the_customer_is_on_the_ticket_timeline(ticket, engineer, customer_a, attack_a):
    from reports import services as reports

    customer_a.contacts = [{"name": "Dana Ops", "email": "dana@acme.example", "reports": True}]
    customer_a.save()
    report = reports.report_request(user=engineer, ticket=ticket, enqueue=False)
    reports.report_generate(report_id=report.pk, pdf=False)
    report.refresh_from_db()
    mail.outbox.clear()

    reports.report_send(report=report, user=engineer)

    (message,) = mail.outbox
    assert message.reply_to == [reply_address(ticket)]
    assert message.body.startswith("Hello Dana Ops,")
    entry = ticket.timeline.get(kind=TimelineEntry.Kind.REPORT_SENT)
    assert entry.data["report"] == report.pk and entry.visibility == "customer"
    assert entry.data["message_id"] == message.extra_headers["Message-ID"]
