from __future__ import annotations

from typing import Any

from django.db import models

from console import roles
from console.querysets import CustomerScopedQuerySet

OPEN = ("new", "investigating", "mitigating", "monitoring", "waiting_on_customer")


class TicketQuerySet(CustomerScopedQuerySet):
    """Tickets are internal (``customer_visible = False``): only staff see them."""

    def open(self) -> TicketQuerySet:
        return self.filter(status__in=OPEN)

    def assigned_to(self, user: Any) -> TicketQuerySet:
        return self.filter(assignee=user)

    def unassigned(self) -> TicketQuerySet:
        return self.filter(assignee__isnull=True)

    def sla_in(self, *states: str) -> TicketQuerySet:
        return self.filter(sla_state__in=states)


class TimelineQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> TimelineQuerySet:
        """Staff see every entry; anyone else nothing (customer-facing text reaches customers by email)."""
        return self if roles.is_internal(user) else self.none()

    def customer_facing(self) -> TimelineQuerySet:
        return self.filter(visibility="customer")
