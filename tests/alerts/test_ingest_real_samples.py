"""Every real sample in ../shared/data/alerts and ../shared/data/suricata ingests through the webhook."""

import gzip
import json

import pytest

from alerts.models import Alert, Delivery
from tests.shared import SHARED_DATA, shared_file


def _json_lines(path):
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    events = []
    for line in raw.splitlines():
        line = line.strip()
        if line:
            events.append(json.loads(line))
    return raw, events


def _client_server(event):
    """(client, server, server port) of an EVE alert as Suricata 7 records its flow."""
    flow = event.get("flow") or {}
    if flow.get("src_ip"):
        return flow["src_ip"], flow["dest_ip"], flow.get("dest_port")
    if event.get("direction") == "to_client":
        return event["dest_ip"], event["src_ip"], event.get("src_port")
    return event["src_ip"], event["dest_ip"], event.get("dest_port")


def _expected_key(event):
    signature = event["alert"]["signature"]
    if "dos" in signature.lower().split():
        return signature, event["dest_ip"]
    client, server, port = _client_server(event)
    return signature, frozenset((client, server)), port if event.get("proto") in ("TCP", "UDP") else None


@pytest.mark.parametrize(
    "name",
    [
        "sashalarso_MSSIS-suricata_eve.json",
        "suricata-verify_output-eve-fileinfo_expected_eve.json",
        "Chala1899_IDS-Lab-Suricata_eve.json.gz",
        "zeyadosamaa_Zeus_Analysis_eve.json.gz",
    ],
)
def test_suricata_eve_files_become_alerts_and_counted_events(make_feed, post, name):
    path = shared_file(f"suricata/{name}")
    feed, token = make_feed("suricata")
    raw, events = _json_lines(path)
    alert_events = [e for e in events if e.get("event_type") == "alert"]
    other = {}
    for e in events:
        if e.get("event_type") != "alert":
            other[e["event_type"]] = other.get(e["event_type"], 0) + 1

    response = post(feed, token, path.read_bytes())
    assert response.status_code == 202, response.content
    delivery = Delivery.objects.get(pk=response.json()["delivery"])
    assert delivery.status == "processed", delivery.error
    assert delivery.skipped == other

    # Repeats of a signature from one client against one server and service fold into one
    # alert with a count (the client's port is not part of it); a DoS signature is one
    # alert per victim.
    alerts = Alert.objects.filter(feed=feed)
    assert sum(alerts.values_list("count", flat=True)) == len(alert_events)
    expected_keys = {_expected_key(e) for e in alert_events}
    assert alerts.count() == len(expected_keys)
    if alert_events:
        first = alert_events[0]
        client, server, server_port = _client_server(first)
        alert = next(
            a
            for a in alerts
            if a.title == first["alert"]["signature"] and a.target_ip == server and client in a.source_ips
        )
        severity = {1: "high", 2: "medium", 3: "low"}.get(first["alert"]["severity"], "info")
        assert alert.severity == severity
        assert alert.target_port == (server_port or None)  # port 0 (IP-level) means none
        assert alert.raw["alert"]["signature_id"] == first["alert"]["signature_id"]
        expected_rule = "Suricata flow: client" if (first.get("flow") or {}).get("src_ip") else "Suricata"
        assert expected_rule in alert.direction_rule


def test_suricata_icedid_alerts_name_the_malware_and_hosts(make_feed, post):
    path = shared_file("suricata/sashalarso_MSSIS-suricata_eve.json")
    feed, token = make_feed("suricata")
    assert post(feed, token, path.read_bytes()).status_code == 202
    icedid = Alert.objects.filter(feed=feed, title__icontains="IcedID")
    assert icedid.exists()
    assert {a.layer for a in icedid} <= {"L7", "L4", "L3"}
    assert all(a.source_ips for a in icedid)


def test_cloudflare_l4_and_l7_samples(make_feed, post):
    feed, token = make_feed("cloudflare")
    for name, layer, vector_ok in (
        ("cf_webhook_advanced_ddos_attack_l4_alert.example.json", "L4", lambda v: v != "http_flood"),
        ("cf_webhook_advanced_ddos_attack_l7_alert.example.json", "L7", lambda v: v == "http_flood"),
    ):
        path = shared_file(f"alerts/cloudflare/{name}")
        sample = json.loads(path.read_text())
        response = post(feed, token, path.read_bytes(), HTTP_CF_WEBHOOK_AUTH=token)
        assert response.status_code == 202
        alert = Alert.objects.get(feed=feed, external_id__isnull=False, layer=layer)
        assert alert.severity == "high"  # advanced DDoS alerts are the enterprise ones
        assert vector_ok(alert.vector)
        assert alert.labels.get("alert_type") == sample["alert_type"] or sample["alert_type"] in json.dumps(alert.raw)
        assert alert.status == "new"


