"""The Celery app: JSON only, late acks with idempotent tasks, time limits, three queues."""

import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

QUEUES = ("default", "ingest", "analysis", "reports")

app = Celery("shieldwall")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_soft_time_limit=300,
    task_time_limit=360,
    task_default_queue="default",
    task_default_exchange="default",
    task_default_routing_key="default",
    task_queues=tuple(Queue(name, Exchange(name), routing_key=name) for name in QUEUES),
    task_routes={
        "alerts.tasks.*": {"queue": "ingest", "routing_key": "ingest"},
        "traffic.tasks.*": {"queue": "analysis", "routing_key": "analysis"},
        "console.tasks.report_*": {"queue": "reports", "routing_key": "reports"},
    },
    broker_connection_retry_on_startup=True,
    timezone="UTC",
)
app.autodiscover_tasks()
