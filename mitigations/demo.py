"""Demo mitigations: a block list, two active mitigations with countdowns, one awaiting approval. Idempotent.

Where they are enforced is a configured target like any other: the network namespace
``make run`` creates when it runs as root (``DEMO_NETNS``), and nothing but an export
otherwise. The demo never touches the firewall of the machine it runs on.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

from console.context import acting_as
from console.models import Customer
from mitigations import services
from mitigations.models import EnforcementTarget, Mitigation, MitigationList

DEMO_TARGET = "demo-scrubbing-netns"


def demo_target() -> EnforcementTarget | None:
    """The demo's nftables target inside ``DEMO_NETNS`` when that namespace exists (root), else None (export)."""
    namespace = settings.DEMO_NETNS
    usable = (
        bool(namespace)
        and os.geteuid() == 0
        and Path("/run/netns", namespace).exists()
        and shutil.which("nft") is not None
    )
    if not usable:
        EnforcementTarget.objects.filter(name=DEMO_TARGET).update(enabled=False)
        return None
    target, _ = EnforcementTarget.objects.update_or_create(
        name=DEMO_TARGET,
        defaults={
            "kind": EnforcementTarget.Kind.NFTABLES,
            "namespace": namespace,
            "command": "",
            "enabled": True,
            "description": "demo: a scrubbing host stand-in, the network namespace make run creates",
        },
    )
    return target


BOTNET_ITEMS = """# FireHOL-style netset: sources seen in the DNS reflection of the demo attack
198.18.0.0/24
198.18.7.12
198.18.9.0/28
"""

DEMO = [
    {
        "title": "demo: DNS reflection onto the east data centre",
        "kind": "firewall_rule",
        # Limited to the attacked data centre, minus the sources it must never drop (resolvers, edge...).
        "expression": "udp.srcport eq 53 and ip.len gt 1200",
        "scope": "ip.dst in {203.0.113.0/24}",
        "ttl": 2 * 3600,
        "state": "active",
    },
    {
        "title": "demo: credential stuffing on online banking login",
        "kind": "rate_limit",
        "expression": 'http.host eq "firstharbor.example" and http.request.uri.path eq "/login"',
        "rate": {"requests": 20, "period": 60, "per_source": True, "mitigation_timeout": 600},
        "ttl": 45 * 60,
        "state": "active",
    },
    {
        "title": "demo: block the reflection botnet list",
        "kind": "ip_list",
        "ttl": 6 * 3600,
        "state": "proposed",
    },
]


def seed(*, stdout=None) -> dict:
    User = get_user_model()
    customer = Customer.objects.filter(slug="first-harbor-bank").first()
    engineer = User.objects.filter(username="eli").first()
    senior = User.objects.filter(username="sam").first()
    admin = User.objects.filter(username="admin").first()
    if customer is None or engineer is None or senior is None or admin is None:
        return {"skipped": "demo customers and users are missing"}
    with acting_as("seed_demo"):
        target = demo_target()
        blocklist = MitigationList.objects.filter(name="harbor_botnet").first()
        if blocklist is None:
            blocklist = services.list_create(
                name="harbor_botnet",
                purpose="block",
                user=engineer,
                customer=customer,
                description="reflectors seen in the DNS reflection",
                source="demo",
            )
            services.list_import(
                mitigation_list=blocklist, text=BOTNET_ITEMS, user=engineer, ttl_seconds=86400, comment="demo attack"
            )
        created = 0
        for spec in DEMO:
            if Mitigation.objects.filter(customer=customer, title=spec["title"]).exists():
                continue
            expression = spec.get("expression", "")
            if spec.get("scope"):
                expression = services.scoped_expression(customer, f"{spec['scope']} and {expression}")
            mitigation = services.mitigation_create(
                customer=customer,
                kind=spec["kind"],
                user=engineer,
                target=target if spec["kind"] != "rate_limit" else None,  # an L7 rule: not for nftables
                expression=expression,
                mitigation_list=blocklist if spec["kind"] == "ip_list" else None,
                rate=spec.get("rate"),
                ttl_seconds=spec["ttl"],
                title=spec["title"],
            )
            services.mitigation_propose(mitigation=mitigation, user=engineer)
            if spec["state"] == "active":
                # No demo traffic samples: collateral unknown, so the gate asks for an admin.
                approver = admin if mitigation.blast_radius == "high" else senior
                services.mitigation_approve(mitigation=mitigation, user=approver, comment="demo")
                services.mitigation_install(mitigation_id=mitigation.pk)
            created += 1
    if stdout is not None:
        stdout.write(f"mitigations: {created} demo mitigations, list ${blocklist.name}")
    return {"mitigations": created, "lists": 1}
