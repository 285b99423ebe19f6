"""Alert ingestion and triage: every write of the alerts app goes through here."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import logging
import re
import statistics
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Count, DateTimeField, Exists, F, Max, Min, OuterRef, Q, Value, Window
from django.db.models.functions import Coalesce, Greatest, RowNumber
from django.utils import timezone

from alerts import urgency
from alerts.formats import ParsedAlert, ParseError, parse_delivery, refused_records
from alerts.formats._common import loads as json_loads
from alerts.formats.limits import depth_error
from alerts.mapping import CustomerMapper
from alerts.models import (
    ENDED_BY_SENDER_LABEL,
    Alert,
    Attack,
    Delivery,
    DeliveryNonce,
    Feed,
    Silence,
    matcher_holds,
    silence_values,
)
from console import units
from console.audit import audit_record, snapshot
from console.models import Customer

ATTACK_GAP = timedelta(minutes=getattr(settings, "ATTACK_GAP_MINUTES", 15))
SIGNATURE_TOLERANCE_S = 300
# A signed delivery's id, accepted once per feed; kept past the window a future-dated stamp can span.
DELIVERY_ID_HEADER = "x-shieldwall-delivery"
DELIVERY_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
NONCE_KEEP_S = 3 * SIGNATURE_TOLERANCE_S
# Identical bytes from a feed within one window are a retry of the same delivery.
RETRY_WINDOW_S = 300
# Targets per attack lookup and per attack UPDATE (bounded statements on any backend).
CORRELATE_CHUNK = 200
JSON_FORMATS = {"cloudflare", "alertmanager", "crowdsec", "generic", "wazuh", "pagerduty"}
STALE_SKIP = "older than its alert's end"

logger = logging.getLogger(__name__)


class IngestRefused(Exception):
    """The ingest endpoint answers with ``status`` and this message; nothing is stored."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------- receiving


def feed_authenticate(*, feed: Feed, headers: dict[str, str], body: bytes) -> str:
    """Bearer token (Alertmanager's http_config) or cf-webhook-auth; then the optional HMAC.

    A feed with a signing key wants ``X-Shieldwall-Timestamp``, ``X-Shieldwall-Delivery`` (an id
    the sender gives each delivery, unique per feed) and ``X-Shieldwall-Signature: sha256=<hex>``
    of ``"<timestamp>.<delivery id>.<body>"``. Returns the delivery id ('' for an unsigned feed):
    ``delivery_receive`` accepts it once (a replay within the window answers 409).
    """
    token = ""
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    elif headers.get("cf-webhook-auth"):
        token = headers["cf-webhook-auth"].strip()
    elif feed.format == Feed.Format.PAGERDUTY:
        token = _pagerduty_routing_key(body)
    if not feed.check_secret(token):
        raise IngestRefused(401, "missing or wrong feed token")
    if not feed.signing_key:
        return ""
    stamp = headers.get("x-shieldwall-timestamp", "")
    nonce = headers.get(DELIVERY_ID_HEADER, "")
    signature = headers.get("x-shieldwall-signature", "").removeprefix("sha256=")
    try:
        age = abs(time.time() - int(stamp))
    except ValueError as exc:
        raise IngestRefused(401, "missing or malformed X-Shieldwall-Timestamp") from exc
    if age > SIGNATURE_TOLERANCE_S:
        raise IngestRefused(401, "signature timestamp outside 5 minutes: replay refused")
    if not DELIVERY_ID.fullmatch(nonce):
        raise IngestRefused(401, "missing or malformed X-Shieldwall-Delivery (1-128 of A-Z a-z 0-9 . _ : -)")
    signed = stamp.encode() + b"." + nonce.encode() + b"." + body
    expected = hmac.new(feed.signing_key.encode(), signed, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise IngestRefused(401, "body signature does not match")
    return nonce


def _pagerduty_routing_keys(body: bytes) -> list[str]:
    """The ``routing_key`` of each event a PagerDuty Events v2 sender puts in the body.

    Tools that speak the Events API (Alertmanager's pagerduty_config, Grafana, Zabbix...)
    send the integration key there instead of a header; the feed's token is that key.
    """
    try:
        events = orjson.loads(body[:1_000_000])
    except orjson.JSONDecodeError:
        return []
    events = events if isinstance(events, list) else [events]
    keys = [e.get("routing_key") for e in events[:1_000] if isinstance(e, dict)]
    return [k.strip() for k in keys if isinstance(k, str) and k.strip()]


def _pagerduty_routing_key(body: bytes) -> str:
    keys = _pagerduty_routing_keys(body)
    return keys[0] if keys else ""


def redact_routing_keys(body: bytes) -> bytes:
    """The body with every PagerDuty ``routing_key`` value replaced: it is the feed's token
    (or another integration's key), and deliveries and alerts are shown to engineers."""
    for key in sorted(set(_pagerduty_routing_keys(body)), key=len, reverse=True):
        if len(key) >= 8:  # a short placeholder would replace unrelated text
            body = body.replace(orjson.dumps(key), b'"[redacted]"')
    return body


def feed_rate_check(feed: Feed) -> None:
    """Per-feed rate limit over a one-minute window, kept in the cache."""
    key = f"feed-rate:{feed.pk}:{int(time.time() // 60)}"
    try:
        if cache.add(key, 1, 70):
            return
        count = cache.incr(key)
    except ValueError:
        cache.set(key, 1, 70)
        return
    except Exception:  # cache (Redis) down
        # The limit protects the console from a runaway sender; refusing every delivery
        # while Redis is down would lose alerts instead. Accept, and say so in the log.
        logger.warning("rate limit of feed %s not checked: cache unavailable", feed.slug)
        return
    if count > feed.rate_limit_per_minute:
        raise IngestRefused(429, f"rate limit of {feed.rate_limit_per_minute} deliveries a minute exceeded")


def delivery_check_limits(*, body: bytes) -> None:
    """Refuse (400, nothing stored) a body nested deeper than INGEST_MAX_JSON_DEPTH, before any parse.

    The size is checked before this, by the webhook (413). The scan counts brackets outside
    strings, so a 1,000-level record costs no recursion here, nor later in the worker.
    """
    if body[:2] == b"\x1f\x8b":
        return  # compressed: the parser checks the depth after decompressing
    problem = depth_error(body, settings.INGEST_MAX_JSON_DEPTH)
    if problem:
        raise IngestRefused(400, f"refused: {problem}; nothing was stored")


@dataclass
class Precheck:
    """What the webhook can tell at once: the body is not well-formed (error), or records the parser will refuse."""

    error: str = ""
    refused: list[dict[str, str]] = field(default_factory=list)


def delivery_precheck(feed_format: str, body: bytes) -> Precheck:
    """A quick check that the body is JSON where the format is JSON, and which of its records will be refused."""
    if body[:2] == b"\x1f\x8b":
        return Precheck()  # compressed: the parser decides
    stripped = body.strip()
    if not stripped:
        return Precheck("empty body")
    if feed_format in JSON_FORMATS or (feed_format == "fastnetmon" and stripped[:1] in (b"{", b"[")):
        try:
            payload = json_loads(stripped)
        except orjson.JSONDecodeError as exc:
            if feed_format == "generic" and b"\n" in stripped:
                return Precheck()  # JSON lines: the parser names the bad line
            return Precheck(f"malformed JSON: {exc}")
        return Precheck(refused=refused_records(feed_format, payload, stripped))
    if feed_format == "suricata":
        first = stripped.split(b"\n", 1)[0]
        try:
            json_loads(first if b"\n" in stripped else stripped)
        except orjson.JSONDecodeError as exc:
            return Precheck(f"line 1: malformed JSON: {exc}")
    return Precheck()


@dataclass
class Received:
    delivery: Delivery
    created: bool
    # Records of the batch its parser will refuse (the others are kept): for the webhook's answer.
    refused: list[dict[str, str]] = field(default_factory=list)


def delivery_receive(
    *,
    feed: Feed,
    body: bytes,
    headers: dict[str, Any],
    source: str = "push",
    dedup_key: bytes = b"",
    nonce: str = "",
) -> Received:
    """Store a raw delivery; with a signed delivery's ``nonce``, refuse a replay (409) storing nothing.

    The nonce row and the delivery are written in one transaction: when the delivery cannot be
    stored, neither is the nonce, so the sender's retry of the same delivery id is accepted.
    """
    if not nonce:
        return _delivery_receive(feed=feed, body=body, headers=headers, source=source, dedup_key=dedup_key)
    with transaction.atomic():
        try:
            with transaction.atomic():
                seen = DeliveryNonce.objects.create(feed=feed, nonce=nonce)
        except IntegrityError as exc:
            raise IngestRefused(409, f"delivery {nonce} was already received: replay refused") from exc
        received = _delivery_receive(feed=feed, body=body, headers=headers, source=source, dedup_key=dedup_key)
        DeliveryNonce.objects.filter(pk=seen.pk).update(delivery=received.delivery)
    return received


def _delivery_receive(
    *, feed: Feed, body: bytes, headers: dict[str, Any], source: str = "push", dedup_key: bytes = b""
) -> Received:
    """Store a raw delivery (the inbox) and enqueue its parsing after commit.

    The same bytes delivered again by the same feed are the same delivery: nothing new is
    stored or processed. A body that is not even well-formed is stored as rejected, so the
    sender's mistake can be looked at and reprocessed. ``dedup_key`` (e.g. a file chunk's
    position) distinguishes equal bodies that are not retries of each other.

    A sender's retry comes within seconds; the same bytes in a later retry window are a
    repeat notification (Alertmanager re-sends a firing group unchanged), which must
    count as a sighting: bump count and last seen, still never a second alert row.
    """
    if feed.format == Feed.Format.PAGERDUTY:
        body = redact_routing_keys(body)
    if not dedup_key:
        dedup_key = f"window:{int(time.time() // RETRY_WINDOW_S)}:".encode()
    digest = hashlib.sha256(dedup_key + body).hexdigest()
    existing = Delivery.objects.filter(feed=feed, body_sha256=digest).only("id", "status").first()
    if existing:
        return Received(existing, False)
    precheck = delivery_precheck(feed.format, body)
    problem = precheck.error
    now = timezone.now()
    try:
        with transaction.atomic():
            delivery = Delivery.objects.create(
                feed=feed,
                body=body,
                body_sha256=digest,
                headers=headers,
                source=source,
                received_at=now,
                status=Delivery.Status.REJECTED if problem else Delivery.Status.PENDING,
                error=problem,
                processed_at=now if problem else None,
            )
            if problem:
                Feed.objects.filter(pk=feed.pk).update(
                    delivery_count=F("delivery_count") + 1,
                    last_delivery_at=now,
                    error_count=F("error_count") + 1,
                    last_error=problem[:2000],
                    last_error_at=now,
                )
            else:
                # The feed's counters are updated by the worker: a hot row locked by every
                # webhook request would serialise them and stretch the response tail.
                transaction.on_commit(lambda: _enqueue_processing(delivery.pk))
    except IntegrityError:
        # Two copies raced; the other one won and is the delivery.
        return Received(Delivery.objects.get(feed=feed, body_sha256=digest), False)
    return Received(delivery, True, precheck.refused)


def _enqueue_processing(delivery_id: int) -> bool:
    """Publish the parsing task; False when the broker cannot take it (the delivery stays pending)."""
    from alerts.tasks import process_delivery

    try:
        process_delivery.delay(delivery_id)
    except Exception:  # broker down: the sweeper re-enqueues pending deliveries
        logger.warning("broker unavailable; delivery %s stays pending for the sweeper", delivery_id)
        return False
    return True


# --------------------------------------------------------------------------- processing


@dataclass
class UpsertResult:
    created: int = 0
    updated: int = 0
    resolved: int = 0
    # Events older than the sender's end of their alert: dropped, never reopening it.
    stale: int = 0
    attack_ids: set[int] = field(default_factory=set)


# Errors of the database connection itself: the task retries them and they cost no attempt.
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError)


