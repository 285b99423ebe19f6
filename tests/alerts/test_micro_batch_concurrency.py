"""Micro-batches of two workers at once (PostgreSQL only: SQLite serialises every writer)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections, transaction

from alerts import services
from alerts.formats import examples
from alerts.models import Alert, Attack, Delivery, Feed

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent workers need PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]

BASE = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _feed() -> Feed:
    feed = Feed(name="am", slug="am-batch", format="alertmanager")
    feed.set_secret()
    feed.save()
    return feed


def _waiting(feed: Feed, count: int, targets: int) -> list[int]:
    """Pending deliveries (messages not taken), one alert each, over ``targets`` shared targets."""
    ids = []
    for i in range(count):
        alert = examples.alertmanager_alert(
            alertname=f"Flood{i}",
            target_ip=f"198.51.100.{1 + i % targets}",
            fingerprint=f"fp{i}",
            starts_at=BASE + timedelta(seconds=i),
        )
        body = examples.body(examples.alertmanager_notification(alert))
        ids.append(services.delivery_receive(feed=feed, body=body, headers={}).delivery.pk)
    # Eager tasks processed them on commit: back to waiting, as if the broker held their messages.
    Alert.objects.all().delete()
    Attack.objects.all().delete()
    Delivery.objects.update(status="pending", attempts=0, processed_at=None, alerts_created=0)
    Feed.objects.update(delivery_count=0)
    return ids


def test_a_delivery_another_worker_holds_is_left_to_it(settings):
    feed = _feed()
    held, *others = _waiting(feed, 4, targets=4)
    locked, release = threading.Event(), threading.Event()

    def worker_holding_it() -> None:
        try:
            with transaction.atomic():
                Delivery.objects.select_for_update().filter(pk=held).get()
                locked.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=worker_holding_it)
    thread.start()
    assert locked.wait(timeout=10)
    try:
        # Its own message, arriving while another worker has it, returns at once ...
        assert services.deliveries_process_batch(delivery_id=held, wait_ms=0) == []
        # ... and a batch leaves it out.
        assert services.deliveries_process_batch(delivery_id=others[0], wait_ms=0) == others
    finally:
        release.set()
        thread.join(timeout=30)
    assert Delivery.objects.get(pk=held).status == "pending"
    assert Delivery.objects.filter(pk__in=others, status="processed").count() == 3


def test_two_workers_batching_deliveries_of_shared_attacks_write_each_once(settings):
    feed = _feed()
    ids = _waiting(feed, 120, targets=5)
    done: Counter = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(2)

    def worker(mine: list[int]) -> None:
        try:
            start.wait(timeout=10)
            for delivery_id in mine:  # every message, as the broker hands them out
                got = services.deliveries_process_batch(delivery_id=delivery_id, limit=10, wait_ms=0)
                with lock:
                    done.update(got)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(ids[k::2],)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert Delivery.objects.filter(status="processed").count() == 120
    assert set(done.values()) <= {1}, "a delivery was written by two batches"
    assert Alert.objects.count() == 120
    # Five targets: five attacks, whose folded counts add up to every alert.
    assert Attack.objects.count() == 5
    assert sum(Attack.objects.values_list("alert_count", flat=True)) == 120
    assert Feed.objects.get(pk=feed.pk).delivery_count == 120
