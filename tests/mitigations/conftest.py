"""Helpers for the mitigation tests: a draft maker and small attack/baseline tables."""

from __future__ import annotations

import pyarrow as pa
import pytest

from mitigations import services

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
            "expression": "ip.src in {198.18.0.0/24} and udp.dstport eq 53",
            "action": "block",
            "ttl_seconds": 600,
        }
        params.update(kwargs)
        return services.mitigation_create(**params)

    return make


@pytest.fixture
def proposed(draft, engineer):
    def make(**kwargs):
        return services.mitigation_propose(mitigation=draft(**kwargs), user=engineer)

    return make


def traffic(rows: list[tuple[str, int, int]]) -> pa.Table:
    """(source address, protocol, destination port) rows as a rule-field table."""
    return pa.table(
        {
            "ip.src": pa.array([r[0] for r in rows], pa.string()),
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
