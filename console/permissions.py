"""Who may see and do what: one place for the API and the pages."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.http import Http404
from rest_framework.permissions import BasePermission

from console import roles


def get_visible_or_404(queryset: models.QuerySet, user: Any, **lookup: Any) -> Any:
    """Fetch one object the user may see; 404 alike for missing and forbidden (never 403)."""
    qs = queryset.visible_to(user) if hasattr(queryset, "visible_to") else queryset
    try:
        return qs.get(**lookup)
    except (qs.model.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(f"No {qs.model._meta.verbose_name} matches the given query.") from exc


def _refuse(view: Any) -> bool:
    """Refuse a logged-in user: 404 when the route names an object they cannot see, else 403.

    The role check runs before the object is looked up, so without this an action on
    another customer's object would answer 403 where reading it answers 404.
    """
    lookup = getattr(view, "lookup_url_kwarg", None) or getattr(view, "lookup_field", None)
    if lookup and lookup in getattr(view, "kwargs", {}) and hasattr(view, "get_object"):
        view.get_object()  # raises Http404 (DRF: 404) for an object outside the user's scope
    return False


class IsConsoleUser(BasePermission):
    """Logged in; internal roles read everything in scope, acting roles write.

    Customer viewers and outsiders get empty querysets through ``visible_to`` and so
    404s on objects; they may not write at all (403, or 404 for an object they cannot see).
    """

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        return roles.can_act(user) or _refuse(view)


class IsInternal(BasePermission):
    """Only the provider's own staff: the feeds, the audit log, the alert stream."""

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        return roles.is_internal(request.user) or _refuse(view)


class IsAdminToWrite(BasePermission):
    """Customers and their assets: every console user reads what they may see, only an admin writes.

    Deleting a customer, changing who receives their reports or which addresses are theirs decides
    what the console protects and tells; an engineer's job does not need it (403, or 404 out of scope).
    """

    message = "Only an admin may add, change, archive or delete customers and their assets."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        return roles.is_admin(user) or _refuse(view)
