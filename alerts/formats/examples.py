"""Realistic example payloads for every feed format, built from parameters.

Used by the demo feed simulator, the parser tests and the ingest tests, so each
builder takes the values a scenario cares about (target, zone, vector, rates, ids,
time) and fills the rest with values that look like what the real tool sends.
Builders return plain dicts/strings; ``body()`` turns any of them into delivery bytes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

DEFAULT_TIME = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)


def body(payload: Any) -> bytes:
    """Delivery bytes for a payload: JSON for dicts/lists, UTF-8 for text."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return orjson.dumps(payload)


def rfc3339(moment: datetime) -> str:
    """2025-03-14T09:26:53Z, as Go-based tools write times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hex_id(seed: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, seed).hex


# -- Cloudflare -------------------------------------------------------------------------


def cloudflare_l4(
    *,
    event: str = "START",
    target_ip: str = "198.51.100.23",
    target_port: int = 53,
    vector: str = "UDP Flood",
    protocol: str = "UDP",
    pps: float = 2_450_000,
    mbps: float = 18_700,
    correlation_id: str | None = "8c1f3a7e2b6d4f0a9e5c7b1d3f2a6e4c",
    attack_id: str = "4b2d8f1e9a7c3e5d",
    account_id: str = "9035f53656c247e895c5a6939ae8a0e0",
    alert_type: str = "advanced_ddos_attack_l4_alert",
    at: datetime = DEFAULT_TIME,
) -> dict[str, Any]:
    """A Cloudflare L3/4 DDoS webhook; ``event`` is START or END."""
    return {
        "name": "Magic Transit DDoS",
        "text": (
            f"Cloudflare is mitigating a {vector} attack against {target_ip}:{target_port} "
            f"peaking at {pps:,.0f} pps / {mbps:,.0f} Mbps."
        ),
        "data": {
            "account_name": "Example Hosting GmbH",
            "account_tag": account_id,
            "action": "block",
            "attack_id": attack_id,
            "attack_vector": vector,
            "dashboard_link": f"https://dash.cloudflare.com/{account_id}/network-security/ddos",
            "max_rate": f"{pps:.2f} pps",
            "megabits_per_second": mbps,
            "mitigation": "block",
            "packets_per_second": pps,
            "protocol": protocol,
            "rule_description": f"Adaptive {vector.lower()} protection",
            "rule_id": "a0f6d2c1b9e84d7f8c3a5b6e7d9f1c2a",
            "rule_name": f"{vector} mitigation",
            "ruleset_id": "3b64149bfa6e4220bbbc2bd6db589552",
            "ruleset_override_id": "",
            "start_time": rfc3339(at),
            "target_id": "",
            "target_ip": target_ip,
            "target_port": target_port,
        },
        "ts": int((at if event == "START" else at + timedelta(minutes=17)).timestamp()),
        "account_id": account_id,
        "policy_id": "749b911ea5d04344a58e45edd099b328",
        "policy_name": "Magic Transit DDoS",
        "alert_type": alert_type,
        "alert_correlation_id": correlation_id,
        "alert_event": f"ALERT_STATE_EVENT_{event}",
    }


def cloudflare_l7(
    *,
    event: str = "START",
    zone: str = "shop.example.com",
    hostname: str = "checkout.shop.example.com",
    attack_type: str = "HTTP Flood",
    rps: float = 185_000,
    correlation_id: str | None = "f3e2d1c0b9a8476594a3b2c1d0e9f8a7",
    attack_id: str = "7e1c2d3b4a5f6e7d",
    account_id: str = "9035f53656c247e895c5a6939ae8a0e0",
    alert_type: str = "advanced_ddos_attack_l7_alert",
    at: datetime = DEFAULT_TIME,
) -> dict[str, Any]:
    """A Cloudflare HTTP DDoS webhook; ``event`` is START or END."""
    return {
        "name": "HTTP DDoS on shop",
        "text": f"Cloudflare is mitigating an {attack_type} against {hostname} at {rps:,.0f} requests per second.",
        "data": {
            "account_name": "Example Shop Ltd",
            "account_tag": account_id,
            "action": "managed_challenge",
            "attack_id": attack_id,
            "attack_type": attack_type,
            "dashboard_link": f"https://dash.cloudflare.com/{account_id}/{zone}/security/events",
            "max_rate": f"{rps:.0f} rps",
            "mitigation": "managed_challenge",
            "requests_per_second": rps,
            "rule_description": "HTTP requests with unusual HTTP headers or URI path (signature #73).",
            "rule_id": "fdfdac75430c4c47a959592f0aa5e68a",
            "rule_link": f"https://dash.cloudflare.com/{account_id}/{zone}/security/ddos",
            "ruleset_id": "4d21379b4f9f4bb088e0729962c8b3cf",
            "ruleset_override_id": "",
            "start_time": rfc3339(at),
            "target_hostname": hostname,
            "zone_name": zone,
            "zone_tag": _hex_id(zone),
        },
        "ts": int((at if event == "START" else at + timedelta(minutes=9)).timestamp()),
        "account_id": account_id,
        "policy_id": "749b911ea5d04344a58e45edd099b328",
        "policy_name": "HTTP DDoS on shop",
        "alert_type": alert_type,
        "alert_correlation_id": correlation_id,
        "alert_event": f"ALERT_STATE_EVENT_{event}",
    }


# -- Alertmanager -----------------------------------------------------------------------


def alertmanager_alert(
    *,
    status: str = "firing",
    alertname: str = "EdgeSynFloodDetected",
    severity: str = "critical",
    target_ip: str = "203.0.113.10",
    zone: str = "acme-corp",
    vector: str = "syn_flood",
    layer: str = "L4",
    instance: str = "edge-fra1:9100",
    pps: float | None = 3_200_000,
    fingerprint: str = "4f6c2a9e1b7d3c05",
    starts_at: datetime = DEFAULT_TIME,
    ends_at: datetime | None = None,
    summary: str | None = None,
) -> dict[str, Any]:
    """One ``alerts[]`` entry of an Alertmanager v4 webhook."""
    labels = {
        "alertname": alertname,
        "severity": severity,
        "target_ip": target_ip,
        "zone": zone,
        "customer": zone,
        "vector": vector,
        "layer": layer,
        "instance": instance,
        "job": "ddos-detector",
    }
    if pps is not None:
        labels["pps"] = str(int(pps))
    return {
        "status": status,
        "labels": labels,
        "annotations": {
            "summary": summary or f"SYN flood towards {target_ip} ({zone})",
            "description": f"Inbound SYN rate to {target_ip} is above 1 Mpps for 2 minutes.",
            "runbook_url": "https://runbooks.example.net/ddos/syn-flood",
        },
        "startsAt": rfc3339(starts_at),
        "endsAt": rfc3339(ends_at) if ends_at else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.net:9090/graph?g0.expr=syn_pps+%3E+1e6",
        "fingerprint": fingerprint,
    }


def alertmanager_notification(*alerts: dict[str, Any], receiver: str = "shieldwall") -> dict[str, Any]:
    """An Alertmanager v4 webhook carrying the given alerts (one group)."""
    alerts = alerts or (alertmanager_alert(),)
    statuses = {alert["status"] for alert in alerts}
    common = dict(alerts[0]["labels"])
    for alert in alerts[1:]:
        common = {k: v for k, v in common.items() if alert["labels"].get(k) == v}
    return {
        "version": "4",
        "groupKey": '{}/{severity=~"critical|warning"}:{alertname="' + alerts[0]["labels"]["alertname"] + '"}',
        "truncatedAlerts": 0,
        "status": "firing" if "firing" in statuses else "resolved",
        "receiver": receiver,
        "groupLabels": {"alertname": alerts[0]["labels"]["alertname"]},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.net:9093",
        "alerts": list(alerts),
    }


# -- Suricata ---------------------------------------------------------------------------


def suricata_alert(
    *,
    signature: str = "ET DOS Possible SYN Flood Inbound",
    signature_id: int = 2_100_001,
    category: str = "Attempted Denial of Service",
    severity: int = 2,
    src_ip: str = "185.220.101.47",
    src_port: int = 44_321,
    dest_ip: str = "198.51.100.23",
    dest_port: int = 443,
    proto: str = "TCP",
    app_proto: str | None = None,
    at: datetime = DEFAULT_TIME,
) -> dict[str, Any]:
    """One EVE ``alert`` event."""
    event: dict[str, Any] = {
        "timestamp": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+0000"),
        "flow_id": 1_298_714_390_221_875,
        "in_iface": "eth1",
        "event_type": "alert",
        "src_ip": src_ip,
        "src_port": src_port,
        "dest_ip": dest_ip,
        "dest_port": dest_port,
        "proto": proto,
        "alert": {
            "action": "allowed",
            "gid": 1,
            "signature_id": signature_id,
            "rev": 3,
            "signature": signature,
            "category": category,
            "severity": severity,
        },
        "flow": {
            "pkts_toserver": 12,
            "pkts_toclient": 0,
            "bytes_toserver": 720,
            "bytes_toclient": 0,
            "start": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+0000"),
        },
    }
    if app_proto:
        event["app_proto"] = app_proto
    return event


def suricata_flow(*, src_ip: str = "10.0.0.5", dest_ip: str = "198.51.100.23", at: datetime = DEFAULT_TIME) -> dict:
    """One EVE ``flow`` event (counted, not alerted)."""
    return {
        "timestamp": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+0000"),
        "event_type": "flow",
        "src_ip": src_ip,
        "src_port": 51_000,
        "dest_ip": dest_ip,
        "dest_port": 443,
        "proto": "TCP",
        "flow": {"pkts_toserver": 10, "pkts_toclient": 8, "bytes_toserver": 900, "bytes_toclient": 4200},
    }


def eve_lines(*events: dict[str, Any]) -> bytes:
    """EVE events as an eve.json file (JSON lines)."""
    return b"\n".join(orjson.dumps(event) for event in events) + b"\n"


# -- FastNetMon -------------------------------------------------------------------------


def fastnetmon_json(
    *,
    ip: str = "203.0.113.45",
    action: str = "ban",
    attack_type: str = "syn_flood",
    protocol: str = "tcp",
    direction: str = "incoming",
    pps: int = 1_645_058,
    bytes_per_second: int = 94_125_000,
    severity: str | None = "middle",
    attack_uuid: str = "8b3b7c4e-91e8-4c39-a4c7-5d0b6f1f2a11",
    host_group: str = "customer_acme",
) -> dict[str, Any]:
    """FastNetMon's JSON callback (ban / unban / partial_block / attack_details)."""
    details: dict[str, Any] = {
        "attack_uuid": attack_uuid,
        "host_group": host_group,
        "attack_type": attack_type,
        "initial_attack_power": int(pps * 0.8),
        "peak_attack_power": pps,
        "attack_direction": direction,
        "attack_protocol": protocol,
        "total_incoming_traffic": bytes_per_second,
        "total_outgoing_traffic": 0,
        "total_incoming_pps": pps,
        "total_outgoing_pps": 0,
        "total_incoming_flows": 0,
        "total_outgoing_flows": 0,
        "incoming_syn_tcp_pps": pps if attack_type == "syn_flood" else 0,
        "incoming_udp_pps": pps if attack_type == "udp_flood" else 0,
    }
    if severity:
        details["attack_severity"] = severity
    return {
        "ip": ip,
        "action": action,
        "attack_details": details,
        "packet_dump": [
            f"2025-03-14 09:26:53.101 185.220.101.{n}:{40000 + n} > {ip}:80 protocol: {protocol} flags: syn "
            f"frag: 0  packets: 1 size: 60 bytes ip size: 40 bytes ttl: 54 sample ratio: 1"
            for n in range(1, 4)
        ],
    }


