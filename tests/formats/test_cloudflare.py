"""Cloudflare notification webhooks: the documented samples and realistic START/END pairs."""

from datetime import UTC, datetime

import orjson
import pytest

from alerts.formats import ParseError, parse_delivery
from alerts.formats import examples as payloads
from tests.shared import shared_file


def parse_one(payload):
    result = parse_delivery("cloudflare", payloads.body(payload))
    assert len(result.alerts) == 1
    return result.alerts[0]


def test_documented_l4_sample_reads_as_an_advanced_l4_attack():
    path = shared_file("alerts/cloudflare/cf_webhook_advanced_ddos_attack_l4_alert.example.json")
    alert = parse_delivery("cloudflare", path.read_bytes()).alerts[0]
    assert alert.layer == "L4"
    assert alert.severity == "high"
    assert alert.resolved is False
    assert alert.external_id == "string"  # data.attack_id, a placeholder in the docs
    assert alert.event_time == datetime(2006, 1, 2, 15, 4, 5, tzinfo=UTC)
    assert alert.labels["alert_type"] == "advanced_ddos_attack_l4_alert"
    assert alert.labels["account_id"] == "9035f53656c247e895c5a6939ae8a0e0"
    assert alert.target_ip == ""  # "string" is not an address...
    assert alert.target_host == "string"  # ...but what Cloudflare named is kept
    assert alert.target_port == 0
    assert alert.pps == 0 and alert.bps == 0


def test_documented_l7_sample_reads_as_an_http_flood_on_the_zone():
    path = shared_file("alerts/cloudflare/cf_webhook_advanced_ddos_attack_l7_alert.example.json")
    alert = parse_delivery("cloudflare", path.read_bytes()).alerts[0]
    assert alert.layer == "L7"
    assert alert.vector == "http_flood"
    assert alert.severity == "high"
    assert alert.zone == "string"
    assert alert.target_host == "string"
    assert alert.rps == 0


def test_documented_samples_of_two_alert_types_are_not_folded_together():
    l4 = parse_delivery(
        "cloudflare",
        shared_file("alerts/cloudflare/cf_webhook_advanced_ddos_attack_l4_alert.example.json").read_bytes(),
    ).alerts[0]
    l7 = parse_delivery(
        "cloudflare",
        shared_file("alerts/cloudflare/cf_webhook_advanced_ddos_attack_l7_alert.example.json").read_bytes(),
    ).alerts[0]
    # Both doc samples carry alert_correlation_id 000eaa90..., but they are different
    # notifications (L4 and L7): folding them would hide one of the two attacks.
    assert l4.fingerprint != l7.fingerprint


def test_bare_envelope_sample_is_an_informational_notification():
    path = shared_file("alerts/cloudflare/cf_webhook_envelope.schema_example.json")
    alert = parse_delivery("cloudflare", path.read_bytes()).alerts[0]
    assert alert.severity == "info"
    assert alert.title == "string"
    assert alert.vector == "cloudflare_string"
    assert alert.resolved is False  # alert_event "string" is not an END


def test_l4_start_and_end_share_a_fingerprint_and_end_resolves():
    start = parse_one(payloads.cloudflare_l4(event="START", vector="SYN Flood", protocol="TCP", target_port=443))
    end = parse_one(payloads.cloudflare_l4(event="END", vector="SYN Flood", protocol="TCP", target_port=443))
    assert start.fingerprint == end.fingerprint
    assert start.resolved is False and end.resolved is True
    assert end.ended_at is not None and end.ended_at > start.event_time
    assert start.vector == "syn_flood"
    assert start.target_ip == "198.51.100.23"
    assert start.target_port == 443
    assert start.pps == 2_450_000
    assert start.bps == 18_700 * 1_000_000
    assert start.title == "Advanced L3/4 DDoS attack: SYN Flood on 198.51.100.23"
    assert start.event_time == payloads.DEFAULT_TIME


