"""Incident tickets: the ticket, its timeline, SLA policies and customer message templates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from alerts.models import Alert, Attack
from console.models import Customer
from tickets.querysets import TicketQuerySet, TimelineQuerySet


class Priority(models.TextChoices):
    P1 = "P1", "P1 critical"
    P2 = "P2", "P2 high"
    P3 = "P3", "P3 medium"
    P4 = "P4", "P4 low"


class SlaPolicy(models.Model):
    """How fast we owe a customer of a plan each step of an incident of a priority (minutes)."""

    plan = models.CharField(max_length=20, choices=Customer.Plan.choices)
    severity = models.CharField(max_length=2, choices=Priority.choices)
    acknowledge_minutes = models.PositiveIntegerField(help_text="from ticket creation to an engineer on it")
    first_update_minutes = models.PositiveIntegerField(help_text="from ticket creation to the first customer update")
    mitigation_minutes = models.PositiveIntegerField(help_text="from ticket creation to the attack mitigated")

    class Meta:
        ordering = ["plan", "severity"]
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"
        constraints = [models.UniqueConstraint(fields=["plan", "severity"], name="slapolicy_plan_severity_unique")]

    def __str__(self) -> str:
        return f"{self.get_plan_display()} {self.severity}"

    def minutes(self) -> dict[str, int]:
        return {
            "acknowledge": self.acknowledge_minutes,
            "first_update": self.first_update_minutes,
            "mitigation": self.mitigation_minutes,
        }


class TicketCounter(models.Model):
    """The last ticket number given out in a year: SW-2026-0042 comes from here, under a row lock."""

    year = models.PositiveIntegerField(primary_key=True)
    last = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.year}: {self.last}"


@dataclass(frozen=True)
class SlaClock:
    """One SLA clock of a ticket at a moment: what is owed, how much time is used, its state."""

    name: str
    label: str
    target_seconds: int
    elapsed_seconds: float
    stopped_at: datetime | None
    paused: bool
    state: str  # ok, at_risk, breached, met

    @property
    def remaining_seconds(self) -> float:
        return self.target_seconds - self.elapsed_seconds

    @property
    def percent(self) -> int:
        return int(100 * self.elapsed_seconds / self.target_seconds) if self.target_seconds else 100

    @property
    def running(self) -> bool:
        return self.stopped_at is None and not self.paused


SLA_AT_RISK = 0.8
SLA_CLOCKS = (
    ("acknowledge", "Acknowledge", "acknowledged_at"),
    ("first_update", "First customer update", "first_update_at"),
    ("mitigation", "Mitigation", "mitigated_at"),
)


class Ticket(models.Model):
    """An incident an engineer tracks from the first alert to the post-incident summary."""

    class Status(models.TextChoices):
        NEW = "new", "New"
        INVESTIGATING = "investigating", "Investigating"
        MITIGATING = "mitigating", "Mitigating"
        MONITORING = "monitoring", "Monitoring"
        WAITING = "waiting_on_customer", "Waiting on customer"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"

    class EscalationLevel(models.TextChoices):
        L1 = "l1", "L1 support"
        L2 = "l2", "L2 network security"
        ENGINEERING = "engineering", "Engineering"
        OPERATIONS = "operations", "Operations"

    Outcome = Alert.Outcome
    Severity = Priority

    # Work states: the ticket is being worked on; each may wait on the customer and come back.
    OPEN_STATES = (Status.NEW, Status.INVESTIGATING, Status.MITIGATING, Status.MONITORING)
    TRANSITIONS: dict[str, set[str]] = {
        Status.NEW: {Status.INVESTIGATING},
        Status.INVESTIGATING: {Status.MITIGATING},
        Status.MITIGATING: {Status.MONITORING},
        # The attack came back while we watched: mitigate again.
        Status.MONITORING: {Status.RESOLVED, Status.MITIGATING},
        Status.RESOLVED: {Status.CLOSED, Status.INVESTIGATING},
        Status.CLOSED: set(),
        Status.WAITING: set(),  # back to the state it left, see allowed_targets()
    }

    number = models.CharField(max_length=20, unique=True, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="tickets")
    title = models.CharField(max_length=300)
    summary = models.TextField(blank=True)
    severity = models.CharField(max_length=2, choices=Priority.choices, default=Priority.P3)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEW, db_index=True)
    status_before_wait = models.CharField(max_length=20, choices=Status.choices, blank=True)
    outcome = models.CharField(max_length=16, choices=Alert.Outcome.choices, blank=True, default="")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_tickets"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    escalation_level = models.CharField(max_length=12, choices=EscalationLevel.choices, default=EscalationLevel.L1)
    escalation_reason = models.TextField(blank=True)
    alerts = models.ManyToManyField(Alert, blank=True, related_name="tickets")
    attacks = models.ManyToManyField(Attack, blank=True, related_name="tickets")
    tags = models.JSONField(default=list, blank=True)
    # Times kept apart: reports and SLA clocks each need their own.
    event_at = models.DateTimeField(null=True, blank=True, help_text="when the attack began, from the feeds")
    detected_at = models.DateTimeField(null=True, blank=True, help_text="when Shieldwall first heard of it")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    first_update_at = models.DateTimeField(null=True, blank=True, help_text="first message or call to the customer")
    mitigated_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    # SLA clocks pause while waiting on the customer: finished pauses as [start, end] ISO pairs.
    pauses = models.JSONField(default=list, blank=True)
    paused_since = models.DateTimeField(null=True, blank=True)
    # The worst state of the clocks at the last check: what lists filter on (the page computes live).
    sla_state = models.CharField(max_length=10, default="ok", db_index=True)

    objects = TicketQuerySet.as_manager()

    customer_visible = False  # tickets hold internal notes: staff only

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "-created_at"], name="ticket_status_idx")]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("ticket-detail", args=[self.number])

    # ---------------------------------------------------------------- workflow

    @property
    def is_open(self) -> bool:
        return self.status not in (self.Status.RESOLVED, self.Status.CLOSED)

    def allowed_targets(self) -> set[str]:
        if self.status == self.Status.WAITING:
            return {self.status_before_wait} if self.status_before_wait else {self.Status.INVESTIGATING}
        targets = set(self.TRANSITIONS.get(self.status, set()))
        if self.status in self.OPEN_STATES:
            targets.add(self.Status.WAITING)
        return targets

    def can_become(self, status: str) -> bool:
        return status in self.allowed_targets()

    # ---------------------------------------------------------------- SLA

    def pause_intervals(self, now: datetime) -> list[tuple[datetime, datetime]]:
        intervals = []
        for start, end in self.pauses or []:
            intervals.append((parse_datetime(start), parse_datetime(end)))
        if self.paused_since:
            intervals.append((self.paused_since, now))
        return intervals

    def paused_seconds(self, until: datetime, now: datetime | None = None) -> float:
        """Seconds paused between creation and ``until``."""
        now = now or timezone.now()
        total = 0.0
        for start, end in self.pause_intervals(now):
            overlap = (min(end, until) - max(start, self.created_at)).total_seconds()
            total += max(0.0, overlap)
        return total

    def sla_clocks(self, policy: SlaPolicy | None, now: datetime | None = None) -> list[SlaClock]:
        """The acknowledge, first-update and mitigation clocks, counted from creation, pauses excluded."""
        if policy is None:
            return []
        now = now or timezone.now()
        minutes = policy.minutes()
        clocks = []
        for name, label, field in SLA_CLOCKS:
            stopped_at = getattr(self, field)
            if stopped_at is None and not self.is_open:
                # Resolved without that step (e.g. a false positive): the clock stops at resolution.
                stopped_at = self.resolved_at or self.closed_at
            until = stopped_at or now
            elapsed = max(0.0, (until - self.created_at).total_seconds() - self.paused_seconds(until, now))
            target = minutes[name] * 60
            if elapsed > target:
                state = "breached"
            elif stopped_at is not None:
                state = "met"
            elif elapsed >= SLA_AT_RISK * target:
                state = "at_risk"
            else:
                state = "ok"
            paused = stopped_at is None and self.paused_since is not None
            clocks.append(SlaClock(name, label, target, elapsed, stopped_at, paused, state))
        return clocks

    @staticmethod
    def worst_state(clocks: list[SlaClock]) -> str:
        states = {c.state for c in clocks if c.stopped_at is None or c.state == "breached"}
        for state in ("breached", "at_risk", "ok"):
            if state in states:
                return state
        return "met" if clocks else "ok"


class TicketTemplate(models.Model):
    """A customer message an engineer starts from: acknowledgement, attack identified, summary...

    Subject and body are Django template text rendered with autoescape off (plain-text
    email); pages always show the result escaped.
    """

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    position = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class TimelineEntry(models.Model):
    """One event in a ticket's life, with who and when; internal or seen by the customer."""

    class Kind(models.TextChoices):
        CREATED = "created", "Ticket created"
        STATUS_CHANGE = "status_change", "Status change"
        ASSIGNMENT = "assignment", "Assignment"
        ESCALATION = "escalation", "Escalation"
        NOTE = "note", "Internal note"
        CUSTOMER_MESSAGE = "customer_message", "Customer message"
        CONTACT_LOG = "contact_log", "Contact log"
        ALERT_LINKED = "alert_linked", "Alerts linked"
        ATTACK_LINKED = "attack_linked", "Attack linked"
        MITIGATION_PROPOSED = "mitigation_proposed", "Mitigation proposed"
        MITIGATION_APPLIED = "mitigation_applied", "Mitigation applied"
        MITIGATION_EXPIRED = "mitigation_expired", "Mitigation expired"
        SLA_WARNING = "sla_warning", "SLA warning"
        SLA_BREACH = "sla_breach", "SLA breach"
        EDIT = "edit", "Ticket edited"
        CUSTOMER_REPLY = "customer_reply", "Customer reply"
        REPORT_SENT = "report_sent", "Report sent"

    class Visibility(models.TextChoices):
        INTERNAL = "internal", "Internal"
        CUSTOMER = "customer", "Customer-facing"

    class Delivery(models.TextChoices):
        NONE = "", "—"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="timeline")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150)
    kind = models.CharField(max_length=24, choices=Kind.choices)
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.INTERNAL)
    body = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    delivery_status = models.CharField(max_length=8, choices=Delivery.choices, blank=True, default="")

    objects = TimelineQuerySet.as_manager()

    class Meta:
        ordering = ["at", "id"]
        verbose_name_plural = "timeline entries"

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.at:%Y-%m-%d %H:%M} {self.kind}"

    @property
    def css_class(self) -> str:
        return "customer-facing" if self.visibility == self.Visibility.CUSTOMER else "internal"


