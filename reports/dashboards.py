"""Dashboards: the rollups they read, and what the SOC overview and a customer's dashboard show.

No dashboard query reads the raw alerts: alert rates come from ``AlertRollup`` (per
hour) and attack history from ``AttackRollup`` (per day). The beat task
``refresh_rollups`` keeps them current from a watermark; every bucket it touches is
recomputed whole from the source rows, so running it twice, or after a crash, gives
the same tables.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db import transaction
from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import TruncDate, TruncHour
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from alerts.models import Alert, Attack, Feed
from console.models import Asset, Customer
from mitigations import selectors as mitigation_selectors
from reports import charts
from reports.models import AlertRollup, AttackRollup, Report, RollupWatermark
from reports.text import si, vector_title
from tickets import selectors as ticket_selectors

# Rows whose change committed late (a long transaction) are still caught: each run
# rereads this much before the watermark. Recomputing a bucket twice is harmless.
OVERLAP = timedelta(minutes=5)
ALERT_RATE_HOURS = 24
TOP_CUSTOMERS_DAYS = 7
CUSTOMER_DAYS = 90


def url(name: str, *args: Any, **query: Any) -> str:
    """The URL of a page with its filters, or "" when that page is not installed."""
    try:
        path = reverse(name, args=args)
    except NoReverseMatch:
        return ""
    query = {k: v for k, v in query.items() if v not in (None, "")}
    return f"{path}?{urlencode(query, doseq=True)}" if query else path


# --------------------------------------------------------------------------- rollups


def _watermark(name: str) -> RollupWatermark:
    mark, _ = RollupWatermark.objects.get_or_create(name=name)
    return mark


def alert_rollup_rebuild(buckets: set[datetime]) -> int:
    """Recompute these hours of AlertRollup from the alerts (one read over their span)."""
    if not buckets:
        return 0
    ordered = sorted(buckets)
    rows = (
        Alert.objects.filter(event_time__gte=ordered[0], event_time__lt=ordered[-1] + timedelta(hours=1))
        .annotate(bucket=TruncHour("event_time"))
        .values("bucket", "customer_id", "severity", "layer")
        .annotate(n=Count("id"), events=Sum("count"))
        .order_by()
    )
    new = [
        AlertRollup(
            bucket=r["bucket"],
            customer_id=r["customer_id"],
            severity=r["severity"],
            layer=r["layer"],
            alerts=r["n"],
            events=r["events"] or r["n"],
        )
        for r in rows
        if r["bucket"] in buckets
    ]
    with transaction.atomic():
        for i in range(0, len(ordered), 500):
            AlertRollup.objects.filter(bucket__in=ordered[i : i + 500]).delete()
        AlertRollup.objects.bulk_create(new, batch_size=2000)
    return len(new)


def attack_rollup_rebuild(days: set[date]) -> int:
    """Recompute these days of AttackRollup from the attacks that started on them (UTC)."""
    if not days:
        return 0
    ordered = sorted(days)
    start = datetime.combine(ordered[0], time.min, tzinfo=UTC)
    end = datetime.combine(ordered[-1] + timedelta(days=1), time.min, tzinfo=UTC)
    acc: dict[tuple[date, int | None], dict[str, Any]] = {}
    rows = Attack.objects.filter(started_at__gte=start, started_at__lt=end).values_list(
        "started_at", "customer_id", "peak_bps", "peak_pps", "peak_rps", "vectors"
    )
    for started_at, customer_id, bps, pps, rps, vectors in rows.iterator(chunk_size=5000):
        day = started_at.astimezone(UTC).date()
        if day not in days:
            continue
        slot = acc.setdefault(
            (day, customer_id), {"attacks": 0, "peak_bps": None, "peak_pps": None, "peak_rps": None, "vectors": {}}
        )
        slot["attacks"] += 1
        for key, value in (("peak_bps", bps), ("peak_pps", pps), ("peak_rps", rps)):
            if value is not None:
                slot[key] = max(slot[key] or 0.0, value)
        for v in vectors or []:
            slot["vectors"][v] = slot["vectors"].get(v, 0) + 1
    new = [AttackRollup(day=d, customer_id=c, **values) for (d, c), values in acc.items()]
    with transaction.atomic():
        AttackRollup.objects.filter(day__in=ordered).delete()
        AttackRollup.objects.bulk_create(new, batch_size=2000)
    return len(new)


def rollups_refresh(*, now: datetime | None = None, full: bool = False) -> dict[str, int]:
    """Fold alerts and attacks changed since the watermarks into the rollups, then move the watermarks.

    ``full`` rebuilds everything (after an import that rewrote event times, say).
    """
    now = now or timezone.now()
    result = {}
    mark = _watermark("alerts")
    changed = Alert.objects.all()
    if mark.value and not full:
        changed = changed.filter(updated_at__gte=mark.value - OVERLAP)
    buckets = set(
        changed.annotate(bucket=TruncHour("event_time")).values_list("bucket", flat=True).distinct().order_by()
    )
    result["alert_buckets"] = len(buckets)
    result["alert_rows"] = alert_rollup_rebuild(buckets)
    RollupWatermark.objects.filter(pk=mark.pk).update(value=now)

    mark = _watermark("attacks")
    attacks = Attack.objects.all()
    if mark.value and not full:
        since = mark.value - OVERLAP
        attacks = attacks.filter(Q(last_seen__gte=since) | Q(summarized_at__gte=since) | Q(started_at__gte=since))
    days = set(attacks.annotate(day=TruncDate("started_at")).values_list("day", flat=True).distinct().order_by())
    result["attack_days"] = len(days)
    result["attack_rows"] = attack_rollup_rebuild(days)
    RollupWatermark.objects.filter(pk=mark.pk).update(value=now)
    return result


# --------------------------------------------------------------------------- SOC overview


def _hours(now: datetime, n: int) -> list[datetime]:
    top = now.replace(minute=0, second=0, microsecond=0)
    return [top - timedelta(hours=i) for i in range(n - 1, -1, -1)]


def alert_rate(*, now: datetime, customer: Customer | None = None, hours: int = ALERT_RATE_HOURS) -> dict[str, Any]:
    """Alerts per hour by severity and by layer, from the rollup."""
    buckets = _hours(now, hours)
    rollups = AlertRollup.objects.filter(bucket__gte=buckets[0])
    if customer is not None:
        rollups = rollups.filter(customer=customer)
    by_severity: dict[str, dict[str, int]] = defaultdict(dict)
    by_layer: dict[str, dict[str, int]] = defaultdict(dict)
    keys = [b.isoformat() for b in buckets]
    for row in rollups.values("bucket", "severity").annotate(n=Sum("alerts")).order_by():
        by_severity[row["severity"]][row["bucket"].isoformat()] = row["n"]
    for row in rollups.values("bucket", "layer").annotate(n=Sum("alerts")).order_by():
        by_layer[row["layer"]][row["bucket"].isoformat()] = row["n"]
    slug = customer.slug if customer else None
    # One link per bar (severities x 24 hours): reverse the queue's URL once, not per bar.
    queue = url("alert-list")

    def link(field: str) -> Any:
        def make(key: str, bucket: str) -> str:
            if not queue:
                return ""
            start = datetime.fromisoformat(bucket)
            query = {field: key, "customer": slug, "since": start.isoformat()}
            query["until"] = (start + timedelta(hours=1)).isoformat()
            return f"{queue}?{urlencode({k: v for k, v in query.items() if v not in (None, '')}, doseq=True)}"

        return make

    total = sum(sum(v.values()) for v in by_severity.values())
    return {
        "total": total,
        "by_severity": charts.stacked_rate(
            keys,
            by_severity,
            order=charts.SEVERITY_ORDER,
            colors=charts.SEVERITY_COLORS,
            title=f"Alerts per hour by severity (last {hours} h)",
            link=link("severity"),
        ),
        "by_layer": charts.stacked_rate(
            keys,
            by_layer,
            order=charts.LAYER_ORDER,
            colors=charts.LAYER_COLORS,
            title=f"Alerts per hour by layer (last {hours} h)",
            link=link("layer"),
        ),
    }


def ongoing_attacks(limit: int = 15) -> list[dict[str, Any]]:
    rows = (
        Attack.objects.ongoing()
        .select_related("customer")
        .order_by("-urgency", "-last_seen", "-id")
        .only(
            "id",
            "target",
            "title",
            "severity",
            "urgency",
            "peak_bps",
            "peak_pps",
            "peak_rps",
            "started_at",
            "last_seen",
            "vectors",
            "customer__name",
            "customer__slug",
            "customer__plan",
        )[:limit]
    )
    return [
        {
            "id": a.pk,
            "url": a.get_absolute_url(),
            "target": a.target,
            "title": str(a),
            "customer": a.customer.name if a.customer else "",
            "customer_slug": a.customer.slug if a.customer else "",
            "severity": a.severity,
            "urgency": a.urgency,
            "peak_bps": a.peak_bps,
            "peak_pps": a.peak_pps,
            "peak_rps": a.peak_rps,
            "size": " · ".join(
                si(v, u) for v, u in ((a.peak_bps, "bps"), (a.peak_pps, "pps"), (a.peak_rps, "rps")) if v
            )
            or "—",
            "started_at": a.started_at,
            "vectors": ", ".join(vector_title(v) for v in a.vectors or []),
        }
        for a in rows
    ]


def top_customers(*, now: datetime, days: int = TOP_CUSTOMERS_DAYS, limit: int = 10) -> dict[str, Any]:
    since = (now - timedelta(days=days - 1)).date()
    rows = list(
        AttackRollup.objects.filter(day__gte=since, customer__isnull=False)
        .values("customer_id")
        .annotate(attacks=Sum("attacks"), peak=Max("peak_bps"))
        .order_by("-attacks", "customer_id")[:limit]
    )
    names = Customer.objects.in_bulk([r["customer_id"] for r in rows])
    ongoing = dict(
        Attack.objects.ongoing()
        .filter(customer_id__in=list(names))
        .values_list("customer_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    table = [
        {
            "customer": names[r["customer_id"]],
            "attacks": r["attacks"],
            "peak": si(r["peak"], "bps") if r["peak"] else "—",
            "ongoing": ongoing.get(r["customer_id"], 0),
            "url": url("attack-list", customer=names[r["customer_id"]].slug),
            "dashboard": url("customer-dashboard", names[r["customer_id"]].slug),
        }
        for r in rows
        if r["customer_id"] in names
    ]
    return {
        "rows": table,
        "chart": charts.bars(
            [t["customer"].name for t in table],
            [t["attacks"] for t in table],
            title=f"Top customers under attack (last {days} days)",
            links=[t["url"] for t in table],
            axis="attacks",
            horizontal=True,
        ),
    }


def tickets_overview() -> dict[str, Any]:
    counts = ticket_selectors.open_ticket_counts()
    statuses = counts["statuses"]
    chart = charts.bars(
        [label for _, label, _ in statuses],
        [n for _, _, n in statuses],
        title="Open tickets by status",
        links=[url("ticket-list", status=s) for s, _, _ in statuses],
        axis="tickets",
        color="#0090ff",
    )
    return {
        "chart": chart,
        "open": counts["open"],
        "at_risk": counts["at_risk"],
        "breached": counts["breached"],
        "at_risk_url": url("ticket-list", sla="at_risk", open="true"),
        "breached_url": url("ticket-list", sla="breached", open="true"),
    }


def mitigations_expiring(*, now: datetime, limit: int = 20) -> list[Any]:
    return mitigation_selectors.expiring_within(now=now, window=timedelta(hours=1), limit=limit)


def feed_health(*, now: datetime) -> list[dict[str, Any]]:
    rows = []
    for feed in Feed.objects.order_by("name")[:50]:
        rows.append(
            {
                "feed": feed,
                "health": feed.health(),
                "last_delivery_at": feed.last_delivery_at,
                "deliveries": feed.delivery_count,
                "errors": feed.error_count,
                "error_rate": (feed.error_count / feed.delivery_count) if feed.delivery_count else None,
                "url": feed.get_absolute_url(),
            }
        )
    return rows


def soc_overview(*, now: datetime | None = None) -> dict[str, Any]:
    """The SOC overview: what is under attack right now, how busy the feeds are, what needs a person."""
    now = now or timezone.now()
    ongoing = ongoing_attacks()
    return {
        "now": now,
        "ongoing": ongoing,
        "ongoing_chart": charts.ongoing_attacks(ongoing) if ongoing else None,
        "ongoing_count": Attack.objects.ongoing().count(),
        "rate": alert_rate(now=now),
        "top_customers": top_customers(now=now),
        "tickets": tickets_overview(),
        "expiring": mitigations_expiring(now=now),
        "feeds": feed_health(now=now),
    }


# --------------------------------------------------------------------------- customer dashboard


def customer_overview(
    customer: Customer, *, now: datetime | None = None, days: int = CUSTOMER_DAYS, internal: bool = True
) -> dict[str, Any]:
    """One customer's dashboard: attacks over time, vectors, the largest peaks, tickets, mitigations, assets.

    ``internal=False`` is the customer's own view: no tickets (they are the provider's working
    notes), and no chart or row links into pages only staff may open.
    """
    now = now or timezone.now()
    since = (now - timedelta(days=days - 1)).date()
    rollups = list(AttackRollup.objects.filter(customer=customer, day__gte=since).order_by("day"))
    per_day = {r.day: r for r in rollups}
    day_list = [since + timedelta(days=i) for i in range(days)]
    vectors: dict[str, int] = defaultdict(int)
    for r in rollups:
        for v, n in (r.vectors or {}).items():
            vectors[v] += n
    vector_rows = [
        {"vector": v, "title": vector_title(v), "alerts": n}
        for v, n in sorted(vectors.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    ]

    def day_link(d: str) -> str:
        start = datetime.fromisoformat(d)
        return url(
            "attack-list",
            customer=customer.slug,
            since=f"{d}T00:00:00Z",
            until=f"{(start + timedelta(days=1)).date().isoformat()}T00:00:00Z",
        )

    largest = list(
        Attack.objects.filter(customer=customer, started_at__gte=now - timedelta(days=days))
        .exclude(peak_bps__isnull=True, peak_pps__isnull=True, peak_rps__isnull=True)
        .order_by("-peak_bps", "-peak_pps", "-peak_rps", "-id")
        .only("id", "target", "title", "vectors", "peak_bps", "peak_pps", "peak_rps", "started_at", "ongoing")[:10]
    )
    tickets = ticket_selectors.customer_tickets(customer, limit=10) if internal else None
    mitigations = mitigation_selectors.active_for_customer(customer)
    return {
        "customer": customer,
        "internal": internal,
        "days": days,
        "attack_total": sum(r.attacks for r in rollups),
        "ongoing": list(Attack.objects.ongoing().filter(customer=customer).order_by("-last_seen")[:10]),
        "attacks_chart": charts.attacks_over_time(
            [d.isoformat() for d in day_list],
            [per_day[d].attacks if d in per_day else 0 for d in day_list],
            [per_day[d].peak_bps if d in per_day else None for d in day_list],
            link=day_link if internal else None,
        ),
        "vectors_chart": charts.vector_pie(
            vector_rows,
            title="Vectors (attacks showing each)",
            links=[url("attack-list", customer=customer.slug, vector=v["vector"]) for v in vector_rows]
            if internal
            else None,
        )
        if vector_rows
        else None,
        "largest": largest,
        "peaks_chart": charts.bars(
            [f"#{a.pk} {a.target}" for a in largest],
            [a.peak_bps or 0 for a in largest],
            title="Largest attacks (peak bits/s)",
            links=[a.get_absolute_url() for a in largest] if internal else None,
            axis="bits/s",
            horizontal=True,
            color="#e5484d",
            counts=False,
        )
        if largest
        else None,
        "tickets": tickets,
        "mitigations": mitigations,
        "assets": list(Asset.objects.filter(customer=customer).order_by("kind", "value")),
        "reports": list(Report.objects.filter(customer=customer).order_by("-created_at")[:5]),
        "rate": _without_links(alert_rate(now=now, customer=customer, hours=48), keep=internal),
    }


def _without_links(rate: dict[str, Any], *, keep: bool) -> dict[str, Any]:
    """The alert-rate chart's bars open the alert queue: staff only."""
    if not keep:
        for trace in rate["by_severity"]["data"]:
            trace.pop("customdata", None)
    return rate
