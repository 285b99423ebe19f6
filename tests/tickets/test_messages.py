"""Customer messages: templates filled from the ticket and attack, email delivery, nothing internal leaks."""

from __future__ import annotations

import pytest
from django.core import mail

from console.models import AuditEvent
from tickets import services
from tickets.messages import format_bps, format_pps, render_text
from tickets.models import TicketTemplate, TimelineEntry


@pytest.fixture
def ack(db):
    return TicketTemplate.objects.get(slug="acknowledgement")


def test_the_five_templates_are_seeded(db):
    assert list(TicketTemplate.objects.values_list("slug", flat=True)) == [
        "acknowledgement",
        "attack-identified",
        "mitigation-applied",
        "monitoring",
        "post-incident-summary",
    ]


def test_units_are_readable():
    assert format_bps(18.7e9) == "18.7 Gbps"
    assert format_pps(2_450_000) == "2.45 Mpps"
    assert format_bps(950) == "950 bps"
    assert format_bps(None) == ""


def test_acknowledgement_is_filled_from_the_attack_in_the_customers_timezone(ticket, ack, engineer):
    subject, body = services.ticket_preview_message(ticket=ticket, template=ack, user=engineer)
    assert "203.0.113.10" in subject
    assert "UDP flood, SYN flood" in body
    assert "18.7 Gbps, 2.45 Mpps" in body
    assert "2026-03-02 09:00 EST" in body  # 14:00 UTC in New York
    assert ticket.number in body
    assert body.startswith("Hello SRE,")  # the contact by name, not the company


def test_sending_emails_the_contacts_with_the_figures_and_not_the_internal_note(ticket, ack, engineer, internal_note):
    mail.outbox.clear()
    entry = services.ticket_send_customer_message(ticket=ticket, template=ack, user=engineer)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["sre@acme.example"]
    assert ticket.number in message.subject
    assert "18.7 Gbps" in message.body and "2.45 Mpps" in message.body
    assert "INTERNAL-ONLY" not in message.body and "INTERNAL-ONLY" not in message.subject
    assert entry.visibility == TimelineEntry.Visibility.CUSTOMER
    assert entry.delivery_status == "sent"
    assert entry.data["recipients"] == ["sre@acme.example"]
    ticket.refresh_from_db()
    assert ticket.first_update_at == entry.at


def test_an_edited_message_is_sent_as_edited(ticket, ack, engineer):
    mail.outbox.clear()
    services.ticket_send_customer_message(
        ticket=ticket, template=ack, subject="Custom subject", body="Custom body\n", user=engineer
    )
    assert mail.outbox[0].body == "Custom body\n"
    assert mail.outbox[0].subject == f"[{ticket.number}] Custom subject"


def test_a_failed_delivery_is_kept_as_failed(ticket, ack, engineer, monkeypatch):
    def broken(self, fail_silently=False):
        raise OSError("smtp down")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", broken)
    entry = services.ticket_send_customer_message(ticket=ticket, template=ack, user=engineer)
    assert entry.delivery_status == "failed" and "smtp down" in entry.data["error"]
    ticket.refresh_from_db()
    assert ticket.first_update_at is None


def test_customer_without_email_is_refused(ticket, ack, engineer):
    ticket.customer.contacts = [{"name": "Phone only", "phone": "+1"}]
    ticket.customer.save()
    with pytest.raises(services.TicketError, match="no contact with an email"):
        services.ticket_send_customer_message(ticket=ticket, template=ack, user=engineer)


def test_plain_text_rendering_does_not_escape_but_cannot_include_files():
    assert render_text("{{ v }}", {"v": "<b>&"}) == "<b>&"
    with pytest.raises(Exception):  # noqa: B017 - no loaders: include is impossible
        render_text('{% include "base.html" %}', {})


def test_contact_log_is_internal_unless_chosen_and_audited(ticket, engineer):
    entry = services.ticket_log_contact(
        ticket=ticket, channel="phone", contact="Alicia", summary="Confirmed impact on login", user=engineer
    )
    assert entry.kind == "contact_log" and entry.visibility == "internal"
    assert entry.data == {"channel": "phone", "contact": "Alicia", "direction": "outbound"}
    shown = services.ticket_log_contact(
        ticket=ticket, channel="chat", summary="Sent the status page link", user=engineer, visibility="customer"
    )
    assert shown.visibility == "customer"
    audited = AuditEvent.objects.filter(action="ticket.contact_log").order_by("id")
    assert [e.after["visibility"] for e in audited] == ["internal", "customer"]
    with pytest.raises(services.TicketError):
        services.ticket_log_contact(ticket=ticket, channel="pigeon", summary="x", user=engineer)
    with pytest.raises(services.TicketError):
        services.ticket_log_contact(ticket=ticket, channel="phone", summary="x", user=engineer, visibility="public")


def test_mitigation_events_land_on_the_timeline(ticket, engineer):
    services.ticket_timeline_add(ticket=ticket, kind="mitigation", text="Mitigation rate-limit applied", user=engineer)
    services.ticket_record_mitigation(ticket=ticket, event="expired", description="TTL reached", user=engineer)
    kinds = list(ticket.timeline.values_list("kind", flat=True))
    assert "mitigation_applied" in kinds and "mitigation_expired" in kinds
    ticket.refresh_from_db()
    assert ticket.mitigated_at is not None
