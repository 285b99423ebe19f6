"""Read-side queries of the mitigations app, for its pages and for dashboards."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

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


def for_attack(attack: Any, user: Any) -> QuerySet[Mitigation]:
    return ledger(user).filter(attack=attack).order_by("-created_at")


def counts() -> dict[str, int]:
    return {
        "active": Mitigation.objects.active().count(),
        "awaiting_approval": Mitigation.objects.awaiting_approval().count(),
        "drift": Mitigation.objects.active().exclude(drift={}).count(),
    }
