"""Generic JSON feeds read through a per-feed mapping."""

import pytest

from alerts.formats import ParseError, make_fingerprint, parse_delivery
from alerts.formats import examples as payloads

OPTIONS = {
    "mapping": {
        "title": "msg",
        "severity": "level",
        "target_ip": "dst.ip",
        "target_port": "dst.port",
        "event_time": "ts",
        "fingerprint": ["rule_id", "dst.ip"],
        "vector": "kind",
        "source_ips": "src",
        "pps": "stats.pps",
        "labels": {"rule": "rule_id", "pop": "edge.pop"},
    },
    "severity_map": {"5": "critical", "4": "high", "1": "info"},
    "defaults": {"layer": "L4", "zone": "acme-corp"},
}
RECORD = {
    "msg": "UDP flood to game server",
    "level": 5,
    "dst": {"ip": "203.0.113.77", "port": 27015},
    "ts": 1741944413,
    "rule_id": "R-17",
    "kind": "udp_flood",
    "src": ["192.0.2.1", "192.0.2.2", "not-an-ip"],
    "stats": {"pps": "850000"},
    "edge": {"pop": "fra1"},
}


def test_mapped_fields_from_an_array():
    alerts = parse_delivery("generic", payloads.body([RECORD, {**RECORD, "level": 1}]), OPTIONS).alerts
    alert = alerts[0]
    assert alert.title == "UDP flood to game server"
    assert alert.severity == "critical"
    assert alerts[1].severity == "info"
    assert alert.target_ip == "203.0.113.77" and alert.target_port == 27015
    assert alert.event_time == payloads.DEFAULT_TIME
    assert alert.vector == "udp_flood" and alert.layer == "L4"
    assert alert.source_ips == ["192.0.2.1", "192.0.2.2"]
    assert alert.pps == 850_000
    assert alert.zone == "acme-corp"
    assert alert.labels == {"rule": "R-17", "pop": "fra1"}
    assert alert.fingerprint == make_fingerprint("generic", "R-17", "203.0.113.77") == alerts[1].fingerprint


def test_json_lines_and_records_path():
    lines = payloads.body(RECORD) + b"\n" + payloads.body(RECORD) + b"\n"
    assert len(parse_delivery("generic", lines, OPTIONS).alerts) == 2
    wrapped = payloads.body({"data": {"events": [RECORD]}})
    assert len(parse_delivery("generic", wrapped, {**OPTIONS, "records": "data.events"}).alerts) == 1


def test_common_names_without_a_mapping():
    record = {
        "message": "WAF block",
        "severity": "warning",
        "dest_ip": "198.51.100.1",
        "timestamp": "2025-03-14T09:26:53Z",
    }
    alert = parse_delivery("generic", payloads.body(record)).alerts[0]
    assert alert.title == "WAF block"
    assert alert.severity == "medium"
    assert alert.target_ip == "198.51.100.1"
    assert alert.event_time == payloads.DEFAULT_TIME


def test_missing_title_refuses_that_record_naming_its_index():
    result = parse_delivery("generic", payloads.body([RECORD, {"level": 3}, "text", RECORD]), OPTIONS)
    assert len(result.alerts) == 2
    assert result.refused == [
        {"record": "record 1", "reason": "no title (looked at `msg`)"},
        {"record": "record 2", "reason": "expected a JSON object, got a string"},
    ]
    with pytest.raises(ParseError, match=r"every record was refused: record 0: no title \(looked at `msg`\)"):
        parse_delivery("generic", payloads.body([{"level": 3}]), OPTIONS)


def test_bad_options_are_parse_errors():
    with pytest.raises(ParseError, match="`mapping` must be an object"):
        parse_delivery("generic", payloads.body(RECORD), {"mapping": ["msg"]})
