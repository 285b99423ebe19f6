"""Wazuh alerts: the integration test sample and a built web-attack alert."""

import pytest

from alerts.formats import ParseError, parse_delivery
from alerts.formats import examples as payloads
from tests.shared import shared_file


def test_integration_sample():
    (alert,) = parse_delivery(
        "wazuh", shared_file("alerts/wazuh/wazuh_integrations_tests_data_alerts.json").read_bytes()
    ).alerts
    assert alert.title == "alert description"
    assert alert.severity == "info"  # rule level 0
    assert alert.vector == "wazuh_default"
    assert alert.target_host == "agent"
    assert alert.event_time is None  # the sample's timestamp is a placeholder
    assert alert.labels["agent.id"] == "001"
    assert alert.description == "full log."


def test_web_attack_lines():
    record = {
        "timestamp": "2025-03-14T09:26:53.123+0000",
        "rule": {
            "level": 12,
            "description": "SQL injection attempt.",
            "id": "31103",
            "groups": ["web", "attack", "sql_injection"],
        },
        "agent": {"id": "004", "name": "web-fra1", "ip": "198.51.100.23"},
        "data": {"srcip": "45.155.205.233", "url": "/products?id=1%27%20OR%201=1"},
        "id": "1710408413.12345",
        "full_log": '45.155.205.233 - - [14/Mar/2025:09:26:53 +0000] "GET /products?id=1\' OR 1=1 HTTP/1.1" 200',
    }
    alerts = parse_delivery("wazuh", payloads.body(record) + b"\n" + payloads.body(record)).alerts
    assert len(alerts) == 2 and alerts[0].fingerprint == alerts[1].fingerprint
    alert = alerts[0]
    assert alert.vector == "waf_sqli" and alert.layer == "L7"
    assert alert.severity == "critical"
    assert alert.source_ips == ["45.155.205.233"]
    assert alert.target_ip == "198.51.100.23"
    assert alert.labels["data.url"] == "/products?id=1%27%20OR%201=1"
    assert alert.event_time == payloads.DEFAULT_TIME.replace(microsecond=123000)


def test_record_without_rule_is_refused():
    with pytest.raises(ParseError, match="the `rule` object is missing"):
        parse_delivery("wazuh", b'{"agent": {}}')
