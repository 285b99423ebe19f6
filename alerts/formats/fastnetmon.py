"""FastNetMon attack notifications, in both shapes FastNetMon sends them.

* JSON (the webhook / ``notify_script_format = json`` callback): ``{"ip": ...,
  "action": "ban" | "unban" | "partial_block" | "attack_details", "attack_details":
  {"attack_type", "initial_attack_power", "peak_attack_power", "attack_direction",
  "attack_protocol", "total_incoming_traffic" (bytes/s), "total_incoming_pps",
  "attack_severity", ...}, "packet_dump": [...]}``; an array of those is also read.
* Text: the attack details FastNetMon pipes to the notify script's stdin ("IP:
  10.10.10.221", "Attack type: syn_flood", "Total incoming traffic: 753 mbps", ...),
  often forwarded by mail, so a subject line ("FastNetMon Guard: IP x blocked because
  incoming attack with power 395 pps"), FastNetMon log lines and packet-dump lines
  are read too, and anything else around them is ignored.

The notify script's arguments can be passed as options (``ip``, ``direction``,
``pps``, ``action``) by whatever relays them. ``unban`` resolves the open alert of the
attacked IP, with or without an attack type (``resolve_only``: an unban of nothing open
is dropped); the fingerprint is the attacked IP plus the attack type.

Severity: ``attack_severity`` when FastNetMon sends it (low / middle / high), else by
size: >= 10 Mpps or >= 10 Gbps critical, >= 1 Mpps or >= 1 Gbps high, else medium.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ._common import (
    DESCRIPTION_MAX,
    TEXT_MAX,
    as_list,
    clean,
    clean_labels,
    decode_text,
    flood_vector,
    iter_json_records,
    max_severity,
    parse_rate,
    parse_time,
    severity_word,
    slug,
    to_float,
    to_ip,
    type_name,
    unique,
)
from .base import ParsedAlert, ParseError, ParseResult, make_fingerprint

RESOLVING_ACTIONS = {"unban"}
L3_VECTORS = {"icmp_flood", "ip_fragmentation", "gre_flood"}

# Lines arrive stripped; bounded repeats keep every pattern linear on hostile input.
_LINE = re.compile(r"([A-Za-z][A-Za-z0-9 _/-]{0,60}?)[ \t]{0,20}:[ \t]{0,20}(.*)")
_SUBJECT = re.compile(
    r"IP\s+(?P<ip>[^\s]{1,64})\s+(?P<verb>blocked|unblocked|unbanned|banned)\s+because\s+(?P<direction>\w{1,20})\s+attack"
    r"(?:\s+with\s+power\s+(?P<pps>\d+)\s*pps)?",
    re.IGNORECASE,
)
_LOG_ATTACK = re.compile(
    r"Attack with direction:\s*(?P<direction>\w{1,20})\s+IP:\s*(?P<ip>[^\s]{1,64})\s+Power:\s*(?P<pps>\d{1,20})"
)
_LOG_RATES = re.compile(r"in_pps:\s*(?P<in_pps>\d{1,20}).{0,200}?in_bps:\s*(?P<in_bps>\d{1,20})")
_LOG_ACTION = re.compile(r"Call script for (?P<action>ban|unban) client:\s*(?P<ip>[^\s]{1,64})")
# "1.2.3.4:53 > 10.10.10.221:80 protocol: udp ..." in the packet dump FastNetMon appends
_DUMP = re.compile(
    r"(?P<src>[0-9A-Fa-f.:]{2,45}?):(?P<sport>\d{1,5})[ \t]{1,10}>[ \t]{1,10}"
    r"(?P<dst>[0-9A-Fa-f.:]{2,45}?):(?P<dport>\d{1,5})[ \t]{1,10}protocol:"
)


def parse(body: bytes, options: Mapping[str, Any]) -> ParseResult:
    """Read a FastNetMon JSON callback or the attack-details text of its notify script."""
    text = decode_text(body)
    head = text.lstrip()[:1]
    if head in ("{", "["):
        alerts = []
        for where, record in iter_json_records(body):
            if not isinstance(record, dict):
                raise ParseError(f"{where}: expected a FastNetMon notification object, got {type_name(record)}")
            alerts.append(_from_json(record, options, where))
        return ParseResult(alerts=alerts)
    return ParseResult(alerts=[_from_text(text, options)])


def _from_json(record: dict[str, Any], options: Mapping[str, Any], where: str) -> ParsedAlert:
    details = record.get("attack_details")
    if details is None:
        details = {}
    if not isinstance(details, dict):
        raise ParseError(f"{where}: field `attack_details` must be an object, got {type_name(details)}")
    ip_text = clean(record.get("ip") or details.get("ip") or options.get("ip"), 64)
    if not ip_text:
        raise ParseError(f"{where}: no attacked IP: field `ip` is missing")
    action = clean(record.get("action") or options.get("action"), 30).lower() or "ban"
    direction = clean(details.get("attack_direction") or options.get("direction"), 20).lower() or "incoming"
    way = "outgoing" if direction == "outgoing" else "incoming"
    pps = _max(
        to_float(details.get("peak_attack_power")),
        to_float(details.get(f"total_{way}_pps")),
        to_float(details.get("initial_attack_power")),
        to_float(options.get("pps")),
    )
    bits = to_float(details.get(f"total_{way}_traffic_bits"))
    traffic_bytes = to_float(details.get(f"total_{way}_traffic"))
    bps = bits if bits is not None else (traffic_bytes * 8 if traffic_bytes is not None else None)

    dump = as_list(record.get("packet_dump")) or as_list(details.get("packet_dump"))
    sources = _dump_sources("\n".join(clean(line, 2_000) for line in dump[:5_000]), ip_text, way)
    labels = clean_labels({k: v for k, v in details.items() if k != "packet_dump"}, "")
    return _alert(
        ip_text=ip_text,
        action=action,
        direction=direction,
        attack_type=clean(details.get("attack_type"), 100),
        protocol=clean(details.get("attack_protocol"), 20).lower(),
        pps=pps,
        bps=bps,
        severity_text=details.get("attack_severity"),
        attack_id=clean(details.get("attack_uuid") or record.get("attack_uuid"), 100),
        zone=clean(details.get("host_group") or details.get("network"), TEXT_MAX),
        event_time=parse_time(details.get("attack_start") or record.get("timestamp")),
        sources=sources,
        labels=labels,
        description="",
        raw=record,
    )


def _from_text(text: str, options: Mapping[str, Any]) -> ParsedAlert:
    fields: dict[str, str] = {}
    ip_text = clean(options.get("ip"), 64)
    action = clean(options.get("action"), 30).lower()
    direction = clean(options.get("direction"), 20).lower()
    log_pps = to_float(options.get("pps"))
    log_bps: float | None = None
    lines = text.split("\n")
    if len(lines) > 200_000:
        raise ParseError(f"too many lines for one FastNetMon notification ({len(lines)}); is this a log file?")
    for raw_line in lines:
        line = raw_line.strip()[:2_000]
        if not line:
            continue
        if (match := _SUBJECT.search(line)) is not None:
            ip_text = ip_text or match["ip"]
            direction = direction or match["direction"].lower()
            log_pps = log_pps if log_pps is not None else to_float(match["pps"])
            if match["verb"].lower().startswith("un"):
                action = action or "unban"
            continue
        if (match := _LOG_ATTACK.search(line)) is not None:
            ip_text = ip_text or match["ip"]
            direction = direction or match["direction"].lower()
            log_pps = _max(log_pps, to_float(match["pps"]))
            continue
        if (match := _LOG_RATES.search(line)) is not None:
            log_pps = _max(log_pps, to_float(match["in_pps"]))
            log_bps = _max(log_bps, to_float(match["in_bps"]))
            continue
        if (match := _LOG_ACTION.search(line)) is not None:
            ip_text = ip_text or match["ip"]
            action = action or match["action"]
            continue
        match = _LINE.match(line)
        if match is not None:
            key = match[1].strip().lower()
            fields.setdefault(key, match[2].strip())
    ip_text = ip_text or clean(fields.get("ip"), 64)
    if not ip_text and not text.strip():
        # An unban notify call has no stdin; only the options (script arguments) name the IP.
        raise ParseError("the delivery is empty and the options name no `ip`: nothing to read")
    if not ip_text:
        raise ParseError(
            "not a FastNetMon notification: no attacked IP found (expected a line 'IP: <address>' or JSON with `ip`)"
        )
    direction = direction or clean(fields.get("attack direction"), 20).lower() or "incoming"
    way = "outgoing" if direction == "outgoing" else "incoming"
    pps = _max(
        to_float(fields.get("peak attack power")),
        to_float(fields.get(f"total {way} pps")),
        to_float(fields.get("initial attack power")),
        log_pps,
    )
    bps = _rate_bps(fields.get(f"total {way} traffic"))
    if bps is None:
        bps = log_bps
    labels = {slug(key): clean(value, 2_000) for key, value in list(fields.items())[:200] if slug(key)}
    return _alert(
        ip_text=ip_text,
        action=action or "ban",
        direction=direction,
        attack_type=clean(fields.get("attack type"), 100),
        protocol=clean(fields.get("attack protocol"), 20).lower(),
        pps=pps,
        bps=bps,
        severity_text=fields.get("attack severity"),
        attack_id=clean(fields.get("attack uuid"), 100),
        zone=clean(fields.get("host group") or fields.get("network"), TEXT_MAX),
        event_time=None,
        sources=_dump_sources(text, ip_text, way),
        labels=labels,
        description=clean(text, DESCRIPTION_MAX),
        raw={"text": clean(text, 100_000)},
    )


def _alert(
    *,
    ip_text: str,
    action: str,
    direction: str,
    attack_type: str,
    protocol: str,
    pps: float | None,
    bps: float | None,
    severity_text: Any,
    attack_id: str,
    zone: str,
    event_time: Any,
    sources: list[str],
    labels: dict[str, str],
    description: str,
    raw: dict[str, Any],
) -> ParsedAlert:
    target_ip = to_ip(ip_text)
    reported_type = attack_type or "unknown"
    vector = flood_vector(reported_type.replace("_", " ")) if reported_type != "unknown" else None
    if vector is None and reported_type != "unknown":
        vector = slug(reported_type)
    if not vector:
        vector = {"tcp": "tcp_flood", "udp": "udp_flood", "icmp": "icmp_flood"}.get(protocol, "unknown")
    layer = "L3" if vector in L3_VECTORS else "L4"
    resolved = action in RESOLVING_ACTIONS

    severity = severity_word(severity_text)
    if severity is None:
        severity = "medium"
        if (pps or 0) >= 10_000_000 or (bps or 0) >= 10e9:
            severity = "critical"
        elif (pps or 0) >= 1_000_000 or (bps or 0) >= 1e9:
            severity = "high"
    else:
        severity = max_severity(severity, "low")

    labels = {**labels, "action": action, "direction": direction}
    if protocol:
        labels["protocol"] = protocol
    title = f"FastNetMon: {reported_type.replace('_', ' ')} {direction} attack on {ip_text}"
    return ParsedAlert(
        fingerprint=make_fingerprint("fastnetmon", target_ip or ip_text, slug(reported_type) or "unknown"),
        title=clean(title, 500),
        layer=layer,
        vector=vector,
        severity=severity,
        external_id=attack_id,
        event_time=event_time,
        resolved=resolved,
        # An unban closes the open alert of that address, whatever attack type it names
        # (often none); an unban of nothing open is dropped, never a resolved alert.
        resolve_only=resolved,
        direction_rule=f"FastNetMon: {direction} attack on the monitored address {ip_text}",
        target_ip=target_ip,
        target_host="" if target_ip else clean(ip_text, TEXT_MAX),
        zone=zone,
        pps=pps,
        bps=bps,
        source_ips=sources,
        labels=labels,
        description=description,
        raw=raw,
    )


def _dump_sources(text: str, target: str, way: str) -> list[str]:
    found = []
    for match in _DUMP.finditer(text[:5_000_000]):
        src, dst = to_ip(match["src"]), to_ip(match["dst"])
        peer = src if way == "incoming" else dst
        own = dst if way == "incoming" else src
        if peer and (own == target or not to_ip(target)):
            found.append(peer)
    return unique(found)


def _rate_bps(value: str | None) -> float | None:
    # FastNetMon prints traffic in mbps; a bare number is read the same way.
    number, kind = parse_rate(value)
    if number is None:
        return None
    return number if kind == "bps" else number * 1e6


def _max(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None
