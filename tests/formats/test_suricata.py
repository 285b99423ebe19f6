"""Suricata EVE JSON: real eve.json files and built events."""

import gzip
import json
from collections import Counter

import pytest

from alerts.formats import ParseError, make_fingerprint, parse_delivery
from alerts.formats import examples as payloads
from tests.shared import shared_file

EVE_FILES = [
    "suricata/sashalarso_MSSIS-suricata_eve.json",
    "suricata/Chala1899_IDS-Lab-Suricata_eve.json.gz",
    "suricata/zeyadosamaa_Zeus_Analysis_eve.json.gz",
    "suricata/suricata-verify_output-eve-fileinfo_expected_eve.json",
]


def plain_counts(raw: bytes) -> tuple[int, Counter]:
    """Alert count and other event types, computed independently of the parser."""
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    alerts, others = 0, Counter()
    for line in raw.decode().split("\n"):
        if line.strip():
            event = json.loads(line)
            if event["event_type"] == "alert":
                alerts += 1
            else:
                others[event["event_type"]] += 1
    return alerts, others


@pytest.mark.parametrize("relative", EVE_FILES)
def test_every_alert_is_read_and_every_other_event_counted(relative):
    raw = shared_file(relative).read_bytes()
    expected_alerts, expected_skipped = plain_counts(raw)
    result = parse_delivery("suricata", raw)
    assert len(result.alerts) == expected_alerts
    assert result.skipped == dict(expected_skipped)


def test_icedid_exercise_alert_fields():
    result = parse_delivery("suricata", shared_file("suricata/sashalarso_MSSIS-suricata_eve.json").read_bytes())
    first = result.alerts[0]
    assert first.title == "ET MALWARE DNS Query to IcedID Domain (grafielucho .com)"
    assert first.severity == "high"  # Suricata priority 1
    assert first.layer == "L7"  # dns
    assert first.vector == "ids_a_network_trojan_was_detected"
    assert first.source_ips == ["10.10.31.101"]
    assert first.target_ip == "10.10.31.1"
    assert first.target_port == 53
    assert first.external_id == "2049067"
    assert first.event_time.isoformat() == "2023-10-31T23:46:34.435874+00:00"  # +0100 converted to UTC
    assert first.labels["metadata.malware_family"] == "IcedID"
    assert first.raw["flow_id"] == 746164993123201

    by_title = Counter(alert.title for alert in result.alerts)
    assert by_title["ET POLICY OpenSSL Demo CA - Internet Widgits Pty (O)"] == 12
    policy = next(a for a in result.alerts if a.title.startswith("ET POLICY"))
    assert policy.severity == "low"  # priority 3
    assert policy.layer == "L7"  # tls


def test_lab_dos_and_scan_rules_get_flood_and_scan_vectors():
    result = parse_delivery("suricata", shared_file("suricata/Chala1899_IDS-Lab-Suricata_eve.json.gz").read_bytes())
    vectors = Counter((alert.title, alert.vector) for alert in result.alerts)
    assert vectors[("Posible ataque DoS", "http_flood")] == 8  # 5 on http, 3 on tls
    assert vectors[("Posible escaneo de vulnerabilidades HTTP", "vuln_scan")] == 16
    dos = next(a for a in result.alerts if a.title == "Posible ataque DoS")
    assert dos.severity == "low"
    assert dos.labels["in_iface"] == "enp0s8"


def test_repeats_between_the_same_hosts_fold_to_one_fingerprint():
    result = parse_delivery("suricata", shared_file("suricata/zeyadosamaa_Zeus_Analysis_eve.json.gz").read_bytes())
    fingerprints = {alert.fingerprint for alert in result.alerts}
    keys = {
        (a.raw["alert"]["signature_id"], a.raw["src_ip"], a.raw["dest_ip"], a.raw.get("dest_port"))
        for a in result.alerts
    }
    # Portless protocols (IGMP, ICMP) fold on port None, so compare against the parser's view.
    assert len(fingerprints) <= len(keys) < len(result.alerts)
    igmp = next(a for a in result.alerts if a.raw["proto"] == "IGMP")
    assert igmp.layer == "L3"
    assert igmp.target_port is None
    assert igmp.target_ip == "224.0.0.22"
    assert igmp.fingerprint == make_fingerprint("suricata", 2200073, "192.168.230.133", "224.0.0.22", None)


def test_built_events_array_and_single_object_shapes():
    alert = payloads.suricata_alert()
    flow = payloads.suricata_flow()
    as_array = parse_delivery("suricata", payloads.body([alert, flow, alert]))
    assert len(as_array.alerts) == 2 and as_array.skipped == {"flow": 1}
    assert as_array.alerts[0].fingerprint == as_array.alerts[1].fingerprint
    single = parse_delivery("suricata", payloads.body(alert)).alerts[0]
    assert single.vector == "syn_flood"  # "ET DOS Possible SYN Flood Inbound"
    assert single.layer == "L4"
    assert single.severity == "medium"
    assert single.packets == 12 and single.bytes == 720


@pytest.mark.parametrize(
    ("signature", "category", "app_proto", "vector"),
    [
        ("ET WEB_SERVER Possible SQL Injection Attempt UNION SELECT", "Web Application Attack", "http", "waf_sqli"),
        (
            "ET WEB_SERVER Script tag in URI Possible Cross Site Scripting Attempt",
            "Web Application Attack",
            "http",
            "waf_xss",
        ),
        ("ET SCAN Nmap Scripting Engine User-Agent Detected", "Web Application Attack", "http", "port_scan"),
        (
            "ET DOS Possible NTP DDoS Inbound Frequent Un-Authed MON_LIST Requests",
            "Attempted Denial of Service",
            None,
            "ntp_amplification",
        ),
        ("GPL ATTACK_RESPONSE id check returned root", "Potentially Bad Traffic", None, "ids_potentially_bad_traffic"),
        ("Local rule", "", None, "ids_alert"),
    ],
)
def test_vector_is_inferred_from_signature_and_category(signature, category, app_proto, vector):
    event = payloads.suricata_alert(signature=signature, category=category, app_proto=app_proto)
    alert = parse_delivery("suricata", payloads.body(event)).alerts[0]
    assert alert.vector == vector
    if app_proto == "http":
        assert alert.layer == "L7"


def test_a_torn_line_is_named_or_counted_when_lenient():
    good = payloads.body(payloads.suricata_alert())
    torn = good + b"\n\n" + good[:40] + b"\n" + good + b"\n"
    webhook = parse_delivery("suricata", torn)
    assert len(webhook.alerts) == 2
    assert [r["record"] for r in webhook.refused] == ["line 3"]
    assert webhook.refused[0]["reason"].startswith("not valid JSON")
    result = parse_delivery("suricata", torn, {"lenient": True})
    assert len(result.alerts) == 2
    assert result.skipped == {"malformed": 1}


def test_gzip_is_accepted_and_a_truncated_gzip_is_refused():
    raw = payloads.eve_lines(payloads.suricata_alert(), payloads.suricata_flow())
    packed = gzip.compress(raw)
    assert len(parse_delivery("suricata", packed).alerts) == 1
    with pytest.raises(ParseError, match="gzip body is truncated"):
        parse_delivery("suricata", packed[: len(packed) // 2])


def test_alert_event_without_alert_object_is_named():
    result = parse_delivery("suricata", b'{"event_type":"flow"}\n{"event_type":"alert"}\n')
    assert result.refused == [{"record": "line 2", "reason": "event_type is alert but the `alert` object is missing"}]
    assert result.skipped == {"flow": 1}