def test_cloudflare_envelope_sample_is_kept_not_lost(make_feed, post):
    path = shared_file("alerts/cloudflare/cf_webhook_envelope.schema_example.json")
    feed, token = make_feed("cloudflare")
    response = post(feed, token, path.read_bytes())
    assert response.status_code == 202
    delivery = Delivery.objects.get(pk=response.json()["delivery"])
    assert delivery.status == "processed"
    assert Alert.objects.filter(feed=feed).count() == 1


@pytest.mark.parametrize(
    "name",
    [
        "crowdsec_alert_sample.json",
        "crowdsec_alert_minibulk.json",
        "crowdsec_alert_ssh-bf.json",
        "crowdsec_alert_stream_fixture.json",
    ],
)
def test_crowdsec_samples(make_feed, post, name):
    path = shared_file(f"alerts/crowdsec/{name}")
    feed, token = make_feed("crowdsec")
    data = json.loads(path.read_text())
    records = data if isinstance(data, list) else [data]
    response = post(feed, token, path.read_bytes())
    assert response.status_code == 202
    assert Delivery.objects.get(pk=response.json()["delivery"]).status == "processed"
    alerts = Alert.objects.filter(feed=feed)
    assert sum(alerts.values_list("count", flat=True)) == len(records)
    for record in records:
        source = (record.get("source") or {}).get("ip") or (record.get("source") or {}).get("value")
        if source and ":" not in source and "/" not in source:
            assert alerts.filter(source_ips__icontains=source).exists(), source
    if name == "crowdsec_alert_ssh-bf.json":
        assert set(alerts.values_list("vector", flat=True)) == {"ssh_bruteforce"}


@pytest.mark.parametrize(
    ("name", "ip", "vector"),
    [
        ("issue228_syn_flood_stdin_details.txt", "10.10.10.221", "syn_flood"),
        ("issue586_udp_flood_stdin_details.txt", None, "udp_flood"),
        ("issue991_v1.2.x_tcp_stdin_details.txt", None, None),
    ],
)
def test_fastnetmon_notify_texts(make_feed, post, name, ip, vector):
    path = shared_file(f"alerts/fastnetmon/issue_excerpts/{name}")
    feed, token = make_feed("fastnetmon")
    response = post(feed, token, path.read_bytes())
    assert response.status_code == 202
    delivery = Delivery.objects.get(pk=response.json()["delivery"])
    assert delivery.status == "processed", delivery.error
    alert = Alert.objects.get(feed=feed)
    if ip:
        assert alert.target_ip == ip
    if vector:
        assert alert.vector == vector
    text = path.read_text()
    assert alert.target_ip or alert.target_host
    assert (alert.target_ip or alert.target_host) in text


def test_fastnetmon_log_lines_are_kept_as_a_delivery(make_feed, post):
    path = shared_file("alerts/fastnetmon/issue_excerpts/issue751_log_lines.txt")
    feed, token = make_feed("fastnetmon")
    response = post(feed, token, path.read_bytes())
    delivery = Delivery.objects.get(pk=response.json()["delivery"])
    # Whatever the verdict, the bytes are kept and the outcome is explicit.
    assert delivery.status in ("processed", "rejected")
    assert bytes(delivery.body) == path.read_bytes()


def test_wazuh_sample(make_feed, post):
    path = shared_file("alerts/wazuh/wazuh_integrations_tests_data_alerts.json")
    feed, token = make_feed("wazuh")
    assert post(feed, token, path.read_bytes()).status_code == 202
    alert = Alert.objects.get(feed=feed)
    assert alert.title == json.loads(path.read_text())["rule"]["description"]


def test_every_real_alert_sample_is_covered_by_a_test():
    covered = {
        "cf_webhook_advanced_ddos_attack_l4_alert.example.json",
        "cf_webhook_advanced_ddos_attack_l7_alert.example.json",
        "cf_webhook_envelope.schema_example.json",
        "crowdsec_alert_sample.json",
        "crowdsec_alert_minibulk.json",
        "crowdsec_alert_ssh-bf.json",
        "crowdsec_alert_stream_fixture.json",
        "issue228_syn_flood_stdin_details.txt",
        "issue586_udp_flood_stdin_details.txt",
        "issue991_v1.2.x_tcp_stdin_details.txt",
        "issue751_log_lines.txt",
        "wazuh_integrations_tests_data_alerts.json",
        "sashalarso_MSSIS-suricata_eve.json",
        "suricata-verify_output-eve-fileinfo_expected_eve.json",
        "Chala1899_IDS-Lab-Suricata_eve.json.gz",
        "zeyadosamaa_Zeus_Analysis_eve.json.gz",
    }
    present = {p.name for folder in ("alerts", "suricata") for p in (SHARED_DATA / folder).rglob("*") if p.is_file()}
    if not present:
        pytest.skip("shared data not present")
    assert present <= covered, present - covered
