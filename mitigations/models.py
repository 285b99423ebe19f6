"""Mitigations: rules and lists an engineer proposes, a senior approves and a backend enforces.

One ``Mitigation`` is one thing installed on one or more enforcement targets (nftables on
a scrubbing host, iptables, Cloudflare, or an export for the customer to apply), with
its whole life on the row: simulation, approvals, what was compiled and sent, what the
backend answered, when it expires.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from console.models import Customer
from mitigations.querysets import ListQuerySet, MitigationQuerySet


class Mitigation(models.Model):
    """A rule with a time to live, applied to enforcement targets after approval."""

    customer_visible = False  # internal work product; reports describe mitigations in their own words

    class Kind(models.TextChoices):
        IP_ACCESS = "ip_access", "IP access rule (IP, CIDR, ASN or country)"
        IP_LIST = "ip_list", "IP list (items expire individually)"
        RATE_LIMIT = "rate_limit", "Rate limit"
        WAF_RULE = "waf_rule", "WAF custom rule"
        FIREWALL_RULE = "firewall_rule", "Network firewall rule (L3/L4)"

    class Action(models.TextChoices):
        BLOCK = "block", "Block"
        ALLOW = "allow", "Allow"
        CHALLENGE = "challenge", "Challenge"
        MANAGED_CHALLENGE = "managed_challenge", "Managed challenge"
        LOG = "log", "Log only"

    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        PROPOSED = "proposed", "Proposed"
        APPROVED = "approved", "Approved"
        APPLYING = "applying", "Applying"
        ACTIVE = "active", "Active"
        EXPIRED = "expired", "Expired"
        ROLLED_BACK = "rolled_back", "Rolled back"
        FAILED = "failed", "Failed"

    # The only moves a mitigation can make; services refuse anything else.
    TRANSITIONS: dict[str, frozenset[str]] = {
        State.DRAFT: frozenset({State.PROPOSED}),
        State.PROPOSED: frozenset({State.APPROVED, State.DRAFT}),
        State.APPROVED: frozenset({State.APPLYING}),
        State.APPLYING: frozenset({State.ACTIVE, State.FAILED}),
        State.ACTIVE: frozenset({State.EXPIRED, State.ROLLED_BACK}),
        State.FAILED: frozenset({State.APPLYING, State.ROLLED_BACK}),
        State.EXPIRED: frozenset(),
        State.ROLLED_BACK: frozenset(),
    }
    # States in which something may be installed on a target.
    LIVE_STATES = (State.APPLYING, State.ACTIVE, State.FAILED)

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="mitigations")
    attack = models.ForeignKey(
        "alerts.Attack", null=True, blank=True, on_delete=models.SET_NULL, related_name="mitigations"
    )
    ticket = models.ForeignKey(
        "tickets.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="mitigations"
    )
    title = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    expression = models.TextField(blank=True, help_text="the rule in Shieldwall's (Cloudflare's) rules language")
    value = models.CharField(
        max_length=100, blank=True, help_text="IP access rules: the IP, CIDR, ASN (AS64500) or country (CN)"
    )
    mitigation_list = models.ForeignKey(
        "MitigationList", null=True, blank=True, on_delete=models.PROTECT, related_name="mitigations"
    )
    action = models.CharField(max_length=20, choices=Action.choices, default=Action.BLOCK)
    enforcement_target = models.ForeignKey(
        "EnforcementTarget",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="mitigations",
        help_text="where it is enforced; none means an export only (nothing is installed anywhere)",
    )
    more_targets = models.ManyToManyField(
        "EnforcementTarget",
        through="MitigationTarget",
        blank=True,
        related_name="+",
        help_text="further configured targets it is enforced on, beside the first",
    )
    targets = models.JSONField(
        default=list,
        help_text='target keys, derived from the enforcement targets: ["nftables"], ["export"], or with two of one '
        'kind ["nftables:edge-a", "nftables:edge-b", "cloudflare"]',
    )
    options = models.JSONField(
        default=dict, blank=True, help_text="per-backend parameters: zone_id, account_id, namespace, hook"
    )
    rate = models.JSONField(
        default=dict,
        blank=True,
        help_text='rate limits: {"requests": 100, "period": 60, "burst": 0, "per_source": true, '
        '"mitigation_timeout": 600}',
    )
    ttl_seconds = models.PositiveIntegerField(default=3600)
    state = models.CharField(max_length=12, choices=State.choices, default=State.DRAFT, db_index=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="mitigations")
    approvers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Approval", related_name="approved_mitigations", blank=True
    )
    required_approvals = models.PositiveSmallIntegerField(default=1)
    blast_radius = models.CharField(
        max_length=10,
        blank=True,
        help_text="low / medium / high / refused: the level the simulated collateral puts it at (the gate)",
    )
    safety_override = models.JSONField(
        null=True, blank=True, help_text="an admin's override of the safety check: by, at, reason, problems"
    )
    approval_reasons = models.JSONField(default=list, blank=True, help_text="why more than one approval is needed")
    simulation = models.JSONField(null=True, blank=True)
    simulated_at = models.DateTimeField(null=True, blank=True)
    compiled = models.JSONField(default=dict, blank=True, help_text="per backend: the compiled form sent")
    compile_errors = models.JSONField(default=dict, blank=True, help_text="per backend: why it refused the rule")
    backend_answers = models.JSONField(default=dict, blank=True, help_text="per backend: what it answered")
    error = models.TextField(blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    hits = models.JSONField(default=dict, blank=True, help_text="per backend: counters read back")
    drift = models.JSONField(default=dict, blank=True, help_text="per backend: what differs from our belief")
    drift_checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    proposed_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    objects = MitigationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "expires_at"])]
        permissions = [("approve_mitigation", "Can approve and apply mitigations")]

    def __str__(self) -> str:
        return f"{self.name}: {self.title or self.summary}"

    def get_absolute_url(self) -> str:
        return reverse("mitigation-detail", args=[self.pk])

    @property
    def name(self) -> str:
        """What every backend calls it: the rule comment, chain, set prefix, Cloudflare description tag.

        ``sw-<id>-<tag>``: the tag comes from the creation time, so a rule left behind by another
        database (a restored backup, a second console on the same target) never carries the name
        of a later mitigation with the same id. At most 15 characters up to id 999,999, as
        iptables' hashlimit names need."""
        if self.created_at is None:
            return f"sw-{self.pk}"
        return f"sw-{self.pk}-{_base36(int(self.created_at.timestamp() * 1_000_000) % 36**4)}"

    @property
    def summary(self) -> str:
        if self.kind == self.Kind.IP_ACCESS:
            return f"{self.action} {self.value}"
        if self.kind == self.Kind.IP_LIST and self.mitigation_list_id:
            return f"{self.action} list {self.mitigation_list.name}"
        return f"{self.action} {self.expression[:120]}"

    def configured_targets(self) -> list[EnforcementTarget]:
        """Every configured target it is enforced on: the first, then the further ones by name."""
        cached = getattr(self, "_configured_targets", None)
        if cached is not None:
            return cached
        found = [self.enforcement_target] if self.enforcement_target_id else []
        if self.pk:
            found += [t for t in self.more_targets.order_by("name") if t.pk != self.enforcement_target_id]
        self._configured_targets = found
        return found

    def target_for(self, key: str) -> EnforcementTarget | None:
        """The configured target behind one of ``targets`` (None: an export, or no target configured)."""
        for target, target_key in zip(self.configured_targets(), target_keys(self.configured_targets()), strict=True):
            if target_key == key:
                return target
        return None

    def can_become(self, state: str) -> bool:
        return state in self.TRANSITIONS.get(self.state, frozenset())

    def seconds_left(self, now: datetime | None = None) -> int | None:
        if not self.expires_at:
            return None
        return max(0, int((self.expires_at - (now or timezone.now())).total_seconds()))

    @property
    def approval_count(self) -> int:
        return len(self.approvals.all())


