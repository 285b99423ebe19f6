"""Composable filters of the mitigations app."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from console import roles
from console.querysets import CustomerScopedQuerySet


class MitigationQuerySet(CustomerScopedQuerySet):
    def active(self) -> MitigationQuerySet:
        return self.filter(state="active")

    def live(self) -> MitigationQuerySet:
        """Possibly installed somewhere: what the ledger and the drift check look at."""
        return self.filter(state__in=("applying", "active", "failed"))

    def awaiting_approval(self) -> MitigationQuerySet:
        return self.filter(state="proposed")

    def due_to_expire(self, now: datetime | None = None) -> MitigationQuerySet:
        return self.filter(state="active", expires_at__lte=now or timezone.now())

    def targeting(self, backend: str) -> MitigationQuerySet:
        # JSON containment is not on SQLite; the names are plain words, so a text match is exact enough.
        # A key is the kind alone or "kind:target-name" when a mitigation has two of one kind.
        return self.filter(Q(targets__icontains=f'"{backend}"') | Q(targets__icontains=f'"{backend}:'))


class ListQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> ListQuerySet:
        return self if roles.is_internal(user) else self.none()

    def usable_by(self, customer: Any) -> ListQuerySet:
        return self.filter(Q(customer__isnull=True) | Q(customer=customer))