def delivery_process(*, delivery_id: int) -> Delivery | None:
    """Parse a pending delivery and upsert its alerts, all in one transaction.

    Idempotent: a delivery that is no longer pending is left alone, and a worker that dies
    half-way leaves the transaction rolled back and the delivery pending for a retry.

    Each attempt is counted first, in a transaction of its own, so that an attempt that
    crashes (a bug, a time limit, a killed worker) is still counted: after
    INGEST_MAX_ATTEMPTS the delivery becomes a rejected dead letter with its last error,
    never a message re-queued for ever. A lost database connection costs no attempt.
    """
    attempt = _delivery_attempt_begin(delivery_id)
    if attempt is None:
        return None
    return _delivery_process_attempted(delivery_id, attempt)


def _delivery_process_attempted(delivery_id: int, attempt: int) -> Delivery | None:
    """``delivery_process`` once its attempt is counted."""
    if attempt > settings.INGEST_MAX_ATTEMPTS:
        # The earlier attempts ended without recording an outcome: the worker died in them.
        return _delivery_attempt_failed(
            delivery_id, attempt - 1, "the worker stopped while processing it (killed, or over its time limit)"
        )
    try:
        return _delivery_process(delivery_id)
    except TRANSIENT_DB_ERRORS:
        with contextlib.suppress(DatabaseError):  # the database may be the thing that is down
            Delivery.objects.filter(pk=delivery_id, attempts=attempt).update(attempts=F("attempts") - 1)
        raise
    except Exception as exc:  # a crash must count towards the dead letter, not loop
        logger.exception("processing delivery %s failed (attempt %s)", delivery_id, attempt)
        return _delivery_attempt_failed(delivery_id, attempt, f"{type(exc).__name__}: {str(exc)[:2000]}")


def _delivery_attempt_begin(delivery_id: int) -> int | None:
    """Count one more attempt at a pending delivery, committed at once; its number, or None when not pending."""
    with transaction.atomic():
        # A delivery locked by another worker (a micro-batch that took it with its own message)
        # is being processed: this message has nothing to do. Should that worker fail, the
        # sweeper queues the delivery again once it is stale.
        free = (
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(pk=delivery_id, status=Delivery.Status.PENDING)
            .values_list("pk", flat=True)
        )
        if not list(free):
            return None
        claimed = Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING).update(
            attempts=F("attempts") + 1
        )
        if not claimed:
            return None
        return Delivery.objects.filter(pk=delivery_id).values_list("attempts", flat=True).first()


def _delivery_attempt_failed(delivery_id: int, attempt: int, error: str) -> Delivery | None:
    """Record an attempt's error; the last allowed attempt makes the delivery a rejected dead letter."""
    now = timezone.now()
    give_up = attempt >= settings.INGEST_MAX_ATTEMPTS
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update()
            .select_related("feed")
            .filter(pk=delivery_id, status=Delivery.Status.PENDING)
            .first()
        )
        if delivery is None:
            return None
        first_time = delivery.processed_at is None
        delivery.attempts = attempt
        if give_up:
            delivery.status = Delivery.Status.REJECTED
            delivery.error = f"gave up after {attempt} attempts; the last one failed: {error}"[:5000]
            delivery.processed_at = now
            delivery.save(update_fields=["status", "error", "attempts", "processed_at"])
            Feed.objects.filter(pk=delivery.feed_id).update(
                error_count=F("error_count") + 1,
                last_error=delivery.error[:2000],
                last_error_at=now,
                **(_feed_seen(delivery) if first_time else {}),
            )
        else:
            # Still pending: the sweeper queues it again once it is stale.
            delivery.error = f"attempt {attempt} of {settings.INGEST_MAX_ATTEMPTS} failed: {error}"[:5000]
            delivery.save(update_fields=["error", "attempts"])
    return delivery


def _delivery_process(delivery_id: int, batch: _Batch | None = None) -> Delivery | None:
    """One pending delivery parsed and upserted, in a transaction (a savepoint inside a batch's).

    With ``batch``, the writes other deliveries of the batch share (the feed's counters, the
    attacks' fold, summary scheduling) are left to ``batch.finish``, which takes their row
    locks once, in id order, at the end: two batches never hold them in opposite orders.
    """
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update()
            .select_related("feed")
            .filter(pk=delivery_id, status=Delivery.Status.PENDING)
            .first()
        )
        if delivery is None:
            return None
        feed = delivery.feed
        first_time = delivery.processed_at is None
        now = timezone.now()
        try:
            # A bulk file: count a malformed line instead of refusing its whole chunk.
            options = feed.parse_options(lenient=delivery.source == "import")
            parsed = parse_delivery(feed.format, bytes(delivery.body), options)
        except ParseError as exc:
            delivery.status = Delivery.Status.REJECTED
            delivery.error = str(exc)[:5000]
            delivery.processed_at = now
            delivery.refused = getattr(exc, "refused", [])
            delivery.save(update_fields=["status", "error", "processed_at", "refused"])
            failed = {"error_count": F("error_count") + 1, "last_error": delivery.error[:2000], "last_error_at": now}
            if batch is not None:
                batch.feed_updates.append((feed.pk, failed))
                if first_time:
                    batch.feed_seen(delivery)
                return delivery
            Feed.objects.filter(pk=feed.pk).update(**failed, **(_feed_seen(delivery) if first_time else {}))
            return delivery
        result = alerts_upsert(feed=feed, delivery=delivery, parsed=parsed.alerts, batch=batch)
        delivery.status = Delivery.Status.PROCESSED
        delivery.error = ""
        delivery.processed_at = now
        delivery.alerts_created = result.created
        delivery.alerts_updated = result.updated
        delivery.alerts_resolved = result.resolved
        delivery.skipped = {**parsed.skipped, **({STALE_SKIP: result.stale} if result.stale else {})}
        delivery.refused = parsed.refused
        delivery.save(
            update_fields=[
                "status",
                "error",
                "processed_at",
                "alerts_created",
                "alerts_updated",
                "alerts_resolved",
                "skipped",
                "refused",
            ]
        )
        if batch is not None:
            batch.attack_ids |= result.attack_ids
            if first_time:
                batch.feed_seen(delivery)
            return delivery
        if first_time:
            Feed.objects.filter(pk=feed.pk).update(**_feed_seen(delivery))
        for attack_id in result.attack_ids:
            transaction.on_commit(lambda attack_id=attack_id: attack_schedule_summary(attack_id=attack_id))
    return delivery


