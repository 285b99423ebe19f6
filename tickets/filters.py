"""One FilterSet for tickets, shared by the ticket list page and the API."""

from __future__ import annotations

import django_filters
from django.db.models import Q

from console.filters import UtcIsoDateTimeFilter
from tickets.models import Ticket


class TicketFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    status = django_filters.MultipleChoiceFilter(choices=Ticket.Status.choices)
    open = django_filters.BooleanFilter(method="by_open", label="Only open tickets")
    severity = django_filters.MultipleChoiceFilter(choices=Ticket.Severity.choices)
    customer = django_filters.CharFilter(field_name="customer__slug", label="Customer slug")
    assignee = django_filters.CharFilter(field_name="assignee__username", label="Assignee username")
    mine = django_filters.BooleanFilter(method="by_mine", label="Assigned to me")
    unassigned = django_filters.BooleanFilter(method="by_unassigned", label="Nobody assigned")
    escalation_level = django_filters.ChoiceFilter(choices=Ticket.EscalationLevel.choices)
    sla = django_filters.MultipleChoiceFilter(
        field_name="sla_state",
        choices=[("ok", "OK"), ("at_risk", "At risk"), ("breached", "Breached"), ("met", "Met")],
        label="SLA state",
    )
    alert = django_filters.NumberFilter(field_name="alerts", label="Has this alert", min_value=1, max_value=2**63 - 1)
    attack = django_filters.NumberFilter(
        field_name="attacks", label="Has this attack", min_value=1, max_value=2**63 - 1
    )
    since = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Ticket
        fields = ["status", "severity", "customer", "assignee", "escalation_level"]

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(number__icontains=value) | Q(title__icontains=value) | Q(customer__name__icontains=value)
        )

    def by_open(self, queryset, name, value):
        return queryset.open() if value else queryset.exclude(pk__in=queryset.open().values("pk"))

    def by_mine(self, queryset, name, value):
        user = getattr(self.request, "user", None)
        if not value or user is None or not user.is_authenticated:
            return queryset
        return queryset.filter(assignee=user)

    def by_unassigned(self, queryset, name, value):
        return queryset.unassigned() if value else queryset.filter(assignee__isnull=False)
