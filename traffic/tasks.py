from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

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
