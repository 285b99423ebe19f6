"""Console services: API tokens and two-factor enrolment.

Views, the API and management commands call these; each writes the audit log.
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from console.audit import audit_record
from console.models import ApiToken

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
