from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from console import roles
from console.querysets import CustomerScopedQuerySet


class InternalOnlyQuerySet(models.QuerySet):
    """Rows only the provider's staff may see (feeds, deliveries, silences)."""

    def visible_to(self, user: Any) -> InternalOnlyQuerySet:
        return self if roles.is_internal(user) else self.none()


class FeedQuerySet(InternalOnlyQuerySet):
    def enabled(self) -> FeedQuerySet:
        return self.filter(enabled=True)

    def due_for_pull(self, now=None) -> FeedQuerySet:
        now = now or timezone.now()
        feeds = self.enabled().filter(mode="pull").exclude(pull_url="")
        due = [
            f.pk for f in feeds if not f.last_pulled_at or (now - f.last_pulled_at).total_seconds() >= f.pull_interval
        ]
        return self.filter(pk__in=due)


class DeliveryQuerySet(InternalOnlyQuerySet):
    def pending(self) -> DeliveryQuerySet:
        return self.filter(status="pending")

    def stale_pending(self, older_than_seconds: int = 60) -> DeliveryQuerySet:
        """Pending deliveries whose last message was published longer ago than that: lost, or long waiting."""
        cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
        return self.pending().filter(Q(queued_at__lt=cutoff) | Q(queued_at__isnull=True, received_at__lt=cutoff))


class AlertQuerySet(CustomerScopedQuerySet):
    def open(self) -> AlertQuerySet:
        return self.filter(resolved_at__isnull=True)

    def in_queue(self) -> AlertQuerySet:
        """What the triage queue shows: open, not silenced, not yet handed to a ticket."""
        return self.filter(status__in=["new", "acknowledged"])

    def unassigned_customer(self) -> AlertQuerySet:
        return self.filter(customer__isnull=True)


class AttackQuerySet(CustomerScopedQuerySet):
    def ongoing(self) -> AttackQuerySet:
        return self.filter(ongoing=True)


class SilenceQuerySet(InternalOnlyQuerySet):
    def active(self, at=None) -> SilenceQuerySet:
        at = at or timezone.now()
        return self.filter(starts_at__lte=at, ends_at__gt=at, expired_by_hand_at__isnull=True)

    def expired(self, at=None) -> SilenceQuerySet:
        at = at or timezone.now()
        return self.filter(Q(ends_at__lte=at) | Q(expired_by_hand_at__isnull=False))
