"""Celery tasks of the alerts app: thin, idempotent, retried on transient errors only."""

from __future__ import annotations

from celery import shared_task

import console.celery  # noqa: F401 - our app is the current one before a task is sent (console/__init__.py)
from alerts import services
from console.context import acting_as

TRANSIENT = services.TRANSIENT_DB_ERRORS


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=TRANSIENT,
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=20,
    soft_time_limit=240,
    time_limit=300,
)
def process_delivery(self, delivery_id: int) -> None:
    """Parse one delivery, with the others waiting beside it (a micro-batch). Failures are
    counted on each delivery (a dead letter after INGEST_MAX_ATTEMPTS), so only a lost database
    connection is retried here."""
    with acting_as("celery:process_delivery"):
        services.deliveries_process_batch(delivery_id=delivery_id)


@shared_task(acks_late=True, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5)
def summarize_attack(attack_id: int) -> None:
    from django.core.cache import cache

    cache.delete(f"attack-summary:{attack_id}")
    with acting_as("celery:summarize_attack"):
        services.attack_summarize(attack_id=attack_id)


@shared_task(ignore_result=True)
def sweep_pending_deliveries() -> int:
    """Deliveries left pending (broker was down, worker killed) are enqueued again, once per staleness."""
    return services.deliveries_requeue_stale()


@shared_task(ignore_result=True)
def close_quiet_attacks() -> int:
    return services.attacks_close_quiet()


@shared_task(ignore_result=True)
def auto_resolve_alerts() -> int:
    with acting_as("celery:auto_resolve_alerts"):
        return services.alerts_auto_resolve()


@shared_task(ignore_result=True)
def check_silent_feeds() -> int:
    from alerts.feeds import feeds_check_silent

    with acting_as("celery:check_silent_feeds"):
        return feeds_check_silent()


@shared_task(ignore_result=True)
def release_expired_silences() -> int:
    return services.silences_release_expired()


@shared_task(ignore_result=True)
def poll_feeds() -> int:
    from alerts.pull import feeds_poll

    with acting_as("celery:poll_feeds"):
        return feeds_poll()


@shared_task(bind=True, acks_late=True, soft_time_limit=3600, time_limit=3700)
def run_import(self, import_id: int) -> None:
    from alerts.imports import import_run

    with acting_as("celery:run_import"):
        import_run(import_id=import_id)


@shared_task(ignore_result=True)
def prune() -> dict:
    return services.alerts_prune()