@dataclass
class _Batch:
    """What the deliveries of one micro-batch write together at its end (see ``deliveries_process_batch``)."""

    folds: dict[int, list[_Fold]] = field(default_factory=lambda: defaultdict(list))
    customers: dict[int, Customer] = field(default_factory=dict)
    baselines: dict[int, urgency.Baseline] = field(default_factory=dict)
    attack_ids: set[int] = field(default_factory=set)
    feed_updates: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    seen: dict[int, tuple[int, datetime]] = field(default_factory=dict)

    def feed_seen(self, delivery: Delivery) -> None:
        count, latest = self.seen.get(delivery.feed_id, (0, delivery.received_at))
        self.seen[delivery.feed_id] = (count + 1, max(latest, delivery.received_at))

    def finish(self) -> None:
        """The attacks' fold and the feeds' counters, locked in id order; summaries after commit."""
        _fold_into_attacks(self.folds, self.customers, self.baselines)
        for feed_id in sorted({feed_id for feed_id, _ in self.feed_updates} | set(self.seen)):
            changes: dict[str, Any] = {}
            for _feed_id, update in (u for u in self.feed_updates if u[0] == feed_id):
                Feed.objects.filter(pk=feed_id).update(**update)
            if feed_id in self.seen:
                count, latest = self.seen[feed_id]
                at = Value(latest, output_field=DateTimeField())
                changes = {
                    "delivery_count": F("delivery_count") + count,
                    "last_delivery_at": Greatest(Coalesce(F("last_delivery_at"), at), at),
                }
                Feed.objects.filter(pk=feed_id).update(**changes)
        for attack_id in sorted(self.attack_ids):
            transaction.on_commit(lambda attack_id=attack_id: attack_schedule_summary(attack_id=attack_id))


def deliveries_process_batch(*, delivery_id: int, limit: int | None = None, wait_ms: int | None = None) -> list[int]:
    """Process a pending delivery together with others waiting (a micro-batch), in one transaction.

    Single-alert senders (Alertmanager, PagerDuty-style) send one small delivery at a time: each
    alone costs a transaction, a commit and a lock round of its attacks and feed. The worker
    that takes one message also claims up to ``limit`` - 1 (INGEST_BATCH_MAX) other pending
    deliveries never tried, waiting up to ``wait_ms`` (INGEST_BATCH_WAIT_MS) while more keep
    arriving, and writes them all in one transaction; their own messages then find them done.

    Each claimed delivery's attempt is counted and committed first, as ``delivery_process``
    does. A delivery that fails in the batch (a bug, a poison body, a deadlock) must not take
    the others with it: the batch is rolled back and every delivery processed one by one,
    each with its own outcome; a delivery already tried before (a batch that crashed the
    worker) is never batched again. Returns the ids processed in the batch.
    """
    limit = settings.INGEST_BATCH_MAX if limit is None else limit
    wait_ms = settings.INGEST_BATCH_WAIT_MS if wait_ms is None else wait_ms
    attempt = _delivery_attempt_begin(delivery_id)
    if attempt is None:
        return []
    if attempt != 1 or limit <= 1:
        _delivery_process_attempted(delivery_id, attempt)
        return [delivery_id]
    others = _deliveries_claim(exclude=delivery_id, limit=limit - 1, wait_ms=wait_ms)
    ids = [delivery_id, *others]
    if not others:
        _delivery_process_attempted(delivery_id, attempt)
        return ids
    try:
        with transaction.atomic():
            # Taken before anything is written: a worker that took one of these meanwhile (its
            # own message, between the claim and here) keeps it, and this batch leaves it out.
            locked = set(
                Delivery.objects.select_for_update(skip_locked=True)
                .filter(pk__in=ids, status=Delivery.Status.PENDING)
                .values_list("pk", flat=True)
            )
            batch = _Batch()
            for pk in ids:
                if pk in locked:
                    _delivery_process(pk, batch)
            batch.finish()
    except Exception as exc:  # noqa: BLE001 - any failure: each delivery on its own, below
        if isinstance(exc, TRANSIENT_DB_ERRORS) and (connection.connection is None or not connection.is_usable()):
            with contextlib.suppress(DatabaseError):
                Delivery.objects.filter(pk__in=ids, attempts=1, status=Delivery.Status.PENDING).update(attempts=0)
            raise
        logger.warning("batch of %s deliveries failed (%s); processing them one by one", len(ids), exc)
        for pk in ids:
            _delivery_process_attempted(pk, 1)
        return []
    return [pk for pk in ids if pk in locked]


def _deliveries_claim(*, exclude: int, limit: int, wait_ms: int) -> list[int]:
    """Pending deliveries never tried, oldest first, with their attempt counted (committed)."""
    claimed: list[int] = []
    deadline = time.monotonic() + wait_ms / 1000
    while True:
        with transaction.atomic():
            found = list(
                Delivery.objects.select_for_update(skip_locked=True)
                .filter(status=Delivery.Status.PENDING, attempts=0)
                .exclude(pk__in=[exclude, *claimed])
                .order_by("received_at", "id")
                .values_list("pk", flat=True)[: limit - len(claimed)]
            )
            if found:
                Delivery.objects.filter(pk__in=found, attempts=0).update(attempts=1)
        claimed += found
        # Wait only while deliveries keep coming: a quiet queue is written at once.
        if len(claimed) >= limit or not found or time.monotonic() >= deadline:
            return claimed
        time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))


def _feed_seen(delivery: Delivery) -> dict[str, Any]:
    """Feed health counters for a delivery processed for the first time."""
    received = delivery.received_at
    return {
        "delivery_count": F("delivery_count") + 1,
        "last_delivery_at": Greatest(
            Coalesce(F("last_delivery_at"), Value(received, output_field=DateTimeField())),
            Value(received, output_field=DateTimeField()),
        ),
    }


def delivery_reprocess(*, delivery: Delivery) -> Delivery:
    """Put a rejected (or processed) delivery back in the queue, e.g. after a parser fix.

    A dead letter gets its attempts back: INGEST_MAX_ATTEMPTS more tries from now.
    """
    before = {"status": delivery.status, "error": delivery.error, "attempts": delivery.attempts}
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.PENDING, error="", attempts=0, refused=[], queued_at=timezone.now()
    )
    delivery.refresh_from_db()
    audit_record(
        action="delivery.reprocess",
        obj=delivery,
        before=before,
        after={"status": delivery.status, "attempts": delivery.attempts},
    )
    transaction.on_commit(lambda: _enqueue_processing(delivery.pk))
    return delivery


def customer_baselines(customer_ids: Iterable[int]) -> dict[int, urgency.Baseline]:
    """Each customer's usual attack peak: the median of their last 50 finished attacks (one query)."""
    wanted = set(customer_ids)
    if not wanted:
        return {}
    recent = (
        Attack.objects.filter(customer_id__in=wanted, ongoing=False)
        .annotate(recency=Window(RowNumber(), partition_by=F("customer_id"), order_by=F("last_seen").desc()))
        .filter(recency__lte=50)
        .values_list("customer_id", "peak_bps", "peak_pps", "peak_rps")
    )
    per_customer: dict[int, list[tuple]] = defaultdict(list)
    for customer_id, *peaks in recent:
        per_customer[customer_id].append(peaks)
    baselines: dict[int, urgency.Baseline] = {}
    for customer_id, rows in per_customer.items():
        columns = list(zip(*rows, strict=True))
        medians = [statistics.median([v for v in col if v]) if any(col) else None for col in columns]
        baselines[customer_id] = urgency.Baseline(*medians)
    return baselines


