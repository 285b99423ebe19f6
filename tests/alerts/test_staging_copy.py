"""The write path: on PostgreSQL a delivery is one COPY into a staging table and one set-based upsert."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts import services
from alerts.formats import examples
from alerts.models import Alert, Delivery

HOSTILE = "SQLi\tprobe\nline two \\N and C:\\temp\\x \\t literal\r\nend ✓"


def _eve(count: int, first: int = 0) -> bytes:
    base = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    events = [
        examples.suricata_alert(
            signature=f"ET SCAN Potential probe {i}",
            signature_id=2_200_000 + i,
            src_ip=f"203.0.113.{1 + i % 250}",
            dest_ip=f"198.51.100.{1 + i % 200}",
            at=base + timedelta(seconds=i),
        )
        for i in range(first, first + count)
    ]
    return examples.eve_lines(*events)


def _process(feed, body: bytes) -> Delivery:
    received = services.delivery_receive(feed=feed, body=body, headers={})
    services.delivery_process(delivery_id=received.delivery.pk)
    return Delivery.objects.get(pk=received.delivery.pk)


def test_attacker_text_holding_copy_delimiters_is_stored_exactly_as_sent(make_feed, django_capture_on_commit_callbacks):
    """Tabs, newlines, backslashes and a literal \\N separate fields, rows and NULLs in COPY text."""
    feed, _token = make_feed("suricata")
    event = examples.suricata_alert(signature=HOSTILE, dest_ip="198.51.100.9")
    event["http"] = {"hostname": "shop.example", "url": "/a\\b\t?q=\\N", "http_user_agent": 'x\\"y\n'}
    with django_capture_on_commit_callbacks(execute=True):
        delivery = _process(feed, examples.eve_lines(event))
    assert delivery.status == "processed", delivery.error
    alert = Alert.objects.get()
    assert alert.title == HOSTILE.strip()
    assert alert.raw["alert"]["signature"] == HOSTILE
    assert alert.raw["http"]["url"] == "/a\\b\t?q=\\N"
    assert alert.labels["http.url"] == "/a\\b\t?q=\\N"
    assert alert.target_host == "shop.example"
    assert str(alert.target_ip) == "198.51.100.9"
    assert alert.pps is None and alert.rps is None  # NULL, not the text "\N" or 0


def test_repeats_in_a_later_delivery_count_on_the_open_alert(make_feed, django_capture_on_commit_callbacks):
    feed, _token = make_feed("suricata")
    with django_capture_on_commit_callbacks(execute=True):
        first = _process(feed, _eve(30))
        # The same 30 alerts again (new bytes: a later time) and 20 new ones.
        again = _process(feed, _eve(50).replace(b"2026-12-01T12", b"2026-12-01T13"))
    assert (first.alerts_created, first.alerts_updated) == (30, 0)
    assert (again.alerts_created, again.alerts_updated) == (20, 30)
    assert Alert.objects.count() == 50
    assert sorted(set(Alert.objects.values_list("count", flat=True))) == [1, 2]
    assert Alert.objects.filter(count=2).count() == 30


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the COPY path is PostgreSQL's")
def test_a_500_alert_delivery_is_one_staged_upsert_on_postgresql(make_feed, django_capture_on_commit_callbacks):
    feed, _token = make_feed("suricata")
    body = _eve(500)
    received = services.delivery_receive(feed=feed, body=body, headers={})
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=False):
        services.delivery_process(delivery_id=received.delivery.pk)
    statements = [q["sql"] for q in queries.captured_queries]
    upserts = [s for s in statements if "INSERT INTO alerts_alert " in s]
    assert len(upserts) == 1, upserts
    assert f"FROM {services.STAGING_TABLE}" in upserts[0] and "VALUES" not in upserts[0]
    assert Alert.objects.filter(feed=feed).count() == 500
    with connection.cursor() as cursor:
        # Emptied by the upsert itself, so a second delivery in the same transaction starts clean.
        cursor.execute(f"SELECT count(*) FROM {services.STAGING_TABLE}")
        assert cursor.fetchone()[0] == 0