class EscalationTeam(models.Model):
    """Who an escalation level reaches: its members (mailed) and the level's own contact (a team
    address, a webhook such as a Slack or PagerDuty bridge)."""

    level = models.CharField(max_length=12, choices=Ticket.EscalationLevel.choices, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="escalation_teams")
    email = models.EmailField(blank=True, help_text="the level's team address, mailed with the members")
    webhook_url = models.URLField(blank=True, help_text="Slack-compatible webhook posted on escalation")

    # The order a breached SLA climbs, one level at a time.
    ORDER = (
        Ticket.EscalationLevel.L1,
        Ticket.EscalationLevel.L2,
        Ticket.EscalationLevel.ENGINEERING,
        Ticket.EscalationLevel.OPERATIONS,
    )

    class Meta:
        ordering = ["level"]

    def __str__(self) -> str:
        return self.get_level_display()

    @classmethod
    def next_level(cls, level: str) -> str | None:
        order = [str(v) for v in cls.ORDER]
        if level not in order or level == order[-1]:
            return None
        return order[order.index(level) + 1]

    def recipients(self) -> list[str]:
        emails = [u.email for u in self.members.filter(is_active=True).order_by("username") if u.email]
        if self.email:
            emails.append(self.email)
        return list(dict.fromkeys(emails))