def _fold_repeats(
    parsed: Sequence[ParsedAlert], now: datetime
) -> tuple[list[tuple[ParsedAlert, int, datetime, datetime]], list]:
    """Repeats inside one delivery become one row with a count (an upsert touches a row once)."""
    opened: dict[str, list] = {}
    resolved: list[ParsedAlert] = []
    for alert in parsed:
        if alert.resolved:
            resolved.append(alert)
            continue
        at = alert.event_time or now
        entry = opened.get(alert.fingerprint)
        if entry is None:
            opened[alert.fingerprint] = [alert, 1, at, at]
        else:
            entry[1] += 1
            entry[2] = min(entry[2], at)
            # A flood's reflectors or a scan's many events: every source is kept, not the last one's.
            if alert.source_ips != entry[0].source_ips and len(entry[0].source_ips) < 100:
                merged = list(dict.fromkeys([*entry[0].source_ips, *alert.source_ips]))[:100]
                entry[0].source_ips = alert.source_ips = merged
            if at >= entry[3]:
                entry[3] = at
                # Keep the newest payload but the highest volumes seen.
                for metric in ("pps", "bps", "rps"):
                    old = getattr(entry[0], metric)
                    if old is not None and (getattr(alert, metric) or 0) < old:
                        setattr(alert, metric, old)
                entry[0] = alert
    return [tuple(v) for v in opened.values()], resolved


ALERT_COLUMNS = [
    "feed_id",
    "delivery_id",
    "customer_id",
    "asset_id",
    "attack_id",
    "external_id",
    "fingerprint",
    "title",
    "description",
    "layer",
    "vector",
    "severity",
    "target_ip",
    "target_port",
    "target_host",
    "zone",
    "pps",
    "bps",
    "rps",
    "packets",
    "bytes",
    "source_ips",
    "source_asns",
    "source_countries",
    "labels",
    "raw",
    "event_time",
    "first_seen",
    "last_seen",
    "ended_at",
    "count",
    "status",
    "outcome",
    "silence_id",
    "urgency",
    "urgency_reasons",
    "updated_at",
    "resolved_at",
    "direction_rule",
]
DATETIME_INDEXES = [
    ALERT_COLUMNS.index(c) for c in ("event_time", "first_seen", "last_seen", "ended_at", "updated_at", "resolved_at")
]
JSON_COLUMNS = {"source_ips", "source_asns", "source_countries", "labels", "raw", "urgency_reasons"}


def _upsert_sql(rows: int) -> str:
    """A multi-row INSERT ... VALUES upsert of ``rows`` rows (SQLite; other backends)."""
    postgres = connection.vendor == "postgresql"
    casts = {name: "::jsonb" for name in JSON_COLUMNS} if postgres else {}
    if postgres:
        casts["target_ip"] = "::inet"
    placeholder = "(" + ", ".join(f"%s{casts.get(c, '')}" for c in ALERT_COLUMNS) + ")"
    return (
        f"INSERT INTO alerts_alert ({', '.join(ALERT_COLUMNS)}) VALUES {', '.join([placeholder] * rows)} "
        + _on_conflict_sql(postgres)
    )


# A per-session temp table shaped like the alert rows the upsert writes (types, no constraints):
# COPY fills it, one INSERT ... SELECT moves it into alerts_alert. ON COMMIT DELETE ROWS truncates
# its storage at each commit (a temp table is never vacuumed: a DELETE alone would leave it
# growing for the connection's life); the upsert's DELETE ... RETURNING empties it between the
# deliveries of one transaction (a micro-batch).
STAGING_TABLE = "alerts_alert_staging"
_STAGING_CREATE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGING_TABLE} ON COMMIT DELETE ROWS AS "
    f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts_alert WITH NO DATA"
)
_STAGING_COPY = f"COPY {STAGING_TABLE} ({', '.join(ALERT_COLUMNS)}) FROM STDIN"


def _staged_upsert_sql() -> str:
    columns = ", ".join(ALERT_COLUMNS)
    # Sorted by fingerprint: concurrent deliveries lock the open rows they share in one order.
    return (
        f"WITH staged AS (DELETE FROM {STAGING_TABLE} RETURNING {columns}) "
        f"INSERT INTO alerts_alert ({columns}) SELECT {columns} FROM staged ORDER BY fingerprint "
        + _on_conflict_sql(True)
    )


def _write_alert_rows(rows: list[list[Any]]) -> list[tuple[int, int, str, int | None]]:
    """Upsert the rows on (feed, fingerprint) among open alerts; (id, count, fingerprint, attack_id) of each.

    PostgreSQL: one COPY of all rows into the session's staging table and one set-based
    INSERT ... SELECT ... ON CONFLICT, whatever the number of rows (the VALUES form spent more
    time building and parsing its parameters than the database spent writing). Other backends:
    multi-row INSERT ... VALUES in chunks the driver accepts.
    """
    from alerts.pgcopy import copy_line

    if not rows:
        return []
    returned: list[tuple[int, int, str, int | None]] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_STAGING_CREATE)
            payload = io.StringIO("".join([copy_line(row) for row in rows]))
            cursor.cursor.copy_expert(_STAGING_COPY, payload, size=1 << 20)
            cursor.execute(_staged_upsert_sql())
            return cursor.fetchall()
        chunk = 400
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            cursor.execute(_upsert_sql(len(part)), [value for row in part for value in row])
            returned += cursor.fetchall()
    return returned


