"""Who is attacked and who attacks, decided the same way for every sender (issue 13).

Payloads are shaped like the real senders' (Suricata 7 EVE with ``direction`` and the
flow's own ``src_ip``/``dest_ip``; Alertmanager webhook v4; FastNetMon's JSON callback):
the victim is the side that belongs to a customer's assets, else the sender's own
direction fields; the alert page says which rule decided it; one brute force is one alert.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from alerts.formats import examples as payloads
from alerts.models import Alert, Attack, Delivery
from alerts.preview import delivery_preview
from console.models import Asset
from tests.factories import AssetFactory, CustomerFactory

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
SERVER = "203.0.113.21"  # the customer's FTP server
CLIENT = "198.51.100.7"  # the brute-forcing client


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f+0000")


def ftp_bruteforce_response(n: int, *, with_flow: bool = True) -> dict:
    """ET's "FTP Brute-Force attempt response" rule fires on the server's "530" reply:
    a to_client packet from the server (port 21) to the client's n-th ephemeral port."""
    client_port = 40_000 + n
    event = {
        "timestamp": _ts(T0 + timedelta(seconds=n)),
        "flow_id": 1_000_000 + n,
        "in_iface": "eth1",
        "event_type": "alert",
        "src_ip": SERVER,
        "src_port": 21,
        "dest_ip": CLIENT,
        "dest_port": client_port,
        "proto": "TCP",
        "pkt_src": "wire/pcap",
        "alert": {
            "action": "allowed",
            "gid": 1,
            "signature_id": 2002383,
            "rev": 12,
            "signature": "ET SCAN Potential FTP Brute-Force attempt response",
            "category": "Unsuccessful User Privilege Gain",
            "severity": 1,
        },
        "app_proto": "ftp",
        "direction": "to_client",
    }
    if with_flow:
        event["flow"] = {
            "pkts_toserver": 6,
            "pkts_toclient": 5,
            "bytes_toserver": 420,
            "bytes_toclient": 500,
            "start": _ts(T0 + timedelta(seconds=n)),
            "src_ip": CLIENT,
            "dest_ip": SERVER,
            "src_port": client_port,
            "dest_port": 21,
        }
    return event


@pytest.fixture
def initech(db):
    customer = CustomerFactory(slug="initech", name="Initech")
    AssetFactory(customer=customer, kind=Asset.Kind.PREFIX, value="203.0.113.0/24")
    return customer


def test_thirty_ftp_brute_force_events_from_thirty_client_ports_are_one_alert_on_the_server(
    make_feed, post, initech, engineer_client
):
    feed, token = make_feed("suricata")
    body = payloads.eve_lines(*(ftp_bruteforce_response(n) for n in range(30)))
    assert post(feed, token, body).status_code == 202

    alert = Alert.objects.get(feed=feed)  # one, not one per client port
    assert alert.count == 30
    assert alert.target_ip == SERVER and alert.target_port == 21
    assert alert.source_ips == [CLIENT], "the brute-forcing client is the source, never the customer's server"
    assert alert.customer == initech
    assert alert.vector == "bruteforce"
    assert alert.direction_rule.startswith("customer asset: 203.0.113.21 is initech's asset 203.0.113.0/24")

    page = engineer_client.get(alert.get_absolute_url()).content.decode()
    assert "Victim decided by" in page and "initech&#x27;s asset 203.0.113.0/24" in page


def test_without_assets_the_suricata_flow_and_direction_decide(make_feed, post):
    feed, token = make_feed("suricata")
    body = payloads.eve_lines(*(ftp_bruteforce_response(n) for n in range(10)))
    assert post(feed, token, body).status_code == 202
    alert = Alert.objects.get(feed=feed)
    assert (alert.target_ip, alert.target_port, alert.source_ips) == (SERVER, 21, [CLIENT])
    assert alert.customer is None
    assert alert.direction_rule == (
        f"neither side is a customer asset; Suricata flow: client {CLIENT} attacks server {SERVER} (ftp)"
    )

    # An EVE without the flow's tuple (older Suricata, or flow logging trimmed): the
    # direction field alone says the reply runs from the server to the client.
    feed2, token2 = make_feed("suricata", slug="eve-no-flow")
    body = payloads.eve_lines(*(ftp_bruteforce_response(n, with_flow=False) for n in range(10)))
    assert post(feed2, token2, body).status_code == 202
    alert = Alert.objects.get(feed=feed2)
    assert (alert.target_ip, alert.target_port, alert.source_ips, alert.count) == (SERVER, 21, [CLIENT], 10)
    assert "Suricata direction to_client" in alert.direction_rule


