"""The webhook: authentication, the durable inbox, dedup, dead letters, limits."""

import hashlib
import hmac
import time
import uuid
from datetime import timedelta

import orjson
import pytest
from django.db import OperationalError
from django.utils import timezone

from alerts import services
from alerts.formats import examples
from alerts.models import Alert, Attack, Delivery, DeliveryNonce, Feed


def test_wrong_token_gets_401_and_stores_nothing(client, make_feed):
    feed, _token = make_feed("alertmanager")
    body = examples.body(examples.alertmanager_notification(examples.alertmanager_alert()))
    response = client.post(
        f"/ingest/{feed.slug}/", data=body, content_type="application/json", HTTP_AUTHORIZATION="Bearer nope"
    )
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    no_auth = client.post(f"/ingest/{feed.slug}/", data=body, content_type="application/json")
    assert no_auth.status_code == 401
    assert Delivery.objects.count() == 0
    assert Alert.objects.count() == 0


def test_token_is_stored_hashed_not_as_itself(make_feed):
    feed, token = make_feed("cloudflare")
    stored = Feed.objects.get(pk=feed.pk)
    assert token not in (stored.secret_hash, stored.secret_hint)
    assert stored.secret_hash == hashlib.sha256(token.encode()).hexdigest()
    assert stored.check_secret(token) and not stored.check_secret(token + "x")


def test_malformed_json_is_400_and_kept_as_a_rejected_delivery(post, make_feed, engineer_client):
    feed, token = make_feed("alertmanager")
    response = post(feed, token, b'{"version": "4", "alerts": [')
    assert response.status_code == 400
    assert "malformed JSON" in response.json()["error"]
    delivery = Delivery.objects.get()
    assert delivery.status == "rejected"
    assert bytes(delivery.body) == b'{"version": "4", "alerts": ['
    feed.refresh_from_db()
    assert feed.error_count == 1 and "malformed JSON" in feed.last_error
    page = engineer_client.get(feed.get_absolute_url())
    assert b"malformed JSON" in page.content


def test_well_formed_but_wrong_shape_is_rejected_by_the_parser_with_its_reason(post, make_feed):
    feed, token = make_feed("alertmanager")
    response = post(feed, token, b'{"alerts": 7}')
    assert response.status_code == 202
    delivery = Delivery.objects.get()
    assert delivery.status == "rejected"
    assert delivery.error
    assert Alert.objects.count() == 0


def test_rejected_delivery_can_be_reprocessed_after_a_fix(post, make_feed, django_capture_on_commit_callbacks):
    feed, token = make_feed("generic", options={"mapping": {"title": "message"}})
    post(feed, token, b'{"msg": "SYN flood on 203.0.113.5"}')
    delivery = Delivery.objects.get()
    assert delivery.status == "rejected"
    Feed.objects.filter(pk=feed.pk).update(options={"mapping": {"title": "msg"}})
    with django_capture_on_commit_callbacks(execute=True):
        services.delivery_reprocess(delivery=delivery)
    delivery.refresh_from_db()
    assert delivery.status == "processed"
    assert Alert.objects.get().title == "SYN flood on 203.0.113.5"


def test_duplicate_delivery_is_a_no_op(post, make_feed):
    feed, token = make_feed("alertmanager")
    body = examples.body(examples.alertmanager_notification(examples.alertmanager_alert()))
    first = post(feed, token, body)
    second = post(feed, token, body)
    assert first.status_code == second.status_code == 202
    assert second.json() == {"delivery": first.json()["delivery"], "status": "processed", "duplicate": True}
    assert Delivery.objects.count() == 1
    alert = Alert.objects.get()
    assert alert.count == 1


def test_repeat_of_an_alert_bumps_count_and_last_seen_not_rows(post, make_feed):
    feed, token = make_feed("cloudflare")
    start = timezone.now() - timedelta(minutes=5)
    for pps in (1_000_000, 3_500_000, 2_000_000):
        body = examples.body(examples.cloudflare_l4(pps=pps, correlation_id="c0ffee", at=start))
        assert post(feed, token, body).status_code == 202
    alert = Alert.objects.get()
    assert alert.count == 3
    assert alert.pps == 3_500_000  # the peak, not the last value
    assert alert.last_seen >= alert.first_seen