def _on_conflict_sql(postgres: bool) -> str:
    """What a repeat of an open alert does to its row: the same on every backend and write path."""
    greatest = "GREATEST" if postgres else "MAX"

    def peak(column: str) -> str:
        return (
            f"{greatest}(COALESCE(alerts_alert.{column}, excluded.{column}), "
            f"COALESCE(excluded.{column}, alerts_alert.{column}))"
        )

    return (
        "ON CONFLICT (feed_id, fingerprint) WHERE resolved_at IS NULL DO UPDATE SET "
        "count = alerts_alert.count + excluded.count, "
        f"last_seen = {greatest}(alerts_alert.last_seen, excluded.last_seen), "
        f"pps = {peak('pps')}, bps = {peak('bps')}, rps = {peak('rps')}, "
        f"packets = {peak('packets')}, bytes = {peak('bytes')}, "
        f"urgency = {greatest}(alerts_alert.urgency, excluded.urgency), "
        "attack_id = COALESCE(alerts_alert.attack_id, excluded.attack_id), "
        "source_ips = excluded.source_ips, labels = excluded.labels, raw = excluded.raw, "
        "updated_at = excluded.updated_at "
        "RETURNING id, count, fingerprint, attack_id"
    )


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def alerts_upsert(
    *,
    feed: Feed,
    delivery: Delivery | None,
    parsed: Sequence[ParsedAlert],
    received_at: datetime | None = None,
    batch: _Batch | None = None,
) -> UpsertResult:
    """Bulk upsert parsed alerts on (feed, fingerprint), resolve ended ones, correlate attacks.

    ``received_at`` (default now) is when Shieldwall heard of them: first and last seen. With
    a micro-batch's ``batch``, the fold into the attacks is left to the batch's end.
    """
    result = UpsertResult()
    if not parsed:
        return result
    now = received_at or timezone.now()
    mapper = CustomerMapper.for_feed(feed)
    for alert in parsed:
        mapper.orient(alert)
    acknowledged = [p for p in parsed if p.acknowledged]
    if acknowledged:
        # The sender's acknowledge (PagerDuty): the open alert, if any, is acknowledged;
        # it never opens one of its own.
        result.updated += Alert.objects.filter(
            feed=feed,
            fingerprint__in=[p.fingerprint for p in acknowledged],
            resolved_at__isnull=True,
            status=Alert.Status.NEW,
        ).update(status=Alert.Status.ACKNOWLEDGED, acknowledged_at=now, updated_at=now)
        parsed = [p for p in parsed if not p.acknowledged]
        if not parsed:
            return result
    opened, resolved = _fold_repeats(parsed, now)
    opened, result.stale = _drop_older_than_end(feed, opened)
    mapped = {id(p): mapper.map(p) for p in parsed}
    customers = {c.pk: c for c in Customer.objects.filter(pk__in={m[0] for m in mapped.values() if m[0]})}
    baselines = customer_baselines(customers)
    silences = list(Silence.objects.active(now))
    slugs = {pk: c.slug for pk, c in customers.items()}

    rows: list[list[Any]] = []
    counts: dict[str, int] = {}
    groups: dict[str, tuple[int | None, str, datetime, datetime]] = {}
    for alert, count, first_at, _last_at in opened:
        customer_id, asset_id = mapped[id(alert)]
        customer = customers.get(customer_id) if customer_id else None
        ratio = urgency.magnitude_ratio(baselines.get(customer_id), bps=alert.bps, pps=alert.pps, rps=alert.rps)
        score, reasons = urgency.score(
            severity=alert.severity,
            plan=customer.plan if customer else None,
            ratio=ratio,
            has_volume=bool(alert.bps or alert.pps or alert.rps),
            ongoing=True,
            mitigated=False,
        )
        silence = _matching_silence(silences, alert, slugs.get(customer_id, ""), feed.slug)
        rows.append(
            [
                feed.pk,
                delivery.pk if delivery else None,
                customer_id,
                asset_id,
                None,  # attack_id, set below once the targets are correlated
                alert.external_id[:200],
                alert.fingerprint,
                alert.title[:500] or "(untitled alert)",
                alert.description,
                alert.layer,
                alert.vector[:64],
                alert.severity,
                alert.target_ip or None,
                alert.target_port,
                alert.target_host[:255],
                alert.zone[:255],
                alert.pps,
                alert.bps,
                alert.rps,
                alert.packets,
                alert.bytes,
                _json(alert.source_ips[:100]),
                _json(alert.source_asns[:100]),
                _json(alert.source_countries[:100]),
                _json(alert.labels),
                _json(alert.raw),
                first_at,
                now,
                now,
                alert.ended_at,
                count,
                Alert.Status.SUPPRESSED if silence else Alert.Status.NEW,
                "",
                silence.pk if silence else None,
                score,
                _json(reasons),
                now,
                None,
                alert.direction_rule[:300],
            ]
        )
        counts[alert.fingerprint] = count
        target = alert.target_ip or alert.target_host or alert.zone
        if target:
            groups[alert.fingerprint] = (customer_id, target, min(first_at, now), now)

    # Attacks first, so each row is written with its attack (an open row keeps the one it has).
    attack_of, created_attacks = _correlate(groups)
    attack_index = ALERT_COLUMNS.index("attack_id")
    fingerprint_index = ALERT_COLUMNS.index("fingerprint")
    # Datetimes as the backend stores them (SQLite keeps naive UTC text).
    adapt = connection.ops.adapt_datetimefield_value
    for row in rows:
        row[attack_index] = attack_of.get(row[fingerprint_index])
        for index in DATETIME_INDEXES:
            row[index] = adapt(row[index])
    first_of = {alert.fingerprint: (alert, first_at) for alert, _count, first_at, _last in opened}
    folds: dict[int, list[_Fold]] = defaultdict(list)
    for _alert_id, count, fingerprint, attack_id in _write_alert_rows(rows):
        created = count == counts[fingerprint]
        if created:
            result.created += 1
        else:
            result.updated += 1
        if attack_id is not None:
            # The attack the row really has (an open row keeps its own), not the one proposed.
            alert, first_at = first_of[fingerprint]
            folds[attack_id].append(_Fold(alert, created, min(first_at, now), now))
    result.attack_ids |= set(folds)

    result.resolved = _resolve_ended(feed, delivery, resolved, mapped, now)
    if resolved:
        result.attack_ids |= set(
            Alert.objects.filter(feed=feed, fingerprint__in=[r.fingerprint for r in resolved], attack__isnull=False)
            .values_list("attack_id", flat=True)
            .distinct()
        )
    # An attack made for rows that all kept an attack of their own holds nothing: not an attack.
    unused = [attack_id for attack_id in created_attacks if attack_id not in folds]
    if unused:
        Attack.objects.filter(pk__in=unused).delete()
    if batch is not None:
        for attack_id, more in folds.items():
            batch.folds[attack_id] += more
        batch.customers.update(customers)
        batch.baselines.update(baselines)
        return result
    # Last: the attacks' row locks, which deliveries of the same targets wait on, are held
    # only until the commit that follows.
    _fold_into_attacks(folds, customers, baselines)
    return result


@dataclass
class _Fold:
    """One upserted alert row as it counts towards its attack's summary."""

    alert: ParsedAlert
    created: bool
    first_at: datetime
    last_at: datetime


SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")
FOLDED_FIELDS = [
    "started_at",
    "last_seen",
    "ongoing",
    "ended_at",
    "alert_count",
    "peak_bps",
    "peak_pps",
    "peak_rps",
    "peak_at",
    "vectors",
    "layer",
    "severity",
    "title",
    "urgency",
    "urgency_reasons",
    "summary",
]


def _fold_into_attacks(
    folds: dict[int, list[_Fold]], customers: dict[int, Customer], baselines: dict[int, urgency.Baseline]
) -> None:
    """Fold this delivery's alerts into their attacks in the upsert's transaction (incremental).

    Span, counts, peaks, vectors, layer, severity, title and urgency are right the moment
    the alerts are committed, so an attack opened a second after its first alert (or a
    ticket escalated from it) reads them; the debounced ``attack_summarize`` only adds the
    costly parts (top sources) and corrects what cannot be folded (alerts resolved since).
    Rows are locked in id order, so concurrent deliveries of shared attacks never deadlock.
    """
    if not folds:
        return
    # FOR NO KEY UPDATE, as a plain UPDATE takes: FOR UPDATE would also block the foreign-key
    # checks (KEY SHARE) other deliveries run at COMMIT for alerts of these attacks, and
    # deadlock with them over the feed row each delivery updates last.
    attacks = list(Attack.objects.select_for_update(no_key=True).filter(pk__in=folds).order_by("pk"))
    missing = {a.customer_id for a in attacks if a.customer_id and a.customer_id not in customers}
    if missing:
        customers = {**customers, **{c.pk: c for c in Customer.objects.filter(pk__in=missing)}}
    for attack in attacks:
        attack_fold(
            attack,
            folds[attack.pk],
            plan=customers[attack.customer_id].plan if attack.customer_id in customers else None,
            baseline=baselines.get(attack.customer_id) if attack.customer_id else None,
        )
    _write_folded(attacks)


def _write_folded(attacks: list[Attack]) -> None:
    """One UPDATE ... FROM (VALUES ...) per chunk on PostgreSQL.

    ``bulk_update`` writes a CASE per column and row: for 100 attacks of a 500-alert delivery
    that compiled and ran ~1,600 CASE branches, which more than doubled the worker's CPU in
    bench/ingest.py. Other backends keep ``bulk_update``.
    """
    if connection.vendor != "postgresql":
        Attack.objects.bulk_update(attacks, FOLDED_FIELDS, batch_size=CORRELATE_CHUNK)
        return
    fields = [Attack._meta.get_field(name) for name in FOLDED_FIELDS]
    row = "(%s::bigint, " + ", ".join(f"%s::{f.cast_db_type(connection)}" for f in fields) + ")"
    columns = ", ".join(f.column for f in fields)
    assignments = ", ".join(f"{f.column} = v.{f.column}" for f in fields)
    with connection.cursor() as cursor:
        for index in range(0, len(attacks), CORRELATE_CHUNK):
            part = attacks[index : index + CORRELATE_CHUNK]
            params: list[Any] = []
            for attack in part:
                params.append(attack.pk)
                params += [f.get_db_prep_save(getattr(attack, f.attname), connection) for f in fields]
            cursor.execute(
                f"UPDATE {Attack._meta.db_table} AS a SET {assignments} "
                f"FROM (VALUES {', '.join([row] * len(part))}) AS v(id, {columns}) WHERE a.id = v.id",
                params,
            )


def attack_fold(attack: Attack, folds: Sequence[_Fold], *, plan: str | None, baseline: urgency.Baseline | None) -> None:
    """Add upserted alert rows to an attack's summary, in memory (the caller saves)."""
    fresh = attack.alert_count == 0
    attack.started_at = min([attack.started_at, *(f.first_at for f in folds)])
    last = max(f.last_at for f in folds)
    attack.last_seen = max(attack.last_seen, last)
    attack.ongoing, attack.ended_at = True, None
    attack.alert_count += sum(1 for f in folds if f.created)
    raised = False
    for metric in ("bps", "pps", "rps"):
        current = getattr(attack, f"peak_{metric}")
        for fold in folds:
            value = getattr(fold.alert, metric)
            if value is not None and (current is None or value > current):
                current, raised = value, True
        setattr(attack, f"peak_{metric}", current)
    if raised:
        attack.peak_at = last
    summary = dict(attack.summary or {})
    summary.pop("ended", None)
    counts = {v["vector"]: v["alerts"] for v in summary.get("vectors", [])}
    for vector in attack.vectors or []:
        counts.setdefault(vector, 0)
    for fold in folds:
        vector = fold.alert.vector[:64]
        counts[vector] = counts.get(vector, 0) + (1 if fold.created else 0)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    summary["vectors"] = [{"vector": v, "alerts": n} for v, n in ranked]
    summary["open_alerts"] = summary.get("open_alerts", 0) + sum(1 for f in folds if f.created)
    attack.summary = summary
    attack.vectors = [v for v, _n in ranked]
    layers = {f.alert.layer for f in folds} | ({attack.layer} if attack.layer and not fresh else set())
    attack.layer = "L7" if "L7" in layers else ("L4" if "L4" in layers else min(layers, default=""))
    severities = {f.alert.severity for f in folds} | (set() if fresh else {attack.severity})
    attack.severity = next((s for s in SEVERITY_ORDER if s in severities), attack.severity)
    names = " + ".join(vector_title(v) for v in attack.vectors[:3])
    attack.title = f"{names} on {attack.target}"[:300]
    attack.urgency, attack.urgency_reasons = urgency.score(
        severity=attack.severity,
        plan=plan,
        ratio=urgency.magnitude_ratio(baseline, bps=attack.peak_bps, pps=attack.peak_pps, rps=attack.peak_rps),
        has_volume=bool(attack.peak_bps or attack.peak_pps or attack.peak_rps),
        ongoing=True,
        mitigated=attack.mitigated,
    )


