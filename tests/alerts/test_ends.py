"""Every alert and attack ends: end events, auto-resolve, quiet attacks; reprocessing never resurrects."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from alerts import services
from alerts.formats import examples
from alerts.models import Alert, Attack, Delivery

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _deliver(feed, payload, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        received = services.delivery_receive(feed=feed, body=examples.body(payload), headers={})
    return Delivery.objects.get(pk=received.delivery.pk)


def _reprocess(delivery, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.delivery_reprocess(delivery=delivery)
    return Delivery.objects.get(pk=delivery.pk)


def _l7_without_end(**kw):
    """Cloudflare's ``dos_attack_l7``: one notification per attack, never an END."""
    payload = examples.cloudflare_l7(alert_type="dos_attack_l7", **kw)
    payload.pop("alert_event")
    payload.pop("alert_correlation_id")
    return payload


def test_end_event_resolves_the_alert_and_the_attack_says_it_ended_and_when(
    make_feed, customer_a, django_capture_on_commit_callbacks
):
    feed, _ = make_feed("cloudflare")
    start = timezone.now() - timedelta(minutes=20)
    _deliver(feed, examples.cloudflare_l4(target_ip="203.0.113.10", at=start), django_capture_on_commit_callbacks)
    assert Attack.objects.get().ongoing
    _deliver(
        feed,
        examples.cloudflare_l4(target_ip="203.0.113.10", at=start, event="END"),
        django_capture_on_commit_callbacks,
    )
    alert = Alert.objects.get()
    assert alert.status == Alert.Status.RESOLVED
    assert alert.ended_at == (start + timedelta(minutes=17)).replace(microsecond=0)
    attack = Attack.objects.get()
    assert not attack.ongoing
    assert attack.ended_at == alert.ended_at
    assert attack.summary["ended"] == {"at": attack.ended_at.isoformat(), "reason": "all its alerts resolved"}


def test_suricata_alert_auto_resolves_at_the_thirtieth_minute_without_a_repeat(
    make_feed, customer_a, django_capture_on_commit_callbacks
):
    feed, _ = make_feed("suricata")  # Suricata never sends an end: on by default, 30 minutes
    assert feed.auto_resolve_after() == timedelta(minutes=30)
    with time_machine.travel(T0, tick=False) as clock:
        event = examples.suricata_alert(src_ip="185.220.101.47", dest_ip="203.0.113.7", at=T0)
        _deliver(feed, examples.eve_lines(event), django_capture_on_commit_callbacks)
        clock.move_to(T0 + timedelta(minutes=10))
        repeat = examples.suricata_alert(src_ip="185.220.101.47", dest_ip="203.0.113.7", at=T0 + timedelta(minutes=10))
        _deliver(feed, examples.eve_lines(repeat), django_capture_on_commit_callbacks)  # the clock starts again
        seen = T0 + timedelta(minutes=10)
        clock.move_to(seen + timedelta(minutes=29, seconds=59))
        assert services.alerts_auto_resolve() == 0
        assert Alert.objects.get().resolved_at is None
        clock.move_to(seen + timedelta(minutes=30))
        assert services.alerts_auto_resolve() == 1
        assert services.alerts_auto_resolve() == 0  # idempotent
    alert = Alert.objects.get()
    assert alert.status == Alert.Status.RESOLVED
    assert alert.resolved_at == seen + timedelta(minutes=30)
    assert alert.ended_at == seen
    attack = Attack.objects.get()
    assert not attack.ongoing
    assert attack.ended_at == seen


def test_cloudflare_types_without_an_end_auto_resolve_while_start_end_types_wait_for_their_end(
    make_feed, customer_a, django_capture_on_commit_callbacks
):
    feed, _ = make_feed("cloudflare")
    with time_machine.travel(T0, tick=False) as clock:
        _deliver(
            feed,
            _l7_without_end(zone="acme.example", hostname="www.acme.example", at=T0),
            django_capture_on_commit_callbacks,
        )
        _deliver(feed, examples.cloudflare_l4(target_ip="203.0.113.10", at=T0), django_capture_on_commit_callbacks)
        clock.move_to(T0 + timedelta(minutes=31))
        assert services.alerts_auto_resolve() == 1
    assert Alert.objects.get(resolved_at__isnull=False).labels["alert_type"] == "dos_attack_l7"
    assert Alert.objects.get(resolved_at__isnull=True).labels["alert_type"] == "advanced_ddos_attack_l4_alert"


