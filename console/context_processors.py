from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from console import roles

NAVIGATION = [
    ("Dashboard", "dashboard"),
    ("Alerts", "alert-list"),
    ("Attacks", "attack-list"),
    ("Tickets", "ticket-list"),
    ("Mitigations", "mitigation-list"),
    ("Traffic", "traffic-list"),
    ("Reports", "report-list"),
    ("Customers", "customer-list"),
    ("Feeds", "feed-list"),
    ("Audit", "audit-list"),
]
# What a customer viewer's navigation shows: their reports, nothing else.
CUSTOMER_NAVIGATION = [("Reports", "report-list")]


def console(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    if roles.is_internal(user):
        nav = NAVIGATION
    elif roles.bound_customer_id(user):
        nav = CUSTOMER_NAVIGATION
    else:
        nav = []
    return {
        "navigation": _resolved(nav, request.path),
        "user_role": roles.primary_role(user),
        "can_act": roles.can_act(user),
        "can_approve": roles.can_approve(user),
    }


def _resolved(items: list[tuple[str, str]], path: str) -> list[dict[str, Any]]:
    """Navigation entries whose section is installed, with the current one marked."""
    entries = []
    for label, name in items:
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        current = path == url if url == "/" else path.startswith(url)
        entries.append({"label": label, "url": url, "current": current})
    return entries