class EnforcementTarget(models.Model):
    """A place an operator configured for enforcement: nothing is ever installed anywhere else.

    Packet filters act inside a named network namespace of the console's host, or through
    a command prefix the operator wrote (``ssh -T scrub-1 sudo``); never on the console's
    own firewall by default. A Cloudflare target names its account and zone and where its
    API token is read from (an environment variable), never the token itself.
    """

    class Kind(models.TextChoices):
        NFTABLES = "nftables", "nftables"
        IPTABLES = "iptables", "iptables / ipset"
        CLOUDFLARE = "cloudflare", "Cloudflare account / zone"
        EXPORT = "export", "Export only (the customer applies it)"

    PACKET_KINDS = (Kind.NFTABLES, Kind.IPTABLES)

    name = models.SlugField(max_length=60, unique=True)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    customer = models.ForeignKey(
        Customer,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="enforcement_targets",
        help_text="a Cloudflare zone or a customer's own host belongs to one customer; empty: shared scrubbing",
    )
    namespace = models.CharField(
        max_length=60, blank=True, help_text="packet filters: act inside this network namespace (ip netns exec)"
    )
    command = models.CharField(
        max_length=255,
        blank=True,
        help_text="packet filters: a command prefix the operator configured, e.g. 'ssh -T scrub-1 sudo'",
    )
    account_id = models.CharField(max_length=64, blank=True, help_text="Cloudflare account id")
    zone_id = models.CharField(max_length=64, blank=True, help_text="Cloudflare zone id")
    credentials_ref = models.CharField(
        max_length=100, blank=True, help_text="the environment variable that holds the API token (never the token)"
    )
    description = models.CharField(max_length=255, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.where})"

    @property
    def where(self) -> str:
        if self.kind in self.PACKET_KINDS:
            return f"{self.kind} in namespace {self.namespace}" if self.namespace else f"{self.kind} via {self.command}"
        if self.kind == self.Kind.CLOUDFLARE:
            return f"Cloudflare account {self.account_id or '?'} zone {self.zone_id or '?'}"
        return "export only"

    def problems(self) -> list[str]:
        """Why this target cannot act (empty when it is usable)."""
        out = []
        if self.kind in self.PACKET_KINDS and not (self.namespace or self.command):
            out.append(f"{self.name}: a {self.kind} target needs a network namespace or a configured command")
        if self.kind in self.PACKET_KINDS and self.namespace and self.command:
            out.append(f"{self.name}: give a namespace or a command, not both")
        if self.kind == self.Kind.CLOUDFLARE and not (self.account_id or self.zone_id):
            out.append(f"{self.name}: a Cloudflare target needs an account id or a zone id")
        if self.kind == self.Kind.CLOUDFLARE:
            out += self.id_problems().values()
        if not self.enabled:
            out.append(f"{self.name} is disabled")
        return out

    def id_problems(self) -> dict[str, str]:
        """Cloudflare ids that are not Cloudflare's 32 hexadecimal characters: they go into API paths."""
        from mitigations.backends.cloudflare import CLOUDFLARE_ID

        out = {}
        for field, label in (("account_id", "account id"), ("zone_id", "zone id")):
            value = getattr(self, field)
            if value and not CLOUDFLARE_ID.match(value):
                out[field] = (
                    f"{self.name}: the Cloudflare {label} is 32 hexadecimal characters (0-9, a-f), "
                    f"as shown on the zone's Overview page; {value!r} is not"
                )
        return out

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.kind == self.Kind.CLOUDFLARE and (by_field := self.id_problems()):
            raise ValidationError(by_field)
        if problems := self.problems():
            raise ValidationError("; ".join(problems))

    def options(self) -> dict:
        """What the backends read: where they act. These always win over a mitigation's own options."""
        keys = ("namespace", "command", "account_id", "zone_id")
        return {k: getattr(self, k) for k in keys if getattr(self, k)}


