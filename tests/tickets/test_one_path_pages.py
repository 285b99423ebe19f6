"""One path through the pages: Escalate on the alert and attack pages, attack and ticket linked both
ways, "Attach traffic" on the ticket with its attack chosen, "Propose" carrying ticket and attack."""

from __future__ import annotations

import re

import pytest

from tests.tickets.conftest import make_alert
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


def test_escalate_from_the_alert_page_opens_a_ticket_linked_both_ways(engineer_client, feed, customer_a, attack_a):
    alert = attack_a.alerts.order_by("pk").first()
    page = engineer_client.get(alert.get_absolute_url()).content.decode()
    assert 'id="alert-escalate"' in page and 'formaction="/tickets/escalate/"' in page

    response = engineer_client.post("/tickets/escalate/", {"ids": [alert.pk], "next": alert.get_absolute_url()})

    ticket = Ticket.objects.get()
    assert response.status_code == 302 and response["Location"] == ticket.get_absolute_url()
    assert ticket.attacks.filter(pk=attack_a.pk).exists()
    attack_page = engineer_client.get(attack_a.get_absolute_url()).content.decode()
    assert f'<a href="{ticket.get_absolute_url()}">{ticket.number}</a>' in attack_page
    alert_page = engineer_client.get(alert.get_absolute_url()).content.decode()
    assert f'href="{ticket.get_absolute_url()}"' in alert_page
    ticket_page = engineer_client.get(ticket.get_absolute_url()).content.decode()
    assert f'href="{attack_a.get_absolute_url()}"' in ticket_page


def test_escalate_from_the_attack_page_takes_its_open_alerts_then_adds_to_that_ticket(
    engineer_client, feed, customer_a, attack_a
):
    page = engineer_client.get(attack_a.get_absolute_url()).content.decode()
    ids = [int(i) for i in re.findall(r'<input type="hidden" name="ids" value="(\d+)">', page)]
    assert sorted(ids) == sorted(attack_a.alerts.values_list("pk", flat=True))
    engineer_client.post("/tickets/escalate/", {"ids": ids})
    ticket = Ticket.objects.get()

    late = make_alert(feed, customer_a, attack=attack_a, i=8)
    page = engineer_client.get(attack_a.get_absolute_url()).content.decode()
    assert f"Add to {ticket.number}" in page
    engineer_client.post("/tickets/escalate/", {"ids": [late.pk], "ticket": ticket.number})
    assert Ticket.objects.count() == 1 and ticket.alerts.filter(pk=late.pk).exists()


def test_ticket_page_attaches_traffic_to_its_attack_and_proposes_with_ticket_and_attack(
    engineer_client, ticket, attack_a
):
    page = engineer_client.get(ticket.get_absolute_url()).content.decode()
    form = re.search(r'<form[^>]*id="attach-traffic".*?</form>', page, re.S).group(0)
    assert 'action="/traffic/upload/"' in form and 'enctype="multipart/form-data"' in form
    assert f'<option value="{attack_a.pk}" selected>' in form
    assert f'name="customer" value="{ticket.customer.slug}"' in form
    assert f'href="/mitigations/new/?ticket={ticket.number}&amp;attack={attack_a.pk}"' in page
    proposal = engineer_client.get(f"/mitigations/new/?ticket={ticket.number}&attack={attack_a.pk}").content.decode()
    assert f'value="{ticket.number}"' in proposal


def test_a_viewer_sees_no_escalate_or_attach_buttons(client, viewer, ticket, attack_a):
    client.force_login(viewer)
    for url in (attack_a.get_absolute_url(), ticket.get_absolute_url(), attack_a.alerts.first().get_absolute_url()):
        page = client.get(url).content.decode()
        assert 'id="attack-escalate"' not in page and 'id="attach-traffic"' not in page
        assert 'id="alert-escalate"' not in page
