"""FastNetMon: real notify-script text from GitHub issues, log lines, and the JSON callback."""

import pytest

from alerts.formats import ParseError, parse_delivery
from alerts.formats import examples as payloads
from tests.shared import shared_file

EXCERPTS = "alerts/fastnetmon/issue_excerpts/"


def parse_file(name):
    result = parse_delivery("fastnetmon", shared_file(EXCERPTS + name).read_bytes())
    assert len(result.alerts) == 1
    return result.alerts[0]


def test_syn_flood_details_from_issue_228():
    alert = parse_file("issue228_syn_flood_stdin_details.txt")
    assert alert.target_ip == "10.10.10.221"
    assert alert.vector == "syn_flood"
    assert alert.layer == "L4"
    assert alert.pps == 1_645_058
    assert alert.bps == 753_000_000
    assert alert.severity == "high"  # over 1 Mpps
    assert alert.zone == "10.10.10.0/24"  # the "Network:" line
    assert alert.labels["attack_protocol"] == "tcp"
    assert alert.labels["direction"] == "incoming"
    assert alert.resolved is False


def test_udp_flood_with_masked_ip_from_issue_586():
    alert = parse_file("issue586_udp_flood_stdin_details.txt")
    assert alert.target_ip == ""  # "AA.BB.CC.66" was masked by the reporter
    assert alert.target_host == "AA.BB.CC.66"
    assert alert.vector == "udp_flood"
    assert alert.pps == 1_271_974
    assert alert.bps == 1_694_000_000
    assert alert.title == "FastNetMon: udp flood incoming attack on AA.BB.CC.66"


def test_mail_subject_and_unknown_type_from_issue_991():
    alert = parse_file("issue991_v1.2.x_tcp_stdin_details.txt")
    assert alert.target_ip == "192.168.1.201"
    assert alert.labels["attack_type"] == "unknown"
    assert alert.vector == "tcp_flood"  # from "Attack protocol: tcp"
    assert alert.pps == 395
    assert alert.bps == 34_000_000
    assert alert.severity == "medium"


def test_log_lines_from_issue_751():
    alert = parse_file("issue751_log_lines.txt")
    assert alert.target_ip == "192.168.175.1"
    assert alert.pps == 20_099
    assert alert.bps == 1_487_600
    assert alert.labels["action"] == "ban"
    assert alert.vector == "unknown"


def test_text_with_packet_dump_lists_attack_sources():
    alert = parse_delivery("fastnetmon", payloads.body(payloads.fastnetmon_text())).alerts[0]
    assert alert.source_ips == ["192.0.2.77", "192.0.2.78"]
    assert alert.target_ip == "203.0.113.45"


def test_json_ban_and_unban_pair():
    ban = parse_delivery("fastnetmon", payloads.body(payloads.fastnetmon_json(action="ban"))).alerts[0]
    unban = parse_delivery("fastnetmon", payloads.body(payloads.fastnetmon_json(action="unban"))).alerts[0]
    assert ban.fingerprint == unban.fingerprint
    assert ban.resolved is False and unban.resolved is True
    assert ban.target_ip == "203.0.113.45"
    assert ban.vector == "syn_flood"
    assert ban.pps == 1_645_058
    assert ban.bps == 94_125_000 * 8  # JSON traffic is bytes per second
    assert ban.severity == "medium"  # attack_severity "middle"
    assert ban.zone == "customer_acme"
    assert ban.external_id == "8b3b7c4e-91e8-4c39-a4c7-5d0b6f1f2a11"
    assert ban.source_ips == ["185.220.101.1", "185.220.101.2", "185.220.101.3"]


def test_json_without_severity_is_graded_by_size():
    payload = payloads.fastnetmon_json(severity=None, pps=12_000_000)
    assert parse_delivery("fastnetmon", payloads.body(payload)).alerts[0].severity == "critical"


def test_different_attack_types_on_one_ip_are_different_alerts():
    syn = parse_delivery("fastnetmon", payloads.body(payloads.fastnetmon_json(attack_type="syn_flood"))).alerts[0]
    udp = parse_delivery("fastnetmon", payloads.body(payloads.fastnetmon_json(attack_type="udp_flood"))).alerts[0]
    assert syn.fingerprint != udp.fingerprint
    assert udp.vector == "udp_flood"


def test_script_arguments_can_come_as_options():
    alert = parse_delivery(
        "fastnetmon", b"Attack type: icmp_flood\n", {"ip": "203.0.113.9", "action": "unban", "pps": "5000"}
    ).alerts[0]
    assert alert.target_ip == "203.0.113.9"
    assert alert.resolved is True
    assert alert.vector == "icmp_flood" and alert.layer == "L3"
    assert alert.pps == 5000


def test_text_without_an_ip_is_refused():
    with pytest.raises(ParseError, match="no attacked IP found"):
        parse_delivery("fastnetmon", b"Hello, this is not FastNetMon\n")
    with pytest.raises(ParseError, match="field `ip` is missing"):
        parse_delivery("fastnetmon", b'{"action": "ban"}')