def test_the_customers_asset_wins_over_the_senders_direction(make_feed, post, initech):
    """Malware answering the customer's host: Suricata's flow client is the customer's
    host (it opened the connection), so the sender's rule would make the C2 server the
    victim; the customer's prefix makes the customer's host the victim."""
    feed, token = make_feed("suricata")
    c2, host = "192.0.2.66", "203.0.113.50"
    event = payloads.suricata_alert(
        signature="ET MALWARE Win32/IcedID Request Cookie",
        signature_id=2044005,
        category="A Network Trojan was detected",
        severity=1,
        src_ip=c2,
        src_port=80,
        dest_ip=host,
        dest_port=51_234,
        app_proto="http",
    )
    event["direction"] = "to_client"
    event["flow"].update(src_ip=host, dest_ip=c2, src_port=51_234, dest_port=80)
    assert post(feed, token, payloads.eve_lines(event)).status_code == 202
    alert = Alert.objects.get(feed=feed)
    assert alert.target_ip == host and alert.source_ips == [c2]
    assert alert.customer == initech
    assert alert.direction_rule.startswith("customer asset: 203.0.113.50 is initech's asset")
    assert "the sender had it the other way round" in alert.direction_rule


def test_a_dns_rrsig_reflection_is_one_alert_whatever_the_victim_ports(make_feed, post, initech):
    """107 responses from 8 reflectors' port 53 to 16 ports of one victim: one attack."""
    feed, token = make_feed("suricata")
    victim = "203.0.113.10"
    reflectors = [f"192.0.2.{10 + i}" for i in range(8)]
    events = []
    for n in range(107):
        reflector, victim_port = reflectors[n % 8], 1024 + (n % 16) * 997
        event = payloads.suricata_alert(
            signature="ET DOS DNS Amplification Attack Inbound",
            signature_id=2016016,
            category="Attempted Denial of Service",
            src_ip=reflector,
            src_port=53,
            dest_ip=victim,
            dest_port=victim_port,
            proto="UDP",
            app_proto="dns",
            at=T0 + timedelta(milliseconds=10 * n),
        )
        event["direction"] = "to_server"  # the flow starts with the reflected answer
        event["flow"].update(src_ip=reflector, dest_ip=victim, src_port=53, dest_port=victim_port)
        events.append(event)
    assert post(feed, token, payloads.eve_lines(*events)).status_code == 202

    alert = Alert.objects.get(feed=feed)
    assert alert.count == 107
    assert alert.target_ip == victim and alert.customer == initech
    assert alert.vector == "dns_amplification"
    assert set(alert.source_ips) == set(reflectors), "every reflector is kept, not the last event's"
    assert Attack.objects.filter(target=victim).count() == 1


# --------------------------------------------------------------------------- Alertmanager


def _am_alert(dst_ip: str, **labels: str) -> dict:
    """An ``alerts[]`` entry as Alertmanager 0.25 sends it: the exporter's router is the
    ``instance``, the victim a ``dst_ip`` label of the rule."""
    all_labels = {
        "alertname": "DDoSInboundFlood",
        "severity": "critical",
        "instance": "edge-fra1.net.example:9100",
        "job": "ddos-exporter",
        "dst_ip": dst_ip,
        **labels,
    }
    return {
        "status": "firing",
        "labels": all_labels,
        "annotations": {"summary": f"Inbound flood to {dst_ip}", "description": "above 2 Gbps for 1m"},
        "startsAt": "2026-12-04T09:00:00.000Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example:9090/graph?g0.expr=ddos_bps",
        "fingerprint": f"fp{dst_ip.replace('.', '')}",
    }


def _am_group(*alerts: dict) -> bytes:
    common = {k: v for k, v in alerts[0]["labels"].items() if all(a["labels"].get(k) == v for a in alerts)}
    return json.dumps(
        {
            "version": "4",
            "groupKey": '{}:{alertname="DDoSInboundFlood"}',
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "shieldwall",
            "groupLabels": {"alertname": "DDoSInboundFlood"},
            "commonLabels": common,
            "commonAnnotations": {},
            "externalURL": "http://alertmanager.example:9093",
            "alerts": list(alerts),
        }
    ).encode()


