"""Issue 16's one path, the mitigation pages: "Save, simulate and propose" in one post, and
"Approve and apply" offered only to the approval that completes the gate."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mitigations import services
from mitigations.models import Mitigation
from tests.mitigations.conftest import traffic

pytestmark = pytest.mark.django_db


def test_save_simulate_and_propose_is_one_post_through_the_same_gate(
    client, engineer, admin_user, customer_a, mailoutbox, django_capture_on_commit_callbacks
):
    client.force_login(engineer)
    form = {
        "customer": "acme",
        "kind": "firewall_rule",
        "action": "block",
        "ttl_minutes": 30,
        "expression": services.scoped_expression(customer_a, "udp.srcport eq 123"),
    }
    page = client.get(reverse("mitigation-new")).content.decode()
    assert 'id="save-and-propose"' in page and 'name="then" value="propose"' in page

    with django_capture_on_commit_callbacks(execute=True):  # the approvers are told after commit
        response = client.post(reverse("mitigation-new"), {**form, "then": "propose"})

    mitigation = Mitigation.objects.get()
    assert response.status_code == 302 and response["Location"] == mitigation.get_absolute_url()
    assert mitigation.state == Mitigation.State.PROPOSED
    # No traffic at all: the gate says unknown = high, and the approvers were told.
    assert mitigation.blast_radius == "high"
    detail = client.get(mitigation.get_absolute_url()).content.decode()
    assert "proposed: blast radius high" in detail
    told = [m for m in mailoutbox if admin_user.email in m.to]
    assert told and f"/mitigations/{mitigation.pk}/approve/" in told[0].body


def test_save_and_propose_keeps_a_draft_and_says_why_when_the_gate_refuses(client, engineer, customer_a):
    client.force_login(engineer)
    # Scoped to Acme, but it names no source and would drop the protected resolvers' UDP.
    form = {"customer": "acme", "kind": "firewall_rule", "action": "block", "ttl_minutes": 30}
    expression = "ip.dst in {203.0.113.0/24} and udp.srcport eq 53"
    client.post(reverse("mitigation-new"), {**form, "expression": expression, "then": "propose"})
    mitigation = Mitigation.objects.get()
    assert mitigation.state == Mitigation.State.DRAFT
    detail = client.get(mitigation.get_absolute_url()).content.decode()
    assert "saved as a draft, not proposed" in detail


def test_approve_and_apply_is_offered_to_the_last_approval_and_applies(
    client, proposed, senior, django_capture_on_commit_callbacks
):
    mitigation = proposed()
    assert mitigation.blast_radius == "low" and mitigation.required_approvals == 1
    client.force_login(senior)
    url = reverse("mitigation-approval", args=[mitigation.pk])
    page = client.get(url).content.decode()
    assert 'id="approve-and-apply"' in page and "Approve and apply to export" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"then": "apply"})

    mitigation.refresh_from_db()
    assert response.status_code == 302 and response["Location"] == url
    assert mitigation.state == Mitigation.State.ACTIVE
    assert mitigation.approvals.get().user == senior
    assert "It is active." in client.get(url).content.decode()


def test_approve_and_apply_is_not_offered_while_another_approval_is_needed(client, proposed, senior):
    # 0.5 % of the baseline matches: medium, two seniors.
    medium = traffic([("192.0.2.200", 6, 443)] * 995 + [("198.18.0.9", 17, 53)] * 5)
    mitigation = proposed(baseline=medium)
    assert mitigation.blast_radius == "medium" and mitigation.required_approvals == 2
    client.force_login(senior)
    url = reverse("mitigation-approval", args=[mitigation.pk])
    page = client.get(url).content.decode()
    assert 'id="approve"' in page and 'id="approve-and-apply"' not in page

    client.post(url, {"then": "apply"})  # a forged "then" does not skip the second approval
    mitigation.refresh_from_db()
    assert mitigation.state == Mitigation.State.PROPOSED and mitigation.approvals.count() == 1
