"""What /healthz reports: can we store (database) and can we enqueue (broker)."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone


def database_status() -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "cannot store"
        return {"ok": False, "error": str(exc)[:200]}
    return {"ok": True, "vendor": connection.vendor, "ms": round((time.perf_counter() - started) * 1000, 2)}


def broker_status() -> dict[str, Any]:
    started = time.perf_counter()
    if not settings.BROKER_URL:
        ok = settings.BROKER_DIR.is_dir()
        return {"ok": ok, "transport": "filesystem", "ms": round((time.perf_counter() - started) * 1000, 2)}
    transport = "rabbitmq" if settings.BROKER_IS_AMQP else "redis"
    try:
        if settings.BROKER_IS_AMQP:
            # The AMQP handshake is the ping: RabbitMQ answers it only when it takes messages.
            with _amqp_connection() as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, timeout=2)
        else:
            _redis_client().ping()
    except Exception as exc:
        return {"ok": False, "transport": transport, "error": str(exc)[:200]}
    return {"ok": True, "transport": transport, "ms": round((time.perf_counter() - started) * 1000, 2)}


def queue_depths(names: tuple[str, ...]) -> dict[str, int | None]:
    """Messages waiting in each named Celery queue, on whichever broker runs; None when unknown.

    Redis: the length of the list named after the queue. RabbitMQ: a passive declare's message
    count (a queue no worker declared yet holds nothing). Filesystem: the broker's files, which
    it does not sort by queue, so every name gets the total.
    """
    if not settings.BROKER_URL:
        folder = settings.BROKER_DIR / "queue"
        total = sum(1 for _ in folder.glob("*")) if folder.is_dir() else None
        return dict.fromkeys(names, total)
    try:
        if not settings.BROKER_IS_AMQP:
            client = _redis_client()
            return {name: client.llen(name) for name in names}
        from amqp.exceptions import NotFound

        depths: dict[str, int | None] = {}
        with _amqp_connection() as connection:
            channel = connection.channel()
            for name in names:
                try:
                    depths[name] = channel.queue_declare(queue=name, passive=True).message_count
                except NotFound:  # RabbitMQ closes the channel on a missing queue
                    depths[name] = 0
                    channel = connection.channel()
        return depths
    except Exception:  # the broker status already says it is down
        return dict.fromkeys(names)


def _redis_client():
    import redis

    return redis.Redis.from_url(settings.BROKER_URL, socket_connect_timeout=1, socket_timeout=1)


def _amqp_connection():
    from kombu import Connection

    return Connection(settings.BROKER_URL, connect_timeout=1, heartbeat=0)


def beat_status() -> dict[str, Any]:
    from console.models import Heartbeat

    try:
        beat = Heartbeat.objects.filter(name="beat").values_list("at", flat=True).first()
    except Exception:
        return {"last": None}
    return {
        "last": beat.isoformat() if beat else None,
        "age_s": int((timezone.now() - beat).total_seconds()) if beat else None,
    }


def health() -> dict[str, Any]:
    db = database_status()
    broker = broker_status()
    if broker["ok"]:
        from console.queues import QUEUES

        broker["queues"] = queue_depths(QUEUES)
    report: dict[str, Any] = {"ok": db["ok"] and broker["ok"], "database": db, "broker": broker}
    if db["ok"]:
        report["beat"] = beat_status()
        for extra in getattr(settings, "HEALTH_EXTRAS", ()):
            module, _, func = extra.rpartition(".")
            report.update(getattr(__import__(module, fromlist=[func]), func)())
    return report
