"""Two sweepers at once queue each stale delivery once (PostgreSQL only: SQLite serialises every writer)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from alerts import services
from alerts.formats import examples
from alerts.models import Delivery, Feed
from alerts.tasks import process_delivery

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]


def test_concurrent_sweepers_queue_each_stale_delivery_once(monkeypatch, settings):
    settings.INGEST_SWEEP_BATCH = 10_000
    feed = Feed(name="cloudflare feed", slug="cf-sweep", format="cloudflare")
    feed.set_secret()
    feed.save()
    for i in range(400):
        body = examples.body(examples.cloudflare_l4(correlation_id=f"s{i}"))
        services.delivery_receive(feed=feed, body=body, headers={})
    # Processed on commit already (eager tasks): make them pending, stale, their messages lost.
    Delivery.objects.update(status="pending", received_at=timezone.now() - timedelta(minutes=10), queued_at=None)
    sent: Counter = Counter()
    lock = threading.Lock()

    def publish(delivery_id: int) -> None:
        with lock:
            sent.update([delivery_id])

    monkeypatch.setattr(process_delivery, "delay", publish)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def sweep() -> None:
        try:
            start.wait(timeout=10)
            for _ in range(3):
                services.deliveries_requeue_stale()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(sent) == 400
    assert set(sent.values()) == {1}, f"queued twice: {[d for d, n in sent.items() if n > 1][:10]}"