def test_alertmanager_dst_ip_and_customer_labels_two_victims_two_attacks(make_feed, post, initech):
    globex = CustomerFactory(slug="globex", name="Globex")
    feed, token = make_feed("alertmanager")
    body = _am_group(
        _am_alert("192.0.2.77", customer="initech", vector="udp_flood", bps="2.4e9"),
        _am_alert("198.51.100.200", customer="globex", vector="syn_flood", pps="1.2M"),
    )
    assert post(feed, token, body).status_code == 202

    first = Alert.objects.get(feed=feed, target_ip="192.0.2.77")
    second = Alert.objects.get(feed=feed, target_ip="198.51.100.200")
    assert first.customer == initech and second.customer == globex
    assert first.target_host == "" and second.target_host == "", "the router (instance) is not the target"
    assert (first.vector, first.bps) == ("udp_flood", 2.4e9)
    assert (second.vector, second.pps) == ("syn_flood", 1.2e6)
    assert first.direction_rule == "Alertmanager label dst_ip names the target"
    assert first.attack_id != second.attack_id
    assert {a.target for a in Attack.objects.all()} == {"192.0.2.77", "198.51.100.200"}


def test_alertmanager_customer_from_the_target_address_when_no_label_names_it(make_feed, post, initech):
    feed, token = make_feed("alertmanager")
    assert post(feed, token, _am_group(_am_alert("203.0.113.99"))).status_code == 202
    alert = Alert.objects.get(feed=feed)
    assert alert.target_ip == "203.0.113.99"
    assert alert.customer == initech and alert.asset is not None


def test_instance_is_the_target_only_when_nothing_better_names_one(make_feed, post):
    feed, token = make_feed("alertmanager")
    entry = _am_alert("x")
    del entry["labels"]["dst_ip"]
    entry["labels"]["instance"] = "10.1.2.3:9113"
    assert post(feed, token, _am_group(entry)).status_code == 202
    alert = Alert.objects.get(feed=feed)
    assert alert.target_ip == "10.1.2.3"
    assert alert.direction_rule == "Alertmanager label instance names the target"


def test_a_feeds_own_label_mapping_and_its_preview(make_feed, post, initech):
    feed, token = make_feed("alertmanager")
    entry = _am_alert("192.0.2.1")  # a dst_ip the mapping below does not trust
    entry["labels"].update(victim_addr="203.0.113.44", tenant_name="initech", kind="dns_amplification")
    body = _am_group(entry)
    mapping = {"target_ip": ["victim_addr"], "customer": ["tenant_name"], "vector": ["kind"]}

    # The preview parses with the proposed mapping and writes nothing.
    preview = delivery_preview(feed=feed, body=body, label_mapping=mapping)
    assert preview["error"] == ""
    [row] = preview["alerts"]
    assert (row["target_ip"], row["customer"], row["vector"]) == ("203.0.113.44", "initech", "dns_amplification")
    assert row["direction_rule"] == "Alertmanager label victim_addr names the target"
    assert not Alert.objects.exists()
    # With the feed's current (default) mapping the same delivery reads dst_ip.
    assert delivery_preview(feed=feed, body=body)["alerts"][0]["target_ip"] == "192.0.2.1"

    feed.label_mapping = mapping
    feed.save()
    assert post(feed, token, body).status_code == 202
    alert = Alert.objects.get(feed=feed)
    assert (alert.target_ip, alert.customer, alert.vector) == ("203.0.113.44", initech, "dns_amplification")


def test_generic_records_use_the_label_mapping_too(make_feed, post, initech):
    feed, token = make_feed("generic")
    record = {"title": "Flood", "victim": "203.0.113.8", "src_ip": "192.0.2.200", "attack_type": "udp_flood"}
    assert post(feed, token, json.dumps(record).encode()).status_code == 202
    alert = Alert.objects.get(feed=feed)
    assert alert.target_ip == "203.0.113.8" and alert.source_ips == ["192.0.2.200"]
    assert alert.customer == initech and alert.vector == "udp_flood"

    # A record whose "target" is the customer's own address seen as the source is turned round.
    feed2, token2 = make_feed("generic", slug="generic-2")
    record = {"title": "SSH login failures", "dest_ip": "192.0.2.200", "src_ip": "203.0.113.9"}
    assert post(feed2, token2, json.dumps(record).encode()).status_code == 202
    alert = Alert.objects.get(feed=feed2)
    assert alert.target_ip == "203.0.113.9" and alert.source_ips == ["192.0.2.200"]
    assert alert.customer == initech


