"""Read-side queries of the mitigations app, for its pages and for dashboards."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from mitigations.models import Approval, BackendState, Mitigation


def ledger(user: Any) -> QuerySet[Mitigation]:
    """Every mitigation the user may see, with what the ledger shows, in one query (plus approvals)."""
    return (
        Mitigation.objects.visible_to(user)
        .select_related("customer", "author", "ticket", "attack", "mitigation_list")
        .prefetch_related(Prefetch("approvals", queryset=Approval.objects.select_related("user")))
        .order_by("expires_at", "-id")
    )


def awaiting_approval(user: Any) -> QuerySet[Mitigation]:
    return ledger(user).awaiting_approval().order_by("proposed_at", "id")


def stray_rules() -> list[BackendState]:
    """Backend locations holding rules Shieldwall does not believe active."""
    return [state for state in BackendState.objects.all() if state.unexpected or state.error]


def backend_states() -> list[BackendState]:
    """Every target location the drift check reads: when it last looked and what it found."""
    return list(BackendState.objects.order_by("key"))


def list_item_states(mitigation_list: Any) -> dict[str, list[tuple[str, str, str]]]:
    """Per item value of a list: (mitigation, target, state) for every active mitigation enforcing
    it, as the last sync recorded it ("installed", "error: ...", "not installed: ...")."""
    from django.db.models import Q

    users = Mitigation.objects.active().filter(
        Q(mitigation_list=mitigation_list) | Q(expression__contains=f"${mitigation_list.name}")
    )
    out: dict[str, list[tuple[str, str, str]]] = {}
    for mitigation in users.order_by("id"):
        for target, answer in (mitigation.backend_answers or {}).items():
            for value, state in (answer.get("list_items") or {}).items():
                out.setdefault(value, []).append((mitigation.name, target, state))
    return out


def for_attack(attack: Any, user: Any) -> QuerySet[Mitigation]:
    return ledger(user).filter(attack=attack).order_by("-created_at")


def counts() -> dict[str, int]:
    return {
        "active": Mitigation.objects.active().count(),
        "awaiting_approval": Mitigation.objects.awaiting_approval().count(),
        "drift": Mitigation.objects.active().exclude(drift={}).count(),
    }


# --------------------------------------------------------------------------- for reports and dashboards


def applied_for_report(
    *,
    customer: Any,
    attack_ids: Sequence[int],
    ticket_ids: Sequence[int],
    start: datetime | None,
    end: datetime,
    limit: int = 100,
) -> list[Mitigation]:
    """The mitigations a report on a customer tells of: those made for its attacks or tickets, and
    every other one of the customer's that was in force between ``start`` and ``end``."""
    condition = Q(attack_id__in=attack_ids)
    if ticket_ids:
        condition |= Q(ticket_id__in=ticket_ids)
    if start is not None:
        condition |= Q(applied_at__lte=end) & (Q(ended_at__isnull=True) | Q(ended_at__gte=start))
    return list(
        Mitigation.objects.filter(condition, customer=customer, applied_at__isnull=False)
        .select_related("mitigation_list")
        .order_by("applied_at", "id")[:limit]
    )


def hit_counters(mitigation: Mitigation) -> tuple[int | None, int | None]:
    """Packets and bytes the backends counted against this mitigation; None where none reports counters."""
    packets = bytes_ = None
    for counters in (mitigation.hits or {}).values():
        if not isinstance(counters, dict):
            continue
        value = counters.get("packets")
        if isinstance(value, int | float):
            packets = (packets or 0) + int(value)
        value = counters.get("bytes")
        if isinstance(value, int | float):
            bytes_ = (bytes_ or 0) + int(value)
    return packets, bytes_


def expiring_within(*, now: datetime, window: timedelta, limit: int = 20) -> list[Mitigation]:
    """Active mitigations whose time to live ends within ``window`` from ``now``, soonest first."""
    return list(
        Mitigation.objects.filter(state=Mitigation.State.ACTIVE, expires_at__gte=now, expires_at__lt=now + window)
        .select_related("customer")
        .order_by("expires_at", "id")[:limit]
    )


def active_for_customer(customer: Any, *, limit: int = 20) -> list[Mitigation]:
    """The customer's active mitigations, soonest to expire first."""
    return list(
        Mitigation.objects.filter(customer=customer, state=Mitigation.State.ACTIVE).order_by("expires_at", "id")[:limit]
    )
