"""CrowdSec LAPI alerts: the CrowdSec test fixtures and a built http-bf alert."""

import pytest

from alerts.formats import ParseError, make_fingerprint, parse_delivery
from alerts.formats import examples as payloads
from tests.shared import shared_file


def parse_file(name):
    return parse_delivery("crowdsec", shared_file(f"alerts/crowdsec/{name}").read_bytes())


def test_ssh_bruteforce_fixture():
    (alert,) = parse_file("crowdsec_alert_ssh-bf.json").alerts
    assert alert.title == "crowdsecurity/ssh-bf from 91.121.79.195"
    assert alert.vector == "ssh_bruteforce"
    assert alert.severity == "medium"
    assert alert.source_ips == ["91.121.79.195"]
    assert alert.source_countries == ["FR"]
    assert alert.source_asns == [16276]  # from the events' ASNNumber meta
    assert alert.labels["source_as_name"] == "OVH SAS"
    assert alert.labels["meta.target_user"] == "root"
    assert alert.event_time.isoformat() == "2020-10-26T08:50:32.025353+00:00"
    assert alert.ended_at.isoformat() == "2020-10-26T08:50:32.055534+00:00"
    assert alert.fingerprint == make_fingerprint("crowdsec", "crowdsecurity/ssh-bf", "91.121.79.195", "")


def test_minibulk_fixture_is_two_alerts_from_two_sources():
    alerts = parse_file("crowdsec_alert_minibulk.json").alerts
    assert [a.source_ips for a in alerts] == [["91.121.79.179"], ["91.121.79.178"]]
    assert len({a.fingerprint for a in alerts}) == 2


def test_stream_fixture_scenarios_map_to_vectors():
    alerts = parse_file("crowdsec_alert_stream_fixture.json").alerts
    assert [(a.labels["scenario"], a.vector, a.severity) for a in alerts] == [
        ("crowdsecurity/http_bf", "http_bruteforce", "medium"),
        ("crowdsecurity/ssh_bf", "ssh_bruteforce", "medium"),
        ("crowdsecurity/ddos", "http_flood", "high"),
    ]
    assert [a.external_id for a in alerts] == ["42", "43", "44"]
    # The reporting machine ("test") is not the victim: with no protected host known, unknown.
    assert alerts[0].target_host == "" and alerts[0].target_ip == ""
    assert alerts[0].direction_rule == "CrowdSec names no protected host for machine test: victim unknown"
    assert alerts[0].source_asns == [123456]
    assert alerts[0].labels["decisions"] == "ban Ip:127.0.0.1 for 1h"


def test_sample_fixture_with_unknown_scenario():
    (alert,) = parse_file("crowdsec_alert_sample.json").alerts
    assert alert.vector == "crowdsec_test"
    assert alert.source_countries == ["france"]  # kept as sent when not an ISO code
    assert alert.description == "test"


def test_built_http_bf_alert_targets_the_fqdn():
    alert = parse_delivery("crowdsec", payloads.body([payloads.crowdsec_alert()])).alerts[0]
    assert alert.vector == "http_bruteforce"
    assert alert.target_host == "shop.example.com"
    assert alert.zone == "shop.example.com"
    assert alert.source_ips == ["45.155.205.233"]
    assert alert.source_asns == [49505]
    assert alert.source_countries == ["RU"]
    assert alert.external_id == "b6f1a3c2-4d5e-4f60-8a71-92b3c4d5e6f7"
    assert alert.layer == "L7"


@pytest.mark.parametrize(
    ("scenario", "vector"),
    [
        ("crowdsecurity/http-probing", "scan"),
        ("crowdsecurity/http-crawl-non_statics", "scan"),
        ("crowdsecurity/http-sqli-probing", "waf_sqli"),
        ("crowdsecurity/CVE-2021-44228", "waf_exploit"),
        ("crowdsecurity/portscan", "port_scan"),
        ("crowdsecurity/http-generic-bf", "http_bruteforce"),
        ("crowdsecurity/nginx-req-limit-exceeded", "crowdsec_nginx_req_limit_exceeded"),
    ],
)
def test_scenario_vectors(scenario, vector):
    alert = parse_delivery("crowdsec", payloads.body(payloads.crowdsec_alert(scenario=scenario))).alerts[0]
    assert alert.vector == vector


def test_simulated_alerts_are_informational():
    payload = payloads.crowdsec_alert()
    payload["simulated"] = True
    assert parse_delivery("crowdsec", payloads.body(payload)).alerts[0].severity == "info"


def test_alert_without_scenario_is_named():
    with pytest.raises(ParseError, match=r"item 2: not a CrowdSec alert"):
        parse_delivery("crowdsec", payloads.body([payloads.crowdsec_alert(), {"source": {}}]))