def _drop_older_than_end(feed: Feed, opened: list[tuple]) -> tuple[list[tuple], int]:
    """Events no newer than the sender's end of their alert never reopen it.

    Reprocessing an old delivery, or a late one arriving after the END, would otherwise
    open the alert again; the sender's own times decide the order, not arrival.
    """
    if not opened:
        return opened, 0
    fingerprints = [entry[0].fingerprint for entry in opened]
    ends: dict[str, datetime] = {}
    for index in range(0, len(fingerprints), 500):
        ends.update(
            Alert.objects.filter(
                feed=feed,
                fingerprint__in=fingerprints[index : index + 500],
                resolved_at__isnull=False,
                ended_at__isnull=False,
            )
            .order_by()
            .values("fingerprint")
            .annotate(end=Max("ended_at"))
            .values_list("fingerprint", "end")
        )
    if not ends:
        return opened, 0
    kept = [entry for entry in opened if entry[0].fingerprint not in ends or entry[3] > ends[entry[0].fingerprint]]
    return kept, len(opened) - len(kept)


def _matching_silence(
    silences: list[Silence], alert: ParsedAlert, customer_slug: str, feed_slug: str
) -> Silence | None:
    if not silences:
        return None
    values = silence_values(alert, customer_slug=customer_slug, feed_slug=feed_slug)
    return next((s for s in silences if s.matches(values)), None)


def _resolve_ended(feed: Feed, delivery: Delivery | None, resolved: list[ParsedAlert], mapped, now) -> int:
    """END / resolved events close the open alert; an END never seen open is kept as resolved."""
    count = 0
    for alert in resolved:
        ended = alert.ended_at or alert.event_time or now
        # An END older than the open alert's start belongs to an earlier occurrence (reprocessed).
        updated = Alert.objects.filter(
            feed=feed, fingerprint=alert.fingerprint, resolved_at__isnull=True, event_time__lte=ended
        ).update(status=Alert.Status.RESOLVED, resolved_at=now, ended_at=ended, last_seen=now, updated_at=now)
        if not updated and alert.resolve_only and alert.target_ip:
            # An end that names only the address (FastNetMon's unban, with or without the
            # attack type): it closes the open alerts of that address from this feed.
            updated = Alert.objects.filter(
                feed=feed, target_ip=alert.target_ip, resolved_at__isnull=True, event_time__lte=ended
            ).update(status=Alert.Status.RESOLVED, resolved_at=now, ended_at=ended, last_seen=now, updated_at=now)
        if updated:
            count += updated
            continue
        if alert.resolve_only or Alert.objects.filter(feed=feed, fingerprint=alert.fingerprint).exists():
            # A repeated END of an alert already closed, or an end of nothing we saw open:
            # never a phantom resolved alert.
            continue
        customer_id, asset_id = mapped[id(alert)]
        Alert.objects.create(
            feed=feed,
            delivery=delivery,
            customer_id=customer_id,
            asset_id=asset_id,
            external_id=alert.external_id[:200],
            fingerprint=alert.fingerprint,
            title=alert.title[:500] or "(untitled alert)",
            description=alert.description,
            layer=alert.layer,
            vector=alert.vector[:64],
            severity=alert.severity,
            target_ip=alert.target_ip or None,
            target_port=alert.target_port,
            target_host=alert.target_host[:255],
            zone=alert.zone[:255],
            pps=alert.pps,
            bps=alert.bps,
            rps=alert.rps,
            packets=alert.packets,
            bytes=alert.bytes,
            source_ips=alert.source_ips[:100],
            labels=alert.labels,
            raw=alert.raw,
            event_time=alert.event_time or now,
            first_seen=now,
            last_seen=now,
            ended_at=ended,
            status=Alert.Status.RESOLVED,
            resolved_at=now,
            updated_at=now,
            direction_rule=alert.direction_rule[:300],
        )
        count += 1
    return count


def _correlate(
    groups: dict[str, tuple[int | None, str, datetime, datetime]],
) -> tuple[dict[str, int], list[int]]:
    """Alerts of one customer and target within ATTACK_GAP of each other form one attack.

    Returns the attack of each fingerprint, which the upsert writes into the alert row (an
    open row that already has an attack keeps it), and the ids of the attacks it created;
    ``_fold_into_attacks`` extends and summarises them. A fixed number of statements whatever the
    number of targets: one SELECT finds the latest attack of each (customer, target) and
    one INSERT creates the missing ones.
    """
    by_target: dict[tuple[int | None, str], list[tuple[str, datetime, datetime]]] = defaultdict(list)
    for fingerprint, (customer_id, target, first_at, last_at) in groups.items():
        by_target[(customer_id, target)].append((fingerprint, first_at, last_at))
    spans = {
        key: (min(m[1] for m in members), max(m[2] for m in members), [m[0] for m in members])
        for key, members in by_target.items()
    }
    keys = list(spans)
    latest: dict[tuple[int | None, str], int] = {}
    adapt = connection.ops.adapt_datetimefield_value
    # Plain SQL: the ORM takes longer to compile a hundred such conditions than the database to run them.
    with connection.cursor() as cursor:
        for index in range(0, len(keys), CORRELATE_CHUNK):
            conditions, params = [], []
            for customer_id, target in keys[index : index + CORRELATE_CHUNK]:
                start = spans[(customer_id, target)][0]
                if customer_id is None:
                    conditions.append("(customer_id IS NULL AND target = %s AND last_seen >= %s)")
                    params += [target, adapt(start - ATTACK_GAP)]
                else:
                    conditions.append("(customer_id = %s AND target = %s AND last_seen >= %s)")
                    params += [customer_id, target, adapt(start - ATTACK_GAP)]
            cursor.execute(
                f"SELECT id, customer_id, target FROM {Attack._meta.db_table} WHERE {' OR '.join(conditions)} "
                "ORDER BY last_seen DESC, id DESC",
                params,
            )
            for attack_id, customer_id, target in cursor.fetchall():
                latest.setdefault((customer_id, target), attack_id)
    created = [
        Attack(customer_id=customer_id, target=target, started_at=start, last_seen=end, ongoing=True)
        for (customer_id, target), (start, end, _ids) in spans.items()
        if (customer_id, target) not in latest
    ]
    if connection.features.can_return_rows_from_bulk_insert:
        Attack.objects.bulk_create(created)
    else:
        for attack in created:
            attack.save()
    for attack in created:
        latest[(attack.customer_id, attack.target)] = attack.pk
    attack_of = {fingerprint: latest[key] for key, (_start, _end, members) in spans.items() for fingerprint in members}
    return attack_of, [attack.pk for attack in created]


# --------------------------------------------------------------------------- attacks


def attack_schedule_summary(*, attack_id: int, delay: int = 15) -> None:
    """Debounced: many deliveries within a few seconds cause one recomputation.

    An attack under a 100-target flood gets alerts every second; its summary (peaks,
    vectors, urgency) is rebuilt at most every 15 s, which kept the worker free for ingest.
    """
    from alerts.tasks import summarize_attack

    if settings.CELERY_TASK_ALWAYS_EAGER:
        summarize_attack.delay(attack_id)
        return
    key = f"attack-summary:{attack_id}"
    try:
        if cache.add(key, 1, delay):
            summarize_attack.apply_async((attack_id,), countdown=delay)
    except Exception:  # Redis down: the next delivery of the attack schedules it
        logger.warning("summary of attack %s not scheduled: cache or broker unavailable", attack_id)
        with contextlib.suppress(Exception):
            cache.delete(key)  # not left claimed by a summary that was never queued


