"""Suricata EVE JSON: ``eve.json`` files and pushed batches of EVE events.

Accepted shapes: JSON lines (what Suricata writes), a JSON array, or one object.
``event_type == "alert"`` records become alerts; every other event type (flow, dns,
stats, ...) is counted in ``ParseResult.skipped`` so an import can show what the file
held. Repeats of one signature between the same two hosts and port share a
fingerprint, so a noisy rule becomes one alert with a count, not thousands of rows.

Severity follows Suricata's priority: 1 -> high, 2 -> medium, 3 -> low, 4 and more ->
info. Options: ``lenient=True`` counts lines that are not JSON under
``skipped["malformed"]`` instead of refusing the file.
"""

from __future__ import annotations

from collections.abc import Mapping
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
from .base import ParsedAlert, ParseError, ParseResult, make_fingerprint

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
    for where, record in iter_json_records(body, lenient=lenient, skipped=result.skipped):
        if not isinstance(record, dict):
            if lenient:
                bump(result.skipped, "malformed")
                continue
            raise ParseError(f"{where}: expected an EVE JSON object, got {type_name(record)}")
        event_type = clean(record.get("event_type"), 40)
        if event_type != "alert":
            bump(result.skipped, event_type or "unknown")
            continue
        alert = as_dict(record.get("alert"))
        if not alert:
            if lenient:
                bump(result.skipped, "malformed")
                continue
            raise ParseError(f"{where}: event_type is alert but the `alert` object is missing")
        result.alerts.append(_parse_alert(record, alert))
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
    dest_port = to_port(record.get("dest_port")) if has_ports else None
    app_proto = clean(record.get("app_proto"), 20).lower()

    priority = to_int(alert.get("severity"), maximum=255)
    severity = _SEVERITY.get(priority, "info") if priority is not None else "medium"

    vector = _vector(signature, category, proto, app_proto)
    if app_proto in APP_LAYER_PROTOCOLS or vector.startswith(("waf_", "http_")):
        layer = "L7"
    elif proto in L3_PROTOCOLS:
        layer = "L3"
    else:
        layer = "L4"

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
        "src_port": clean(to_port(record.get("src_port"))) if has_ports else "",
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
    return ParsedAlert(
        fingerprint=make_fingerprint("suricata", rule, src_ip, dest_ip, dest_port),
        title=title,
        layer=layer,
        vector=vector,
        severity=severity,
        external_id=clean(signature_id),
        event_time=parse_time(record.get("timestamp")),
        target_ip=dest_ip,
        target_port=dest_port,
        target_host=target_host,
        packets=packets,
        bytes=total_bytes,
        source_ips=[src_ip] if src_ip else [],
        labels=labels,
        raw=record,
    )


def _vector(signature: str, category: str, proto: str, app_proto: str) -> str:
    text = f"{signature} {category}".lower()
    if _has_word(text, "dos") or _has_word(text, "ddos") or any(word in text for word in _DOS_WORDS):
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
    if "scan" in text:
        return "vuln_scan" if "vuln" in text else "port_scan"
    if "brute" in text:
        return "http_bruteforce" if app_proto.startswith("http") else "bruteforce"
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
