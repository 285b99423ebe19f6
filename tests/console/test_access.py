"""Every page and endpoint needs a login; objects outside a user's scope are 404, never 403."""

import pytest
from django.urls import reverse

from console.audit import audit_record

PAGES = ["dashboard", "customer-list", "audit-list"]
API = ["/api/customers/", "/api/assets/", "/api/users/", "/api/audit/"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", PAGES)
def test_anonymous_page_redirects_to_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response.url.startswith("/login/?next=")


@pytest.mark.django_db
@pytest.mark.parametrize("url", API)
def test_anonymous_api_is_refused(api, url):
    assert api.get(url).status_code in (401, 403)


@pytest.mark.django_db
def test_anonymous_customer_detail_redirects_even_for_missing_customer(client):
    assert client.get("/customers/nope/").status_code == 302


def test_engineer_sees_every_customer(engineer_client, customer_a, customer_b):
    response = engineer_client.get(reverse("customer-list"))
    assert response.status_code == 200
    assert b"Acme Corp" in response.content and b"Globex" in response.content


def test_customer_viewer_gets_404_for_another_customers_objects(
    client, api_as, customer_viewer, customer_a, customer_b
):
    client.force_login(customer_viewer)
    assert client.get(reverse("customer-detail", args=[customer_b.slug])).status_code == 404
    api = api_as(customer_viewer)
    assert api.get(f"/api/customers/{customer_b.slug}/").status_code == 404
    other_asset = customer_b.assets.first()
    assert api.get(f"/api/assets/{other_asset.pk}/").status_code == 404
    listed = api.get("/api/customers/").json()["results"]
    assert [c["slug"] for c in listed] == ["acme"]


def test_customer_viewer_sees_no_internal_pages(client, customer_viewer, customer_a):
    client.force_login(customer_viewer)
    assert client.get(reverse("customer-list")).status_code == 404
    assert client.get(reverse("audit-list")).status_code == 404
    dashboard = client.get(reverse("dashboard"))
    assert b"SOC overview" not in dashboard.content


def test_outsider_gets_404_for_everything(client, api_as, outsider, customer_a):
    client.force_login(outsider)
    assert client.get(reverse("customer-detail", args=[customer_a.slug])).status_code == 404
    api = api_as(outsider)
    assert api.get(f"/api/customers/{customer_a.slug}/").status_code == 404
    assert api.get("/api/customers/").json()["results"] == []
    assert api.get("/api/audit/").json()["results"] == []


def test_viewer_reads_but_cannot_write(api_as, viewer, customer_a):
    api = api_as(viewer)
    assert api.get("/api/customers/").status_code == 200
    response = api.patch(f"/api/customers/{customer_a.slug}/", {"name": "Renamed"}, format="json")
    assert response.status_code == 403


def test_admin_changes_customer_and_audit_records_before_and_after(api_as, admin_user, customer_a):
    api = api_as(admin_user)
    response = api.patch(f"/api/customers/{customer_a.slug}/", {"plan": "business"}, format="json")
    assert response.status_code == 200
    events = api.get("/api/audit/", {"customer": "acme"}).json()["results"]
    assert events[0]["action"] == "customer.update"
    assert events[0]["actor_name"] == "root-admin"
    assert events[0]["before"]["plan"] == "enterprise"
    assert events[0]["after"]["plan"] == "business"
    assert events[0]["request_id"]


def test_asset_prefix_must_be_a_real_cidr(api_as, admin_user, customer_a):
    api = api_as(admin_user)
    bad = api.post("/api/assets/", {"customer": "acme", "kind": "prefix", "value": "203.0.113.7/24"}, format="json")
    assert bad.status_code == 400
    assert "CIDR" in str(bad.json())
    bad = api.post("/api/assets/", {"customer": "acme", "kind": "prefix", "value": "300.1.1.0/24"}, format="json")
    assert bad.status_code == 400
    good = api.post("/api/assets/", {"customer": "acme", "kind": "prefix", "value": "2001:DB8:1::/48"}, format="json")
    assert good.status_code == 201
    assert good.json()["value"] == "2001:db8:1::/48"


def test_token_authentication(api, engineer):
    from console.services import api_token_create

    issued = api_token_create(user=engineer, name="script")
    api.credentials(HTTP_AUTHORIZATION=f"Token {issued.key}")
    assert api.get("/api/customers/").status_code == 200
    api.credentials(HTTP_AUTHORIZATION="Token not-the-token")
    assert api.get("/api/customers/").status_code == 401


def test_audit_page_filters_by_customer(engineer_client, customer_a, customer_b):
    audit_record(action="customer.note", obj=customer_a)
    audit_record(action="customer.note", obj=customer_b)
    response = engineer_client.get(reverse("audit-list"), {"customer": "globex"})
    assert b"Globex" in response.content
    assert b"Acme Corp" not in response.content
