"""The console's roles, as Django Groups seeded by a data migration.

Internal roles see every customer; a customer viewer is bound to one customer through
``Profile.customer`` and sees only that customer's reports; a user in no group (an
outsider) sees nothing.
"""

from __future__ import annotations

from typing import Any

VIEWER = "Viewer"
ENGINEER = "Engineer"
SENIOR_ENGINEER = "Senior engineer"
ADMIN = "Admin"
CUSTOMER_VIEWER = "Customer viewer"

INTERNAL_ROLES = (VIEWER, ENGINEER, SENIOR_ENGINEER, ADMIN)
ALL_ROLES = (*INTERNAL_ROLES, CUSTOMER_VIEWER)
# Roles that may change things (triage, tickets, propose mitigations).
ACTING_ROLES = (ENGINEER, SENIOR_ENGINEER, ADMIN)
# Roles that may approve and apply mitigations.
APPROVING_ROLES = (SENIOR_ENGINEER, ADMIN)


def role_names(user: Any) -> set[str]:
    if not user or not user.is_authenticated:
        return set()
    cached = getattr(user, "_shieldwall_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            cached.add(ADMIN)
        user._shieldwall_roles = cached
    return cached


def is_internal(user: Any) -> bool:
    """An employee of the provider: sees every customer."""
    return bool(role_names(user) & set(INTERNAL_ROLES))


def can_act(user: Any) -> bool:
    return bool(role_names(user) & set(ACTING_ROLES))


def can_approve(user: Any) -> bool:
    return bool(role_names(user) & set(APPROVING_ROLES))


def is_admin(user: Any) -> bool:
    return ADMIN in role_names(user)


def bound_customer_id(user: Any) -> int | None:
    """The one customer a customer viewer belongs to; None for everyone else."""
    if CUSTOMER_VIEWER not in role_names(user) or is_internal(user):
        return None
    profile = getattr(user, "profile", None)
    return profile.customer_id if profile else None


def primary_role(user: Any) -> str:
    names = role_names(user)
    for role in (ADMIN, SENIOR_ENGINEER, ENGINEER, VIEWER, CUSTOMER_VIEWER):
        if role in names:
            return role
    return "No access"
