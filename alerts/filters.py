"""One FilterSet per list, shared by the triage queue page and the API."""

from __future__ import annotations

import django_filters
from django.db.models import Q

from alerts.models import Alert, Attack, Delivery, Feed, Layer, Severity, Silence
from console.filters import UtcIsoDateTimeFilter
from console.models import Customer


class AlertFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    customer = django_filters.CharFilter(method="by_customer", label="Customer slug ('unassigned' for none)")
    # No DISTINCT (django-filter's default for multiple choices): these are columns of the alert
    # itself, so no row can repeat, and a DISTINCT makes PostgreSQL sort the whole queue.
    status = django_filters.MultipleChoiceFilter(choices=Alert.Status.choices, distinct=False)
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices, distinct=False)
    layer = django_filters.ChoiceFilter(choices=Layer.choices)
    vector = django_filters.CharFilter(field_name="vector")
    feed = django_filters.CharFilter(field_name="feed__slug")
    attack = django_filters.NumberFilter(field_name="attack_id", min_value=1, max_value=2**63 - 1)
    assignee = django_filters.CharFilter(field_name="assignee__username")
    since = UtcIsoDateTimeFilter(field_name="last_seen", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="last_seen", lookup_expr="lt")
    queue = django_filters.BooleanFilter(method="in_queue", label="Only what the queue shows")

    class Meta:
        model = Alert
        fields = ["customer", "status", "severity", "layer", "vector", "feed", "attack", "assignee"]

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(title__icontains=value)
            | Q(target_host__icontains=value)
            | Q(zone__icontains=value)
            | Q(vector__icontains=value)
            | Q(target_ip__startswith=value)
            | Q(fingerprint=value)
        )

    def by_customer(self, queryset, name, value):
        if value == "unassigned":
            return queryset.filter(customer__isnull=True)
        # The id, not a join on the slug: with a literal customer_id the planner walks that
        # customer's part of the queue index (alert_queue_customer_idx) instead of the whole queue.
        customer_id = Customer.objects.filter(slug=value).values_list("pk", flat=True).first()
        return queryset.filter(customer_id=customer_id) if customer_id is not None else queryset.none()

    def in_queue(self, queryset, name, value):
        return queryset.in_queue() if value else queryset


class AttackFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    customer = django_filters.CharFilter(field_name="customer__slug")
    ongoing = django_filters.BooleanFilter()
    vector = django_filters.CharFilter(method="by_vector")
    since = UtcIsoDateTimeFilter(field_name="last_seen", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="lt")

    class Meta:
        model = Attack
        fields = ["customer", "ongoing"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(title__icontains=value) | Q(target__icontains=value))

    def by_vector(self, queryset, name, value):
        # JSON containment differs per database; vectors are few, titles carry them too.
        return queryset.filter(Q(vectors__icontains=value))


class FeedFilterSet(django_filters.FilterSet):
    class Meta:
        model = Feed
        fields = ["format", "enabled", "mode"]


class DeliveryFilterSet(django_filters.FilterSet):
    feed = django_filters.CharFilter(field_name="feed__slug")

    class Meta:
        model = Delivery
        fields = ["feed", "status", "source"]


class SilenceFilterSet(django_filters.FilterSet):
    active = django_filters.BooleanFilter(method="by_active")

    class Meta:
        model = Silence
        fields = ["active"]

    def by_active(self, queryset, name, value):
        return queryset.active() if value else queryset.expired()