@pytest.mark.parametrize(
    ("attack_vector", "protocol", "expected"),
    [
        ("SYN Flood", "TCP", "syn_flood"),
        ("UDP Flood", "UDP", "udp_flood"),
        ("DNS amplification", "UDP", "dns_amplification"),
        ("DNS Amplification attack", "UDP", "dns_amplification"),
        ("ACK Flood", "TCP", "ack_flood"),
        ("GRE Flood", "GRE", "gre_flood"),
        ("NTP Reflection", "UDP", "ntp_amplification"),
        ("fake-vector", "TCP", "tcp_flood"),
    ],
)
def test_l4_attack_vector_is_normalised(attack_vector, protocol, expected):
    alert = parse_one(payloads.cloudflare_l4(vector=attack_vector, protocol=protocol))
    assert alert.vector == expected


def test_l7_start_and_end_pair_on_the_zone():
    start = parse_one(payloads.cloudflare_l7(event="START", rps=50_000, alert_type="dos_attack_l7"))
    end = parse_one(payloads.cloudflare_l7(event="END", rps=50_000, alert_type="dos_attack_l7"))
    assert start.fingerprint == end.fingerprint
    assert end.resolved is True
    assert start.layer == "L7" and start.vector == "http_flood"
    assert start.zone == "shop.example.com"
    assert start.target_host == "checkout.shop.example.com"
    assert start.rps == 50_000
    assert start.severity == "medium"  # managed-ruleset alert below 100k rps
    assert start.labels["data.attack_type"] == "HTTP Flood"


def test_severity_grows_with_the_attack():
    assert parse_one(payloads.cloudflare_l7(alert_type="dos_attack_l7", rps=250_000)).severity == "high"
    assert parse_one(payloads.cloudflare_l7(alert_type="dos_attack_l7", rps=2_000_000)).severity == "critical"
    assert parse_one(payloads.cloudflare_l4(alert_type="dos_attack_l4", pps=5_000, mbps=40)).severity == "medium"
    assert parse_one(payloads.cloudflare_l4(alert_type="dos_attack_l4", pps=1_500_000, mbps=40)).severity == "high"
    assert parse_one(payloads.cloudflare_l4(pps=20_000_000, mbps=200_000)).severity == "critical"


def test_without_correlation_id_the_attack_id_identifies_the_alert():
    first = parse_one(payloads.cloudflare_l4(correlation_id=None, attack_id="aaa"))
    repeat = parse_one(payloads.cloudflare_l4(correlation_id=None, attack_id="aaa", pps=9))
    other = parse_one(payloads.cloudflare_l4(correlation_id=None, attack_id="bbb"))
    assert first.fingerprint == repeat.fingerprint != other.fingerprint


def test_string_rates_and_max_rate_text_are_read():
    payload = payloads.cloudflare_l4(alert_type="dos_attack_l4")
    payload["data"].update({"packets_per_second": None, "megabits_per_second": "3500", "max_rate": "800.00 pps"})
    alert = parse_one(payload)
    assert alert.pps == 800
    assert alert.bps == 3_500_000_000


def test_attacker_text_is_kept_but_nuls_stripped_and_title_capped():
    payload = payloads.cloudflare_l7()
    payload["data"]["target_hostname"] = "<script>alert(1)</script>\x00" + "a" * 2_000
    alert = parse_one(payload)
    assert "<script>alert(1)</script>" in alert.title
    assert "\x00" not in alert.title and "\x00" not in alert.target_host
    assert len(alert.title) <= 500


def test_not_a_notification_is_refused_with_the_reason():
    with pytest.raises(ParseError, match="not a Cloudflare notification"):
        parse_delivery("cloudflare", orjson.dumps({"hello": "world"}))
    with pytest.raises(ParseError, match="expected a JSON object"):
        parse_delivery("cloudflare", b"[1, 2]")
    with pytest.raises(ParseError, match="`data` must be an object"):
        parse_delivery("cloudflare", orjson.dumps({"alert_type": "dos_attack_l4", "data": [1]}))
