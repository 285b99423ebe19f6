"""The roof's tables: customer attack reports with their share links, and the dashboards' rollups.

The tables keep the ``console_`` names they had when these models were the console app's:
moving the models moved no data.

Customer attack reports: a stored object with its parameters, snapshot and files, and its share links.

A report is generated once (by the ``reports`` Celery queue) and kept as it was: the
HTML snapshot, the PDF and the figures behind both. Re-sending it later sends the same
thing the customer saw, not a recomputation.
"""

from __future__ import annotations

import hashlib
import secrets
import zoneinfo
from datetime import datetime

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone as dj_timezone

from console.models import Customer
from console.querysets import CustomerScopedQuerySet


class Report(models.Model):
    """An attack report for one customer: one incident (attack or ticket) or a period."""

    class Kind(models.TextChoices):
        INCIDENT = "incident", "Incident (attack or ticket)"
        PERIOD = "period", "Period"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Generating"
        DONE = "done", "Ready"
        FAILED = "failed", "Failed"

    class Schedule(models.TextChoices):
        MANUAL = "", "On request"
        WEEKLY = "weekly", "Weekly"
        MONTHLY = "monthly", "Monthly"

    customer = models.ForeignKey("console.Customer", on_delete=models.CASCADE, related_name="reports")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    title = models.CharField(max_length=300, blank=True)
    parameters = models.JSONField(
        default=dict, blank=True, help_text='what was asked: {"attack": 12} or {"ticket": "SW-2026-0001"} or period'
    )
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC", help_text="the customer's time zone when generated")
    schedule = models.CharField(max_length=10, choices=Schedule.choices, blank=True, default="")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=dj_timezone.now, db_index=True)
    generated_at = models.DateTimeField(null=True, blank=True)
    html = models.TextField(blank=True, help_text="the rendered report body, as the customer saw it")
    figures = models.JSONField(default=dict, blank=True, help_text="every figure of the report (the JSON export)")
    pdf = models.FileField(upload_to="reports/%Y/%m/", max_length=300, blank=True)
    pdf_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    sent_to = models.JSONField(default=list, blank=True)

    objects = CustomerScopedQuerySet.as_manager()

    customer_visible = True  # a customer viewer reads their own customer's reports

    class Meta:
        db_table = "console_report"
        ordering = ["-created_at", "-id"]
        constraints = [
            # One scheduled report per customer, schedule and period: the beat may run twice.
            models.UniqueConstraint(
                fields=["customer", "schedule", "period_start"],
                condition=~models.Q(schedule=""),
                name="report_schedule_once",
            ),
        ]

    def __str__(self) -> str:
        return self.title or f"report {self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("report-detail", args=[self.pk])

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        try:
            return zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return zoneinfo.ZoneInfo("UTC")

    @property
    def is_ready(self) -> bool:
        return self.status == self.Status.DONE

    @property
    def is_pending(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    def filename(self, ext: str) -> str:
        stamp = (self.generated_at or self.created_at).astimezone(self.tz).strftime("%Y%m%d")
        return f"shieldwall-report-{self.customer.slug}-{self.pk}-{stamp}.{ext}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ShareLinkQuerySet(models.QuerySet):
    def usable(self, now: datetime | None = None) -> ShareLinkQuerySet:
        return self.filter(revoked_at__isnull=True, expires_at__gt=now or dj_timezone.now())


class ShareLink(models.Model):
    """A read-only link to one report for people without an account; the token is kept hashed."""

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="share_links")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(max_length=8, editable=False, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=dj_timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    access_count = models.PositiveIntegerField(default=0)
    last_accessed_at = models.DateTimeField(null=True, blank=True)

    objects = ShareLinkQuerySet.as_manager()

    class Meta:
        db_table = "console_sharelink"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"share …{self.hint} of report {self.report_id}"

    def set_token(self) -> str:
        """A new random token; only its hash is stored. Returns the token to show once."""
        token = secrets.token_urlsafe(32)
        self.token_hash = hash_token(token)
        self.hint = token[-4:]
        return token

    def is_usable(self, now: datetime | None = None) -> bool:
        return self.revoked_at is None and self.expires_at > (now or dj_timezone.now())

    @property
    def state(self) -> str:
        if self.revoked_at:
            return "revoked"
        return "active" if self.is_usable() else "expired"


class ShareAccess(models.Model):
    """One opening of a share link: when, from where, what was fetched."""

    link = models.ForeignKey(ShareLink, on_delete=models.CASCADE, related_name="accesses")
    at = models.DateTimeField(default=dj_timezone.now)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    what = models.CharField(max_length=10, default="html")

    class Meta:
        db_table = "console_shareaccess"
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.link_id} {self.at:%Y-%m-%d %H:%M} {self.what}"


class AlertRollup(models.Model):
    """Alerts per hour × customer × severity × layer: what the dashboards chart instead of scanning alerts.

    Filled by the ``refresh_rollups`` beat task, which recomputes whole hours from the
    alerts, so a rerun gives the same rows.
    """

    bucket = models.DateTimeField(db_index=True, help_text="start of the hour (UTC) of the alerts' event time")
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, db_constraint=False, related_name="+"
    )
    severity = models.CharField(max_length=10)
    layer = models.CharField(max_length=2)
    alerts = models.PositiveIntegerField(default=0, help_text="alert rows")
    events = models.BigIntegerField(default=0, help_text="alerts with their repeats (sum of counts)")

    class Meta:
        db_table = "console_alertrollup"
        ordering = ["bucket", "id"]
        indexes = [models.Index(fields=["customer", "bucket"], name="alertrollup_customer_idx")]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H}h {self.customer_id} {self.severity} {self.layer}: {self.alerts}"


class AttackRollup(models.Model):
    """Attacks per day (UTC, by start) × customer, with their largest peaks and vectors."""

    day = models.DateField(db_index=True)
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, db_constraint=False, related_name="+"
    )
    attacks = models.PositiveIntegerField(default=0)
    peak_bps = models.FloatField(null=True, blank=True)
    peak_pps = models.FloatField(null=True, blank=True)
    peak_rps = models.FloatField(null=True, blank=True)
    vectors = models.JSONField(default=dict, blank=True, help_text="{vector: attacks showing it}")

    class Meta:
        db_table = "console_attackrollup"
        ordering = ["day", "id"]
        indexes = [models.Index(fields=["customer", "day"], name="attackrollup_customer_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.customer_id}: {self.attacks}"


class RollupWatermark(models.Model):
    """How far a rollup has read its source: the next run starts here (less an overlap)."""

    name = models.CharField(max_length=40, unique=True)
    value = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "console_rollupwatermark"

    def __str__(self) -> str:
        return f"{self.name} at {self.value}"