def target_keys(targets: list[EnforcementTarget]) -> list[str]:
    """What the ledger, the compiled forms and the answers call each target: its kind when it is the
    only one of its kind (as every mitigation with one target always was), else ``kind:name``."""
    kinds = [t.kind for t in targets]
    return [t.kind if kinds.count(t.kind) == 1 else f"{t.kind}:{t.name}" for t in targets]


def target_kind(key: str) -> str:
    """The backend of a target key (``nftables:edge-a`` -> ``nftables``)."""
    return key.split(":", 1)[0]


class MitigationTarget(models.Model):
    """A further configured target of a mitigation; protected, as the first one is, while a mitigation names it."""

    mitigation = models.ForeignKey(Mitigation, on_delete=models.CASCADE, related_name="+")
    target = models.ForeignKey(EnforcementTarget, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["target__name"]
        constraints = [models.UniqueConstraint(fields=["mitigation", "target"], name="mitigation_target_once")]

    def __str__(self) -> str:
        return f"{self.mitigation_id} on {self.target_id}"


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out.rjust(4, "0")


class Approval(models.Model):
    """One senior engineer's approval of one mitigation, with when and why."""

    mitigation = models.ForeignKey(Mitigation, on_delete=models.CASCADE, related_name="approvals")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [models.UniqueConstraint(fields=["mitigation", "user"], name="approval_once_per_user")]

    def __str__(self) -> str:
        return f"{self.user} approved {self.mitigation_id} at {self.at:%Y-%m-%d %H:%M}"


class MitigationEvent(models.Model):
    """The mitigation's own history: every state change and every backend call, in order."""

    mitigation = models.ForeignKey(Mitigation, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    actor_name = models.CharField(max_length=150)
    from_state = models.CharField(max_length=12, blank=True)
    to_state = models.CharField(max_length=12, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%H:%M:%S} {self.from_state}→{self.to_state} {self.message[:60]}"


class MitigationList(models.Model):
    """A named block, allow or reputation list of addresses; global when it has no customer."""

    customer_visible = False

    class Purpose(models.TextChoices):
        BLOCK = "block", "Block list"
        ALLOW = "allow", "Allow list"
        REPUTATION = "reputation", "Reputation list"

    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="mitigation_lists"
    )
    name = models.SlugField(
        max_length=50, unique=True, help_text="as used in rules: $name (lowercase letters, digits, underscores)"
    )
    purpose = models.CharField(max_length=12, choices=Purpose.choices, default=Purpose.BLOCK)
    description = models.CharField(max_length=255, blank=True)
    source = models.CharField(max_length=255, blank=True, help_text="where imports come from (Spamhaus DROP, ...)")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ListQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("mitigation-list-detail", args=[self.pk])


class ListItem(models.Model):
    """One CIDR of a list, with its own expiry and a note of why it is there."""

    # The longest an item may be given to live (much more would overflow the expiry date).
    MAX_TTL_SECONDS = 10 * 365 * 86400

    mitigation_list = models.ForeignKey(MitigationList, on_delete=models.CASCADE, related_name="items")
    value = models.CharField(max_length=49, help_text="an address or CIDR, normalised")
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    comment = models.CharField(max_length=255, blank=True)
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["value"]
        constraints = [models.UniqueConstraint(fields=["mitigation_list", "value"], name="list_item_unique")]

    def __str__(self) -> str:
        return self.value

    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.value, strict=False)

    def ttl(self, now: datetime | None = None) -> int | None:
        if self.expires_at is None:
            return None
        return max(1, int((self.expires_at - (now or timezone.now())).total_seconds()))


