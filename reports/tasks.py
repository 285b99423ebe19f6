"""Celery tasks of the dashboards and reports.

Each keeps the name it had when it lived in ``console.tasks``: messages queued by a worker of
the previous release, and the beat schedule and routes, still find it.
"""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_process_init
from django.conf import settings
from django.db import InterfaceError, OperationalError

import console.celery  # noqa: F401 - our app is the current one before a task is sent (console/__init__.py)
from console.context import acting_as

TRANSIENT = (OperationalError, InterfaceError)
REPORTS_QUEUE = "reports"


@shared_task(
    name="console.tasks.refresh_rollups",
    acks_late=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    max_retries=5,
    soft_time_limit=600,
    time_limit=660,
    ignore_result=True,
)
def refresh_rollups() -> None:
    """Beat: fold new and changed alerts and attacks into the dashboard rollups (resumable, rerunnable)."""
    from reports import dashboards

    with acting_as("celery:refresh_rollups"):
        dashboards.rollups_refresh()


@shared_task(
    name="console.tasks.generate_report",
    acks_late=True,
    autoretry_for=TRANSIENT,
    retry_backoff=5,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=300,
    time_limit=360,
    ignore_result=True,
)
def generate_report(report_id: int, send: bool = False) -> None:
    """Build one report (figures, HTML, PDF) with progress on its row; email it when asked.

    Sent to the "reports" queue (``REPORTS_QUEUE``) so a slow PDF never delays ingestion.
    """
    from reports import services

    with acting_as("celery:generate_report"):
        services.report_generate(report_id=report_id, send=send)


@shared_task(
    name="console.tasks.schedule_reports",
    acks_late=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    max_retries=5,
    ignore_result=True,
)
def schedule_reports() -> None:
    """Beat: create (once) and queue each customer's weekly and monthly reports, emailed when built."""
    from reports import services

    with acting_as("celery:schedule_reports"):
        services.reports_schedule()


def warms_report_browser(consumed: set[str]) -> bool:
    """Whether a worker process consuming the queues ``consumed`` starts Chromium at once.

    Only a worker of the reports queue alone (compose's ``reports`` worker, one process): a
    worker of every queue (``runconsole``) would start a browser in each of its processes for
    the odd report, and keeps starting it with its first PDF."""
    return bool(settings.REPORT_PDF and settings.REPORT_PDF_WARM and consumed == {REPORTS_QUEUE})


@worker_process_init.connect(weak=False)
def _warm_report_browser(**_kwargs: object) -> None:
    """The reports worker's process starts Chromium as it starts, not under its first report."""
    # The queues of ``-Q`` (every queue without it), selected before the pool forked.
    if warms_report_browser(set(console.celery.app.amqp.queues.consume_from)):
        from reports import pdf

        pdf.warm()
