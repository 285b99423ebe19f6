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


def test_attach_traffic_comes_back_to_the_ticket_and_its_card_proposes_for_the_ticket(
    engineer_client, ticket, attack_a, tmp_path, settings, django_capture_on_commit_callbacks
):
    import random

    from django.core.files.base import ContentFile

    from tests.traffic import gen
    from tests.traffic import vectors as V
    from traffic import services as traffic_services

    settings.MEDIA_ROOT = tmp_path / "media"
    page = engineer_client.get(ticket.get_absolute_url()).content.decode()
    form = re.search(r'<form[^>]*id="attach-traffic".*?</form>', page, re.S).group(0)
    assert f'name="next" value="{ticket.get_absolute_url()}"' in form
    card_url = f"/traffic/attacks/{attack_a.pk}/suggestions/?ticket={ticket.number}"
    assert f'id="ticket-suggestions" hx-get="{card_url}"' in page

    rng = random.Random(3)
    path = tmp_path / "udp.pcap"
    gen.write_pcap(path, V.merge(V.normal(rng, 6), V.udp_fixed(rng, n=2000)))
    with django_capture_on_commit_callbacks(execute=True):  # parsed after commit (Celery eager in tests)
        traffic_services.sample_create(
            customer=ticket.customer,
            name="udp.pcap",
            fileobj=ContentFile(path.read_bytes(), name="udp.pcap"),
            label="attack",
            attack=attack_a,
        )
    card = engineer_client.get(card_url, HTTP_HX_REQUEST="true").content.decode()
    links = re.findall(r'href="(/mitigations/new/\?[^"]+)">Propose mitigation', card)
    assert links and all(link.endswith(f"&amp;ticket={ticket.number}") for link in links), card
    assert 'id="attack-upload"' not in card  # the ticket has its own upload form
    assert 'id="attack-upload"' in engineer_client.get(f"/traffic/attacks/{attack_a.pk}/suggestions/").content.decode()


def test_a_proposal_started_from_the_attack_belongs_to_its_open_ticket(engineer_client, ticket, attack_a):
    page = engineer_client.get(f"/mitigations/new/?attack={attack_a.pk}&expression=udp.dstport%20eq%2053").content
    assert f'name="ticket" value="{ticket.number}"' in page.decode()
    ticket.status = Ticket.Status.RESOLVED
    ticket.save(update_fields=["status"])
    page = engineer_client.get(f"/mitigations/new/?attack={attack_a.pk}").content.decode()
    assert f'value="{ticket.number}"' not in page


def test_an_active_mitigation_of_the_ticket_offers_to_tell_the_customer(
    engineer_client, ticket, attack_a, senior, engineer, django_capture_on_commit_callbacks
):
    from mitigations import services as mitigation_services
    from tests.mitigations.conftest import traffic

    mitigation = mitigation_services.mitigation_create(
        customer=ticket.customer,
        kind="firewall_rule",
        user=engineer,
        targets=["export"],
        action="block",
        expression="ip.dst in {203.0.113.0/24} and ip.src in {198.18.0.0/24} and udp.dstport eq 53",
        ttl_seconds=600,
        attack=attack_a,
        ticket=ticket,
    )
    mitigation_services.mitigation_simulate(
        mitigation=mitigation,
        attack_table=traffic([("198.18.0.7", 17, 53)] * 100),
        baseline_table=traffic([("192.0.2.200", 6, 443)] * 98 + [("198.51.100.9", 17, 53)] * 2),
    )
    mitigation_services.mitigation_propose(mitigation=mitigation, user=engineer)
    detail = engineer_client.get(mitigation.get_absolute_url()).content.decode()
    assert 'id="tell-customer"' not in detail  # nothing to tell before it is in force
    mitigation_services.mitigation_approve(mitigation=mitigation, user=senior)
    with django_capture_on_commit_callbacks(execute=True):
        mitigation_services.mitigation_apply(mitigation=mitigation, user=senior)

    detail = engineer_client.get(mitigation.get_absolute_url()).content.decode()
    link = f"{ticket.get_absolute_url()}?template=mitigation-applied#composer-message"
    assert f'id="tell-customer" href="{link}"' in detail
    composer = engineer_client.get(link).content.decode()
    assert 'name="template" value="mitigation-applied"' in composer and "A mitigation is now in place" in composer
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.MITIGATING
