"""Who is acting and in which request, for the audit log (as NetBox's netbox/context.py).

The middleware sets these for a web request; tasks and commands set a named system
actor with ``acting_as``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

current_actor: ContextVar[Any | None] = ContextVar("current_actor", default=None)
current_request_id: ContextVar[str] = ContextVar("current_request_id", default="")
current_system_actor: ContextVar[str] = ContextVar("current_system_actor", default="")


@contextlib.contextmanager
def acting_as(system_actor: str, request_id: str | None = None) -> Iterator[None]:
    """Run a block as a named system actor ("celery:expire_mitigations", "seed_demo")."""
    tokens = (
        current_system_actor.set(system_actor),
        current_request_id.set(request_id or uuid.uuid4().hex),
    )
    try:
        yield
    finally:
        current_system_actor.reset(tokens[0])
        current_request_id.reset(tokens[1])
