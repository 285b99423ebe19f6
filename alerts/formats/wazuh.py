"""Wazuh manager alerts (``alerts.json`` lines, or the JSON the integrator posts).

Each alert carries the ``rule`` that fired (``level`` 0-15, ``description``, ``id``,
``groups``), the ``agent`` it fired on, the ``full_log`` line and decoded ``data``
(``srcip``, ``dstip``, ``url`` ...). Severity from the rule level: 12-15 critical,
8-11 high, 4-7 medium, 2-3 low, 0-1 info. Repeats of one rule on one agent from one
source share a fingerprint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._common import (
    DESCRIPTION_MAX,
    TEXT_MAX,
    TITLE_MAX,
    as_dict,
    as_list,
    clean,
    clean_labels,
    iter_json_records,
    parse_time,
    slug,
    to_int,
    to_ip,
    to_port,
    type_name,
)
from .base import ParsedAlert, ParseError, ParseResult, make_fingerprint

_GROUP_VECTORS = [
    ({"sql_injection", "sqlinjection"}, "waf_sqli", "L7"),
    ({"xss"}, "waf_xss", "L7"),
    ({"web_scan", "recon", "scan"}, "scan", "L7"),
    ({"authentication_failures", "authentication_failed", "brute_force"}, "bruteforce", "L7"),
    ({"attack", "web", "accesslog"}, "waf_attack", "L7"),
    ({"syscheck", "syscheck_integrity_changed"}, "file_integrity", "L7"),
]


def parse(body: bytes, options: Mapping[str, Any]) -> ParseResult:
    """Read Wazuh alerts, one ParsedAlert per alert object."""
    result = ParseResult()
    lenient = bool(options.get("lenient", False))
    for where, value in iter_json_records(body, lenient=lenient, skipped=result.skipped):
        records = value if isinstance(value, list) else [value]
        for record in records:
            if not isinstance(record, dict):
                raise ParseError(f"{where}: expected a Wazuh alert object, got {type_name(record)}")
            rule = record.get("rule")
            if not isinstance(rule, dict):
                raise ParseError(f"{where}: not a Wazuh alert: the `rule` object is missing")
            result.alerts.append(_parse_alert(record, rule))
    return result


def _parse_alert(record: dict[str, Any], rule: dict[str, Any]) -> ParsedAlert:
    agent = as_dict(record.get("agent"))
    data = as_dict(record.get("data"))
    level = to_int(rule.get("level"), maximum=100)
    severity = "medium"
    if level is not None:
        severity = "critical" if level >= 12 else "high" if level >= 8 else "medium" if level >= 4 else "low"
        if level <= 1:
            severity = "info"
    groups = [clean(g, 100).lower() for g in as_list(rule.get("groups"))[:50]]
    vector, layer = "", "L7"
    for names, candidate, candidate_layer in _GROUP_VECTORS:
        if names.intersection(groups):
            vector, layer = candidate, candidate_layer
            break
    if vector == "bruteforce" and ("sshd" in groups or "ssh" in groups):
        vector = "ssh_bruteforce"
    if not vector:
        vector = f"wazuh_{slug(groups[0], 40)}" if groups and slug(groups[0]) else "unknown"

    rule_id = clean(rule.get("id"), 40)
    agent_id = clean(agent.get("id"), 40)
    source_ip = to_ip(data.get("srcip") or data.get("src_ip"))
    target_ip = to_ip(data.get("dstip") or data.get("dst_ip")) or to_ip(agent.get("ip"))
    title = clean(rule.get("description"), TITLE_MAX) or f"Wazuh rule {rule_id or '?'}"

    labels = {
        "rule.id": rule_id,
        "rule.level": clean(level),
        "rule.groups": ",".join(g for g in groups if g),
        "rule.firedtimes": clean(rule.get("firedtimes"), 20),
        "agent.id": agent_id,
        "agent.name": clean(agent.get("name"), TEXT_MAX),
        "decoder": clean(as_dict(record.get("decoder")).get("name"), TEXT_MAX),
        "location": clean(record.get("location"), 2_000),
    }
    labels = {k: v for k, v in labels.items() if v}
    labels.update(clean_labels(data, "data"))

    return ParsedAlert(
        fingerprint=make_fingerprint("wazuh", rule_id, agent_id or agent.get("name"), source_ip),
        title=title,
        layer=layer,
        vector=vector,
        severity=severity,
        external_id=clean(record.get("id"), 100),
        event_time=parse_time(record.get("timestamp")),
        target_ip=target_ip,
        target_port=to_port(data.get("dstport")),
        target_host=clean(agent.get("name"), TEXT_MAX),
        zone=clean(as_dict(record.get("manager")).get("name"), TEXT_MAX),
        source_ips=[source_ip] if source_ip else [],
        labels=labels,
        description=clean(record.get("full_log"), DESCRIPTION_MAX),
        raw=record,
    )