# One vocabulary for vectors on every page, mail and report.
vector_title = units.vector_title


def attack_summarize(*, attack_id: int, now: datetime | None = None) -> Attack | None:
    """Recompute an attack from its alerts: span, vectors, peaks, severity, urgency.

    Locked like the upsert's fold, so a delivery committed meanwhile is not overwritten
    with older aggregates.
    """
    with transaction.atomic():
        attack = (
            Attack.objects.select_for_update(of=("self",), no_key=True)
            .filter(pk=attack_id)
            .select_related("customer")
            .first()
        )
        if attack is None:
            return None
        return _attack_summarize_locked(attack, now or timezone.now())


def _attack_summarize_locked(attack: Attack, now: datetime) -> Attack:
    alerts = Alert.objects.filter(attack=attack)
    agg = alerts.aggregate(
        n=Count("id"),
        start=Min("event_time"),
        last=Max("last_seen"),
        bps=Max("bps"),
        pps=Max("pps"),
        rps=Max("rps"),
        open=Count("id", filter=Q(resolved_at__isnull=True)),
        ended=Max("ended_at"),
    )
    if not agg["n"]:
        return attack
    vector_counts = list(alerts.values("vector").annotate(n=Count("id")).order_by("-n", "vector"))
    vectors = [v["vector"] for v in vector_counts]
    layers = list(alerts.values_list("layer", flat=True).distinct())
    severities = set(alerts.values_list("severity", flat=True).distinct())
    severity = next((s for s in ("critical", "high", "medium", "low", "info") if s in severities), "medium")
    peak_row = (
        alerts.exclude(bps__isnull=True, pps__isnull=True, rps__isnull=True)
        .order_by(F("bps").desc(nulls_last=True), F("pps").desc(nulls_last=True), F("rps").desc(nulls_last=True))
        .first()
    )
    attack.alert_count = agg["n"]
    attack.started_at = min(agg["start"], attack.started_at) if agg["start"] else attack.started_at
    attack.last_seen = max(agg["last"], attack.last_seen)
    attack.peak_bps, attack.peak_pps, attack.peak_rps = agg["bps"], agg["pps"], agg["rps"]
    attack.peak_at = peak_row.last_seen if peak_row else None
    attack.vectors = vectors
    attack.layer = "L7" if "L7" in layers else ("L4" if "L4" in layers else (layers[0] if layers else ""))
    attack.severity = severity
    # Over when every alert is resolved or quiet past the gap (a sender that never ends
    # its alerts and has no auto-resolve still cannot keep an attack going for ever).
    quiet = attack.last_seen < now - ATTACK_GAP
    attack.ongoing = agg["open"] > 0 and not quiet
    attack.ended_at = None if attack.ongoing else (agg["ended"] or attack.last_seen)
    if agg["open"] and not attack.ongoing:
        attack.ended_at = attack.last_seen
    names = " + ".join(vector_title(v) for v in vectors[:3])
    attack.title = f"{names} on {attack.target}"[:300]
    ratio = urgency.magnitude_ratio(
        customer_baselines([attack.customer_id]).get(attack.customer_id) if attack.customer_id else None,
        bps=attack.peak_bps,
        pps=attack.peak_pps,
        rps=attack.peak_rps,
    )
    attack.urgency, attack.urgency_reasons = urgency.score(
        severity=severity,
        plan=attack.customer.plan if attack.customer else None,
        ratio=ratio,
        has_volume=bool(attack.peak_bps or attack.peak_pps or attack.peak_rps),
        ongoing=attack.ongoing,
        mitigated=attack.mitigated,
    )
    attack.summary = {
        "vectors": [{"vector": v["vector"], "alerts": v["n"]} for v in vector_counts],
        "sources": _top_sources(alerts),
        "open_alerts": agg["open"],
    }
    if not attack.ongoing:
        gap = int(ATTACK_GAP.total_seconds() // 60)
        reason = "all its alerts resolved" if not agg["open"] else f"no alert for {gap} minutes"
        attack.summary["ended"] = {"at": attack.ended_at.isoformat(), "reason": reason}
    attack.summarized_at = timezone.now()
    attack.save()
    return attack


def _top_sources(alerts) -> list[dict[str, Any]]:
    counter: dict[str, int] = defaultdict(int)
    for ips in alerts.values_list("source_ips", flat=True)[:2000]:
        for ip in ips or []:
            counter[ip] += 1
    return [{"ip": ip, "alerts": n} for ip, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:10]]


def attacks_close_quiet(*, now: datetime | None = None) -> int:
    """Beat: attacks whose alerts are all resolved, or quiet past ATTACK_GAP, are over.

    Each is summarised afresh, which records when it ended and why; idempotent.
    """
    now = now or timezone.now()
    open_alerts = Alert.objects.filter(attack=OuterRef("pk"), resolved_at__isnull=True)
    over = Attack.objects.filter(ongoing=True).filter(Q(last_seen__lt=now - ATTACK_GAP) | ~Exists(open_alerts))
    closed = 0
    for attack_id in list(over.values_list("pk", flat=True)[:1000]):
        attack = attack_summarize(attack_id=attack_id, now=now)
        if attack is not None and not attack.ongoing:
            closed += 1
    return closed