def test_end_event_resolves_the_open_alert(post, make_feed):
    feed, token = make_feed("cloudflare")
    post(feed, token, examples.body(examples.cloudflare_l4(event="START", correlation_id="abc")))
    post(feed, token, examples.body(examples.cloudflare_l4(event="END", correlation_id="abc")))
    alert = Alert.objects.get()
    assert alert.status == "resolved"
    assert alert.resolved_at is not None
    # A new START with the same id after resolution (sent after the END) opens a new alert;
    # nothing is overwritten. A START older than the END would not (tests/alerts/test_ends.py).
    later = examples.DEFAULT_TIME + timedelta(hours=1)
    post(feed, token, examples.body(examples.cloudflare_l4(event="START", correlation_id="abc", pps=42, at=later)))
    assert Alert.objects.count() == 2
    assert Alert.objects.filter(resolved_at__isnull=True).count() == 1


def test_cloudflare_webhook_auth_header_is_accepted(client, make_feed, django_capture_on_commit_callbacks):
    feed, token = make_feed("cloudflare")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/ingest/{feed.slug}/",
            data=examples.body(examples.cloudflare_l7()),
            content_type="application/json",
            HTTP_CF_WEBHOOK_AUTH=token,
        )
    assert response.status_code == 202
    assert Alert.objects.get().layer == "L7"


def _signed(feed, token, body, stamp, delivery_id=None):
    delivery_id = delivery_id or uuid.uuid4().hex
    signed = f"{stamp}.{delivery_id}.".encode() + body
    signature = hmac.new(feed.signing_key.encode(), signed, hashlib.sha256).hexdigest()
    return {
        "HTTP_X_SHIELDWALL_TIMESTAMP": str(stamp),
        "HTTP_X_SHIELDWALL_DELIVERY": delivery_id,
        "HTTP_X_SHIELDWALL_SIGNATURE": f"sha256={signature}",
    }


def test_hmac_signature_is_checked_and_replays_refused(post, make_feed):
    feed, token = make_feed("cloudflare", signing_key="k3y-for-hmac")
    body = examples.body(examples.cloudflare_l4())
    assert post(feed, token, body).status_code == 401  # unsigned
    now = int(time.time())
    assert post(feed, token, body, **_signed(feed, token, body + b" ", now)).status_code == 401  # tampered
    old = post(feed, token, body, **_signed(feed, token, body, now - 301))
    assert old.status_code == 401 and "replay" in old.json()["error"]
    headers = _signed(feed, token, body, now)
    no_id = {k: v for k, v in headers.items() if k != "HTTP_X_SHIELDWALL_DELIVERY"}
    assert post(feed, token, body, **no_id).status_code == 401  # the delivery id is part of the signature
    other_id = {**headers, "HTTP_X_SHIELDWALL_DELIVERY": "someone-else"}
    assert post(feed, token, body, **other_id).status_code == 401
    assert Delivery.objects.count() == 0
    assert post(feed, token, body, **headers).status_code == 202


def test_replayed_signed_delivery_within_the_window_is_409_and_stores_nothing(post, make_feed):
    """The same signed request sent again (captured on the wire, replayed within 5 minutes): 409."""
    feed, token = make_feed("cloudflare", signing_key="k3y-for-hmac")
    body = examples.body(examples.cloudflare_l4(correlation_id="first"))
    headers = _signed(feed, token, body, int(time.time()), delivery_id="cf-7f3a9c01")
    assert post(feed, token, body, **headers).status_code == 202
    deliveries, alerts = Delivery.objects.count(), Alert.objects.count()
    assert (deliveries, alerts) == (1, 1)
    alert = Alert.objects.get()
    for _ in range(3):
        replay = post(feed, token, body, **headers)
        assert replay.status_code == 409, replay.content
        assert "already received" in replay.json()["error"]
    # Nothing stored: no delivery, no alert, no sighting (count and last seen unchanged).
    assert Delivery.objects.count() == deliveries and Alert.objects.count() == alerts
    fresh = Alert.objects.get()
    assert (fresh.count, fresh.last_seen) == (alert.count, alert.last_seen)
    # A new delivery id (the sender's next delivery, same bytes) is accepted as before.
    assert post(feed, token, body, **_signed(feed, token, body, int(time.time()))).status_code == 202
    assert DeliveryNonce.objects.filter(feed=feed).count() == 2


def test_a_delivery_id_is_forgotten_after_the_window(post, make_feed):
    feed, token = make_feed("cloudflare", signing_key="k3y-for-hmac")
    body = examples.body(examples.cloudflare_l4())
    assert post(feed, token, body, **_signed(feed, token, body, int(time.time()), delivery_id="d1")).status_code == 202
    DeliveryNonce.objects.update(seen_at=timezone.now() - timedelta(hours=1))
    assert services.alerts_prune()["nonces"] == 1
    assert not DeliveryNonce.objects.exists()


def test_body_over_the_limit_is_413(post, make_feed):
    feed, token = make_feed("generic", max_body_bytes=100)
    assert post(feed, token, b"{" + b" " * 200 + b"}").status_code == 413
    assert Delivery.objects.count() == 0


