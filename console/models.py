"""Customers, their protected assets, user profiles and the audit log."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils import timezone

from console.querysets import CustomerScopedQuerySet


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone")


class CustomerQuerySet(models.QuerySet):
    def visible_to(self, user) -> CustomerQuerySet:
        from console import roles

        if roles.is_internal(user):
            return self
        customer_id = roles.bound_customer_id(user)
        return self.filter(pk=customer_id) if customer_id else self.none()

    def current(self) -> CustomerQuerySet:
        """Customers not archived: what the lists show unless asked for the archive."""
        return self.filter(archived_at__isnull=True)


class Customer(models.Model):
    """A customer of the protection service, from a free-plan blog to an enterprise bank."""

    class Plan(models.TextChoices):
        FREE = "free", "Free"
        PRO = "pro", "Pro"
        BUSINESS = "business", "Business"
        ENTERPRISE = "enterprise", "Enterprise"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.FREE)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    contacts = models.JSONField(
        default=list,
        blank=True,
        help_text='People to reach during an incident: [{"name", "email", "phone", "role", "reports": true}]',
    )
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # A former customer is archived, not deleted: their attacks, tickets and mitigations stay on
    # record, and they leave the default lists. Set and cleared by customer_archive / customer_unarchive.
    archived_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = CustomerQuerySet.as_manager()

    customer_visible = True

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("customer-detail", args=[self.slug])

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    @property
    def report_emails(self) -> list[str]:
        return [c["email"] for c in self.contacts if c.get("email") and c.get("reports", True)]


class Asset(models.Model):
    """Something of a customer's that we protect: a zone, a Magic Transit prefix, a Spectrum app."""

    class Kind(models.TextChoices):
        ZONE = "zone", "Zone / hostname"
        PREFIX = "prefix", "IP prefix (Magic Transit)"
        SPECTRUM = "spectrum", "Spectrum application"
        # Cloudflare notifications name the account and zone by id (account_id, zone_tag).
        CLOUDFLARE_ACCOUNT = "cf_account", "Cloudflare account id"
        CLOUDFLARE_ZONE = "cf_zone", "Cloudflare zone id"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="assets")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    value = models.CharField(
        max_length=255, help_text="example.com, 203.0.113.0/24, or host:port / ip:port for Spectrum"
    )
    description = models.CharField(max_length=255, blank=True)

    objects = CustomerScopedQuerySet.as_manager()

    customer_visible = True

    class Meta:
        ordering = ["customer__name", "kind", "value"]
        constraints = [models.UniqueConstraint(fields=["kind", "value"], name="asset_kind_value_unique")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.value}"

    def clean(self) -> None:
        self.value = self.value.strip().lower()
        if self.kind == self.Kind.PREFIX:
            try:
                network = ipaddress.ip_network(self.value, strict=True)
            except ValueError as exc:
                raise ValidationError({"value": f"not a valid CIDR prefix: {exc}"}) from exc
            self.value = str(network)
        elif self.kind == self.Kind.ZONE:
            label = self.value.rstrip(".")
            if not label or " " in label or "/" in label or "." not in label:
                raise ValidationError({"value": "a zone is a hostname such as example.com"})
            self.value = label
        elif self.kind == self.Kind.SPECTRUM:
            host, sep, port = self.value.rpartition(":")
            if not sep or not port.isdigit() or not (0 < int(port) < 65536) or not host:
                raise ValidationError({"value": "a Spectrum application is host:port, e.g. ssh.example.com:22"})
        elif self.kind in (self.Kind.CLOUDFLARE_ACCOUNT, self.Kind.CLOUDFLARE_ZONE) and (
            len(self.value) != 32 or any(ch not in "0123456789abcdef" for ch in self.value)
        ):
            raise ValidationError({"value": "a Cloudflare account or zone id is 32 hexadecimal characters"})

    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
        if self.kind != self.Kind.PREFIX:
            return None
        return ipaddress.ip_network(self.value)


class Profile(models.Model):
    """What the console knows of a user beyond Django's auth: the customer a customer viewer is bound to."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="viewers")

    def __str__(self) -> str:
        return f"profile of {self.user}"


class ApiToken(models.Model):
    """A personal API key for scripts and integrations (``Authorization: Token <key>``).

    The key is shown once, when it is created; the database keeps only its first
    characters (to tell keys apart in a list) and a SHA-256 hash, so a database dump or
    a leaked backup gives nobody API access.
    """

    PREFIX_LENGTH = 8

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=PREFIX_LENGTH, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    def matches(self, key: str) -> bool:
        return hmac.compare_digest(self.hash_key(key), self.key_hash)

    def is_expired(self, now: datetime.datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())


class TwoFactorEnrolment(models.Model):
    """A single-use link an admin issued so that one user can enrol an authenticator app.

    A password alone never reveals a TOTP secret to a role that must have two-factor: the
    user opens this link after their password, which claims it for that session (a second
    opening fails), then confirms a code. Enrolling through a link replaces the user's
    earlier devices, which is also how a lost phone is reset. Only a hash of the link's
    token is kept, as for API keys.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="two_factor_enrolments")
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"two-factor enrolment of {self.user} ({self.created_at:%Y-%m-%d %H:%M})"

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()


class AuditEventQuerySet(CustomerScopedQuerySet):
    def update(self, **kwargs):
        raise PermissionError("the audit log is append-only")

    def delete(self):
        raise PermissionError("the audit log is append-only")


class AuditEvent(models.Model):
    """One change to something that matters: who, what, when, before and after.

    Append-only: the model refuses updates and deletes, and on PostgreSQL a trigger
    refuses them for anything that goes around the model.
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    # No database constraint and no cascade: a deleted user or customer must not
    # rewrite history (the append-only trigger would refuse it anyway).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, help_text="username, or the system actor for tasks")
    request_id = models.CharField(max_length=64, blank=True, db_index=True)
    action = models.CharField(max_length=80, db_index=True)
    object_type = models.CharField(max_length=80, db_index=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=300, blank=True)
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.object_repr}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise PermissionError("the audit log is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("the audit log is append-only")


class Heartbeat(models.Model):
    """The last time each background process proved it runs (beat writes, /healthz reads)."""

    name = models.CharField(max_length=50, unique=True)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.at}"
