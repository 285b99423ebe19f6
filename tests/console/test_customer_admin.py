"""Customers and their assets are an admin's: engineers read them; deleting is guarded, archiving is the way out."""

from __future__ import annotations

import pytest
from django.urls import reverse

from console import roles
from console.models import Asset, AuditEvent, Customer
from mitigations import services as mitigation_services
from mitigations.models import Mitigation
from tests.factories import CustomerFactory, UserFactory
from tickets import services as ticket_services
from tickets.models import Ticket


@pytest.fixture
def admin(db):
    """An admin by role (the group), not a Django superuser."""
    return UserFactory(username="ada", role=roles.ADMIN)


def _mitigation(customer, user, state):
    mitigation = mitigation_services.mitigation_create(
        customer=customer,
        kind="firewall_rule",
        user=user,
        targets=["export"],
        expression="ip.dst in {203.0.113.0/24} and ip.src in {198.18.0.0/24} and udp.dstport eq 53",
        action="block",
        ttl_seconds=600,
    )
    # As the backend leaves it once the rule is on a firewall.
    Mitigation.objects.filter(pk=mitigation.pk).update(state=state)
    return mitigation


def test_engineer_cannot_change_contacts_or_assets(api_as, engineer, customer_a, customer_b):
    api = api_as(engineer)
    contacts = [{"name": "Mallory", "email": "mallory@evil.example", "reports": True}]
    response = api.patch(f"/api/customers/{customer_a.slug}/", {"contacts": contacts}, format="json")
    assert response.status_code == 403
    assert "admin" in response.json()["detail"]
    customer_a.refresh_from_db()
    assert "mallory@evil.example" not in customer_a.report_emails

    other_asset = customer_b.assets.get()
    assert api.delete(f"/api/assets/{other_asset.pk}/").status_code == 403
    assert api.patch(f"/api/assets/{other_asset.pk}/", {"customer": "acme"}, format="json").status_code == 403
    new = {"customer": "acme", "kind": "zone", "value": "mine.example"}
    assert api.post("/api/assets/", new, format="json").status_code == 403
    assert api.post("/api/customers/", {"name": "New", "slug": "new"}, format="json").status_code == 403
    assert Asset.objects.filter(pk=other_asset.pk, customer=customer_b).exists()
    assert not Asset.objects.filter(value="mine.example").exists()
    assert not Customer.objects.filter(slug="new").exists()
    # Reading stays open to them.
    assert api.get(f"/api/customers/{customer_a.slug}/").json()["contacts"] == customer_a.contacts


def test_admin_changes_contacts_and_assets_audited(api_as, admin, customer_a):
    api = api_as(admin)
    contacts = [{"name": "NOC", "email": "noc@acme.example", "reports": True}]
    assert api.patch(f"/api/customers/{customer_a.slug}/", {"contacts": contacts}, format="json").status_code == 200
    customer_a.refresh_from_db()
    assert customer_a.report_emails == ["noc@acme.example"]
    asset = customer_a.assets.get(kind="zone")
    assert api.delete(f"/api/assets/{asset.pk}/").status_code == 204
    actions = list(AuditEvent.objects.filter(customer=customer_a, actor_name="ada").values_list("action", flat=True))
    assert set(actions) == {"customer.update", "asset.delete"}


def test_admin_cannot_delete_a_customer_with_an_active_mitigation(api_as, admin, engineer, customer_a):
    mitigation = _mitigation(customer_a, engineer, "active")
    response = api_as(admin).delete(f"/api/customers/{customer_a.slug}/")
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "1 mitigation applied" in detail and "Archive" in detail
    assert Customer.objects.filter(pk=customer_a.pk).exists()
    assert Mitigation.objects.filter(pk=mitigation.pk, state="active").exists()
    assert not AuditEvent.objects.filter(action="customer.delete").exists()


def test_admin_cannot_delete_a_customer_with_an_open_ticket(api_as, admin, engineer, customer_a):
    ticket = ticket_services.ticket_create(customer=customer_a, title="Phone call: site slow", user=engineer)
    response = api_as(admin).delete(f"/api/customers/{customer_a.slug}/")
    assert response.status_code == 409
    assert "1 open ticket" in response.json()["detail"]
    assert Ticket.objects.filter(pk=ticket.pk).exists()


def test_a_closed_ticket_keeps_its_customer_on_record(api_as, admin, engineer, customer_a):
    ticket = ticket_services.ticket_create(customer=customer_a, title="Old incident", user=engineer)
    Ticket.objects.filter(pk=ticket.pk).update(status="closed")
    response = api_as(admin).delete(f"/api/customers/{customer_a.slug}/")
    assert response.status_code == 409, response.content
    assert "Archive" in response.json()["detail"]
    assert Customer.objects.filter(pk=customer_a.pk).exists()


def test_admin_deletes_a_customer_with_nothing_open_and_the_audit_keeps_it(api_as, admin, engineer, customer_a):
    _mitigation(customer_a, engineer, "expired")  # ended: nothing left on a firewall
    response = api_as(admin).delete(f"/api/customers/{customer_a.slug}/")
    assert response.status_code == 204, response.content
    assert not Customer.objects.filter(slug="acme").exists()
    event = AuditEvent.objects.get(action="customer.delete")
    assert event.actor_name == "ada" and event.before["slug"] == "acme" and event.object_repr == "Acme Corp"


def test_archived_customers_leave_the_lists_and_come_back(api_as, client, admin, engineer, customer_a, customer_b):
    api = api_as(admin)
    response = api.post(f"/api/customers/{customer_a.slug}/archive/")
    assert response.status_code == 200 and response.json()["archived"] is True
    assert api.post(f"/api/customers/{customer_a.slug}/archive/").status_code == 200  # twice: harmless

    listed = [c["slug"] for c in api_as(engineer).get("/api/customers/").json()["results"]]
    assert listed == ["globex"]
    only = [c["slug"] for c in api.get("/api/customers/", {"archived": "only"}).json()["results"]]
    assert only == ["acme"]
    both = [c["slug"] for c in api.get("/api/customers/", {"archived": "include"}).json()["results"]]
    assert both == ["acme", "globex"]
    detail = api_as(engineer).get(f"/api/customers/{customer_a.slug}/").json()
    assert detail["archived"] is True and detail["archived_at"]

    client.force_login(engineer)
    page = client.get(reverse("customer-list")).content.decode()
    assert "Globex" in page and "Acme Corp" not in page
    page = client.get(reverse("customer-list"), {"archived": "only"}).content.decode()
    assert "Acme Corp" in page and "archived</span>" in page
    page = client.get(reverse("customer-detail", args=["acme"])).content.decode()
    assert 'id="customer-archived"' in page

    assert api_as(engineer).post(f"/api/customers/{customer_a.slug}/unarchive/").status_code == 403
    response = api.post(f"/api/customers/{customer_a.slug}/unarchive/")
    assert response.status_code == 200 and response.json()["archived"] is False
    listed = [c["slug"] for c in api_as(engineer).get("/api/customers/").json()["results"]]
    assert listed == ["acme", "globex"]
    actions = list(
        AuditEvent.objects.filter(customer=customer_a, action__startswith="customer.").values_list("action", flat=True)
    )
    assert sorted(actions) == ["customer.archive", "customer.unarchive"]


def test_engineer_cannot_archive(api_as, engineer, db):
    customer = CustomerFactory(slug="initech", name="Initech")
    assert api_as(engineer).post(f"/api/customers/{customer.slug}/archive/").status_code == 403
    customer.refresh_from_db()
    assert not customer.is_archived
