"""What /healthz says about ingestion: deliveries waiting and the critical queue's depth."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from alerts.models import Delivery
from console.health import queue_depths
from console.queues import CRITICAL


def ingest_status() -> dict[str, Any]:
    pending = Delivery.objects.pending()
    report: dict[str, Any] = {
        "ingest": {
            "pending_deliveries": pending.count(),
            "stale_pending_deliveries": Delivery.objects.stale_pending(settings.INGEST_STALE_SECONDS).count(),
        }
    }
    report["ingest"]["queue_depth"] = queue_depths((CRITICAL,))[CRITICAL]
    return report
