"""Customer mail that reached no ticket: staff attach it to its ticket, or open a ticket from it.

The mail arrives as the provider's inbound-parse webhook would post it (no per-ticket
address, no thread id of ours), so it is kept as unmatched, then handled from its page.
"""

from __future__ import annotations

import pytest

from console.models import AuditEvent
from tickets import services
from tickets.models import InboundMail, Ticket, TimelineEntry

pytestmark = pytest.mark.django_db

HOSTILE = "Under attack <script>alert('mail')</script> since 09:00"


def receive(sender="SRE <sre@acme.example>", subject=HOSTILE, text="Our site is down <b>again</b>, please help."):
    services.ticket_receive_customer_reply(
        recipients=["soc@shieldwall.invalid"],
        sender=sender,
        subject=subject,
        text=text,
        message_id=f"<{abs(hash((sender, subject, text)))}@mail.acme.example>",
    )
    return InboundMail.objects.get(sender=sender, subject=subject)


@pytest.fixture
def acme_ticket(customer_a):
    return services.ticket_create(customer=customer_a, title="Acme: SYN flood on 203.0.113.10", user=None)


@pytest.fixture
def globex_ticket(customer_b):
    return services.ticket_create(customer=customer_b, title="Globex: HTTP flood", user=None)


def test_the_page_offers_the_senders_tickets_and_attaches_the_mail_as_the_customers_message(
    client, engineer, acme_ticket, globex_ticket
):
    mail = receive()
    assert mail.status == InboundMail.Status.UNMATCHED
    client.force_login(engineer)
    assert f"/tickets/inbound/{mail.pk}/" in client.get("/tickets/inbound/").content.decode()

    page = client.get(f"/tickets/inbound/{mail.pk}/").content.decode()
    assert acme_ticket.number in page and globex_ticket.number not in page  # the sender is Acme's contact
    assert "<script>alert('mail')</script>" not in page and "&lt;script&gt;" in page

    response = client.post(f"/tickets/inbound/{mail.pk}/attach/", {"ticket": acme_ticket.number})

    assert response.status_code == 302 and response.url == acme_ticket.get_absolute_url()
    mail.refresh_from_db()
    entry = acme_ticket.timeline.get(kind=TimelineEntry.Kind.CUSTOMER_REPLY)
    assert (mail.status, mail.ticket, mail.timeline_entry) == (InboundMail.Status.ATTACHED, acme_ticket, entry)
    assert entry.body == "Our site is down <b>again</b>, please help."
    assert entry.actor_name == "SRE <sre@acme.example>" and entry.at == mail.received_at
    assert entry.data["attached_by"] == engineer.username and entry.data["subject"] == HOSTILE
    event = AuditEvent.objects.get(action="ticket.inbound_attach")
    assert event.after["inbound_mail"] == mail.pk and event.before["status"] == "unmatched"
    ticket_page = client.get(acme_ticket.get_absolute_url()).content.decode()
    assert "Our site is down &lt;b&gt;again&lt;/b&gt;, please help." in ticket_page
    assert f"/tickets/inbound/{mail.pk}/" not in client.get("/tickets/inbound/").content.decode()
    # Attaching is the first human action on the ticket: it acknowledges and assigns it.
    acme_ticket.refresh_from_db()
    assert acme_ticket.status == Ticket.Status.INVESTIGATING and acme_ticket.assignee == engineer


def test_attaching_again_changes_nothing_and_another_ticket_is_refused(client, engineer, acme_ticket, customer_a):
    mail = receive()
    other = services.ticket_create(customer=customer_a, title="Acme: another incident", user=None)
    client.force_login(engineer)

    client.post(f"/tickets/inbound/{mail.pk}/attach/", {"ticket": acme_ticket.number})
    client.post(f"/tickets/inbound/{mail.pk}/attach/", {"ticket": acme_ticket.number})
    refused = client.post(f"/tickets/inbound/{mail.pk}/attach/", {"ticket": other.number}, follow=True)

    assert acme_ticket.timeline.filter(kind=TimelineEntry.Kind.CUSTOMER_REPLY).count() == 1
    assert not other.timeline.filter(kind=TimelineEntry.Kind.CUSTOMER_REPLY).exists()
    assert f"this mail is already on {acme_ticket.number}" in refused.content.decode()
    mail.refresh_from_db()
    assert mail.ticket == acme_ticket
    assert AuditEvent.objects.filter(action="ticket.inbound_attach").count() == 1


def test_a_sender_no_customer_knows_is_said_so_and_the_ticket_is_found_by_search(client, engineer, acme_ticket):
    mail = receive(sender="someone@freemail.example", subject="help")
    client.force_login(engineer)

    page = client.get(f"/tickets/inbound/{mail.pk}/").content.decode()
    assert "unknown (no contact or zone of a customer matches the sender)" in page
    assert acme_ticket.number not in page

    found = client.get(f"/tickets/inbound/{mail.pk}/", {"q": "SYN flood"}).content.decode()
    assert acme_ticket.number in found


def test_a_sender_under_a_customers_zone_is_that_customers(client, engineer, acme_ticket):
    mail = receive(sender="noc@mail.acme.example", subject="still down")
    client.force_login(engineer)

    page = client.get(f"/tickets/inbound/{mail.pk}/").content.decode()

    assert acme_ticket.number in page


def test_a_new_ticket_is_opened_from_the_mail_with_the_mail_on_it(client, engineer, customer_a):
    mail = receive(subject="We are being DDoSed")
    client.force_login(engineer)
    page = client.get(f"/tickets/inbound/{mail.pk}/").content.decode()
    assert '<option value="acme" selected>' in page  # the sender's customer, preselected

    response = client.post(f"/tickets/inbound/{mail.pk}/open/", {"customer": "acme", "severity": "P2", "title": ""})

    ticket = Ticket.objects.get(customer=customer_a)
    assert response.status_code == 302 and response.url == ticket.get_absolute_url()
    assert ticket.title == "We are being DDoSed" and ticket.severity == "P2"
    assert ticket.event_at == mail.received_at
    kinds = list(ticket.timeline.order_by("at", "id").values_list("kind", flat=True))
    assert TimelineEntry.Kind.CUSTOMER_REPLY in kinds and TimelineEntry.Kind.CREATED in kinds
    mail.refresh_from_db()
    assert mail.status == InboundMail.Status.ATTACHED and mail.ticket == ticket


def test_a_refused_new_ticket_keeps_what_was_typed_and_says_why(client, engineer):
    mail = receive()
    client.force_login(engineer)

    response = client.post(f"/tickets/inbound/{mail.pk}/open/", {"customer": "", "severity": "P2", "title": "Kept"})

    assert response.status_code == 400
    page = response.content.decode()
    assert 'value="Kept"' in page and "This field is required." in page
    assert not Ticket.objects.exists()
    mail.refresh_from_db()
    assert mail.status == InboundMail.Status.UNMATCHED


def test_only_engineers_attach_and_customers_never_see_the_mail(client, viewer, customer_viewer, acme_ticket, engineer):
    mail = receive()
    client.force_login(viewer)
    assert client.get(f"/tickets/inbound/{mail.pk}/").status_code == 200
    assert client.post(f"/tickets/inbound/{mail.pk}/attach/", {"ticket": acme_ticket.number}).status_code == 403
    client.force_login(customer_viewer)
    assert client.get(f"/tickets/inbound/{mail.pk}/").status_code == 404
    assert client.post(f"/tickets/inbound/{mail.pk}/attach/", {"ticket": acme_ticket.number}).status_code == 404
    mail.refresh_from_db()
    assert mail.status == InboundMail.Status.UNMATCHED