def fastnetmon_text(
    *,
    ip: str = "203.0.113.45",
    attack_type: str = "udp_flood",
    protocol: str = "udp",
    pps: int = 1_271_974,
    mbps: int = 1_694,
    sources: tuple[str, ...] = ("192.0.2.77", "192.0.2.78"),
) -> str:
    """The attack-details text FastNetMon pipes to its notify script, with a packet dump."""
    lines = [
        f"IP: {ip}",
        f"Attack type: {attack_type}",
        f"Initial attack power: {pps} packets per second",
        f"Peak attack power: {pps} packets per second",
        "Attack direction: incoming",
        f"Attack protocol: {protocol}",
        f"Total incoming traffic: {mbps} mbps",
        "Total outgoing traffic: 0 mbps",
        f"Total incoming pps: {pps} packets per second",
        "Total outgoing pps: 0 packets per second",
        "Total incoming flows: 7 flows per second",
        "",
    ]
    lines += [
        f"2025-03-14 09:26:53.{n:03d} {src}:{1900 + n} > {ip}:53 protocol: {protocol} frag: 0  packets: 1 "
        f"size: 1442 bytes ip size: 1428 bytes ttl: 0 sample ratio: 1"
        for n, src in enumerate(sources)
    ]
    return "\n".join(lines) + "\n"


