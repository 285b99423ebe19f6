"""Poison deliveries: refused at the webhook, dead letters after bounded attempts, one re-queue per staleness,
and a batch that keeps its good records when one is broken."""

import hashlib
from collections import Counter
from datetime import timedelta

import orjson
import pytest
from django.db import OperationalError
from django.urls import reverse
from django.utils import timezone

from alerts import services
from alerts.formats import examples
from alerts.models import Alert, Delivery, Feed
from alerts.tasks import process_delivery
from console.models import AuditEvent


def _nested(depth: int) -> bytes:
    """An Alertmanager v4 notification whose one alert carries an annotation nested ``depth`` levels in all."""
    body = examples.body(examples.alertmanager_notification(examples.alertmanager_alert()))
    inner = b'{"x":' * (depth - 4) + b'"deep"' + b"}" * (depth - 4)
    return body.replace(b'"annotations":{', b'"annotations":{"deep":' + inner + b",", 1)


def _store_directly(feed: Feed, body: bytes, **fields) -> Delivery:
    """A delivery as an older release stored it: pending, never looked at by today's webhook."""
    digest = hashlib.sha256(body + repr(fields).encode()).hexdigest()
    return Delivery.objects.create(feed=feed, body=body, body_sha256=digest, **fields)


def _make_stale(*deliveries: Delivery) -> None:
    long_ago = timezone.now() - timedelta(minutes=10)
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(received_at=long_ago, queued_at=None)


def test_a_delivery_nested_1000_deep_is_refused_at_the_webhook_and_nothing_stored(post, make_feed):
    feed, token = make_feed("alertmanager")
    response = post(feed, token, _nested(1_000))
    assert response.status_code == 400
    assert response.json()["error"] == (
        "refused: JSON nested 1000 levels deep; the limit is 64 (INGEST_MAX_JSON_DEPTH); nothing was stored"
    )
    assert Delivery.objects.count() == 0
    ok = post(feed, token, _nested(64))
    assert ok.status_code == 202 and Alert.objects.count() == 1


def test_the_depth_limit_is_a_setting(post, make_feed, settings):
    settings.INGEST_MAX_JSON_DEPTH = 8
    feed, token = make_feed("generic")
    assert post(feed, token, b'[{"title": "x", "a": [[[[[[[[1]]]]]]]]}]').status_code == 400
    assert post(feed, token, b'[{"title": "[[[[[[[[[[ in a string is no depth"}]').status_code == 202


