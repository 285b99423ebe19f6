"""Celery tasks of the mitigations app: thin; the services do the work."""

from __future__ import annotations

import contextlib

from celery import shared_task
from celery.signals import worker_ready
from django.db import InterfaceError, OperationalError

import console.celery  # noqa: F401 - our app is the current one before a task is sent (console/__init__.py)
from console.context import acting_as
from mitigations import services

TRANSIENT = (OperationalError, InterfaceError)


@shared_task(
    acks_late=True,
    autoretry_for=TRANSIENT,
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=10,
    soft_time_limit=600,
    time_limit=660,
)
def apply_mitigation(mitigation_id: int) -> None:
    """Idempotent: the service claims the row (approved → applying) or does nothing."""
    with acting_as("celery:apply_mitigation"):
        services.mitigation_install(mitigation_id=mitigation_id)


@shared_task(ignore_result=True, soft_time_limit=240, time_limit=300)
def expire_mitigations() -> int:
    with acting_as("celery:expire_mitigations"):
        return services.mitigations_expire_due()


@shared_task(ignore_result=True, soft_time_limit=240, time_limit=300)
def check_drift() -> int:
    with acting_as("celery:check_drift"):
        return services.mitigations_check_drift()


@shared_task(
    ignore_result=True,
    acks_late=True,
    autoretry_for=TRANSIENT,
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=240,
    time_limit=300,
)
def sync_list(mitigation_list_id: int) -> int:
    """Idempotent: pushes a list's current items to every active mitigation that enforces it."""
    with acting_as("celery:sync_list"):
        return services.list_sync_mitigations(mitigation_list_id=mitigation_list_id)


@shared_task(ignore_result=True, soft_time_limit=240, time_limit=300)
def reconcile_enforcement() -> dict:
    """Undo and fail mitigations a dead worker left half-applied (also sent when a worker starts)."""
    from mitigations import ledger

    with acting_as("celery:reconcile_enforcement"):
        return ledger.reconcile()


@worker_ready.connect
def _reconcile_at_worker_start(**kwargs: object) -> None:
    """A worker that starts may be replacing one killed mid-apply: reconcile the ledger (as a task)."""
    with contextlib.suppress(Exception):  # broker not there yet: beat sends it within a minute
        reconcile_enforcement.delay()
