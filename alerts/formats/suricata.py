"""Suricata EVE JSON: ``eve.json`` files and pushed batches of EVE events.

Accepted shapes: JSON lines (what Suricata writes), a JSON array, or one object.
``event_type == "alert"`` records become alerts; every other event type (flow, dns,
stats, ...) is counted in ``ParseResult.skipped`` so an import can show what the file
held. Victim and attacker come from Suricata's own direction fields (see
``_orientation``); repeats of one signature from one attacker against one victim and
service share a fingerprint (never the client's ephemeral port), and a flood or
reflection is one alert per victim, so a noisy rule becomes one alert with a count.

Severity follows Suricata's priority: 1 -> high, 2 -> medium, 3 -> low, 4 and more ->
info. Options: ``lenient=True`` counts lines that are not JSON under
``skipped["malformed"]`` instead of refusing the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._common import (
    TEXT_MAX,
    TITLE_MAX,
    as_dict,
    bump,
    clean,
    clean_labels,
    flood_vector,
    iter_json_records,
    parse_time,
    slug,
    to_int,
    to_ip,
    to_port,
    type_name,
)
from .base import ParsedAlert, ParseResult, make_fingerprint

APP_LAYER_PROTOCOLS = {
    "http",
    "http2",
    "tls",
    "dns",
    "smtp",
    "ftp",
    "ftp-data",
    "ssh",
    "smb",
    "dcerpc",
    "nfs",
    "krb5",
    "snmp",
    "sip",
    "rdp",
    "rfb",
    "mqtt",
    "ike",
    "quic",
    "dhcp",
    "ntp",
    "tftp",
    "imap",
    "pop3",
    "ldap",
    "modbus",
    "dnp3",
    "enip",
}
L3_PROTOCOLS = {"ICMP", "IPV6-ICMP", "ICMPV6", "IGMP", "GRE", "ESP", "AH", "IP", "IPV4", "IPV6"}
_SEVERITY = {1: "high", 2: "medium", 3: "low"}
# Words that mark a signature as a denial of service rather than an intrusion.
_DOS_WORDS = ("flood", "amplification", "reflection", "denial of service")
_WAF_RULES = [
    (("sql", "sqli"), "waf_sqli"),
    (("xss", "cross site scripting", "cross-site scripting"), "waf_xss"),
    (("command injection", "rce", "remote code", "shellshock"), "waf_rce"),
    (("directory traversal", "path traversal", "lfi", "local file inclusion"), "waf_path_traversal"),
]


def parse(body: bytes, options: Mapping[str, Any]) -> ParseResult:
    """Read EVE JSON events; alerts become ParsedAlerts, other events are counted."""
    lenient = bool(options.get("lenient", False))
    result = ParseResult()
    # A webhook's batch of events: a broken line is refused and reported, the others kept.
    for where, record in iter_json_records(body, lenient=lenient, skipped=result.skipped, refuse=result.refuse):
        if not isinstance(record, dict):
            if lenient:
                bump(result.skipped, "malformed")
                continue
            result.refuse(where, f"expected an EVE JSON object, got {type_name(record)}")
            continue
        event_type = clean(record.get("event_type"), 40)
        if event_type != "alert":
            bump(result.skipped, event_type or "unknown")
            continue
        alert = as_dict(record.get("alert"))
        if not alert:
            if lenient:
                bump(result.skipped, "malformed")
                continue
            result.refuse(where, "event_type is alert but the `alert` object is missing")
            continue
        parsed = _parse_alert(record, alert)
        parsed.record = where
        result.alerts.append(parsed)
    return result


def _parse_alert(record: dict[str, Any], alert: dict[str, Any]) -> ParsedAlert:
    signature = clean(alert.get("signature"), TITLE_MAX)
    category = clean(alert.get("category"), TEXT_MAX)
    signature_id = to_int(alert.get("signature_id"))
    src_ip = to_ip(record.get("src_ip"))
    dest_ip = to_ip(record.get("dest_ip"))
    proto = clean(record.get("proto"), 20).upper()
    # Suricata writes port 0 for ICMP, IGMP and other portless protocols.
    has_ports = proto in ("TCP", "UDP", "SCTP")
    src_port = to_port(record.get("src_port")) if has_ports else None
    dest_port = to_port(record.get("dest_port")) if has_ports else None
    app_proto = clean(record.get("app_proto"), 20).lower()

    priority = to_int(alert.get("severity"), maximum=255)
    severity = _SEVERITY.get(priority, "info") if priority is not None else "medium"

    dos = _is_dos(f"{signature} {category}".lower())
    vector = _vector(signature, category, proto, app_proto, dos=dos)
    if app_proto in APP_LAYER_PROTOCOLS or vector.startswith(("waf_", "http_")):
        layer = "L7"
    elif proto in L3_PROTOCOLS:
        layer = "L3"
    else:
        layer = "L4"

    side = _orientation(record, alert, src_ip, src_port, dest_ip, dest_port, has_ports=has_ports, dos=dos)

    http = as_dict(record.get("http"))
    tls = as_dict(record.get("tls"))
    target_host = clean(http.get("hostname") or tls.get("sni"), TEXT_MAX)

    labels = {
        "signature_id": clean(signature_id),
        "gid": clean(alert.get("gid")),
        "rev": clean(alert.get("rev")),
        "category": category,
        "action": clean(alert.get("action"), 40),
        "proto": proto,
        "app_proto": app_proto,
        "direction": clean(record.get("direction"), 20),
        "src_port": clean(src_port) if has_ports else "",
        "flow_id": clean(record.get("flow_id"), 40),
        "in_iface": clean(record.get("in_iface"), 40),
    }
    labels = {key: value for key, value in labels.items() if value}
    labels.update(clean_labels(as_dict(alert.get("metadata")), "metadata"))
    if http:
        labels.update(
            clean_labels({k: http.get(k) for k in ("url", "http_method", "http_user_agent", "status")}, "http")
        )

    flow = as_dict(record.get("flow"))
    packets = _sum(flow.get("pkts_toserver"), flow.get("pkts_toclient"))
    total_bytes = _sum(flow.get("bytes_toserver"), flow.get("bytes_toclient"))

    rule = signature_id if signature_id is not None else signature
    title = signature or (f"Suricata signature {signature_id}" if signature_id is not None else "Suricata alert")
    if dos:
        # A flood or reflection is one attack on its victim, whatever the reflectors and
        # the ports they hit: the sources are collected into the one alert.
        fingerprint = make_fingerprint("suricata", rule, "dos", side.victim)
    else:
        # One brute force or scan from one source against one victim and service: the
        # client's ephemeral port is not part of it, and the pair is unordered so the
        # customer's assets may swap the sides without splitting the alert.
        service = None if vector in _SCAN_VECTORS else side.victim_port
        fingerprint = make_fingerprint("suricata", rule, *sorted((side.victim, side.attacker)), service)
    return ParsedAlert(
        fingerprint=fingerprint,
        title=title,
        layer=layer,
        vector=vector,
        severity=severity,
        external_id=clean(signature_id),
        event_time=parse_time(record.get("timestamp")),
        target_ip=side.victim,
        target_port=side.victim_port,
        target_host=target_host,
        packets=packets,
        bytes=total_bytes,
        source_ips=[side.attacker] if side.attacker else [],
        source_port=side.attacker_port,
        swappable=bool(side.attacker and side.victim),
        direction_rule=side.rule,
        labels=labels,
        raw=record,
    )


_SCAN_VECTORS = {"port_scan", "vuln_scan"}


@dataclass
class _Sides:
    victim: str
    victim_port: int | None
    attacker: str
    attacker_port: int | None
    rule: str


def _orientation(
    record: dict[str, Any],
    alert: dict[str, Any],
    src_ip: str,
    src_port: int | None,
    dest_ip: str,
    dest_port: int | None,
    *,
    has_ports: bool,
    dos: bool,
) -> _Sides:
    """Who is attacked and who attacks, from Suricata's own fields (assets may still swap them).

    In order: the rule's ``target`` keyword (``alert.source``/``alert.target``); for a
    flood or reflection the packets' destination; otherwise the client of the flow attacks
    its server (Suricata 7's ``flow.src_ip``/``dest_ip``, else ``direction``: a
    ``to_client`` packet runs from the server back to the client, as an FTP "530 Login
    incorrect" reply to a brute-forcing client does).
    """
    rule_source, rule_target = as_dict(alert.get("source")), as_dict(alert.get("target"))
    target_ip, source_ip = to_ip(rule_target.get("ip")), to_ip(rule_source.get("ip"))
    if target_ip and source_ip:
        return _Sides(
            target_ip,
            to_port(rule_target.get("port")) if has_ports else None,
            source_ip,
            to_port(rule_source.get("port")) if has_ports else None,
            f"Suricata rule target keyword: alert.target {target_ip} attacked by alert.source {source_ip}",
        )
    if dos:
        return _Sides(
            dest_ip,
            dest_port,
            src_ip,
            src_port,
            f"Suricata DoS signature: packets from {src_ip or 'unknown'} flood {dest_ip or 'unknown'}",
        )
    direction = clean(record.get("direction"), 20).lower()
    flow = as_dict(record.get("flow"))
    client, server = to_ip(flow.get("src_ip")), to_ip(flow.get("dest_ip"))
    if client and server:
        client_port = to_port(flow.get("src_port")) if has_ports else None
        server_port = to_port(flow.get("dest_port")) if has_ports else None
        how = f"Suricata flow: client {client} attacks server {server}"
        if app_proto := clean(record.get("app_proto"), 20).lower():
            how += f" ({app_proto})"
        return _Sides(server, server_port, client, client_port, how)
    if direction == "to_client":
        return _Sides(
            src_ip,
            src_port,
            dest_ip,
            dest_port,
            f"Suricata direction to_client: client {dest_ip or 'unknown'} attacks server {src_ip or 'unknown'}",
        )
    if direction == "to_server":
        return _Sides(
            dest_ip,
            dest_port,
            src_ip,
            src_port,
            f"Suricata direction to_server: client {src_ip or 'unknown'} attacks server {dest_ip or 'unknown'}",
        )
    return _Sides(
        dest_ip,
        dest_port,
        src_ip,
        src_port,
        "Suricata packet direction (the event names no direction): source attacks destination",
    )


def _is_dos(text: str) -> bool:
    return _has_word(text, "dos") or _has_word(text, "ddos") or any(word in text for word in _DOS_WORDS)


def _vector(signature: str, category: str, proto: str, app_proto: str, *, dos: bool) -> str:
    text = f"{signature} {category}".lower()
    if dos:
        named = flood_vector(signature, category)
        if named:
            return named
        # A custom "possible DoS" rule names no vector: the protocol it fired on does.
        if app_proto in ("http", "http2", "tls"):
            return "http_flood"
        return flood_vector(app_proto, proto) or "dos"
    for words, vector in _WAF_RULES:
        if any(_has_word(text, word) for word in words):
            return vector
    # Before "scan": "ET SCAN Potential FTP Brute-Force attempt" is a brute force.
    if "brute" in text:
        return "http_bruteforce" if app_proto.startswith("http") else "bruteforce"
    if "scan" in text:
        return "vuln_scan" if "vuln" in text else "port_scan"
    category_slug = slug(category, 60)
    return f"ids_{category_slug}" if category_slug else "ids_alert"


def _has_word(text: str, word: str) -> bool:
    start = text.find(word)
    while start != -1:
        before = text[start - 1] if start else " "
        end = start + len(word)
        after = text[end] if end < len(text) else " "
        if not before.isalnum() and not after.isalnum():
            return True
        start = text.find(word, start + 1)
    return False


def _sum(*values: Any) -> int | None:
    numbers = [n for n in (to_int(v) for v in values) if n is not None]
    return min(sum(numbers), 2**63 - 1) if numbers else None
