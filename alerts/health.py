"""What /healthz says about ingestion: deliveries waiting and the ingest queue's depth."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from alerts.models import Delivery


def ingest_status() -> dict[str, Any]:
    pending = Delivery.objects.pending()
    report: dict[str, Any] = {
        "ingest": {
            "pending_deliveries": pending.count(),
            "stale_pending_deliveries": Delivery.objects.stale_pending(settings.INGEST_STALE_SECONDS).count(),
        }
    }
    if settings.REDIS_URL:
        try:
            import redis

            client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
            report["ingest"]["queue_depth"] = client.llen("ingest")
        except Exception:  # noqa: BLE001 - the broker status already says it is down
            report["ingest"]["queue_depth"] = None
    else:
        queue = settings.BROKER_DIR / "queue"
        report["ingest"]["queue_depth"] = sum(1 for _ in queue.glob("*")) if queue.is_dir() else None
    return report