def test_a_deep_body_already_stored_is_rejected_with_its_reason_on_its_page(make_feed, engineer_client):
    feed, _ = make_feed("alertmanager")
    delivery = _store_directly(feed, _nested(1_000))
    services.delivery_process(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "rejected"
    assert delivery.error == "JSON nested 1000 levels deep; the limit is 64 (INGEST_MAX_JSON_DEPTH)"
    page = engineer_client.get(reverse("delivery-detail", args=[delivery.pk]))
    assert b"JSON nested 1000 levels deep" in page.content
    assert b"JSON nested 1000 levels deep" in engineer_client.get(feed.get_absolute_url()).content


def test_a_delivery_that_crashes_processing_is_a_dead_letter_after_its_attempts(make_feed, engineer_client, settings):
    """The review's poison: 500 levels parse, then orjson.dumps (255 levels) crashed every attempt, for ever."""
    settings.INGEST_MAX_JSON_DEPTH = 2_000  # an operator who raised the limit too far
    feed, _ = make_feed("alertmanager")
    delivery = _store_directly(feed, _nested(500))
    for attempt in (1, 2):
        _make_stale(delivery)
        assert services.deliveries_requeue_stale() == 1  # eager: the task runs now
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("pending", attempt)
        assert delivery.error.startswith(f"attempt {attempt} of 3 failed: TypeError: Recursion limit reached")
    _make_stale(delivery)
    services.deliveries_requeue_stale()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("rejected", 3)
    assert delivery.error.startswith("gave up after 3 attempts; the last one failed: TypeError: Recursion limit")
    _make_stale(delivery)
    assert services.deliveries_requeue_stale() == 0  # a dead letter is never re-queued
    feed.refresh_from_db()
    assert feed.error_count == 1 and feed.last_error.startswith("gave up after 3 attempts")
    page = engineer_client.get(reverse("delivery-detail", args=[delivery.pk])).content.decode()
    assert "gave up after 3 attempts" in page and "Reprocess" in page
    listing = engineer_client.get(f"{feed.get_absolute_url()}?status=rejected").content.decode()
    assert "gave up after 3 attempts" in listing


def test_attempts_that_killed_the_worker_still_count(make_feed):
    """A worker killed mid-attempt records nothing itself: the next attempt sees the count and gives up."""
    feed, _ = make_feed("alertmanager")
    body = examples.body(examples.alertmanager_notification(examples.alertmanager_alert()))
    delivery = _store_directly(feed, body, attempts=3)
    services.delivery_process(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "rejected" and delivery.attempts == 3
    assert "the worker stopped while processing it" in delivery.error
    assert Alert.objects.count() == 0


def test_a_lost_database_connection_costs_no_attempt(make_feed, monkeypatch):
    feed, _ = make_feed("alertmanager")
    body = examples.body(examples.alertmanager_notification(examples.alertmanager_alert()))
    delivery = _store_directly(feed, body)

    def connection_lost(delivery_id):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "_delivery_process", connection_lost)
    for _ in range(5):
        with pytest.raises(OperationalError):
            services.delivery_process(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)


def test_reprocessing_a_dead_letter_gives_it_its_attempts_back_and_is_audited(
    make_feed, engineer, engineer_client, django_capture_on_commit_callbacks
):
    feed, _ = make_feed("alertmanager")
    body = examples.body(examples.alertmanager_notification(examples.alertmanager_alert()))
    delivery = _store_directly(feed, body, status="rejected", attempts=3, error="gave up after 3 attempts; <b>boom</b>")
    page = engineer_client.get(reverse("delivery-detail", args=[delivery.pk])).content.decode()
    assert "&lt;b&gt;boom&lt;/b&gt;" in page and "<b>boom</b>" not in page
    with django_capture_on_commit_callbacks(execute=True):
        response = engineer_client.post(f"/api/deliveries/{delivery.pk}/reprocess/")
    assert response.status_code == 202
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.error) == ("processed", 1, "")
    event = AuditEvent.objects.get(action="delivery.reprocess")
    assert event.before["attempts"] == 3 and event.after["attempts"] == 0
    assert event.actor == engineer


@pytest.fixture
def published(monkeypatch):
    """Messages the sweeper publishes, by delivery id, with no worker taking them (a backlog)."""
    sent: Counter = Counter()
    monkeypatch.setattr(process_delivery, "delay", lambda delivery_id: sent.update([delivery_id]))
    return sent


def test_the_sweeper_queues_each_stale_delivery_once_per_staleness(make_feed, published, settings):
    settings.INGEST_SWEEP_BATCH = 40
    feed, _ = make_feed("cloudflare")
    deliveries = [
        services.delivery_receive(
            feed=feed, body=examples.body(examples.cloudflare_l4(correlation_id=f"c{i}")), headers={}
        ).delivery
        for i in range(100)
    ]
    published.clear()  # the arrival's own messages: lost with the broker, say
    _make_stale(*deliveries)
    passes = [services.deliveries_requeue_stale() for _ in range(6)]
    assert passes == [40, 40, 20, 0, 0, 0]  # bounded per pass; a backlog drains, never re-queued while waiting
    assert set(published.values()) == {1} and len(published) == 100
    # Their messages are still waiting after another staleness period: each is queued once more.
    Delivery.objects.update(queued_at=timezone.now() - timedelta(minutes=5))
    passes = [services.deliveries_requeue_stale() for _ in range(5)]
    assert passes == [40, 40, 20, 0, 0]
    assert set(published.values()) == {2}
    assert set(Delivery.objects.values_list("status", flat=True)) == {"pending"}


