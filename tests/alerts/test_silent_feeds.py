"""A feed silent for longer than its expected interval raises an alert of its own, resolved when it speaks again."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from alerts import services
from alerts.feeds import SILENT_VECTOR, feeds_check_silent
from alerts.formats import examples
from alerts.models import Alert, Feed

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_silent_feed_raises_one_alert_that_repeats_and_resolves_when_deliveries_resume(
    make_feed, customer_a, django_capture_on_commit_callbacks
):
    with time_machine.travel(T0, tick=False) as clock:
        feed, _ = make_feed("alertmanager", expected_interval_minutes=30, customer=customer_a)
        quiet, _ = make_feed("suricata", slug="no-expectation")
        clock.move_to(T0 + timedelta(minutes=29))
        assert feeds_check_silent() == 0
        clock.move_to(T0 + timedelta(minutes=31))
        assert feeds_check_silent() == 1
        clock.move_to(T0 + timedelta(minutes=32))
        assert feeds_check_silent() == 1  # still silent: the same alert, seen again
        alert = Alert.objects.get(vector=SILENT_VECTOR)
        assert alert.count == 2
        assert alert.title == "Feed alertmanager feed silent for more than 30 minutes"
        assert alert.customer == customer_a
        assert alert.status == Alert.Status.NEW and alert.severity == "high"
        assert Feed.objects.get(pk=feed.pk).health() == "silent"

        clock.move_to(T0 + timedelta(minutes=40))
        with django_capture_on_commit_callbacks(execute=True):
            received = services.delivery_receive(
                feed=feed,
                body=examples.body(examples.alertmanager_notification(examples.alertmanager_alert())),
                headers={},
            )
        assert received.created
        assert feeds_check_silent() == 0
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED
    assert alert.ended_at == T0 + timedelta(minutes=40)
    assert Feed.objects.get(pk=feed.pk).health() == "ok"
    assert not Alert.objects.filter(feed=quiet).exists()
