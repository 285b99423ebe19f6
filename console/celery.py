"""The Celery app: JSON only, late acks with idempotent tasks, time limits, queues by urgency.

Four queues, so that a long capture or a report never waits in front of an alert:

- ``critical``: ingest (a delivery's parsing, the attack summary, the sweeper that
  re-enqueues lost deliveries) and notifications (mail, chat webhooks), and applying an
  approved mitigation;
- ``default``: beat's housekeeping (closing quiet attacks, pruning, SLA checks, drift);
- ``analysis``: PCAP and log parsing (traffic samples, their parts, imports of log files);
- ``reports``: dashboard rollups and report generation (HTML, PDF).

Routes name tasks exactly (``tests/console/test_celery_queues.py`` checks that each route
matches a registered task and that every task lands on a queue some worker consumes).
"""

import os

from celery import Celery, signals
from kombu import Exchange, Queue

from console.queues import (  # noqa: F401 - re-exported: the app's queues and routes
    ANALYSIS,
    CRITICAL,
    DEFAULT,
    QUEUES,
    REPORTS,
    ROUTES,
    broker_is_amqp,
    broker_url_from_env,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")


def task_queues(amqp: bool) -> tuple[Queue, ...]:
    """The four queues. On RabbitMQ they are quorum queues (replicated, durable, at-least-once
    with acks late) behind topic exchanges, which Celery's native delayed delivery needs for
    the countdown of the debounced attack summary; Redis keeps plain direct exchanges."""
    if amqp:
        return tuple(
            Queue(name, Exchange(name, type="topic"), routing_key=name, queue_arguments={"x-queue-type": "quorum"})
            for name in QUEUES
        )
    return tuple(Queue(name, Exchange(name), routing_key=name) for name in QUEUES)


app = Celery("shieldwall")
app.config_from_object("django.conf:settings", namespace="CELERY")
_AMQP = broker_is_amqp(broker_url_from_env())
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
    task_default_queue=DEFAULT,
    task_default_exchange=DEFAULT,
    task_default_exchange_type="topic" if _AMQP else "direct",
    task_default_routing_key=DEFAULT,
    task_default_queue_type="quorum" if _AMQP else "classic",
    task_queues=task_queues(_AMQP),
    task_routes={name: {"queue": queue, "routing_key": queue} for name, queue in ROUTES.items()},
    broker_connection_retry_on_startup=True,
    timezone="UTC",
)
app.autodiscover_tasks()


@signals.celeryd_init.connect
def declare_queues(**_kwargs) -> None:
    """RabbitMQ: a starting worker declares all four queues (exchange, queue, binding), not only
    the ones it consumes. Celery's native delayed delivery (the countdown of the debounced attack
    summary on quorum queues) binds every queue of the app and fails on one never declared; and
    the broker shows the full set from the first worker on. Waits for the broker, as the
    worker's own connection would."""
    if not _AMQP:
        return
    with app.connection_for_write() as connection:
        connection.ensure_connection(interval_start=1, interval_step=1, interval_max=5)
        channel = connection.default_channel
        for queue in app.amqp.queues.values():
            queue.bind(channel).declare()


@signals.task_prerun.connect
def check_database_connections(task: object = None, **_kwargs) -> None:
    """Drop a database connection that died under the worker (a PostgreSQL restart) before the next task.

    Celery's Django fixup reuses connections for CELERY_DB_REUSE_MAX tasks without looking at them,
    so a child whose connection the server closed failed every task until recycled ("connection
    already closed"). Django's own check (CONN_MAX_AGE, CONN_HEALTH_CHECKS) is what a request gets."""
    from django.db import close_old_connections

    if getattr(getattr(task, "request", None), "is_eager", False):
        return  # run inline (tests, eager mode): the caller's connection and transaction are not ours
    close_old_connections()
