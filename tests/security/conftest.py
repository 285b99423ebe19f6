"""Fixtures of the security tests."""

from __future__ import annotations

import pytest

from tests.security.builders import build_world


@pytest.fixture
def worlds(customer_a, customer_b, engineer):
    from mitigations.models import GlobalAllowlistEntry
    from tickets.models import TicketTemplate

    a = build_world(customer_a, engineer)
    b = build_world(customer_b, engineer)
    template = TicketTemplate.objects.order_by("pk").first()
    assert template is not None, "reference data has ticket templates"
    b.objects["template"] = template
    b.objects["allowlist_entry"] = GlobalAllowlistEntry.objects.order_by("pk").first() or (
        GlobalAllowlistEntry.objects.create(value="192.0.2.53", reason="resolver")
    )
    return a, b
