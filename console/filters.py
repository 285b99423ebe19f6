"""FilterSets shared by the HTML lists and the API."""

from __future__ import annotations

import datetime as dt

import django_filters
from django.db.models import Q

from console.models import Asset, AuditEvent, Customer


class UtcIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 time, in UTC before it reaches the database.

    Python accepts offsets up to ±23:59 and PostgreSQL only up to ±15:59: a hostile
    "?until=...-17:08" must be a valid filter or a 400, never a 500.
    """

    def to_python(self, value):
        parsed = super().to_python(value)
        return parsed.astimezone(dt.UTC) if parsed is not None and parsed.tzinfo else parsed


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class CustomerFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    plan = django_filters.ChoiceFilter(choices=Customer.Plan.choices)
    archived = django_filters.ChoiceFilter(
        choices=[("exclude", "Current customers"), ("only", "Archived only"), ("include", "Current and archived")],
        method="filter_archived",
        empty_label=None,
        label="Archived",
    )

    class Meta:
        model = Customer
        fields = ["plan", "archived"]

    def __init__(self, data=None, *args, **kwargs) -> None:
        # A former customer is not in today's lists unless the archive is asked for.
        data = data.copy() if data is not None else {}
        if not data.get("archived"):
            data["archived"] = "exclude"
        super().__init__(data, *args, **kwargs)

    def filter_archived(self, queryset, name, value):
        if value == "only":
            return queryset.filter(archived_at__isnull=False)
        if value == "include":
            return queryset
        return queryset.current()

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(name__icontains=value) | Q(slug__icontains=value) | Q(assets__value__icontains=value)
        ).distinct()


class AssetFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="value", lookup_expr="icontains", label="Search")
    customer = django_filters.CharFilter(field_name="customer__slug")

    class Meta:
        model = Asset
        fields = ["kind", "customer"]


class AuditEventFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    customer = django_filters.CharFilter(field_name="customer__slug", label="Customer")
    actor = django_filters.CharFilter(field_name="actor_name", label="Actor")
    action = django_filters.CharFilter(field_name="action", lookup_expr="istartswith")
    object_type = django_filters.CharFilter(field_name="object_type")
    object_id = django_filters.CharFilter(field_name="object_id")
    request_id = django_filters.CharFilter(field_name="request_id")
    since = UtcIsoDateTimeFilter(field_name="at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["customer", "actor", "action", "object_type", "object_id", "request_id"]

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(object_repr__icontains=value) | Q(action__icontains=value) | Q(actor_name__icontains=value)
        )