# -- CrowdSec ---------------------------------------------------------------------------


def crowdsec_alert(
    *,
    scenario: str = "crowdsecurity/http-bf",
    source_ip: str = "45.155.205.233",
    source_range: str = "45.155.204.0/22",
    as_number: str = "49505",
    as_name: str = "Selectel",
    country: str = "RU",
    target_fqdn: str = "shop.example.com",
    machine_id: str = "web-fra1",
    events: int = 6,
    decision: str = "ban",
    duration: str = "4h",
    start: datetime = DEFAULT_TIME,
    alert_uuid: str | None = "b6f1a3c2-4d5e-4f60-8a71-92b3c4d5e6f7",
) -> dict[str, Any]:
    """One CrowdSec LAPI alert with its events and decision."""
    meta = [
        {"key": "source_ip", "value": source_ip},
        {"key": "target_fqdn", "value": target_fqdn},
        {"key": "service", "value": "http"},
        {"key": "http_path", "value": "/wp-login.php"},
        {"key": "http_verb", "value": "POST"},
        {"key": "http_user_agent", "value": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"},
        {"key": "ASNNumber", "value": as_number},
        {"key": "IsoCode", "value": country},
    ]
    stop = start + timedelta(seconds=events * 2)
    alert: dict[str, Any] = {
        "capacity": 5,
        "decisions": [
            {
                "duration": duration,
                "origin": "crowdsec",
                "scenario": scenario,
                "scope": "Ip",
                "type": decision,
                "value": source_ip,
            }
        ],
        "events": [{"meta": meta, "timestamp": rfc3339(start + timedelta(seconds=2 * n))} for n in range(events)],
        "events_count": events,
        "labels": None,
        "leakspeed": "10s",
        "machine_id": machine_id,
        "message": f"Ip {source_ip} performed '{scenario}' ({events} events over {events * 2}s) at {rfc3339(stop)}",
        "remediation": True,
        "scenario": scenario,
        "scenario_hash": "4441dcff07020f6690d998b7101e642359ba405c2abb83565bbbdcee36de280f",
        "scenario_version": "0.3",
        "simulated": False,
        "source": {
            "as_name": as_name,
            "as_number": as_number,
            "cn": country,
            "ip": source_ip,
            "latitude": 55.7386,
            "longitude": 37.6068,
            "range": source_range,
            "scope": "Ip",
            "value": source_ip,
        },
        "start_at": rfc3339(start),
        "stop_at": rfc3339(stop),
    }
    if alert_uuid:
        alert["uuid"] = alert_uuid
    return alert
