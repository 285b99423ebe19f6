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
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot store"
        return {"ok": False, "error": str(exc)[:200]}
    return {"ok": True, "vendor": connection.vendor, "ms": round((time.perf_counter() - started) * 1000, 2)}


def broker_status() -> dict[str, Any]:
    started = time.perf_counter()
    if not settings.REDIS_URL:
        ok = settings.BROKER_DIR.is_dir()
        return {"ok": ok, "transport": "filesystem", "ms": round((time.perf_counter() - started) * 1000, 2)}
    try:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "transport": "redis", "error": str(exc)[:200]}
    return {"ok": True, "transport": "redis", "ms": round((time.perf_counter() - started) * 1000, 2)}


def beat_status() -> dict[str, Any]:
    from console.models import Heartbeat

    try:
        beat = Heartbeat.objects.filter(name="beat").values_list("at", flat=True).first()
    except Exception:  # noqa: BLE001
        return {"last": None}
    return {
        "last": beat.isoformat() if beat else None,
        "age_s": int((timezone.now() - beat).total_seconds()) if beat else None,
    }


def health() -> dict[str, Any]:
    db = database_status()
    broker = broker_status()
    report: dict[str, Any] = {"ok": db["ok"] and broker["ok"], "database": db, "broker": broker}
    if db["ok"]:
        report["beat"] = beat_status()
        for extra in getattr(settings, "HEALTH_EXTRAS", ()):
            module, _, func = extra.rpartition(".")
            report.update(getattr(__import__(module, fromlist=[func]), func)())
    return report