def test_a_feed_setting_overrides_the_format_default(make_feed, customer_a, django_capture_on_commit_callbacks):
    never, _ = make_feed("suricata", slug="never", auto_resolve_minutes=0)
    quick, _ = make_feed("alertmanager", slug="quick", auto_resolve_minutes=5)
    assert never.auto_resolve_after() is None
    with time_machine.travel(T0, tick=False) as clock:
        _deliver(
            never,
            examples.eve_lines(examples.suricata_alert(dest_ip="203.0.113.7", at=T0)),
            django_capture_on_commit_callbacks,
        )
        _deliver(
            quick,
            examples.alertmanager_notification(examples.alertmanager_alert(starts_at=T0)),
            django_capture_on_commit_callbacks,
        )
        clock.move_to(T0 + timedelta(minutes=4, seconds=59))
        assert services.alerts_auto_resolve() == 0
        clock.move_to(T0 + timedelta(minutes=5))
        assert services.alerts_auto_resolve() == 1
        clock.move_to(T0 + timedelta(days=2))
        assert services.alerts_auto_resolve() == 0
    assert Alert.objects.get(feed=quick).status == Alert.Status.RESOLVED
    assert Alert.objects.get(feed=never).resolved_at is None


def test_attack_quiet_past_the_gap_ends_though_its_alert_never_did(
    make_feed, customer_a, django_capture_on_commit_callbacks
):
    feed, _ = make_feed("alertmanager")  # has end events: no auto-resolve by default
    with time_machine.travel(T0, tick=False) as clock:
        _deliver(
            feed,
            examples.alertmanager_notification(examples.alertmanager_alert(starts_at=T0)),
            django_capture_on_commit_callbacks,
        )
        clock.move_to(T0 + timedelta(minutes=14))
        assert services.attacks_close_quiet() == 0
        clock.move_to(T0 + timedelta(minutes=15, seconds=1))
        assert services.attacks_close_quiet() == 1
    attack = Attack.objects.get()
    assert not attack.ongoing
    assert attack.ended_at == T0
    assert attack.summary["ended"]["reason"] == "no alert for 15 minutes"


def test_reprocessing_an_old_delivery_never_resurrects_an_alert_a_newer_end_resolved(
    make_feed, customer_a, django_capture_on_commit_callbacks
):
    feed, _ = make_feed("cloudflare")
    start = timezone.now() - timedelta(hours=1)
    first = _deliver(feed, examples.cloudflare_l4(at=start), django_capture_on_commit_callbacks)
    _deliver(feed, examples.cloudflare_l4(at=start, event="END"), django_capture_on_commit_callbacks)
    again = _reprocess(first, django_capture_on_commit_callbacks)
    assert again.status == Delivery.Status.PROCESSED
    assert again.alerts_created == 0
    assert again.skipped == {services.STALE_SKIP: 1}
    alert = Alert.objects.get()
    assert alert.status == Alert.Status.RESOLVED
    assert not Attack.objects.get().ongoing
    # A new START after the end is a new occurrence: a new open alert.
    _deliver(feed, examples.cloudflare_l4(at=start + timedelta(minutes=40)), django_capture_on_commit_callbacks)
    assert Alert.objects.filter(resolved_at__isnull=True).count() == 1
    assert Alert.objects.count() == 2


def test_an_old_end_reprocessed_does_not_close_a_newer_occurrence(
    make_feed, customer_a, django_capture_on_commit_callbacks
):
    feed, _ = make_feed("cloudflare")
    start = timezone.now() - timedelta(hours=2)
    _deliver(feed, examples.cloudflare_l4(at=start), django_capture_on_commit_callbacks)
    end = _deliver(feed, examples.cloudflare_l4(at=start, event="END"), django_capture_on_commit_callbacks)
    _deliver(feed, examples.cloudflare_l4(at=start + timedelta(hours=1)), django_capture_on_commit_callbacks)
    _reprocess(end, django_capture_on_commit_callbacks)
    reopened = Alert.objects.get(resolved_at__isnull=True)
    assert reopened.event_time == (start + timedelta(hours=1)).replace(microsecond=0)
