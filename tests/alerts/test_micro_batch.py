"""Micro-batching in the worker: deliveries waiting are written together; a poison delivery loses no other."""

from datetime import UTC, datetime, timedelta

import pytest

from alerts import services
from alerts.formats import examples
from alerts.models import Alert, Attack, Delivery, Feed

BASE = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _alertmanager(name: str, at: datetime, target: str = "203.0.113.10", receiver: str = "shieldwall") -> bytes:
    """One Alertmanager notification of one firing alert: what a single-alert sender posts."""
    alert = examples.alertmanager_alert(alertname=name, target_ip=target, starts_at=at, fingerprint=f"fp-{name}")
    return examples.body(examples.alertmanager_notification(alert, receiver=receiver))


def _waiting(feed: Feed, count: int, *, name: str = "UDPFlood", first: int = 0) -> list[Delivery]:
    """``count`` deliveries received and waiting in the queue (their messages not yet taken)."""
    deliveries = []
    for i in range(first, first + count):
        body = _alertmanager(f"{name}{i}", BASE + timedelta(seconds=i), target=f"198.51.100.{1 + i}")
        deliveries.append(services.delivery_receive(feed=feed, body=body, headers={}).delivery)
    return deliveries


@pytest.fixture
def feed(make_feed):
    return make_feed("alertmanager")[0]


def test_deliveries_waiting_are_taken_together_and_each_keeps_its_own_outcome(feed, django_capture_on_commit_callbacks):
    deliveries = _waiting(feed, 6)
    with django_capture_on_commit_callbacks(execute=True):
        done = services.deliveries_process_batch(delivery_id=deliveries[0].pk, limit=50, wait_ms=0)
    assert done == [d.pk for d in deliveries]
    for delivery in Delivery.objects.filter(pk__in=done):
        assert (delivery.status, delivery.attempts, delivery.alerts_created) == ("processed", 1, 1)
    assert Alert.objects.filter(feed=feed).count() == 6
    feed.refresh_from_db()
    assert feed.delivery_count == 6
    assert feed.last_delivery_at == max(d.received_at for d in deliveries)
    # Their own messages come later and find nothing to do.
    assert services.deliveries_process_batch(delivery_id=deliveries[3].pk) == []
    assert Delivery.objects.get(pk=deliveries[3].pk).attempts == 1


def test_a_batch_is_bounded_by_its_count(feed):
    deliveries = _waiting(feed, 7)
    done = services.deliveries_process_batch(delivery_id=deliveries[0].pk, limit=3, wait_ms=0)
    assert len(done) == 3
    assert Delivery.objects.filter(status="processed").count() == 3
    assert Delivery.objects.filter(status="pending", attempts=0).count() == 4


def test_repeats_across_deliveries_of_one_batch_fold_into_one_alert_and_one_attack(
    feed, django_capture_on_commit_callbacks
):
    first = services.delivery_receive(feed=feed, body=_alertmanager("UDPFlood", BASE), headers={}).delivery
    # The same alert again, a minute later (Alertmanager's repeat), and another alert on the same target.
    again = services.delivery_receive(
        feed=feed, body=_alertmanager("UDPFlood", BASE, receiver="shieldwall-repeat"), headers={}
    ).delivery
    other = services.delivery_receive(
        feed=feed, body=_alertmanager("SYNFlood", BASE + timedelta(seconds=5)), headers={}
    ).delivery
    with django_capture_on_commit_callbacks(execute=True):
        done = services.deliveries_process_batch(delivery_id=first.pk, wait_ms=0)
    assert done == [first.pk, again.pk, other.pk]
    assert [Delivery.objects.get(pk=pk).alerts_created for pk in done] == [1, 0, 1]
    assert Delivery.objects.get(pk=again.pk).alerts_updated == 1
    assert sorted(Alert.objects.values_list("count", flat=True)) == [1, 2]
    attack = Attack.objects.get()
    assert attack.alert_count == 2
    assert set(Alert.objects.values_list("attack_id", flat=True)) == {attack.pk}


def test_a_poison_delivery_in_a_batch_loses_none_of_the_others(feed, monkeypatch, django_capture_on_commit_callbacks):
    deliveries = _waiting(feed, 5)
    poison = deliveries[2]
    real_upsert = services.alerts_upsert

    def upsert(**kwargs):
        if kwargs["delivery"] is not None and kwargs["delivery"].pk == poison.pk:
            raise RuntimeError("a bug this body triggers")
        return real_upsert(**kwargs)

    monkeypatch.setattr(services, "alerts_upsert", upsert)
    with django_capture_on_commit_callbacks(execute=True):
        done = services.deliveries_process_batch(delivery_id=deliveries[0].pk, wait_ms=0)
    assert done == []  # the batch was given up, then each delivery processed alone
    outcome = {d.pk: d for d in Delivery.objects.all()}
    for delivery in deliveries:
        if delivery.pk == poison.pk:
            continue
        assert outcome[delivery.pk].status == "processed" and outcome[delivery.pk].alerts_created == 1
    bad = outcome[poison.pk]
    # One attempt counted, its error kept; still pending for the sweeper's next try.
    assert (bad.status, bad.attempts) == ("pending", 1)
    assert "RuntimeError: a bug this body triggers" in bad.error
    assert Alert.objects.count() == 4


def test_a_delivery_tried_before_is_processed_alone_never_in_a_batch(feed):
    deliveries = _waiting(feed, 4)
    # A batch that crashed the worker left its deliveries with an attempt counted.
    Delivery.objects.filter(pk=deliveries[0].pk).update(attempts=1)
    assert services.deliveries_process_batch(delivery_id=deliveries[0].pk, wait_ms=0) == [deliveries[0].pk]
    assert Delivery.objects.filter(status="pending").count() == 3
    # ... nor taken into another's batch.
    Delivery.objects.filter(pk=deliveries[1].pk).update(attempts=1)
    done = services.deliveries_process_batch(delivery_id=deliveries[2].pk, wait_ms=0)
    assert done == [deliveries[2].pk, deliveries[3].pk]
    assert Delivery.objects.get(pk=deliveries[1].pk).status == "pending"


def test_batching_off_processes_one_delivery_per_message(feed, settings):
    settings.INGEST_BATCH_MAX = 1
    deliveries = _waiting(feed, 3)
    assert services.deliveries_process_batch(delivery_id=deliveries[0].pk) == [deliveries[0].pk]
    assert Delivery.objects.filter(status="pending").count() == 2