# --------------------------------------------------------------------------- FastNetMon


@pytest.mark.parametrize("unban_type", ["syn_flood", None], ids=["with-type", "without-type"])
def test_fastnetmon_unban_resolves_the_open_alert_and_never_adds_a_phantom(make_feed, post, unban_type):
    feed, token = make_feed("fastnetmon")
    ban = payloads.fastnetmon_json(ip="203.0.113.45", action="ban", attack_type="syn_flood")
    assert post(feed, token, json.dumps(ban).encode()).status_code == 202
    alert = Alert.objects.get(feed=feed)
    assert alert.resolved_at is None

    # FastNetMon's unban callback: the IP and the action, attack details only sometimes.
    unban = {"ip": "203.0.113.45", "action": "unban"}
    if unban_type:
        unban["attack_details"] = {"attack_type": unban_type, "attack_direction": "incoming"}
    response = post(feed, token, json.dumps(unban).encode())
    assert response.status_code == 202
    delivery = Delivery.objects.get(pk=response.json()["delivery"])
    assert delivery.alerts_resolved == 1
    assert Alert.objects.filter(feed=feed).count() == 1, "no phantom resolved alert"
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED and alert.resolved_at is not None

    # An unban of an address that was never banned (or already unbanned) stores nothing.
    post(feed, token, json.dumps({"ip": "203.0.113.46", "action": "unban"}).encode())
    post(feed, token, json.dumps({"ip": "203.0.113.45", "action": "unban", "attack_details": {}}).encode())
    assert Alert.objects.filter(feed=feed).count() == 1


# --------------------------------------------------------------------------- CrowdSec


def test_crowdsec_attacker_is_the_source_victim_the_machines_host_or_unknown(make_feed, post, initech):
    from tests.shared import shared_file

    body = shared_file("alerts/crowdsec/crowdsec_alert_stream_fixture.json").read_bytes()  # machine_id "test"
    feed, token = make_feed("crowdsec")
    assert post(feed, token, body).status_code == 202
    for alert in Alert.objects.filter(feed=feed):
        assert alert.target == "", "the agent's id is not a victim"
        assert "victim unknown" in alert.direction_rule
        assert alert.source_ips and alert.attack_id is None

    # With the machine's protected host configured, that host is the victim (and maps the customer).
    feed2, token2 = make_feed("crowdsec", slug="crowdsec-2", options={"machines": {"test": "203.0.113.30"}})
    assert post(feed2, token2, body).status_code == 202
    alerts = Alert.objects.filter(feed=feed2)
    assert {a.target_ip for a in alerts} == {"203.0.113.30"}
    assert {a.customer_id for a in alerts} == {initech.pk}
    assert all(a.direction_rule == "feed option machines: machine test protects 203.0.113.30" for a in alerts)


def test_crowdsec_range_scope_and_repeat_overflows(make_feed, post):
    feed, token = make_feed("crowdsec", options={"machines": {"web-1": "shop.initech.example"}})
    overflow = {
        "scenario": "crowdsecurity/http-bf",
        "machine_id": "web-1",
        "uuid": "2f7c1d2e-0001",
        "source": {"scope": "Range", "value": "192.0.2.0/24", "range": "192.0.2.0/24"},
        "events_count": 11,
        "start_at": "2026-12-04T09:00:00Z",
        "stop_at": "2026-12-04T09:00:05Z",
        "decisions": [
            {"type": "ban", "scope": "Range", "value": "192.0.2.0/24", "duration": "4h", "origin": "crowdsec"}
        ],
        "events": [],
    }
    second = {**overflow, "uuid": "2f7c1d2e-0002", "start_at": "2026-12-04T09:10:00Z"}
    post(feed, token, json.dumps([overflow]).encode())
    post(feed, token, json.dumps([second]).encode())
    alert = Alert.objects.get(feed=feed)  # the second overflow of one brute force is a repeat
    assert alert.count == 2
    assert alert.target_host == "shop.initech.example"
    assert alert.source_ips == [] and "192.0.2.0/24" in alert.title  # a range is not an address


