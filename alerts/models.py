"""Feeds, the inbox of raw deliveries, normalised alerts, attacks and silences."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from alerts.formats.labels import default_label_mapping
from alerts.querysets import AlertQuerySet, AttackQuerySet, DeliveryQuerySet, FeedQuerySet, SilenceQuerySet
from console.models import Asset, Customer

# Senders that never send an end event: their alerts end when they stop repeating.
AUTO_RESOLVE_DEFAULT_MINUTES = {"suricata": 30, "wazuh": 30, "crowdsec": 60, "cloudflare": 30}
# Where a format ends some of its alerts itself, the label that marks those: the default
# auto-resolve leaves them to their END (Cloudflare's START/END ``alert_event``; a type
# such as ``dos_attack_l7`` has none and is auto-resolved).
ENDED_BY_SENDER_LABEL = {"cloudflare": "alert_event"}


class Feed(models.Model):
    """A source of alerts: a webhook that senders push to, or a URL we poll."""

    class Format(models.TextChoices):
        CLOUDFLARE = "cloudflare", "Cloudflare notifications"
        ALERTMANAGER = "alertmanager", "Prometheus Alertmanager"
        SURICATA = "suricata", "Suricata EVE JSON"
        FASTNETMON = "fastnetmon", "FastNetMon"
        CROWDSEC = "crowdsec", "CrowdSec LAPI"
        WAZUH = "wazuh", "Wazuh"
        PAGERDUTY = "pagerduty", "PagerDuty Events API v2"
        GENERIC = "generic", "Generic JSON (field mapping)"

    class Mode(models.TextChoices):
        PUSH = "push", "Push (webhook)"
        PULL = "pull", "Pull (polled URL)"

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=80, unique=True)
    format = models.CharField(max_length=20, choices=Format.choices)
    enabled = models.BooleanField(default=True)
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.PUSH)
    customer = models.ForeignKey(
        Customer,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="feeds",
        help_text="Every alert of this feed belongs to this customer (leave empty to map by asset or label).",
    )
    customer_label = models.CharField(
        max_length=80, default="customer", blank=True, help_text="Label whose value is a customer slug."
    )
    options = models.JSONField(default=dict, blank=True, help_text="Parser options, e.g. the generic field mapping.")
    label_mapping = models.JSONField(
        default=default_label_mapping,
        blank=True,
        help_text=(
            "Alertmanager and generic feeds: for target_ip, target_host, target_port, customer, zone, vector, "
            "severity, bps, pps, rps, the label (or annotation) names to try in order; last_resort names "
            "(instance) are used for the target only when no other name gives one."
        ),
    )
    # The bearer token is stored hashed and shown once; the signing key (optional HMAC)
    # must be kept to verify signatures.
    secret_hash = models.CharField(max_length=64, editable=False)
    secret_hint = models.CharField(max_length=8, editable=False, blank=True)
    signing_key = models.CharField(max_length=128, blank=True, help_text="Require an HMAC-SHA256 body signature.")
    max_body_bytes = models.PositiveIntegerField(default=10 * 1024 * 1024)
    rate_limit_per_minute = models.PositiveIntegerField(default=6000)
    pull_url = models.URLField(blank=True)
    pull_interval = models.PositiveIntegerField(default=60, help_text="seconds between polls")
    last_pulled_at = models.DateTimeField(null=True, blank=True)
    auto_resolve_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Resolve an open alert after this many minutes without a repeat. Empty: the format's default "
        "(on for senders that never send an end event); 0: never.",
    )
    expected_interval_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Raise an alert of its own when the feed has sent nothing for this long (empty: never).",
    )
    silent_alerted_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_delivery_at = models.DateTimeField(null=True, blank=True)
    delivery_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = FeedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("feed-detail", args=[self.slug])

    def parse_options(self, *, lenient: bool = False) -> dict[str, Any]:
        """What the parser of this feed's format is given: its options and its label mapping."""
        options = dict(self.options or {})
        options["label_mapping"] = self.label_mapping
        options["max_json_depth"] = settings.INGEST_MAX_JSON_DEPTH
        if lenient:
            options["lenient"] = True
        return options

    def ingest_path(self) -> str:
        return reverse("ingest", args=[self.slug])

    def set_secret(self) -> str:
        """Make a new bearer token; only its hash is kept. Returns the token to show once."""
        token = secrets.token_urlsafe(32)
        self.secret_hash = hashlib.sha256(token.encode()).hexdigest()
        self.secret_hint = token[-4:]
        return token

    def check_secret(self, token: str) -> bool:
        if not token or not self.secret_hash:
            return False
        return hmac.compare_digest(hashlib.sha256(token.encode()).hexdigest(), self.secret_hash)

    def auto_resolve_after(self) -> timedelta | None:
        """How long an open alert of this feed may go without a repeat before it is resolved; None: never."""
        minutes = self.auto_resolve_minutes
        if minutes is None:
            minutes = AUTO_RESOLVE_DEFAULT_MINUTES.get(self.format)
        return timedelta(minutes=minutes) if minutes else None

    @property
    def auto_resolve_in_force_minutes(self) -> int | None:
        after = self.auto_resolve_after()
        return int(after.total_seconds() // 60) if after else None

    def health(self) -> str:
        if not self.enabled:
            return "disabled"
        if self.silent_alerted_at:
            return "silent"
        if self.last_error_at and (not self.last_delivery_at or self.last_error_at >= self.last_delivery_at):
            return "failing"
        if not self.last_delivery_at:
            return "waiting"
        return "ok"


class Delivery(models.Model):
    """One raw delivery, stored before any parsing: the inbox. Nothing accepted is ever lost."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSED = "processed", "Processed"
        REJECTED = "rejected", "Rejected"

    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="deliveries")
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    body = models.BinaryField()
    body_sha256 = models.CharField(max_length=64)
    headers = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=20, default="push")  # push, pull, import
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # The last error: why it was rejected, or why its last attempt failed while still pending.
    error = models.TextField(blank=True)
    # Attempts at processing it since it arrived or was last reprocessed: INGEST_MAX_ATTEMPTS
    # failed ones make it a rejected dead letter instead of a message re-queued for ever.
    attempts = models.PositiveIntegerField(default=0)
    # When a message to process it was last published (null: on arrival). The sweeper claims
    # a stale delivery by moving this forward, so it queues each one once per staleness.
    queued_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    alerts_created = models.PositiveIntegerField(default=0)
    alerts_updated = models.PositiveIntegerField(default=0)
    alerts_resolved = models.PositiveIntegerField(default=0)
    skipped = models.JSONField(default=dict, blank=True)
    # Records of the batch that were refused while the others were kept: [{"record", "reason"}].
    refused = models.JSONField(default=list, blank=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            # A sender's retry of the same bytes is the same delivery: a no-op.
            models.UniqueConstraint(fields=["feed", "body_sha256"], name="delivery_feed_body_unique"),
        ]
        indexes = [models.Index(fields=["status", "received_at"])]

    def __str__(self) -> str:
        return f"delivery {self.pk} of {self.feed_id}"

    @property
    def size(self) -> int:
        return len(self.body or b"")

    def body_text(self, limit: int = 200_000) -> str:
        return bytes(self.body[:limit]).decode("utf-8", "replace")


class DeliveryNonce(models.Model):
    """A signed delivery's id (``X-Shieldwall-Delivery``), seen once: the replay guard.

    Kept a little longer than the signature's time window (a timestamp outside it is refused
    anyway), then pruned. Written in the same transaction as the delivery, so a delivery that
    could not be stored leaves no nonce behind and the sender's retry is accepted.
    """

    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="nonces")
    nonce = models.CharField(max_length=128)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)
    delivery = models.ForeignKey(Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["feed", "nonce"], name="delivery_nonce_unique")]

    def __str__(self) -> str:
        return f"nonce {self.nonce} of feed {self.feed_id}"


class Layer(models.TextChoices):
    L3 = "L3", "L3 network"
    L4 = "L4", "L4 transport"
    L7 = "L7", "L7 application"


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"
    INFO = "info", "Info"


class Attack(models.Model):
    """Alerts of one customer and target that overlap in time: one attack to reason about."""

    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="attacks")
    target = models.CharField(max_length=255, help_text="the IP, hostname or zone under attack")
    title = models.CharField(max_length=300, blank=True)
    vectors = models.JSONField(default=list, blank=True)
    layer = models.CharField(max_length=2, choices=Layer.choices, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MEDIUM)
    started_at = models.DateTimeField(db_index=True)
    last_seen = models.DateTimeField(db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ongoing = models.BooleanField(default=True, db_index=True)
    peak_bps = models.FloatField(null=True, blank=True)
    peak_pps = models.FloatField(null=True, blank=True)
    peak_rps = models.FloatField(null=True, blank=True)
    peak_at = models.DateTimeField(null=True, blank=True)
    alert_count = models.PositiveIntegerField(default=0)
    mitigated = models.BooleanField(default=False)
    urgency = models.PositiveSmallIntegerField(default=0, db_index=True)
    urgency_reasons = models.JSONField(default=list, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    summarized_at = models.DateTimeField(null=True, blank=True)

    objects = AttackQuerySet.as_manager()

    customer_visible = True  # reports show attacks to their customer

    class Meta:
        ordering = ["-last_seen", "-id"]
        indexes = [models.Index(fields=["customer", "target", "last_seen"])]

    def __str__(self) -> str:
        return self.title or f"attack on {self.target}"

    def get_absolute_url(self) -> str:
        return reverse("attack-detail", args=[self.pk])

    @property
    def duration(self) -> timedelta:
        return (self.ended_at or self.last_seen) - self.started_at


class Alert(models.Model):
    """One normalised alert from any feed; repeats fold into it (count, last seen)."""

    class Status(models.TextChoices):
        NEW = "new", "New"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        ESCALATED = "escalated", "Escalated"
        RESOLVED = "resolved", "Resolved"
        SUPPRESSED = "suppressed", "Suppressed"

    class Outcome(models.TextChoices):
        UNDETERMINED = "", "Undetermined"
        TRUE_POSITIVE_IMPACT = "tp_impact", "True positive, with impact"
        TRUE_POSITIVE_NO_IMPACT = "tp_no_impact", "True positive, without impact"
        FALSE_POSITIVE = "false_positive", "False positive"
        BENIGN = "benign", "Benign"

    # Open states, and where each may go (resolution is always allowed).
    TRANSITIONS: dict[str, set[str]] = {
        Status.NEW: {Status.ACKNOWLEDGED, Status.ESCALATED, Status.RESOLVED, Status.SUPPRESSED},
        Status.ACKNOWLEDGED: {Status.ESCALATED, Status.RESOLVED, Status.SUPPRESSED},
        Status.ESCALATED: {Status.RESOLVED},
        Status.SUPPRESSED: {Status.NEW, Status.RESOLVED},
        Status.RESOLVED: {Status.NEW},
    }

    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="alerts")
    delivery = models.ForeignKey(Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    asset = models.ForeignKey(Asset, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    attack = models.ForeignKey(Attack, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    external_id = models.CharField(max_length=200, blank=True)
    fingerprint = models.CharField(max_length=64)
    title = models.CharField(max_length=500)
    description = models.TextField(blank=True)
    layer = models.CharField(max_length=2, choices=Layer.choices, default=Layer.L4)
    vector = models.CharField(max_length=64, default="unknown", db_index=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MEDIUM)
    target_ip = models.GenericIPAddressField(null=True, blank=True)
    target_port = models.PositiveIntegerField(null=True, blank=True)
    target_host = models.CharField(max_length=255, blank=True)
    zone = models.CharField(max_length=255, blank=True)
    pps = models.FloatField(null=True, blank=True)
    bps = models.FloatField(null=True, blank=True)
    rps = models.FloatField(null=True, blank=True)
    packets = models.BigIntegerField(null=True, blank=True)
    bytes = models.BigIntegerField(null=True, blank=True)
    source_ips = models.JSONField(default=list, blank=True)
    source_asns = models.JSONField(default=list, blank=True)
    source_countries = models.JSONField(default=list, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    direction_rule = models.CharField(
        max_length=300, blank=True, help_text="which rule decided the victim (target) and the attacker (sources)"
    )
    event_time = models.DateTimeField(help_text="when the feed says it happened")
    first_seen = models.DateTimeField(help_text="when Shieldwall first received it")
    last_seen = models.DateTimeField(db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True, help_text="end of the event, from the feed")
    count = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.NEW)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True, default="")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_alerts"
    )
    silence = models.ForeignKey(
        "Silence", null=True, blank=True, on_delete=models.SET_NULL, related_name="silenced_alerts"
    )
    urgency = models.PositiveSmallIntegerField(default=0)
    urgency_reasons = models.JSONField(default=list, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["-urgency", "-last_seen", "-id"]
        constraints = [
            # One open alert per feed and fingerprint: repeats update it (bulk upsert).
            models.UniqueConstraint(
                fields=["feed", "fingerprint"],
                condition=models.Q(resolved_at__isnull=True),
                name="alert_open_fingerprint_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-urgency", "-last_seen"], name="alert_queue_idx"),
            models.Index(fields=["customer", "-last_seen"], name="alert_customer_idx"),
            # The triage queue's first page: open alerts in urgency order, read straight off these
            # partial indexes (LIMIT 200) instead of sorting every open alert; its exact
            # "n in view" count, also by severity or layer (INCLUDE, PostgreSQL only), is an index-only
            # scan of the open alerts. The second serves the queue filtered to one customer.
            models.Index(
                fields=["-urgency", "-last_seen", "-id"],
                include=["severity", "layer"],
                condition=models.Q(status__in=["new", "acknowledged"]),
                name="alert_queue_open_idx",
            ),
            models.Index(
                fields=["customer", "-urgency", "-last_seen", "-id"],
                include=["severity", "layer"],
                condition=models.Q(status__in=["new", "acknowledged"]),
                name="alert_queue_customer_idx",
            ),
            # An attack's page lists its alerts by event time (up to 500 of them).
            models.Index(fields=["attack", "event_time"], name="alert_attack_time_idx"),
            # Ingest looks up the resolved alerts of a delivery's fingerprints (never reopen
            # an alert with an older event); open rows have the unique index above.
            models.Index(
                fields=["feed", "fingerprint"],
                condition=models.Q(resolved_at__isnull=False),
                name="alert_resolved_fingerprint_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("alert-detail", args=[self.pk])

    @property
    def target(self) -> str:
        if self.target_ip:
            return f"{self.target_ip}:{self.target_port}" if self.target_port else self.target_ip
        return self.target_host or self.zone

    def can_become(self, status: str) -> bool:
        return status in self.TRANSITIONS.get(self.status, set())


class Silence(models.Model):
    """Alertmanager-style silence: matching alerts are stored and counted, but leave the queue.

    A matcher names a field below or any label of the alert (``instance``, ``dst_ip``, or
    ``label:<name>``); a label the alert lacks compares as the empty string, as in
    Alertmanager. ``source_ip`` holds when any of the alert's source addresses does (and
    ``!=``/``!~`` when none does); ``alertname`` is the alertname label, else the title.
    """

    FIELDS = (
        "customer",
        "feed",
        "alertname",
        "vector",
        "target",
        "target_ip",
        "target_host",
        "zone",
        "source_ip",
        "severity",
        "layer",
        "title",
    )
    OPERATORS = ("=", "!=", "=~", "!~")
    # Fields whose every value is known: a matcher accepting all of them silences everything.
    CHOICES: dict[str, tuple[str, ...]] = {"severity": tuple(Severity.values), "layer": tuple(Layer.values)}

    matchers = models.JSONField(help_text='[{"field": "vector", "op": "=", "value": "udp_flood"}, ...]')
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    comment = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    expired_by_hand_at = models.DateTimeField(null=True, blank=True)

    objects = SilenceQuerySet.as_manager()

    class Meta:
        ordering = ["-starts_at", "-id"]

    def __str__(self) -> str:
        return ", ".join(f"{m['field']}{m['op']}{m['value']}" for m in self.matchers) or "silence"

    def is_active(self, at=None) -> bool:
        at = at or timezone.now()
        return self.starts_at <= at < self.ends_at and self.expired_by_hand_at is None

    def matches(self, alert: Alert | dict[str, Any]) -> bool:
        """All matchers hold for this alert (given as a row or as a dict of its match values)."""
        values = alert if isinstance(alert, dict) else silence_values(alert)
        return all(matcher_holds(m, matcher_value(values, m["field"])) for m in self.matchers)


def matcher_value(values: dict[str, Any], field_name: str) -> Any:
    """The value a matcher on ``field_name`` compares: a field, or else the label of that name."""
    if field_name in Silence.FIELDS or field_name.startswith("label:"):
        return values.get(field_name)
    return values.get(f"label:{field_name}")


def matcher_holds(matcher: dict[str, Any], actual: Any) -> bool:
    """One matcher against one value (a list holds for = and =~ when any item does)."""
    op, wanted = matcher["op"], str(matcher["value"])
    if isinstance(actual, list | tuple):
        base = "=" if op in ("=", "!=") else "=~"
        items = [str(a) for a in actual] or [""]
        found = any(matcher_holds({"op": base, "value": wanted}, item) for item in items)
        return found if op in ("=", "=~") else not found
    actual = "" if actual is None else str(actual)
    if op == "=":
        return actual == wanted
    if op == "!=":
        return actual != wanted
    # Anchored like Alertmanager's regex matchers.
    found = re.fullmatch(wanted, actual) is not None
    return found if op == "=~" else not found


def silence_values(alert: Any, *, customer_slug: str | None = None, feed_slug: str | None = None) -> dict[str, Any]:
    """What silence matchers compare: slugs and plain strings, labels as label:<name>.

    ``alert`` is a stored Alert or, during ingest, a ParsedAlert (same attribute names);
    the latter has no rows to follow, so its customer and feed slugs are passed in.
    """
    if customer_slug is None:
        customer_slug = alert.customer.slug if alert.customer_id and alert.customer else ""
    if feed_slug is None:
        feed_slug = alert.feed.slug if alert.feed_id else ""
    labels = alert.labels or {}
    values = {
        "customer": customer_slug,
        "feed": feed_slug,
        "alertname": labels.get("alertname") or alert.title,
        "vector": alert.vector,
        "target": alert.target_ip or alert.target_host or alert.zone,
        "target_ip": alert.target_ip or "",
        "target_host": alert.target_host,
        "zone": alert.zone,
        "source_ip": list(alert.source_ips or []),
        "severity": alert.severity,
        "layer": alert.layer,
        "title": alert.title,
    }
    for key, value in labels.items():
        values[f"label:{key}"] = value
    return values


class SavedView(models.Model):
    """A named set of queue filters an engineer comes back to ("enterprise L7, new")."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=80)
    query = models.CharField(max_length=1000)
    shared = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AlertImport(models.Model):
    """A file of alerts (JSON lines / EVE) being imported in chunks, with its progress."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="imports")
    path = models.CharField(max_length=500)
    filename = models.CharField(max_length=255)
    size = models.BigIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    deliveries = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"import of {self.filename}"

    @property
    def percent(self) -> int:
        return int(100 * self.bytes_done / self.size) if self.size else (100 if self.status == "done" else 0)
