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
