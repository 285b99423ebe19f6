"""Console services: customers (delete, archive), API tokens and two-factor enrolment.

Views, the API and management commands call these; each writes the audit log.
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from console import roles
from console.audit import audit_record, snapshot
from console.models import ApiToken, Customer, TwoFactorEnrolment

# Touch last_used_at at most this often, so a busy script does not write on every request.
LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    key: str  # shown to the person once; never stored


def api_token_create(
    *, user: Any, name: str = "API", expires_at: datetime.datetime | None = None, actor: Any = None
) -> IssuedToken:
    """Issue a new API key for ``user``; the key itself is returned once and only its hash is kept."""
    key = secrets.token_hex(20)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name[:100] or "API",
            prefix=key[: ApiToken.PREFIX_LENGTH],
            key_hash=ApiToken.hash_key(key),
            expires_at=expires_at,
        )
        audit_record(
            action="api_token.create",
            obj=token,
            after={"user": user.get_username(), "name": token.name, "prefix": token.prefix},
            actor=actor,
        )
    return IssuedToken(token=token, key=key)


def api_token_revoke(*, token: ApiToken, actor: Any = None) -> None:
    """Revoke a key: it stops working at once. Revoking twice is harmless."""
    with transaction.atomic():
        deleted, _ = ApiToken.objects.filter(pk=token.pk).delete()
        if deleted:
            audit_record(
                action="api_token.revoke",
                object_type=ApiToken._meta.label_lower,
                object_id=str(token.pk),
                object_repr=str(token),
                before={"user": token.user.get_username(), "name": token.name, "prefix": token.prefix},
                actor=actor,
            )


def api_token_authenticate(*, key: str) -> ApiToken | None:
    """The live token for ``key``, or None: unknown, wrong, expired and revoked keys all look alike."""
    if len(key) < ApiToken.PREFIX_LENGTH:
        return None
    now = timezone.now()
    found = None
    # Compare every candidate with the same prefix in constant time; prefixes rarely collide.
    for candidate in ApiToken.objects.filter(prefix=key[: ApiToken.PREFIX_LENGTH]).select_related("user"):
        if candidate.matches(key):
            found = candidate
    if found is None or found.is_expired(now) or not found.user.is_active:
        return None
    if found.last_used_at is None or now - found.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=found.pk).update(last_used_at=now)
        found.last_used_at = now
    return found


# A claimed enrolment link lets its session enrol for this long: enough to install an app.
ENROLMENT_CLAIM_SECONDS = 3600


class TwoFactorEnrolmentRefused(ValueError):
    """An enrolment link that cannot be used (unknown, another user's, used, expired); the message says so.

    A plain ValueError rather than console.errors' classes: those import DRF, whose settings
    import the authentication that imports this module.
    """


@dataclass(frozen=True)
class IssuedEnrolment:
    enrolment: TwoFactorEnrolment
    url: str  # shown to the admin once; only the token's hash is stored


def _enrolment_audit(*, action: str, user: Any, enrolment: TwoFactorEnrolment | None = None, **after: Any) -> None:
    audit_record(
        action=action,
        object_type=TwoFactorEnrolment._meta.label_lower,
        object_id=str(enrolment.pk) if enrolment else "",
        object_repr=user.get_username(),
        after={"user": user.get_username(), **after},
    )


def two_factor_enrolment_issue(*, user: Any, actor: Any = None, hours: int | None = None) -> IssuedEnrolment:
    """Issue ``user`` a single-use link to enrol an authenticator app after their password.

    Only an admin issues links (``actor`` None is the operator's shell: the management
    command). A new link makes the user's earlier unclaimed links stop working.
    """
    if actor is not None and not roles.is_admin(actor):
        raise PermissionDenied("Only an admin may issue two-factor enrolment links.")
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    hours = hours or settings.TWO_FACTOR_ENROLMENT_HOURS
    with transaction.atomic():
        superseded = TwoFactorEnrolment.objects.filter(user=user, claimed_at__isnull=True, expires_at__gt=now).update(
            expires_at=now
        )
        enrolment = TwoFactorEnrolment.objects.create(
            user=user,
            issued_by=actor,
            token_hash=TwoFactorEnrolment.hash_token(token),
            expires_at=now + datetime.timedelta(hours=hours),
        )
        audit_record(
            action="two_factor.enrolment_issue",
            obj=enrolment,
            object_repr=user.get_username(),
            after={"user": user.get_username(), "expires_at": enrolment.expires_at, "superseded": superseded},
            actor=actor,
        )
    url = settings.SITE_URL.rstrip("/") + reverse("two-factor-enrol", args=[token])
    return IssuedEnrolment(enrolment=enrolment, url=url)


def two_factor_enrolment_claim(*, user: Any, token: str) -> TwoFactorEnrolment:
    """Claim an enrolment link for the logged-in ``user``: it works once, for its own user, before it expires.

    Raises ``TwoFactorEnrolmentRefused`` with what the person should be told otherwise.
    """
    token_hash = TwoFactorEnrolment.hash_token(token)
    now = timezone.now()
    claimed = TwoFactorEnrolment.objects.filter(
        token_hash=token_hash, user=user, claimed_at__isnull=True, expires_at__gt=now
    ).update(claimed_at=now)
    enrolment = TwoFactorEnrolment.objects.filter(token_hash=token_hash).first()
    if not claimed:
        if enrolment is None or enrolment.user_id != user.pk:
            reason = "unknown link" if enrolment is None else "another user's link"
        else:
            reason = "already used" if enrolment.claimed_at else "expired"
        _enrolment_audit(
            action="two_factor.enrolment_refused",
            user=user,
            enrolment=enrolment if enrolment and enrolment.user_id == user.pk else None,
            reason=reason,
        )
        raise TwoFactorEnrolmentRefused(
            f"This enrolment link cannot be used ({reason}). Ask an admin for a new enrolment link."
        )
    # The conditional update above claimed this very row, so it exists.
    assert enrolment is not None
    with transaction.atomic():
        # A device left half-enrolled earlier holds a secret someone may have seen: start afresh.
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        _enrolment_audit(action="two_factor.enrolment_claim", user=user, enrolment=enrolment)
    return enrolment


def two_factor_enrolment_start_verified(*, user: Any) -> TwoFactorEnrolment:
    """A session that already passed a code enrols a new authenticator app (a new phone) itself."""
    now = timezone.now()
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        enrolment = TwoFactorEnrolment.objects.create(
            user=user,
            issued_by=user,
            token_hash=TwoFactorEnrolment.hash_token(secrets.token_urlsafe(32)),
            expires_at=now,
            claimed_at=now,
        )
        _enrolment_audit(action="two_factor.enrolment_claim", user=user, enrolment=enrolment, by="second factor")
    return enrolment


def two_factor_enrolment_usable(*, user: Any, enrolment_id: int | None) -> TwoFactorEnrolment | None:
    """The enrolment this session claimed, while it may still enrol a device with it."""
    if not enrolment_id:
        return None
    since = timezone.now() - datetime.timedelta(seconds=ENROLMENT_CLAIM_SECONDS)
    return TwoFactorEnrolment.objects.filter(
        pk=enrolment_id, user=user, claimed_at__gt=since, completed_at__isnull=True
    ).first()


def two_factor_enrolment_complete(*, enrolment: TwoFactorEnrolment, device: TOTPDevice) -> None:
    """The code confirmed the new device: it replaces the user's earlier ones, and the enrolment is spent."""
    with transaction.atomic():
        spent = TwoFactorEnrolment.objects.filter(pk=enrolment.pk, completed_at__isnull=True).update(
            completed_at=timezone.now()
        )
        if not spent:
            raise TwoFactorEnrolmentRefused(
                "This enrolment was already completed. Ask an admin for a new enrolment link."
            )
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        replaced, _ = TOTPDevice.objects.filter(user=device.user).exclude(pk=device.pk).delete()
        _enrolment_audit(action="two_factor.enrol", user=device.user, enrolment=enrolment, replaced_devices=replaced)


# --------------------------------------------------------------------------- customers


def customer_delete_blockers(customer: Customer) -> list[str]:
    """What still holds a customer: mitigations that may be installed on a target, and open tickets.

    Read through the reverse relations the domain apps declare (``mitigations``, ``tickets``), so
    console core imports none of them; an app that is not installed blocks nothing.
    """
    blockers = []
    mitigations = getattr(customer, "mitigations", None)
    if mitigations is not None and (live := mitigations.live().count()):
        blockers.append(f"{live} mitigation{'s' if live != 1 else ''} applied or possibly installed (roll back first)")
    tickets = getattr(customer, "tickets", None)
    if tickets is not None and (open_ := tickets.open().count()):
        blockers.append(f"{open_} open ticket{'s' if open_ != 1 else ''} (close them first)")
    return blockers


def customer_delete(*, customer: Customer, actor: Any = None) -> None:
    """Delete a customer and everything of theirs, if nothing still depends on them; else 409.

    A customer with a live mitigation (a rule on a firewall would lose its record and never be
    rolled back) or an open ticket cannot be deleted: archive them instead. Audited with the
    customer as it was.
    """
    # Not at the top: console.authentication imports this module while DRF, which errors imports, loads.
    from console.errors import StateConflict

    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        blockers = customer_delete_blockers(locked)
        if blockers:
            reasons = "; ".join(blockers)
            raise StateConflict(f"{locked.name} cannot be deleted: {reasons}. Archive the customer instead.")
        before = snapshot(locked)
        try:
            locked.delete()
        except models.ProtectedError as exc:
            # Closed tickets keep their customer (on_delete=PROTECT): the history stays, so does the customer.
            kinds = sorted({str(o._meta.verbose_name_plural) for o in exc.protected_objects})
            raise StateConflict(
                f"{locked.name} cannot be deleted: their {', '.join(kinds)} are kept on record. "
                "Archive the customer instead."
            ) from exc
        audit_record(
            action="customer.delete",
            object_type=Customer._meta.label_lower,
            object_id=str(before["id"]),
            object_repr=locked.name,
            customer=before["id"],
            before=before,
            actor=actor,
        )


def customer_archive(*, customer: Customer, actor: Any = None) -> Customer:
    """Archive a customer: off the default lists, shown as archived, everything of theirs kept."""
    return _customer_set_archived(customer=customer, archived=True, actor=actor)


def customer_unarchive(*, customer: Customer, actor: Any = None) -> Customer:
    """Bring an archived customer back to the lists."""
    return _customer_set_archived(customer=customer, archived=False, actor=actor)


def _customer_set_archived(*, customer: Customer, archived: bool, actor: Any) -> Customer:
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        if locked.is_archived != archived:  # archiving twice is harmless and writes nothing
            before = snapshot(locked, ["archived_at"])
            locked.archived_at = timezone.now() if archived else None
            locked.save(update_fields=["archived_at"])
            audit_record(
                action="customer.archive" if archived else "customer.unarchive",
                obj=locked,
                before=before,
                after=snapshot(locked, ["archived_at"]),
                actor=actor,
            )
    customer.archived_at = locked.archived_at
    return customer
