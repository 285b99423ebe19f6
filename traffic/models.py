"""Traffic samples: captures and request logs attached to a customer and maybe an attack."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from console.models import Customer
from console.querysets import CustomerScopedQuerySet


class TrafficSample(models.Model):
    """A PCAP or request log, parsed once into a columnar file plus a summary in the database."""

    class Label(models.TextChoices):
        ATTACK = "attack", "Attack"
        BASELINE = "baseline", "Baseline (good traffic)"
        UNKNOWN = "unknown", "Unknown"

    class Kind(models.TextChoices):
        PCAP = "pcap", "PCAP / PCAPNG"
        LOGPUSH = "logpush", "Cloudflare Logpush http_requests (JSON lines)"
        COMBINED = "combined", "nginx / Apache combined log"
        EVE_FLOW = "eve_flow", "Suricata EVE flow events"

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Waiting to be parsed"
        PARSING = "parsing", "Parsing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="traffic_samples")
    attack = models.ForeignKey(
        "alerts.Attack", null=True, blank=True, on_delete=models.SET_NULL, related_name="traffic_samples"
    )
    name = models.CharField(max_length=255)
    label = models.CharField(max_length=10, choices=Label.choices, default=Label.UNKNOWN)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    original = models.FileField(upload_to="traffic/originals/%Y/%m/", max_length=500)
    size = models.BigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.UPLOADED)
    progress = models.PositiveSmallIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    record_count = models.BigIntegerField(default=0)
    start_at = models.DateTimeField(null=True, blank=True)
    end_at = models.DateTimeField(null=True, blank=True)
    columnar_path = models.CharField(max_length=500, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    parsed_at = models.DateTimeField(null=True, blank=True)
    # When the current analysis attempt started and how many were made: a job that dies leaves
    # the sample in "parsing"; the sweeper retries it once, then fails it with the reason.
    parse_started_at = models.DateTimeField(null=True, blank=True)
    parse_attempts = models.PositiveSmallIntegerField(default=0)

    objects = CustomerScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("traffic-detail", args=[self.pk])

    @property
    def is_packets(self) -> bool:
        """Packet-level records (captures and flows) compare with each other, not with requests."""
        return self.kind in (self.Kind.PCAP, self.Kind.EVE_FLOW)


class TrafficSamplePart(models.Model):
    """One record range of a large capture analysed by its own Celery task (traffic/parts.py).

    ``start``/``stop`` are byte offsets of verified record boundaries; the part's summariser
    state and its records land in ``state_path``/``records_path`` (shared media storage, so
    the task may run on any worker host) until the last part merges them into the sample.
    """

    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting"
        RUNNING = "running", "Analysing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    sample = models.ForeignKey(TrafficSample, on_delete=models.CASCADE, related_name="parts")
    index = models.PositiveSmallIntegerField()
    start = models.BigIntegerField()
    stop = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.WAITING)
    progress = models.PositiveSmallIntegerField(default=0)
    packets = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)
    state_path = models.CharField(max_length=500, blank=True)
    records_path = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["sample", "index"]
        constraints = [models.UniqueConstraint(fields=["sample", "index"], name="traffic_part_unique_index")]

    def __str__(self) -> str:
        return f"{self.sample_id} part {self.index + 1}"
