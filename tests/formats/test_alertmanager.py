"""Alertmanager v4 webhooks: firing and resolved notifications built like Alertmanager does."""

from datetime import timedelta

import pytest

from alerts.formats import ParseError, make_fingerprint, parse_delivery
from alerts.formats import examples as payloads


def parse(payload):
    return parse_delivery("alertmanager", payloads.body(payload)).alerts


def test_firing_then_resolved_pair_on_the_alert_fingerprint():
    firing = parse(payloads.alertmanager_notification(payloads.alertmanager_alert(status="firing")))
    ended = payloads.DEFAULT_TIME + timedelta(minutes=12)
    resolved = parse(payloads.alertmanager_notification(payloads.alertmanager_alert(status="resolved", ends_at=ended)))
    assert len(firing) == len(resolved) == 1
    assert firing[0].fingerprint == resolved[0].fingerprint == "4f6c2a9e1b7d3c05"
    assert firing[0].resolved is False and resolved[0].resolved is True
    assert firing[0].ended_at is None  # "0001-01-01T00:00:00Z" means unset
    assert resolved[0].ended_at == ended


def test_fields_come_from_labels_and_annotations():
    alert = parse(payloads.alertmanager_notification(payloads.alertmanager_alert()))[0]
    assert alert.title == "SYN flood towards 203.0.113.10 (acme-corp)"
    assert alert.severity == "critical"
    assert alert.vector == "syn_flood"
    assert alert.layer == "L4"
    assert alert.target_ip == "203.0.113.10"
    assert alert.zone == "acme-corp"
    assert alert.pps == 3_200_000
    assert alert.event_time == payloads.DEFAULT_TIME
    assert alert.labels["alertname"] == "EdgeSynFloodDetected"
    assert alert.labels["job"] == "ddos-detector"
    assert alert.labels["am.receiver"] == "shieldwall"
    assert "1 Mpps" in alert.description


def test_one_alert_per_entry_in_a_group():
    body = payloads.alertmanager_notification(
        payloads.alertmanager_alert(target_ip="203.0.113.10", fingerprint="a1"),
        payloads.alertmanager_alert(target_ip="203.0.113.11", fingerprint="a2", status="resolved"),
    )
    alerts = parse(body)
    assert [a.target_ip for a in alerts] == ["203.0.113.10", "203.0.113.11"]
    assert [a.resolved for a in alerts] == [False, True]


@pytest.mark.parametrize(
    ("label", "expected"),
    [("critical", "critical"), ("page", "critical"), ("warning", "medium"), ("info", "info"), ("none", "info")],
)
def test_severity_label_mapping(label, expected):
    alert = parse(payloads.alertmanager_notification(payloads.alertmanager_alert(severity=label)))[0]
    assert alert.severity == expected


def test_without_fingerprint_or_summary_fall_back_to_labels():
    entry = payloads.alertmanager_alert()
    del entry["fingerprint"]
    entry["annotations"] = {}
    entry["labels"] = {"alertname": "HTTPRequestFlood", "instance": "10.1.2.3:9113", "layer": "7"}
    alert = parse({"version": "4", "status": "firing", "alerts": [entry]})[0]
    assert alert.title == "HTTPRequestFlood"
    assert alert.severity == "medium"
    assert alert.layer == "L7"
    assert alert.target_ip == "10.1.2.3"  # from instance, port dropped
    assert alert.vector == "http_flood"  # inferred from the alert name
    expected = make_fingerprint("alertmanager", "alertname=HTTPRequestFlood", "instance=10.1.2.3:9113", "layer=7")
    assert alert.fingerprint == expected


def test_common_labels_are_inherited_by_each_alert():
    entry = payloads.alertmanager_alert()
    entry["labels"] = {"alertname": "X"}
    alert = parse({"version": "4", "commonLabels": {"customer": "globex", "alertname": "X"}, "alerts": [entry]})[0]
    assert alert.customer_ref == "globex"  # the customer label names the customer, not a zone
    assert alert.labels["customer"] == "globex"


def test_wrong_shapes_are_named():
    with pytest.raises(ParseError, match="`alerts` is missing"):
        parse({"version": "4"})
    with pytest.raises(ParseError, match="`alerts` must be an array"):
        parse({"alerts": {"a": 1}})
    with pytest.raises(ParseError, match=r"every record was refused: alerts\[0\]: expected an object"):
        parse({"alerts": ["oops"]})


def _group_with_one_broken(broken: dict) -> bytes:
    good = [payloads.alertmanager_alert(target_ip=f"203.0.113.{n}", fingerprint=f"f{n}") for n in (1, 2, 3)]
    notification = payloads.alertmanager_notification(*good)
    notification["alerts"].insert(1, broken)
    return payloads.body(notification)


def _broken(**changes) -> dict:
    entry = payloads.alertmanager_alert(target_ip="203.0.113.99", fingerprint="bad")
    entry.update(changes)
    return entry


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        (_broken(status="exploded"), "status 'exploded' is neither firing nor resolved"),
        (_broken(startsAt="yesterday at noon"), "startsAt 'yesterday at noon' is not an RFC 3339 time"),
        (_broken(status="resolved", endsAt="2025-13-45T99:00:00Z"), "endsAt '2025-13-45T99:00:00Z' is not"),
        ("not an alert", "expected an object, got a string"),
    ],
)
def test_one_broken_alert_of_a_group_is_refused_and_the_others_kept(broken, reason):
    result = parse_delivery("alertmanager", _group_with_one_broken(broken))
    assert sorted(a.target_ip for a in result.alerts) == ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
    assert [r["record"] for r in result.refused] == ["alerts[1]"]
    assert reason in result.refused[0]["reason"]


def test_a_lone_surrogate_in_a_label_refuses_that_alert_only():
    """orjson refuses the whole document for one ``\\udc80``; only the alert holding it is refused."""
    broken = _broken()
    broken["labels"]["instance"] = "MARK-edge"
    body = _group_with_one_broken(broken).replace(b"MARK-edge", b"\\udc80edge")
    result = parse_delivery("alertmanager", body)
    assert len(result.alerts) == 3
    assert [r["record"] for r in result.refused] == ["alerts[1]"]
    assert "instance" in result.refused[0]["reason"] and "surrogate" in result.refused[0]["reason"]


def test_go_zero_end_time_of_a_firing_alert_is_unset_not_refused():
    entry = payloads.alertmanager_alert()
    entry["endsAt"] = "0001-01-01T00:00:00Z"
    result = parse_delivery("alertmanager", payloads.body(payloads.alertmanager_notification(entry)))
    assert result.refused == [] and result.alerts[0].ended_at is None
