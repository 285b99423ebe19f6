"""The tickets API: reads, creation, every action, filters, schema, and scoping."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.management import call_command

from alerts.models import Alert
from tests.tickets.conftest import make_alert
from tickets import services
from tickets.models import Ticket


def test_list_is_bounded_in_queries(api_as, engineer, make_attack, customer_a, django_assert_max_num_queries):
    for i in range(5):
        attack = make_attack(customer_a, target=f"203.0.113.{20 + i}", n=2)
        services.ticket_create_from_alerts(alerts=attack.alerts.all(), user=engineer)
    client = api_as(engineer)
    with django_assert_max_num_queries(12):
        response = client.get("/api/tickets/")
    assert response.status_code == 200
    assert response.json()["count"] == 5


def test_retrieve_by_number_shows_sla_and_allowed_transitions(api_as, engineer, ticket):
    data = api_as(engineer).get(f"/api/tickets/{ticket.number}/").json()
    assert data["number"] == ticket.number and data["customer"] == "acme"
    assert data["allowed_transitions"] == ["investigating", "waiting_on_customer"]
    assert [c["name"] for c in data["sla"]] == ["acknowledge", "first_update", "mitigation"]
    assert len(data["alerts"]) == 3


def test_create_from_alerts_and_by_hand(api_as, engineer, attack_a, customer_b):
    client = api_as(engineer)
    ids = list(attack_a.alerts.values_list("pk", flat=True))
    response = client.post("/api/tickets/", {"alerts": ids, "tags": ["bank"]}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["severity"] == "P1" and response.json()["tags"] == ["bank"]
    response = client.post(
        "/api/tickets/", {"customer": "globex", "title": "Phone report", "severity": "P2"}, format="json"
    )
    assert response.status_code == 201 and response.json()["customer"] == "globex"
    assert client.post("/api/tickets/", {"title": "nothing"}, format="json").status_code == 400


def test_transition_action_and_refusal(api_as, engineer, ticket):
    client = api_as(engineer)
    url = f"/api/tickets/{ticket.number}/transition/"
    assert client.post(url, {"to": "investigating"}, format="json").json()["status"] == "investigating"
    refused = client.post(url, {"to": "closed"}, format="json")
    assert refused.status_code == 409 and "cannot go from" in refused.json()["detail"]


def test_status_is_read_only_through_patch(api_as, engineer, ticket):
    response = api_as(engineer).patch(
        f"/api/tickets/{ticket.number}/", {"status": "closed", "title": "New"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "new" and response.json()["title"] == "New"


def test_assign_escalate_note_contact_actions(api_as, engineer, senior, ticket):
    client = api_as(engineer)
    base = f"/api/tickets/{ticket.number}"
    assert client.post(f"{base}/assign/", {"assignee": "sam"}, format="json").json()["assignee"] == "sam"
    assert client.post(f"{base}/assign/", {"assignee": "nobody-here"}, format="json").status_code == 400
    r = client.post(f"{base}/escalate/", {"level": "l2", "reason": "Needs BGP work"}, format="json")
    assert r.json()["escalation_level"] == "l2"
    assert client.post(f"{base}/escalate/", {"level": "l2", "reason": ""}, format="json").status_code == 400
    note = client.post(f"{base}/add_note/", {"body": "internal detail"}, format="json")
    assert note.status_code == 201 and note.json()["visibility"] == "internal"
    contact = client.post(f"{base}/log_contact/", {"channel": "chat", "summary": "Chatted"}, format="json")
    assert contact.status_code == 201 and contact.json()["visibility"] == "internal"
    told = {"channel": "phone", "summary": "Told them it is over", "visibility": "customer"}
    assert client.post(f"{base}/log_contact/", told, format="json").json()["visibility"] == "customer"
    bad = {"channel": "phone", "summary": "x", "visibility": "everyone"}
    assert client.post(f"{base}/log_contact/", bad, format="json").status_code == 400
    kinds = [e["kind"] for e in client.get(f"{base}/timeline/").json()]
    assert {"assignment", "escalation", "note", "contact_log"} <= set(kinds)


def test_link_alerts_action(api_as, engineer, ticket, feed, customer_a):
    extra = make_alert(feed, customer_a, i=5, target="203.0.113.77")
    r = api_as(engineer).post(f"/api/tickets/{ticket.number}/link_alerts/", {"alerts": [extra.pk]}, format="json")
    assert r.status_code == 200 and r.json()["linked"] == 1
    assert extra.pk in r.json()["ticket"]["alerts"]
    extra.refresh_from_db()
    assert extra.status == Alert.Status.ESCALATED


def test_send_message_preview_then_send(api_as, engineer, ticket, internal_note):
    client = api_as(engineer)
    url = f"/api/tickets/{ticket.number}/send_message/"
    mail.outbox.clear()
    preview = client.post(url, {"template": "acknowledgement", "preview": True}, format="json")
    assert preview.status_code == 200 and "18.7 Gbps" in preview.json()["body"]
    assert not mail.outbox
    sent = client.post(url, {"template": "acknowledgement"}, format="json")
    assert sent.status_code == 201 and sent.json()["delivery_status"] == "sent"
    assert len(mail.outbox) == 1 and "INTERNAL-ONLY" not in mail.outbox[0].body


def test_templates_are_listed(api_as, engineer):
    data = api_as(engineer).get("/api/ticket-templates/").json()
    assert [t["slug"] for t in data][:2] == ["acknowledgement", "attack-identified"]
    assert len(data) == 5


def test_filters_are_shared_with_the_page(api_as, engineer, senior, ticket, customer_b):
    other = services.ticket_create(customer=customer_b, title="Other", user=engineer)
    services.ticket_assign(ticket=other, assignee=engineer, user=engineer)
    Ticket.objects.filter(pk=ticket.pk).update(sla_state="breached")
    client = api_as(engineer)

    def numbers(**params):
        return {t["number"] for t in client.get("/api/tickets/", params).json()["results"]}

    assert numbers(mine="true") == {other.number}
    assert numbers(unassigned="true") == {ticket.number}
    assert numbers(customer="acme") == {ticket.number}
    assert numbers(sla="breached") == {ticket.number}
    assert numbers(status="new") == {ticket.number, other.number}
    assert numbers(q=ticket.number) == {ticket.number}


def test_viewer_reads_but_cannot_act(api_as, viewer, ticket):
    client = api_as(viewer)
    assert client.get(f"/api/tickets/{ticket.number}/").status_code == 200
    assert client.post(f"/api/tickets/{ticket.number}/add_note/", {"body": "x"}, format="json").status_code == 403


@pytest.mark.parametrize("persona", ["customer_viewer", "outsider"])
def test_outside_scope_every_endpoint_is_empty_or_404(request, api_as, ticket, internal_note, persona):
    client = api_as(request.getfixturevalue(persona))
    listing = client.get("/api/tickets/")
    assert listing.status_code == 200 and listing.json()["count"] == 0
    assert client.get("/api/ticket-templates/").json() == []
    base = f"/api/tickets/{ticket.number}"
    assert client.get(f"{base}/").status_code == 404
    assert client.get(f"{base}/timeline/").status_code == 404
    for action, body in [
        ("transition", {"to": "investigating"}),
        ("add_note", {"body": "x"}),
        ("send_message", {"template": "acknowledgement"}),
        ("link_alerts", {"alerts": [1]}),
        ("assign", {"assignee": ""}),
        ("escalate", {"level": "l2", "reason": "x"}),
    ]:
        assert client.post(f"{base}/{action}/", body, format="json").status_code == 404, action
    assert client.post("/api/tickets/", {"customer": "acme", "title": "x"}, format="json").status_code == 404
    assert b"INTERNAL-ONLY" not in listing.content


def test_schema_has_every_ticket_action_and_names_its_enums(tmp_path):
    # The whole schema's --fail-on-warn check is tests/console/test_platform.py's.
    call_command("spectacular", "--file", str(tmp_path / "schema.yaml"))
    text = (tmp_path / "schema.yaml").read_text()
    for action in ("transition", "assign", "escalate", "link_alerts", "add_note", "send_message"):
        assert f"/api/tickets/{{number}}/{action}/" in text
    assert "/api/ticket-templates/" in text
    for enum in ("TicketStatusEnum", "TicketPriorityEnum", "TimelineKindEnum", "TicketEscalationLevelEnum"):
        assert f"{enum}:" in text
