"""PagerDuty Events API v2 as a feed format: trigger, acknowledge and resolve on one dedup_key.

Events are shaped as the Events API v2 documents them (``routing_key``,
``event_action``, ``dedup_key``, ``payload.summary/source/severity/timestamp/
component/group/class/custom_details``, ``client``/``client_url``): what Alertmanager's
``pagerduty_configs``, Grafana or Zabbix send to ``/v2/enqueue``.
"""

from __future__ import annotations

import json

import pytest

from alerts.formats import FORMATS, ParseError, parse_delivery
from alerts.models import Alert, Delivery, Feed
from console.models import Asset
from tests.factories import AssetFactory, CustomerFactory


def trigger(dedup_key: str = "ddos/203.0.113.10/udp", **details) -> dict:
    return {
        "routing_key": "placeholder",
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": "UDP flood towards 203.0.113.10: 4.1 Gbps",
            "source": "203.0.113.10",
            "severity": "critical",
            "timestamp": "2026-12-04T09:00:00.000+0000",
            "component": "edge-fra1",
            "group": "ddos-detection",
            "class": "udp flood",
            "custom_details": {"bps": "4.1e9", "detector": "netflow", **details},
        },
        "client": "Flow detector",
        "client_url": "https://detector.example/attacks/123",
    }


def follow_up(action: str, dedup_key: str = "ddos/203.0.113.10/udp") -> dict:
    return {"routing_key": "placeholder", "event_action": action, "dedup_key": dedup_key}


def test_pagerduty_is_a_registered_format():
    assert "pagerduty" in FORMATS and Feed.Format.PAGERDUTY == "pagerduty"


def test_trigger_reads_summary_source_severity_and_details():
    [alert] = parse_delivery("pagerduty", json.dumps(trigger()).encode()).alerts
    assert alert.title == "UDP flood towards 203.0.113.10: 4.1 Gbps"
    assert alert.target_ip == "203.0.113.10"
    assert alert.severity == "critical" and alert.vector == "udp_flood" and alert.bps == 4.1e9
    assert alert.external_id == "ddos/203.0.113.10/udp" and not alert.resolved
    assert alert.labels["details.detector"] == "netflow" and alert.labels["component"] == "edge-fra1"
    assert alert.direction_rule == "PagerDuty payload.source names the affected system"
    # A victim named in custom_details (dst_ip) wins over the reporting source.
    [alert] = parse_delivery("pagerduty", json.dumps(trigger(dst_ip="198.51.100.9")).encode()).alerts
    assert alert.target_ip == "198.51.100.9"
    assert alert.direction_rule == "PagerDuty custom_details.dst_ip names the target"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"payload": {"summary": "x"}}, "`event_action` is missing"),
        ({"event_action": "snooze", "dedup_key": "k"}, "must be one of trigger, acknowledge, resolve"),
        ({"event_action": "resolve"}, "needs the `dedup_key`"),
        ({"event_action": "trigger", "payload": {"source": "x"}}, "needs `payload.summary`"),
    ],
)
def test_wrong_events_are_named(event, message):
    with pytest.raises(ParseError, match=message):
        parse_delivery("pagerduty", json.dumps(event).encode())


def test_trigger_acknowledge_resolve_on_one_dedup_key(make_feed, post, client, django_capture_on_commit_callbacks):
    customer = CustomerFactory(slug="initech")
    AssetFactory(customer=customer, kind=Asset.Kind.PREFIX, value="203.0.113.0/24")
    feed, token = make_feed("pagerduty")

    assert post(feed, token, json.dumps(trigger()).encode()).status_code == 202
    alert = Alert.objects.get(feed=feed)
    assert alert.customer == customer and alert.status == Alert.Status.NEW

    # The sender's acknowledge, authenticated the PagerDuty way: the integration key in the
    # body's routing_key, no Authorization header.
    event = follow_up("acknowledge")
    event["routing_key"] = token
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/ingest/{feed.slug}/", data=json.dumps(event), content_type="application/json")
    assert response.status_code == 202, response.content
    alert.refresh_from_db()
    assert alert.status == Alert.Status.ACKNOWLEDGED and alert.acknowledged_at is not None
    assert Alert.objects.filter(feed=feed).count() == 1
    # The token in the body is not kept: deliveries and alerts are shown to engineers.
    stored = Delivery.objects.get(pk=response.json()["delivery"])
    assert token.encode() not in bytes(stored.body)
    assert json.loads(bytes(stored.body))["routing_key"] == "[redacted]"

    response = post(feed, token, json.dumps(follow_up("resolve")).encode())
    assert Delivery.objects.get(pk=response.json()["delivery"]).alerts_resolved == 1
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED and alert.resolved_at is not None

    # Follow-ups of a key never triggered here store nothing.
    post(feed, token, json.dumps(follow_up("resolve", "other")).encode())
    post(feed, token, json.dumps(follow_up("acknowledge", "other")).encode())
    assert Alert.objects.filter(feed=feed).count() == 1


def test_a_routing_key_in_a_trigger_is_not_stored(make_feed, post):
    feed, token = make_feed("pagerduty")
    event = trigger()
    event["routing_key"] = "R0UT1NG-KEY-of-another-integration"
    post(feed, token, json.dumps(event).encode())
    alert = Alert.objects.get(feed=feed)
    assert alert.raw["routing_key"] == "[redacted]"
    assert b"R0UT1NG-KEY" not in bytes(Delivery.objects.get().body)


def test_a_wrong_routing_key_is_refused(make_feed, client):
    feed, _token = make_feed("pagerduty")
    event = trigger()
    event["routing_key"] = "not-the-key"
    response = client.post(f"/ingest/{feed.slug}/", data=json.dumps(event), content_type="application/json")
    assert response.status_code == 401
    assert not Delivery.objects.exists()
