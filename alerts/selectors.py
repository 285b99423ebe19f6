"""What the triage queue reads: its order, and the alerts a queue form acts on."""

from __future__ import annotations

from typing import Any

from django.http import QueryDict

from alerts.filters import AlertFilterSet
from alerts.models import Alert

BULK_ALL_CAP = 5000  # "select all matching" acts on at most this many alerts at once
# Most urgent first; among equals the most recent. The live updates place new rows by the same key.
QUEUE_ORDER = ("-urgency", "-last_seen", "-id")


def selected_alerts(*, user: Any, data: QueryDict) -> list[Alert]:
    """The alerts a queue form acts on: the ticked ones, or every alert matching the page's filter
    when "select all matching" is on (not just the rows on the page)."""
    visible = Alert.objects.visible_to(user).select_related("customer")
    if data.get("all_matching") == "1":
        params = QueryDict(data.get("query", ""), mutable=True)
        params.pop("page", None)
        params.pop("after", None)
        if not any(k in params for k in ("status", "queue")):
            params["queue"] = "true"
        return list(AlertFilterSet(params, queryset=visible).qs.order_by(*QUEUE_ORDER)[:BULK_ALL_CAP])
    ids = [int(i) for i in data.getlist("ids") if i.isdigit()]
    return list(visible.filter(pk__in=ids).order_by(*QUEUE_ORDER))