def test_rate_limit_answers_429_with_retry_after(post, make_feed):
    feed, token = make_feed("generic", rate_limit_per_minute=2, options={"mapping": {"title": "t"}})
    codes = [post(feed, token, f'{{"t": "alert {i}"}}'.encode()).status_code for i in range(4)]
    assert codes[:2] == [202, 202]
    assert codes[2:] == [429, 429]
    assert Delivery.objects.count() == 2


def test_database_down_answers_503_never_2xx(client, make_feed, monkeypatch):
    feed, token = make_feed("generic")

    def broken(**kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(services, "delivery_receive", broken)
    response = client.post(
        f"/ingest/{feed.slug}/", data=b'{"t": 1}', content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 503


def test_delivery_is_stored_before_parsing_and_stays_pending_without_a_worker(client, make_feed, settings):
    """The inbox: with the broker down, the delivery is in the database, pending, for the sweeper."""
    feed, token = make_feed("alertmanager")
    body = examples.body(examples.alertmanager_notification(examples.alertmanager_alert()))
    response = client.post(
        f"/ingest/{feed.slug}/", data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )  # on-commit callbacks not run: no worker picked it up
    assert response.status_code == 202
    delivery = Delivery.objects.get()
    assert delivery.status == "pending"
    Delivery.objects.filter(pk=delivery.pk).update(received_at=timezone.now() - timedelta(minutes=5))
    assert services.deliveries_requeue_stale() == 1  # eager: processed right away
    delivery.refresh_from_db()
    assert delivery.status == "processed"
    assert Alert.objects.count() == 1


def test_sweeper_stops_at_a_broker_that_is_down_and_leaves_deliveries_pending(make_feed, monkeypatch):
    feed, _ = make_feed("cloudflare")
    for i in range(3):
        services.delivery_receive(
            feed=feed, body=examples.body(examples.cloudflare_l4(correlation_id=f"c{i}")), headers={}
        )
    Delivery.objects.update(status="pending", received_at=timezone.now() - timedelta(minutes=5))
    from alerts.tasks import process_delivery

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(process_delivery, "delay", broker_down)
    assert services.deliveries_requeue_stale() == 0
    assert set(Delivery.objects.values_list("status", flat=True)) == {"pending"}
    monkeypatch.undo()
    assert services.deliveries_requeue_stale() == 3
    assert set(Delivery.objects.values_list("status", flat=True)) == {"processed"}


def test_webhook_accepts_while_the_rate_limit_cache_is_down(client, make_feed, monkeypatch):
    """Redis down: the rate limit cannot be counted, and refusing would lose the alert."""
    feed, token = make_feed("alertmanager")

    def cache_down(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379")

    monkeypatch.setattr(services.cache, "add", cache_down)
    body = examples.body(examples.alertmanager_notification(examples.alertmanager_alert()))
    response = client.post(
        f"/ingest/{feed.slug}/", data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 202
    assert Delivery.objects.get().pk == response.json()["delivery"]


def _received_and_processed(feed: Feed, body: bytes) -> Delivery:
    delivery = services.delivery_receive(feed=feed, body=body, headers={}).delivery
    services.delivery_process(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    return delivery


def test_text_postgresql_cannot_store_is_cleaned_not_lost(make_feed):
    """PostgreSQL refuses NUL in text and jsonb: such an alert once failed its delivery on every retry."""
    feed, _ = make_feed("generic")
    body = b'[{"title": "nul\\u0000in title", "target_host": "a.example", "label-\\u0000": "v\\u0000"}]'
    delivery = _received_and_processed(feed, body)
    assert delivery.status == "processed", delivery.error
    alert = Alert.objects.get()
    assert alert.title == "nulin title"
    assert "\\u0000" not in orjson.dumps(alert.raw).decode()

    text_feed, _ = make_feed("fastnetmon", slug="fnm-text")
    body = examples.fastnetmon_text().encode() + b"\x00 trailing NUL\n"
    delivery = _received_and_processed(text_feed, body)
    assert delivery.status == "processed", delivery.error


def test_a_lone_surrogate_is_a_dead_letter_with_its_reason(make_feed):
    feed, _ = make_feed("generic")
    body = b'[{"title": "lone \\ud800 surrogate", "target_host": "a.example"}]'
    delivery = _received_and_processed(feed, body)
    assert delivery.status == "rejected" and "surrogate" in delivery.error


def test_processing_twice_is_idempotent(make_feed):
    feed, _ = make_feed("cloudflare")
    received = services.delivery_receive(feed=feed, body=examples.body(examples.cloudflare_l4()), headers={})
    services.delivery_process(delivery_id=received.delivery.pk)
    services.delivery_process(delivery_id=received.delivery.pk)
    assert Alert.objects.get().count == 1


def test_unknown_or_disabled_feed_is_404(client, make_feed):
    feed, token = make_feed("generic", enabled=False)
    assert client.post("/ingest/nope/", data=b"{}", content_type="application/json").status_code == 404
    assert (
        client.post(
            f"/ingest/{feed.slug}/", data=b"{}", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
        ).status_code
        == 404
    )


@pytest.mark.parametrize(
    ("payload", "expected_customer"),
    [
        (examples.cloudflare_l7(zone="acme.example", hostname="shop.acme.example"), "acme"),
        (examples.cloudflare_l4(target_ip="203.0.113.77"), "acme"),
        (examples.cloudflare_l4(target_ip="192.0.2.1"), None),
    ],
)
def test_alerts_map_to_customers_by_zone_or_prefix_or_go_unassigned(
    post, make_feed, customer_a, payload, expected_customer
):
    feed, token = make_feed("cloudflare")
    post(feed, token, examples.body(payload))
    alert = Alert.objects.get()
    assert (alert.customer.slug if alert.customer else None) == expected_customer
    if expected_customer:
        assert alert.asset is not None


def test_alertmanager_customer_label_maps_the_customer(post, make_feed, customer_b):
    feed, token = make_feed("alertmanager")
    alert = examples.alertmanager_alert(zone="globex", target_ip="192.0.2.9")
    post(feed, token, examples.body(examples.alertmanager_notification(alert)))
    assert Alert.objects.get().customer == customer_b


def test_alerts_of_one_target_close_in_time_form_one_attack(post, make_feed, customer_a):
    cf, cf_token = make_feed("cloudflare")
    am, am_token = make_feed("alertmanager")
    now = timezone.now()
    post(
        cf,
        cf_token,
        examples.body(examples.cloudflare_l4(target_ip="203.0.113.10", pps=2e6, correlation_id="a1", at=now)),
    )
    post(
        am,
        am_token,
        examples.body(
            examples.alertmanager_notification(
                examples.alertmanager_alert(target_ip="203.0.113.10", pps=5e6, starts_at=now + timedelta(minutes=3))
            )
        ),
    )
    # Another target: another attack.
    post(cf, cf_token, examples.body(examples.cloudflare_l4(target_ip="203.0.113.99", correlation_id="b2", at=now)))
    attack = Attack.objects.get(target="203.0.113.10")
    assert attack.alerts.count() == 2
    assert attack.customer == customer_a
    assert attack.peak_pps == 5e6
    assert attack.ongoing
    assert set(attack.vectors) == {"udp_flood", "syn_flood"}
    assert "enterprise plan" in attack.urgency_reasons
    assert Attack.objects.count() == 2


def test_attack_ends_when_its_alerts_are_resolved_and_it_goes_quiet(post, make_feed, customer_a):
    feed, token = make_feed("cloudflare")
    start = timezone.now() - timedelta(hours=1)
    post(feed, token, examples.body(examples.cloudflare_l4(event="START", correlation_id="q", at=start)))
    post(feed, token, examples.body(examples.cloudflare_l4(event="END", correlation_id="q", at=start)))
    attack = Attack.objects.get()
    assert not attack.ongoing
    assert attack.ended_at is not None


def test_urgency_explains_magnitude_against_the_customers_usual_peak(post, make_feed, customer_a):
    past = timezone.now() - timedelta(days=3)
    Attack.objects.create(
        customer=customer_a, target="203.0.113.1", started_at=past, last_seen=past, ongoing=False, peak_pps=100_000
    )
    feed, token = make_feed("cloudflare")
    post(feed, token, examples.body(examples.cloudflare_l4(target_ip="203.0.113.10", pps=1_400_000)))
    alert = Alert.objects.get()
    assert "14x this customer's usual peak" in alert.urgency_reasons
    assert "enterprise plan" in alert.urgency_reasons
    assert alert.urgency >= 80


def test_identical_notification_in_a_later_window_is_a_sighting_not_a_retry(post, make_feed):
    import time_machine

    feed, token = make_feed("alertmanager")
    body = examples.body(examples.alertmanager_notification(examples.alertmanager_alert()))
    with time_machine.travel(timezone.now(), tick=False) as clock:
        post(feed, token, body)
        post(feed, token, body)  # the sender's retry: a no-op
        first_seen = Alert.objects.get().last_seen
        clock.shift(timedelta(minutes=6))
        post(feed, token, body)  # Alertmanager's repeat_interval re-sends the same bytes
    alert = Alert.objects.get()
    assert alert.count == 2
    assert alert.last_seen > first_seen
    assert Delivery.objects.count() == 2
