"""Ticket pages: list, detail, composer, escalation from the queue; scoping and escaping."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from alerts.models import Alert
from tickets.models import Ticket

HOSTILE = "<script>window.__pwned=1</script>"


def test_escalate_from_the_queue_opens_a_ticket_and_redirects(engineer_client, attack_a, customer_a):
    ids = list(attack_a.alerts.values_list("pk", flat=True))
    response = engineer_client.post(reverse("ticket-escalate"), {"ids": ids, "next": "/alerts/"})
    ticket = Ticket.objects.get()
    assert response.status_code == 302 and response.url == ticket.get_absolute_url()
    assert ticket.customer == customer_a and set(ticket.alerts.values_list("pk", flat=True)) == set(ids)


def test_escalate_adds_to_an_existing_ticket_by_number(engineer_client, ticket, feed, customer_a):
    from tests.tickets.conftest import make_alert

    extra = make_alert(feed, customer_a, i=11, target="203.0.113.50")
    response = engineer_client.post(reverse("ticket-escalate"), {"ids": [extra.pk], "ticket": ticket.number})
    assert response.url == ticket.get_absolute_url()
    assert ticket.alerts.filter(pk=extra.pk).exists()


def test_escalating_alerts_of_two_customers_explains_why_not(engineer_client, make_attack, customer_a, customer_b):
    a, b = make_attack(customer_a), make_attack(customer_b, target="198.51.100.7")
    ids = [a.alerts.first().pk, b.alerts.first().pk]
    response = engineer_client.post(reverse("ticket-escalate"), {"ids": ids, "next": "/alerts/"}, follow=True)
    assert b"several customers" in response.content
    assert not Ticket.objects.exists()


def test_queue_shows_the_escalate_button(engineer_client, attack_a):
    assert b"Escalate to ticket (e)" in engineer_client.get(reverse("alert-list")).content


def test_list_and_views(engineer_client, ticket, engineer):
    page = engineer_client.get(reverse("ticket-list"))
    assert page.status_code == 200 and ticket.number.encode() in page.content
    assert ticket.number.encode() not in engineer_client.get(reverse("ticket-list"), {"mine": "true"}).content
    assert ticket.number.encode() in engineer_client.get(reverse("ticket-list"), {"unassigned": "true"}).content
    fragment = engineer_client.get(reverse("ticket-list"), HTTP_HX_REQUEST="true")
    assert b"<html" not in fragment.content and ticket.number.encode() in fragment.content


def test_detail_shows_alerts_chart_clocks_timeline_composer(engineer_client, ticket, internal_note):
    page = engineer_client.get(ticket.get_absolute_url())
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-chart="attack-timeline"' in html and 'id="attack-timeline"' in html
    assert html.count('data-alert="') == 3
    assert "data-sla-remaining" in html
    assert 'class="timeline-entry internal kind-note"' in html
    assert "Acknowledgement" in html and 'id="send-message"' in html
    assert "<script>" not in html.split("</head>", 1)[1].replace(
        '<script id="attack-timeline" type="application/json">', ""
    )


def test_composer_loads_previews_and_sends(engineer_client, ticket, internal_note):
    page = engineer_client.get(ticket.get_absolute_url(), {"template": "acknowledgement"})
    assert page.context["composer"]["template"] == "acknowledgement"
    body = page.context["composer"]["body"]
    assert "18.7 Gbps" in body
    url = reverse("ticket-message", args=[ticket.number])
    preview = engineer_client.post(
        url, {"template": "acknowledgement", "subject": "S", "body": body, "action": "preview"}
    )
    assert b'id="message-preview"' in preview.content
    mail.outbox.clear()
    engineer_client.post(url, {"template": "acknowledgement", "subject": "S", "body": body, "action": "send"})
    assert len(mail.outbox) == 1 and "INTERNAL-ONLY" not in mail.outbox[0].body
    assert ticket.timeline.filter(kind="customer_message", delivery_status="sent").exists()


def test_page_actions(engineer_client, ticket, senior):
    n = ticket.number
    engineer_client.post(reverse("ticket-transition", args=[n]), {"to": "investigating", "expected": "new"})
    engineer_client.post(reverse("ticket-assign", args=[n]), {"assignee": "sam"})
    engineer_client.post(reverse("ticket-handoff", args=[n]), {"level": "engineering", "reason": "Edge saturated"})
    engineer_client.post(reverse("ticket-note", args=[n]), {"body": "checked BGP"})
    engineer_client.post(reverse("ticket-contact", args=[n]), {"channel": "phone", "summary": "Called NOC"})
    told = {"channel": "chat", "summary": "Shared the status page", "visibility": "customer"}
    engineer_client.post(reverse("ticket-contact", args=[n]), told)
    contacts = dict(ticket.timeline.filter(kind="contact_log").values_list("body", "visibility"))
    assert contacts == {"Called NOC": "internal", "Shared the status page": "customer"}
    ticket.refresh_from_db()
    assert ticket.status == "investigating" and ticket.assignee == senior and ticket.escalation_level == "engineering"
    kinds = set(ticket.timeline.values_list("kind", flat=True))
    assert {"status_change", "assignment", "escalation", "note", "contact_log"} <= kinds
    refused = engineer_client.post(reverse("ticket-transition", args=[n]), {"to": "closed"}, follow=True)
    assert b"cannot go from" in refused.content


def test_hostile_attack_text_is_escaped(engineer_client, make_attack, customer_a, engineer):
    from tickets import services

    attack = make_attack(customer_a, target="203.0.113.66")
    attack.title = HOSTILE
    attack.save()
    Alert.objects.filter(attack=attack).update(title=HOSTILE)
    ticket = services.ticket_create_from_alerts(alerts=attack.alerts.all(), user=engineer)
    html = engineer_client.get(ticket.get_absolute_url()).content.decode()
    assert HOSTILE not in html and "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html


def test_new_ticket_by_hand(engineer_client, customer_a):
    response = engineer_client.post(reverse("ticket-new"), {"customer": "acme", "title": "Phoned in", "severity": "P2"})
    ticket = Ticket.objects.get()
    assert response.url == ticket.get_absolute_url() and ticket.severity == "P2"


@pytest.mark.parametrize("persona", ["customer_viewer", "outsider"])
def test_outside_scope_every_page_is_404_and_no_note_leaks(client, request, ticket, internal_note, persona):
    client.force_login(request.getfixturevalue(persona))
    n = ticket.number
    for url in [reverse("ticket-list"), ticket.get_absolute_url(), reverse("ticket-new")]:
        response = client.get(url)
        assert response.status_code == 404, url
        assert b"INTERNAL-ONLY" not in response.content
    for name in [
        "ticket-transition",
        "ticket-assign",
        "ticket-handoff",
        "ticket-note",
        "ticket-message",
        "ticket-contact",
    ]:
        assert client.post(reverse(name, args=[n]), {"body": "x", "to": "investigating"}).status_code == 404, name
    assert client.post(reverse("ticket-escalate"), {"ids": [1]}).status_code == 404


def test_viewer_sees_the_ticket_but_no_composer(client, viewer, ticket):
    client.force_login(viewer)
    html = client.get(ticket.get_absolute_url()).content.decode()
    assert ticket.number in html and 'id="send-message"' not in html
    assert client.post(reverse("ticket-note", args=[ticket.number]), {"body": "x"}).status_code == 403
