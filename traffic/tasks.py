from __future__ import annotations

from celery import shared_task
from celery.signals import worker_process_init
from django.db import InterfaceError, OperationalError

import console.celery  # noqa: F401 - our app is the current one before a task is sent (console/__init__.py)
from console.context import acting_as
from traffic import services

# Analysis jobs survive a database restart (retried), and a worker killed mid-job (acks late:
# the message goes back to the queue; the sample sweeper catches what is still lost).
ANALYSIS = {
    "acks_late": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "max_retries": 5,
    "ignore_result": True,
}


@shared_task(**ANALYSIS, soft_time_limit=3000, time_limit=3600)
def parse_sample(sample_id: int) -> None:
    with acting_as("celery:parse_sample"):
        services.sample_parse(sample_id=sample_id)


@shared_task(**ANALYSIS, soft_time_limit=3000, time_limit=3600)
def analyse_part(part_id: int) -> None:
    """One record range of a large capture (traffic/parts.py); the last part queues the merge."""
    from traffic.parts import part_analyse

    with acting_as("celery:analyse_part"):
        part_analyse(part_id=part_id)


@shared_task(**ANALYSIS, soft_time_limit=1200, time_limit=1500)
def merge_parts(sample_id: int) -> None:
    from traffic.parts import parts_merge

    with acting_as("celery:merge_parts"):
        parts_merge(sample_id=sample_id)


@shared_task(ignore_result=True)
def prune() -> int:
    return services.samples_prune()


@shared_task(ignore_result=True)
def sweep_stuck_samples() -> dict:
    with acting_as("celery:sweep_stuck_samples"):
        return services.samples_sweep_stuck()


@worker_process_init.connect(weak=False)
def _warm_geo(**_kwargs: object) -> None:
    """Load the GeoIP data (about 1 s) when a Celery worker process starts, not on its first upload.

    Connected here rather than in the app's ready(): every worker imports its tasks modules
    before its pool starts, and other processes need not import Celery's signals."""
    import threading

    from traffic import geo

    threading.Thread(target=geo.warm, daemon=True, name="geoip-warm").start()
