"""One FilterSet per list, shared by the ledger page and the API."""

from __future__ import annotations

import re

import django_filters
from django.db.models import Q

from console.filters import UtcIsoDateTimeFilter
from mitigations.models import Mitigation, MitigationList


class MitigationFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    customer = django_filters.CharFilter(field_name="customer__slug")
    state = django_filters.MultipleChoiceFilter(choices=Mitigation.State.choices)
    kind = django_filters.ChoiceFilter(choices=Mitigation.Kind.choices)
    action = django_filters.ChoiceFilter(choices=Mitigation.Action.choices)
    target = django_filters.CharFilter(method="by_target", label="Target backend")
    author = django_filters.CharFilter(field_name="author__username")
    ticket = django_filters.CharFilter(field_name="ticket__number")
    attack = django_filters.NumberFilter(field_name="attack_id", min_value=1, max_value=2**63 - 1)
    expires_before = UtcIsoDateTimeFilter(field_name="expires_at", lookup_expr="lte")
    drift = django_filters.BooleanFilter(method="by_drift", label="Drift detected")

    class Meta:
        model = Mitigation
        fields = ["customer", "state", "kind", "action", "author", "ticket", "attack"]

    def search(self, queryset, name, value):
        q = Q(title__icontains=value) | Q(expression__icontains=value) | Q(value__icontains=value)
        if m := re.fullmatch(r"sw-([0-9]{1,18})(?:-[0-9a-z]+)?", value):
            q |= Q(pk=int(m.group(1)))
        return queryset.filter(q)

    def by_target(self, queryset, name, value):
        return queryset.targeting(value)

    def by_drift(self, queryset, name, value):
        return queryset.exclude(drift={}) if value else queryset.filter(drift={})


class MitigationListFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    customer = django_filters.CharFilter(method="by_customer", label="Customer slug ('global' for global lists)")
    purpose = django_filters.ChoiceFilter(choices=MitigationList.Purpose.choices)

    class Meta:
        model = MitigationList
        fields = ["purpose"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))

    def by_customer(self, queryset, name, value):
        return queryset.filter(customer__isnull=True) if value == "global" else queryset.filter(customer__slug=value)
