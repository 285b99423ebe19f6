"""Read-side queries of the console core."""

from __future__ import annotations

from typing import Any

from django.db.models import Count

from console.models import AuditEvent, Customer


def dashboard_overview() -> dict[str, Any]:
    """What the SOC overview shows; bounded queries only (no scan of raw alerts)."""
    return {
        "customers_by_plan": list(Customer.objects.values("plan").annotate(n=Count("id")).order_by("plan")),
        "customer_count": Customer.objects.count(),
        "recent_audit": list(AuditEvent.objects.select_related("customer")[:10]),
    }
