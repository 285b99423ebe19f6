"""Helpers for the mitigation tests: a draft maker and small attack/baseline tables."""

from __future__ import annotations

import pyarrow as pa
import pytest

from mitigations import services
from mitigations.models import EnforcementTarget, Mitigation
from tests.factories import AssetFactory, CustomerFactory

# The Playwright fixtures live with the browser tests; the mitigation browser test uses them here.


@pytest.fixture
def draft(customer_a, engineer):
    """make a draft for Acme by the engineer; keyword arguments override."""

    def make(**kwargs):
        params = {
            "customer": customer_a,
            "kind": "firewall_rule",
            "user": engineer,
            "targets": ["export"],
            "expression": "ip.dst in {203.0.113.0/24} and ip.src in {198.18.0.0/24} and udp.dstport eq 53",
            "action": "block",
            "ttl_seconds": 600,
        }
        params.update(kwargs)
        return services.mitigation_create(**params)

    return make


@pytest.fixture
def make_target(db):
    """A configured enforcement target: targets are objects, never a bare backend name."""

    def make(kind: str = "nftables", name: str = "", **fields) -> EnforcementTarget:
        if kind in ("nftables", "iptables") and not fields.get("command"):
            fields.setdefault("namespace", "h15a-unused")
        target, _ = EnforcementTarget.objects.update_or_create(
            name=name or f"{kind}-{EnforcementTarget.objects.count() + 1}", defaults={"kind": kind, **fields}
        )
        return target

    return make


@pytest.fixture
def approve(senior, senior2, admin_user):
    """Approve a proposed mitigation with exactly the people its blast radius asks for."""

    def run(mitigation):
        mitigation.refresh_from_db()
        people = {"low": [senior], "medium": [senior, senior2], "high": [admin_user]}[mitigation.blast_radius]
        for user in people:
            services.mitigation_approve(mitigation=mitigation, user=user)
        mitigation.refresh_from_db()
        assert mitigation.state == "approved", (mitigation.state, mitigation.approval_reasons)
        return mitigation

    return run


@pytest.fixture
def proposed(draft, engineer, attack_table, clean_baseline):
    """Draft, simulate (over the attack and a baseline it does not touch, unless given) and propose."""

    def make(baseline=None, **kwargs):
        mitigation = draft(**kwargs)
        services.mitigation_simulate(
            mitigation=mitigation,
            user=engineer,
            attack_table=attack_table,
            baseline_table=clean_baseline if baseline is None else baseline,
        )
        return services.mitigation_propose(mitigation=mitigation, user=engineer)

    return make


VICTIM = "203.0.113.10"  # Acme's (customer_a's prefix 203.0.113.0/24)


def traffic(rows: list[tuple[str, int, int]], dst: str = VICTIM) -> pa.Table:
    """(source address, protocol, destination port) rows toward ``dst`` as a rule-field table."""
    return pa.table(
        {
            "ip.src.country": pa.array(["US"] * len(rows), pa.string()),
            "ip.src.asnum": pa.array([64496] * len(rows), pa.int64()),
            "ip.len": pa.array([80] * len(rows), pa.int64()),
            "ip.src": pa.array([r[0] for r in rows], pa.string()),
            "ip.dst": pa.array([dst] * len(rows), pa.string()),
            "ip.proto": pa.array([r[1] for r in rows], pa.int64()),
            "udp.dstport": pa.array([r[2] if r[1] == 17 else None for r in rows], pa.int64()),
            "tcp.dstport": pa.array([r[2] if r[1] == 6 else None for r in rows], pa.int64()),
        }
    )


@pytest.fixture
def attack_table() -> pa.Table:
    return traffic([("198.18.0.7", 17, 53)] * 90 + [("198.19.5.5", 17, 53)] * 10)


@pytest.fixture
def baseline_table() -> pa.Table:
    return traffic([("192.0.2.200", 6, 443)] * 98 + [("198.18.0.9", 17, 53)] * 2)


@pytest.fixture
def clean_baseline() -> pa.Table:
    """The customer's normal traffic, TCP and UDP, from sources the test rules never name."""
    return traffic([("192.0.2.200", 6, 443)] * 98 + [("198.51.100.9", 17, 53)] * 2)


# The namespace lab's customer (tests/mitigations/test_enforcement.py: 10.231.0.0/29) and a neighbour.
@pytest.fixture
def lab_customer(db):
    customer = CustomerFactory(slug="lab", name="Lab Customer")
    AssetFactory(customer=customer, kind="prefix", value="10.231.0.0/29")
    other = CustomerFactory(slug="lab-neighbour", name="Lab Neighbour")
    AssetFactory(customer=other, kind="prefix", value="10.231.0.192/26")
    return customer


# Shared by the namespace tests (test_enforcement, test_drift_content, test_rate_keys): each module's
# own ``lab`` fixture says which namespaces it runs in.
@pytest.fixture
def enforce(draft, engineer, senior, lab, lab_customer, django_capture_on_commit_callbacks, make_target, approve):
    """Apply a mitigation of the lab customer through the target configured on the server namespace.

    Not simulated (no samples): its collateral is unknown, so the gate wants an admin's approval.
    """

    from tests.mitigations.test_enforcement import BLOCKED, SCOPE

    def make(kind_of_target: str = "nftables", **kwargs) -> Mitigation:
        target = make_target(kind_of_target, name=f"{kind_of_target}-lab", namespace=lab.server)
        params = {"target": target, "customer": lab_customer, "expression": SCOPE + f"ip.src eq {BLOCKED}"}
        params.update(kwargs)
        mitigation = draft(**params)
        services.mitigation_propose(mitigation=mitigation, user=engineer)
        approve(mitigation)
        with django_capture_on_commit_callbacks(execute=True):
            services.mitigation_apply(mitigation=mitigation, user=senior)
        mitigation.refresh_from_db()
        assert mitigation.state == Mitigation.State.ACTIVE, mitigation.error
        return mitigation

    return make
