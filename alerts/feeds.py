"""A feed's lifecycle: create, edit, disable, rotate its token, preview a mapping, replay, watch for silence.

The API (alerts/api) and the browser (alerts/views) both go through these functions, so
what one can do the other can, with the same checks and the same audit trail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from alerts.formats import ParsedAlert, ParseError, parse_delivery
from alerts.formats.base import make_fingerprint
from alerts.mapping import CustomerMapper
from alerts.models import Alert, Attack, Delivery, Feed
from alerts.services import _enqueue_processing, alerts_upsert, attack_summarize
from console.audit import audit_record, snapshot
from console.models import Customer

# What an engineer may change on a feed, in the API and in the browser form alike: one list,
# so a new setting (a label mapping, say) is added here once.
FEED_EDITABLE_FIELDS = [
    "name",
    "format",
    "mode",
    "enabled",
    "customer",
    "customer_label",
    "options",
    "label_mapping",
    "signing_key",
    "max_body_bytes",
    "rate_limit_per_minute",
    "pull_url",
    "pull_interval",
    "auto_resolve_minutes",
    "expected_interval_minutes",
]
# Settings that change how a delivery is parsed and mapped: what the preview applies unsaved.
FEED_PARSING_FIELDS = ["format", "options", "label_mapping", "customer", "customer_label"]
AUDITED = ["slug", *FEED_EDITABLE_FIELDS]
PREVIEW_DELIVERIES = 10
PREVIEW_ALERTS_PER_DELIVERY = 20
SILENT_VECTOR = "feed_silent"


def _audit_view(feed: Feed) -> dict[str, Any]:
    values = snapshot(feed, AUDITED)
    if values.get("signing_key"):
        values["signing_key"] = "(set)"  # a secret: the audit log says that it changed, not what to
    return values


def feed_create(*, values: dict[str, Any], user: Any) -> tuple[Feed, str]:
    """A new feed and its bearer token, which is returned here once and only kept hashed."""
    feed = Feed(**values)
    token = feed.set_secret()
    feed.full_clean()
    feed.save()
    audit_record(action="feed.create", obj=feed, after=_audit_view(feed), actor=user)
    return feed, token


def feed_update(*, feed: Feed, changes: dict[str, Any], user: Any) -> Feed:
    """Change a feed's settings (mapping, options, limits, auto-resolve, enabled); audited before/after."""
    unknown = set(changes) - set(FEED_EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not an editable feed setting: {', '.join(sorted(unknown))}")
    before = _audit_view(feed)
    for name, value in changes.items():
        setattr(feed, name, value)
    feed.full_clean()
    feed.save()
    after = _audit_view(feed)
    changed = {k for k in after if before.get(k) != after.get(k)}
    if changed:
        audit_record(
            action="feed.update",
            obj=feed,
            before={k: before[k] for k in changed},
            after={k: after[k] for k in changed},
            actor=user,
        )
    return feed


def feed_set_enabled(*, feed: Feed, enabled: bool, user: Any) -> Feed:
    """A disabled feed's webhook answers 404 and it is not polled; its history stays."""
    return feed_update(feed=feed, changes={"enabled": enabled}, user=user)


def feed_rotate_secret(*, feed: Feed, user: Any) -> str:
    """A new token; the old one stops working at once. Returned once."""
    token = feed.set_secret()
    feed.save(update_fields=["secret_hash", "secret_hint"])
    audit_record(action="feed.rotate_secret", obj=feed, after={"secret_hint": feed.secret_hint}, actor=user)
    return token


# --------------------------------------------------------------------------- preview


@dataclass
class PreviewAlert:
    title: str
    vector: str
    severity: str
    target: str
    customer: str  # slug, or "" for unassigned
    sources: list[str]
    resolved: bool


@dataclass
class PreviewDelivery:
    delivery: Delivery
    error: str = ""
    alerts: list[PreviewAlert] = field(default_factory=list)
    total: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def unassigned(self) -> int:
        return sum(1 for a in self.alerts if not a.customer)


def feed_with(feed: Feed, unsaved: dict[str, Any]) -> Feed:
    """A copy of the feed carrying unsaved settings; never saved."""
    probe = Feed(**{f.attname: getattr(feed, f.attname) for f in Feed._meta.concrete_fields})
    for name, value in unsaved.items():
        if name in FEED_EDITABLE_FIELDS:
            setattr(probe, name, value)
    return probe


def feed_preview(*, feed: Feed, unsaved: dict[str, Any], limit: int = PREVIEW_DELIVERIES) -> list[PreviewDelivery]:
    """The feed's last deliveries parsed and mapped with settings not yet saved (nothing is written)."""
    probe = feed_with(feed, unsaved)
    mapper = CustomerMapper.for_feed(probe)
    slugs = dict(Customer.objects.values_list("id", "slug"))
    rows = []
    for delivery in feed.deliveries.order_by("-received_at", "-id")[:limit]:
        row = PreviewDelivery(delivery=delivery)
        options = probe.parse_options(lenient=delivery.source == "import")
        try:
            parsed = parse_delivery(probe.format, bytes(delivery.body), options)
        except ParseError as exc:
            row.error = str(exc)[:2000]
        except Exception as exc:  # a preview must show a parser bug, not fail the page
            row.error = f"parser failed: {exc.__class__.__name__}: {exc}"[:2000]
        else:
            row.total = len(parsed.alerts)
            row.skipped = parsed.skipped
            row.alerts = [_preview_alert(a, mapper, slugs) for a in parsed.alerts[:PREVIEW_ALERTS_PER_DELIVERY]]
        rows.append(row)
    return rows


def _preview_alert(alert: ParsedAlert, mapper: CustomerMapper, slugs: dict[int, str]) -> PreviewAlert:
    mapper.orient(alert)  # the victim decided as ingest decides it
    customer_id, _asset_id = mapper.map(alert)
    return PreviewAlert(
        title=alert.title,
        vector=alert.vector,
        severity=alert.severity,
        target=alert.target_ip or alert.target_host or alert.zone,
        customer=slugs.get(customer_id, "") if customer_id else "",
        sources=list(alert.source_ips[:3]),
        resolved=alert.resolved,
    )


# --------------------------------------------------------------------------- replay


@dataclass
class Replay:
    rejected: int = 0
    unmapped: int = 0
    alerts_removed: int = 0

    @property
    def deliveries(self) -> int:
        return self.rejected + self.unmapped


def feed_replay(*, feed: Feed, user: Any, delivery_ids: Iterable[int] | None = None, unmapped: bool = True) -> Replay:
    """Parse the feed's rejected deliveries again, and those whose alerts found no customer.

    For the latter, the alerts they created that nobody has worked on yet (still new or
    silenced) are removed first and rebuilt from the delivery with the feed's current
    mapping; alerts already acknowledged, escalated or resolved stay as they are.
    """
    deliveries = feed.deliveries.all()
    if delivery_ids is not None:
        deliveries = deliveries.filter(pk__in=list(delivery_ids))
    rejected_ids = list(deliveries.filter(status=Delivery.Status.REJECTED).values_list("pk", flat=True)[:5000])
    unmapped_ids: list[int] = []
    if unmapped:
        unmapped_ids = list(
            deliveries.filter(status=Delivery.Status.PROCESSED, alerts__customer__isnull=True)
            .order_by()
            .values_list("pk", flat=True)
            .distinct()[:5000]
        )
    result = Replay(rejected=len(rejected_ids), unmapped=len(unmapped_ids))
    with transaction.atomic():
        if unmapped_ids:
            untouched = Alert.objects.filter(
                delivery_id__in=unmapped_ids, status__in=[Alert.Status.NEW, Alert.Status.SUPPRESSED]
            )
            attack_ids = set(untouched.exclude(attack=None).values_list("attack_id", flat=True))
            result.alerts_removed, _ = untouched.delete()
            # An attack left without alerts was made of the mis-mapped ones only: it was never one.
            Attack.objects.filter(pk__in=attack_ids).annotate(n=Count("alerts")).filter(n=0).delete()
            for attack_id in sorted(attack_ids):
                attack_summarize(attack_id=attack_id)
        ids = rejected_ids + unmapped_ids
        if ids:
            # Attempts start again: a dead letter replayed after a fix gets INGEST_MAX_ATTEMPTS more.
            Delivery.objects.filter(pk__in=ids).update(
                status=Delivery.Status.PENDING, error="", attempts=0, refused=[], queued_at=timezone.now()
            )
            audit_record(
                action="feed.replay",
                obj=feed,
                after={
                    "rejected": result.rejected,
                    "unmapped": result.unmapped,
                    "alerts_removed": result.alerts_removed,
                },
                actor=user,
            )
            for delivery_id in ids:
                transaction.on_commit(lambda delivery_id=delivery_id: _enqueue_processing(delivery_id))
    return result


# --------------------------------------------------------------------------- silent feeds


def _silent_fingerprint(feed: Feed) -> str:
    return make_fingerprint("shieldwall", SILENT_VECTOR, feed.pk)


def feeds_check_silent(*, now: datetime | None = None) -> int:
    """Beat: a feed that has sent nothing for longer than its expected interval raises an alert of its own.

    The alert repeats (count, last seen) while the feed stays silent, and is resolved at
    the first check after a delivery arrives again. Returns the feeds found silent.
    """
    now = now or timezone.now()
    silent = 0
    feeds = Feed.objects.filter(enabled=True, expected_interval_minutes__gt=0)
    for feed in feeds:
        interval = timedelta(minutes=feed.expected_interval_minutes)
        heard = feed.last_delivery_at or feed.created_at
        fingerprint = _silent_fingerprint(feed)
        if heard > now - interval:
            if feed.silent_alerted_at is not None:
                Alert.objects.filter(feed=feed, fingerprint=fingerprint, resolved_at__isnull=True).update(
                    status=Alert.Status.RESOLVED, resolved_at=now, ended_at=heard, updated_at=now
                )
                Feed.objects.filter(pk=feed.pk).update(silent_alerted_at=None)
            continue
        silent += 1
        last = f"since {heard:%Y-%m-%d %H:%M} UTC" if feed.last_delivery_at else "since it was created"
        alert = ParsedAlert(
            fingerprint=fingerprint,
            # No running figure in the title: the alert repeats, and its last seen says how long.
            title=f"Feed {feed.name} silent for more than {feed.expected_interval_minutes} minutes"[:500],
            layer="L7",
            vector=SILENT_VECTOR,
            severity="high",
            event_time=heard + interval,
            description=(
                f"No delivery {last}; this feed is expected at least every {feed.expected_interval_minutes} "
                "minutes. The sender, its network path or its token may be broken: alerts it would send are missing."
            ),
            labels={"alertname": "FeedSilent", "feed": feed.slug},
        )
        with transaction.atomic():
            alerts_upsert(feed=feed, delivery=None, parsed=[alert], received_at=now)
            if feed.silent_alerted_at is None:
                Feed.objects.filter(pk=feed.pk).update(silent_alerted_at=now)
    return silent
