"""The one audit helper. Services call it; nothing else writes the audit log."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterable
from typing import Any

from django.db import models

from console.context import current_actor, current_request_id, current_system_actor
from console.models import AuditEvent, Customer


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    return value


def snapshot(obj: models.Model, fields: Iterable[str] | None = None) -> dict[str, Any]:
    """The audited state of a row: its concrete fields (foreign keys as ids) as JSON."""
    names = list(fields) if fields is not None else [f.attname for f in obj._meta.concrete_fields]
    return {name: _jsonable(getattr(obj, name)) for name in names}


def audit_record(
    *,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    customer: Customer | int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor: Any = None,
) -> AuditEvent:
    """Append one audit event. The actor and request id come from the request or task context."""
    actor = actor if actor is not None else current_actor.get()
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    actor_name = actor.get_username() if actor is not None else (current_system_actor.get() or "system")
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)[:300]
        if customer is None:
            if isinstance(obj, Customer):
                customer = obj
            elif hasattr(obj, "customer_id"):
                customer = obj.customer_id
    customer_id = customer.pk if isinstance(customer, Customer) else customer
    return AuditEvent.objects.create(
        actor=actor,
        actor_name=actor_name,
        request_id=current_request_id.get(),
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr[:300],
        customer_id=customer_id,
        before=_jsonable(before) if before is not None else None,
        after=_jsonable(after) if after is not None else None,
    )