class SlaNotice(models.Model):
    """An SLA warning or breach already flagged: the beat task flags each clock state once."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="sla_notices")
    clock = models.CharField(max_length=20)
    state = models.CharField(max_length=10)  # at_risk, breached
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        constraints = [models.UniqueConstraint(fields=["ticket", "clock", "state"], name="slanotice_once")]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.clock} {self.state}"


def clock_dict(clock: SlaClock) -> dict[str, Any]:
    return {
        "name": clock.name,
        "label": clock.label,
        "state": clock.state,
        "target_seconds": clock.target_seconds,
        "elapsed_seconds": round(clock.elapsed_seconds, 1),
        "remaining_seconds": round(clock.remaining_seconds, 1),
        "paused": clock.paused,
        "running": clock.running,
        "stopped_at": clock.stopped_at,
    }


class InboundMail(models.Model):
    """A customer mail received (inbound-parse webhook or the IMAP mailbox), once per Message-ID.

    Every mail read is kept here, so a redelivery or a re-read after a crash is recognised,
    and a mail that names no ticket, or that could not be read, stays visible to staff.
    """

    class Status(models.TextChoices):
        ATTACHED = "attached", "On its ticket"
        UNMATCHED = "unmatched", "No ticket"
        UNREADABLE = "unreadable", "Could not be read"

    class Channel(models.TextChoices):
        WEBHOOK = "webhook", "Inbound-parse webhook"
        IMAP = "imap", "IMAP mailbox"

    # The Message-ID, or a digest of the message when it has none: what makes a re-read a no-op.
    message_key = models.CharField(max_length=300, unique=True)
    message_id = models.CharField(max_length=300, blank=True)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    status = models.CharField(max_length=10, choices=Status.choices, db_index=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    sender = models.CharField(max_length=300, blank=True)
    recipients = models.CharField(max_length=1000, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)
    error = models.CharField(max_length=500, blank=True)
    ticket = models.ForeignKey(Ticket, null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound_mail")
    timeline_entry = models.ForeignKey(
        TimelineEntry, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name_plural = "inbound mail"

    def __str__(self) -> str:
        return f"{self.channel} {self.message_key} {self.status}"