def test_a_sweeper_that_lost_the_race_queues_nothing(make_feed, published, monkeypatch):
    """Two sweepers read the same stale ids; the compare-and-set lets one of them publish."""
    feed, _ = make_feed("cloudflare")
    for i in range(5):
        services.delivery_receive(
            feed=feed, body=examples.body(examples.cloudflare_l4(correlation_id=f"r{i}")), headers={}
        )
    published.clear()
    _make_stale(*Delivery.objects.all())
    stale_ids = list(Delivery.objects.values_list("pk", flat=True))
    real_update = services.Delivery.objects.stale_pending

    def other_sweeper_first(older_than_seconds):
        queryset = real_update(older_than_seconds)
        list(queryset.values_list("pk", flat=True))  # this pass reads its candidates ...
        Delivery.objects.filter(pk__in=stale_ids).update(queued_at=timezone.now())  # ... the other one claims them
        return queryset

    monkeypatch.setattr(services.Delivery.objects, "stale_pending", other_sweeper_first)
    assert services.deliveries_requeue_stale() == 0
    assert published == Counter()


def test_the_sweeper_gives_back_what_the_broker_did_not_take(make_feed, monkeypatch):
    feed, _ = make_feed("cloudflare")
    for i in range(3):
        services.delivery_receive(
            feed=feed, body=examples.body(examples.cloudflare_l4(correlation_id=f"b{i}")), headers={}
        )
    _make_stale(*Delivery.objects.all())
    monkeypatch.setattr(process_delivery, "delay", lambda delivery_id: (_ for _ in ()).throw(ConnectionError()))
    assert services.deliveries_requeue_stale() == 0
    monkeypatch.undo()
    assert services.deliveries_requeue_stale() == 3  # stale at once, not after another period
    assert set(Delivery.objects.values_list("status", flat=True)) == {"processed"}


def _alertmanager_group_with_broken_alerts() -> bytes:
    """Four firing alerts of one group as Alertmanager posts them; the second and fourth are broken."""
    alerts = [examples.alertmanager_alert(target_ip=f"203.0.113.{n}", fingerprint=f"am{n}") for n in range(1, 5)]
    alerts[1]["status"] = "<script>alert(1)</script>"
    alerts[3]["labels"]["instance"] = "MARK"
    notification = examples.alertmanager_notification(*alerts[:1], alerts[2])
    notification["alerts"] = alerts
    return examples.body(notification).replace(b'"MARK"', b'"edge-\\udc80"')


def test_alertmanager_batch_with_broken_alerts_keeps_the_good_ones_and_names_the_others(
    post, make_feed, engineer_client
):
    feed, token = make_feed("alertmanager")
    response = post(feed, token, _alertmanager_group_with_broken_alerts())
    assert response.status_code == 202
    refused = response.json()["refused"]
    assert [r["record"] for r in refused] == ["alerts[1]", "alerts[3]"]
    assert "neither firing nor resolved" in refused[0]["reason"]
    assert "labels.instance" in refused[1]["reason"] and "surrogate" in refused[1]["reason"]
    assert sorted(Alert.objects.values_list("target_ip", flat=True)) == ["203.0.113.1", "203.0.113.3"]
    delivery = Delivery.objects.get()
    assert delivery.status == "processed" and delivery.refused == refused
    page = engineer_client.get(reverse("delivery-detail", args=[delivery.pk])).content.decode()
    assert "alerts[1]" in page and "alerts[3]" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    listing = engineer_client.get(feed.get_absolute_url()).content.decode()
    assert "2 refused" in listing


def test_generic_and_suricata_batches_keep_their_good_records(post, make_feed):
    generic, token = make_feed("generic", slug="gen")
    body = orjson.dumps([{"title": "SYN flood", "target_ip": "203.0.113.7"}, {"no": "title"}, 7])
    assert post(generic, token, body).status_code == 202
    delivery = Delivery.objects.get(feed=generic)
    assert delivery.status == "processed" and delivery.alerts_created == 1
    assert [r["record"] for r in delivery.refused] == ["record 1", "record 2"]

    suricata, token = make_feed("suricata", slug="eve")
    good = examples.body(examples.suricata_alert())
    assert post(suricata, token, good + b"\n" + good[:30] + b"\n").status_code == 202
    delivery = Delivery.objects.get(feed=suricata)
    assert delivery.status == "processed" and delivery.alerts_created == 1
    assert [r["record"] for r in delivery.refused] == ["line 2"]