def alerts_auto_resolve(*, now: datetime | None = None) -> int:
    """Beat: open alerts of a feed with auto-resolve that have not repeated for its period are resolved.

    Their end is when they were last seen; their attacks are summarised again (and end
    when nothing of them is left open). Idempotent: a resolved alert is never touched again.
    """
    now = now or timezone.now()
    resolved = 0
    attack_ids: set[int] = set()
    for feed in Feed.objects.all():
        after = feed.auto_resolve_after()
        if after is None:
            continue
        quiet = Alert.objects.filter(feed=feed, resolved_at__isnull=True, last_seen__lte=now - after)
        label = ENDED_BY_SENDER_LABEL.get(feed.format)
        if feed.auto_resolve_minutes is None and label:
            quiet = quiet.exclude(labels__has_key=label)
        rows = list(quiet.order_by().values_list("pk", "attack_id")[:5000])
        if not rows:
            continue
        done = Alert.objects.filter(pk__in=[pk for pk, _a in rows], resolved_at__isnull=True).update(
            status=Alert.Status.RESOLVED,
            resolved_at=now,
            ended_at=Coalesce(F("ended_at"), F("last_seen")),
            updated_at=now,
        )
        attack_ids |= {attack_id for _pk, attack_id in rows if attack_id}
        resolved += done
        audit_record(
            action="alert.auto_resolve",
            obj=feed,
            after={"alerts": done, "minutes_without_repeat": int(after.total_seconds() // 60)},
        )
    for attack_id in sorted(attack_ids):
        attack_summarize(attack_id=attack_id, now=now)
    return resolved


# --------------------------------------------------------------------------- triage


def _transition(alerts: Iterable[Alert], status: str, action: str, user, **changes: Any) -> int:
    done = 0
    now = timezone.now()
    for alert in alerts:
        if alert.status == status and not changes:
            continue
        if alert.status != status and not alert.can_become(status):
            continue
        before = snapshot(alert, ["status", "outcome", "assignee_id", "resolved_at"])
        # Conditional update: a concurrent change of the same alert wins, we skip.
        fields = {"status": status, "updated_at": now, **changes}
        claimed = Alert.objects.filter(pk=alert.pk, status=alert.status).update(**fields)
        if not claimed:
            continue
        for key, value in fields.items():
            setattr(alert, key, value)
        audit_record(action=action, obj=alert, before=before, after=snapshot(alert, before.keys()), actor=user)
        done += 1
    return done


def alerts_acknowledge(*, alerts: Iterable[Alert], user) -> int:
    """The engineer has seen these alerts and is on them."""
    return _transition(
        [a for a in alerts if a.status == Alert.Status.NEW],
        Alert.Status.ACKNOWLEDGED,
        "alert.acknowledge",
        user,
        acknowledged_at=timezone.now(),
        assignee=user,
    )


def alerts_assign(*, alerts: Iterable[Alert], assignee, user) -> int:
    done = 0
    for alert in alerts:
        before = snapshot(alert, ["assignee_id"])
        Alert.objects.filter(pk=alert.pk).update(assignee=assignee, updated_at=timezone.now())
        alert.assignee = assignee
        audit_record(
            action="alert.assign", obj=alert, before=before, after=snapshot(alert, ["assignee_id"]), actor=user
        )
        done += 1
    return done


def alerts_resolve(*, alerts: Iterable[Alert], outcome: str, user) -> int:
    if outcome not in Alert.Outcome.values:
        raise ValueError(f"unknown outcome {outcome!r}")
    attack_ids = {a.attack_id for a in alerts if a.attack_id}
    done = _transition(
        alerts, Alert.Status.RESOLVED, "alert.resolve", user, outcome=outcome, resolved_at=timezone.now()
    )
    for attack_id in attack_ids:
        transaction.on_commit(lambda attack_id=attack_id: attack_schedule_summary(attack_id=attack_id))
    return done


def alerts_mark_escalated(*, alerts: Iterable[Alert], user) -> int:
    """Called by the tickets app when alerts are handed to a ticket."""
    return _transition(alerts, Alert.Status.ESCALATED, "alert.escalate", user)


def silence_matchers_for(alerts: Sequence[Alert]) -> list[dict[str, str]]:
    """Matchers for 'silence similar': what all the selected alerts share."""
    if not alerts:
        return []
    shared = None
    for alert in alerts:
        values = silence_values(alert)
        values = {k: v for k, v in values.items() if k in ("customer", "feed", "vector", "target") and v}
        shared = values if shared is None else {k: v for k, v in shared.items() if values.get(k) == v}
    return [{"field": k, "op": "=", "value": v} for k, v in (shared or {}).items()]


LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
# Values a matcher is tried on to tell whether it restricts anything: a regex matching all
# of them (".*", ".+", "[\s\S]*") accepts any text.
CATCH_ALL_PROBES = ("x", "0", "203.0.113.1", "shieldwall probe ~ value")
# Fields every alert has a value for: any-text there is every alert (customer=~.+ is not:
# it leaves the unassigned ones).
ALWAYS_SET = {"feed", "alertname", "vector", "severity", "layer", "title"}


def _matches_everything(matcher: dict[str, str]) -> bool:
    """The matcher holds for an alert that lacks the field, or for any value the field can take.

    Alertmanager refuses a silence whose every matcher matches the empty string; values from
    a fixed vocabulary (severity, layer) and any-text regexes are refused the same way here.
    """
    if matcher_holds(matcher, ""):
        return True
    choices = Silence.CHOICES.get(matcher["field"])
    if choices and all(matcher_holds(matcher, choice) for choice in choices):
        return True
    return (
        matcher["op"] == "=~"
        and matcher["field"] in ALWAYS_SET
        and all(matcher_holds(matcher, probe) for probe in CATCH_ALL_PROBES)
    )


def silence_validate(matchers: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Clean matchers, or ValueError with a reason an engineer can act on.

    A field is one of ``Silence.FIELDS``, ``label:<name>`` or a bare label name; at least
    one matcher must restrict what is silenced (``severity=~.*`` alone would silence every alert).
    """
    if not matchers:
        raise ValueError("a silence needs at least one matcher")
    clean = []
    for m in matchers:
        if not isinstance(m, dict):
            raise ValueError("a matcher is an object with field, op and value")
        field_name, op, value = str(m.get("field", "")).strip(), str(m.get("op", "=")), str(m.get("value", ""))
        label = field_name.removeprefix("label:")
        if field_name not in Silence.FIELDS and not LABEL_NAME.fullmatch(label):
            raise ValueError(
                f"unknown matcher field {field_name!r}: a field ({', '.join(Silence.FIELDS)}) or a label name"
            )
        if op not in Silence.OPERATORS:
            raise ValueError(f"unknown matcher operator {op!r}")
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"bad regular expression {value!r}: {exc}") from exc
        clean.append({"field": field_name, "op": op, "value": value})
    if all(_matches_everything(m) for m in clean):
        shown = ", ".join(f"{m['field']}{m['op']}{m['value']}" for m in clean)
        raise ValueError(
            f"refused: {shown} would silence every alert (each matcher also holds for an alert without that "
            "field or with any value). Add a matcher that names what to silence, e.g. vector=udp_flood."
        )
    return clean


def silence_preview(*, matchers: list[dict[str, Any]], limit: int = 50) -> tuple[int, list[Alert]]:
    """The open alerts a silence would match, before it is saved."""
    probe = Silence(matchers=silence_validate(matchers), ends_at=timezone.now())
    candidates = Alert.objects.open().select_related("customer", "feed").order_by("-last_seen")[:5000]
    matched = [a for a in candidates if probe.matches(a)]
    return len(matched), matched[:limit]


def silence_create(*, matchers, starts_at, ends_at, comment: str, user) -> Silence:
    """Save a silence and take the open alerts it matches out of the queue."""
    if not comment.strip():
        raise ValueError("a silence needs a comment saying why")
    if ends_at <= starts_at:
        raise ValueError("a silence must end after it starts")
    silence = Silence.objects.create(
        matchers=silence_validate(matchers), starts_at=starts_at, ends_at=ends_at, comment=comment, created_by=user
    )
    audit_record(action="silence.create", obj=silence, after=snapshot(silence), actor=user)
    if silence.is_active():
        _, matched = silence_preview(matchers=silence.matchers, limit=5000)
        ids = [a.pk for a in matched if a.status in (Alert.Status.NEW, Alert.Status.ACKNOWLEDGED)]
        Alert.objects.filter(pk__in=ids).update(
            status=Alert.Status.SUPPRESSED, silence=silence, updated_at=timezone.now()
        )
    return silence


def silence_expire(*, silence: Silence, user) -> Silence:
    before = snapshot(silence, ["expired_by_hand_at"])
    silence.expired_by_hand_at = timezone.now()
    silence.save(update_fields=["expired_by_hand_at"])
    audit_record(
        action="silence.expire", obj=silence, before=before, after=snapshot(silence, before.keys()), actor=user
    )
    silences_release_expired()
    return silence


def silences_release_expired() -> int:
    """Open alerts held by a silence that has ended go back to the queue (as Alertmanager does)."""
    expired = Silence.objects.expired()
    return Alert.objects.filter(status=Alert.Status.SUPPRESSED, silence__in=expired, resolved_at__isnull=True).update(
        status=Alert.Status.NEW, updated_at=timezone.now()
    )


def deliveries_requeue_stale(*, older_than_seconds: int | None = None, batch: int | None = None) -> int:
    """Beat's sweeper: a delivery pending INGEST_STALE_SECONDS after its last message lost it; enqueue it again.

    Each stale delivery is claimed by moving its ``queued_at`` forward in one conditional
    UPDATE (compare-and-set on "still pending and still stale"), and only the deliveries
    that this pass claimed are published: a second pass, or a sweeper running at the same
    time, finds them fresh and leaves them alone until they are stale again. At most
    ``batch`` (INGEST_SWEEP_BATCH) a pass, oldest first, so a backlog drains over several
    passes instead of flooding the broker.
    """
    if older_than_seconds is None:
        older_than_seconds = settings.INGEST_STALE_SECONDS
    if batch is None:
        batch = settings.INGEST_SWEEP_BATCH
    stale = Delivery.objects.stale_pending(older_than_seconds)
    candidates = list(stale.order_by("received_at", "id").values_list("pk", flat=True)[:batch])
    if not candidates:
        return 0
    # This pass's own mark: the rows that carry it afterwards are the ones it won.
    mark = timezone.now()
    while Delivery.objects.filter(queued_at=mark).exists():  # pragma: no cover - same microsecond
        mark += timedelta(microseconds=1)
    stale.filter(pk__in=candidates).update(queued_at=mark)
    won = Delivery.objects.filter(pk__in=candidates, queued_at=mark)
    claimed = list(won.order_by("received_at", "id").values_list("pk", flat=True))
    enqueued = 0
    for delivery_id in claimed:
        if not _enqueue_processing(delivery_id):
            # The broker is down again: what was not published is stale at once for the next pass.
            Delivery.objects.filter(pk__in=claimed[enqueued:], queued_at=mark).update(queued_at=None)
            break
        enqueued += 1
    return enqueued


def alerts_prune(*, now: datetime | None = None) -> dict[str, int]:
    """Retention: raw deliveries and resolved alerts older than the configured periods go.

    A delivery still pending or rejected is kept whatever its age: it is work not done
    or a dead letter someone must look at.
    """
    now = now or timezone.now()
    deliveries_cutoff = now - timedelta(days=settings.RETENTION_DELIVERY_DAYS)
    alerts_cutoff = now - timedelta(days=settings.RETENTION_RESOLVED_ALERT_DAYS)
    deliveries, _ = Delivery.objects.filter(
        status=Delivery.Status.PROCESSED, received_at__lt=deliveries_cutoff
    ).delete()
    alerts, _ = Alert.objects.filter(resolved_at__lt=alerts_cutoff).delete()
    # Delivery ids only matter while their signature's timestamp is still accepted.
    nonces, _ = DeliveryNonce.objects.filter(seen_at__lt=now - timedelta(seconds=NONCE_KEEP_S)).delete()
    return {"deliveries": deliveries, "alerts": alerts, "nonces": nonces}