class GlobalAllowlistEntry(models.Model):
    """An address no mitigation may ever block: our origin pulls, monitoring, public resolvers."""

    value = models.CharField(max_length=49, unique=True, help_text="an address or CIDR")
    reason = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["value"]
        verbose_name_plural = "global allowlist entries"

    def __str__(self) -> str:
        return f"{self.value} ({self.reason})"

    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.value, strict=False)


class BackendState(models.Model):
    """What the drift check last read back from one backend location (host, namespace, account)."""

    key = models.CharField(max_length=120, unique=True, help_text="backend and location, e.g. nftables:ns-edge")
    checked_at = models.DateTimeField()
    installed = models.JSONField(default=dict, blank=True)
    unexpected = models.JSONField(default=list, blank=True, help_text="installed by us but not active in Shieldwall")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class EnforcementStep(models.Model):
    """The enforcement ledger: one row per step on one target, written before the call and after it.

    ``intent`` is committed before the backend is called, so a worker killed mid-call leaves a
    row saying "this target may hold it" rather than nothing; ``done`` carries the backend's
    answer (its handle: rule handles, Cloudflare resource ids) and ``failed`` the reason.
    ``mitigations.ledger`` writes it; ``ledger.reconcile`` reads it after a crash.
    """

    class Op(models.TextChoices):
        APPLY = "apply", "Apply"
        COMPENSATE = "compensate", "Undo (compensation)"
        ROLLBACK = "rollback", "Roll back"
        EXPIRE = "expire", "Remove at expiry"
        RECONCILE = "reconcile", "Read back by reconciliation"

    # Steps whose success means the target no longer holds the mitigation.
    REMOVALS = (Op.COMPENSATE, Op.ROLLBACK, Op.EXPIRE)

    class Outcome(models.TextChoices):
        INTENT = "intent", "Started, result not recorded"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    mitigation = models.ForeignKey(Mitigation, on_delete=models.CASCADE, related_name="steps")
    target = models.CharField(max_length=80)
    op = models.CharField(max_length=12, choices=Op.choices)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default=Outcome.INTENT)
    attempts = models.PositiveSmallIntegerField(default=0)
    handle = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["mitigation", "target"])]

    def __str__(self) -> str:
        return f"{self.op} {self.target} of mitigation {self.mitigation_id}: {self.outcome}"