def test_the_rules_target_keyword_decides_when_no_side_is_a_customers(make_feed, post):
    """A rule written with ``target:dest_ip`` makes Suricata log alert.source/alert.target."""
    feed, token = make_feed("suricata")
    event = payloads.suricata_alert(
        signature="ET EXPLOIT Possible Apache log4j RCE Attempt",
        signature_id=2034647,
        category="Attempted Administrator Privilege Gain",
        src_ip="192.0.2.200",
        src_port=51_000,
        dest_ip="198.51.100.80",
        dest_port=8080,
        app_proto="http",
    )
    event["direction"] = "to_server"
    event["alert"]["source"] = {"ip": "192.0.2.200", "port": 51_000}
    event["alert"]["target"] = {"ip": "198.51.100.80", "port": 8080}
    assert post(feed, token, payloads.eve_lines(event)).status_code == 202
    alert = Alert.objects.get(feed=feed)
    assert (alert.target_ip, alert.target_port, alert.source_ips) == ("198.51.100.80", 8080, ["192.0.2.200"])
    assert "Suricata rule target keyword" in alert.direction_rule


def test_a_spectrum_application_is_a_customer_side(make_feed, post, initech):
    AssetFactory(customer=initech, kind=Asset.Kind.SPECTRUM, value="198.51.100.22:2222")
    feed, token = make_feed("suricata")
    # The customer's Spectrum app answers (to_client) a client that brute-forces it.
    event = ftp_bruteforce_response(0, with_flow=False)
    event.update(src_ip="198.51.100.22", src_port=2222, app_proto="ssh")
    event["alert"]["signature"] = "ET SCAN Potential SSH Brute Force response"
    assert post(feed, token, payloads.eve_lines(event)).status_code == 202
    alert = Alert.objects.get(feed=feed)
    assert (alert.target_ip, alert.target_port, alert.customer) == ("198.51.100.22", 2222, initech)
    assert alert.direction_rule.startswith("customer asset: 198.51.100.22 is initech's asset 198.51.100.22:2222")


def test_the_direction_rule_is_escaped_on_the_alert_page(make_feed, post, engineer_client):
    machine = '<img src=x onerror="window.__pwned=1">'
    feed, token = make_feed("crowdsec")
    overflow = {
        "scenario": "crowdsecurity/ssh-bf",
        "machine_id": machine,
        "source": {"scope": "Ip", "value": "192.0.2.9"},
    }
    post(feed, token, json.dumps([overflow]).encode())
    alert = Alert.objects.get(feed=feed)
    assert machine in alert.direction_rule
    page = engineer_client.get(alert.get_absolute_url()).content.decode()
    assert 'onerror="window' not in page
    assert "&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;" in page


def test_the_api_says_which_rule_decided_the_victim(make_feed, post, initech, api_as, engineer):
    feed, token = make_feed("suricata")
    post(feed, token, payloads.eve_lines(*(ftp_bruteforce_response(n) for n in range(3))))
    alert = Alert.objects.get(feed=feed)
    body = api_as(engineer).get(f"/api/alerts/{alert.pk}/").json()
    assert body["direction_rule"] == alert.direction_rule
    assert body["direction_rule"].startswith("customer asset: 203.0.113.21")


def test_a_customer_label_decides_over_the_address_and_the_address_when_none(make_feed, post, initech):
    globex = CustomerFactory(slug="globex", name="Globex")
    feed, token = make_feed("alertmanager")
    # 203.0.113.99 is in Initech's prefix, but the rule's label says Globex: the label decides.
    post(feed, token, _am_group(_am_alert("203.0.113.99", customer="Globex")))  # a name works as well as a slug
    alert = Alert.objects.get(feed=feed)
    assert alert.customer == globex and alert.asset is None
    # A label naming no known customer is no customer: the address maps it.
    post(feed, token, _am_group(_am_alert("203.0.113.98", customer="nobody-we-know")))
    alert = Alert.objects.get(feed=feed, target_ip="203.0.113.98")
    assert alert.customer == initech and alert.asset is not None
