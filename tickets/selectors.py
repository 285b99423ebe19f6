"""Read-side queries of the tickets app, for its pages, the API and dashboards."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from alerts import charts
from alerts.models import Alert
from tickets.models import SlaPolicy, Ticket, TimelineEntry, clock_dict
from tickets.services import sla_policy_for


def ticket_list_queryset(user: Any) -> QuerySet[Ticket]:
    return Ticket.objects.visible_to(user).select_related("customer", "assignee").order_by("-created_at", "-id")


def ticket_timeline(ticket: Ticket, user: Any) -> QuerySet[TimelineEntry]:
    return TimelineEntry.objects.visible_to(user).filter(ticket=ticket).select_related("actor").order_by("at", "id")


def ticket_sla(ticket: Ticket, now: Any = None) -> list[dict[str, Any]]:
    """The ticket's clocks as plain data (the page and the API show the same)."""
    now = now or timezone.now()
    clocks = ticket.sla_clocks(sla_policy_for(ticket), now)
    result = []
    for clock in clocks:
        data = clock_dict(clock)
        data["deadline"] = (now + timezone.timedelta(seconds=clock.remaining_seconds)) if clock.running else None
        result.append(data)
    return result


def ticket_attack_chart(ticket: Ticket) -> dict[str, Any]:
    alerts = list(
        Alert.objects.filter(attack__in=ticket.attacks.all()).select_related("feed").order_by("event_time")[:1000]
    )
    if not alerts:
        alerts = list(ticket.alerts.select_related("feed").order_by("event_time")[:1000])
    return charts.attack_timeline(alerts)


def sla_policies() -> dict[tuple[str, str], SlaPolicy]:
    return {(p.plan, p.severity): p for p in SlaPolicy.objects.all()}
