"""`make run` then "apply the suggested rule": the machine running the console keeps its firewall.

``make run`` migrates, seeds the demo (``seed_demo``) and serves. As root it first creates
the demo's network namespace and the demo's enforcement target acts inside it; as anyone
else there is no target and everything is an export. Either way the host's own ruleset
(``nft -s list ruleset``, ``iptables -S``) is the same before and after the demo's active
mitigations are installed and the comparison's suggested UDP rule is applied.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from console.demo import seed_customers, seed_users
from console.models import Customer
from mitigations import demo, services
from mitigations.models import EnforcementTarget, Mitigation

pytestmark = pytest.mark.django_db


def host_firewall() -> dict[str, str]:
    """The host's rulesets, without counters (they move with any traffic)."""
    out = {}
    for argv in (["nft", "-s", "list", "ruleset"], ["iptables", "-S"], ["ip6tables", "-S"]):
        if shutil.which(argv[0]):
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            out[argv[0]] = done.stdout + done.stderr
    return out


def apply_the_suggestion(admin_user) -> Mitigation:
    """What a new user does first: take the comparison's top UDP suggestion, propose, approve, apply."""
    customer = Customer.objects.get(slug="first-harbor-bank")
    engineer = customer.mitigations.first().author
    target = EnforcementTarget.objects.filter(name=demo.DEMO_TARGET, enabled=True).first()
    mitigation = services.mitigation_create(
        customer=customer,
        kind="firewall_rule",
        user=engineer,
        target=target,
        expression=services.scoped_expression(customer, 'ip.proto eq "udp"'),  # as the form prefills it
        ttl_seconds=120,
    )
    services.mitigation_propose(mitigation=mitigation, user=engineer)
    services.mitigation_approve(mitigation=mitigation, user=admin_user)  # no samples: unknown, an admin
    services.mitigation_install(mitigation_id=mitigation.pk)
    mitigation.refresh_from_db()
    assert mitigation.state == Mitigation.State.ACTIVE, mitigation.error
    return mitigation


@pytest.fixture
def demo_world(admin_user):
    seed_customers()
    seed_users("demo password 123")
    return admin_user


def test_as_a_new_user_the_demo_exports_only_and_the_host_firewall_is_untouched(demo_world, monkeypatch, settings):
    monkeypatch.setattr(demo.os, "geteuid", lambda: 1000)  # not root: make run creates no namespace
    before = host_firewall()
    assert demo.seed()["mitigations"] == 3
    mitigation = apply_the_suggestion(demo_world)
    assert mitigation.targets == ["export"] and mitigation.enforcement_target is None
    assert all(m.targets == ["export"] for m in Mitigation.objects.all())
    assert not EnforcementTarget.objects.filter(enabled=True).exists()
    assert host_firewall() == before


@pytest.mark.root
def test_as_root_the_demo_acts_in_its_own_namespace_and_the_host_firewall_is_untouched(demo_world, settings):
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"):
        pytest.skip("needs root, nft and ip (make run creates the namespace only as root)")
    namespace = f"h15a-demo-{uuid.uuid4().hex[:6]}"
    settings.DEMO_NETNS = namespace
    subprocess.run(["ip", "netns", "add", namespace], check=True)  # what `make run` does as root
    try:
        before = host_firewall()
        assert demo.seed()["mitigations"] == 3
        target = EnforcementTarget.objects.get(name=demo.DEMO_TARGET)
        assert (target.kind, target.namespace, target.command) == ("nftables", namespace, "")
        dns = Mitigation.objects.get(title__startswith="demo: DNS reflection")
        assert dns.state == Mitigation.State.ACTIVE and dns.backend_answers["nftables"]["namespace"] == namespace
        mitigation = apply_the_suggestion(demo_world)
        inside = subprocess.run(
            ["ip", "netns", "exec", namespace, "nft", "list", "ruleset"], capture_output=True, text=True
        ).stdout
        assert f'comment "{mitigation.name}"' in inside and f'comment "{dns.name}"' in inside
        assert "ip daddr { 198.51.100.0/24, 203.0.113.0/24 }" in inside  # the customer's prefixes only
        assert host_firewall() == before
    finally:
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
