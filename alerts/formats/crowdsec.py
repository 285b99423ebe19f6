"""CrowdSec alerts, as the Local API stores and pushes them.

A delivery is a JSON array of alert objects (what ``cscli alerts list -o json``, the
LAPI ``/v1/alerts`` endpoint and the HTTP notification plugin send) or one alert. Each
alert names a ``scenario`` ("crowdsecurity/http-bf"), the offending ``source`` (ip,
range, AS, country), the ``events`` that overflowed the bucket (with ``meta`` key/value
pairs such as ``target_fqdn``, ``service``, ``target_user``) and the ``decisions``
taken (ban 4h, captcha ...).

Vector from the scenario: *-bf / bruteforce -> ``<service>_bruteforce``; ddos / flood
-> ``http_flood``; http-probing / scan / crawl -> ``scan``; sqli / xss / path
traversal / CVE exploits -> ``waf_*``; otherwise the scenario name. Severity: floods
and exploits high, brute force medium, probing and crawling low, simulated alerts
(no decision enforced) info.
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
    bump,
    clean,
    country,
    iter_json_records,
    parse_time,
    slug,
    to_asn,
    to_ip,
    to_port,
    type_name,
    unique,
)
from .base import ParsedAlert, ParseError, ParseResult, make_fingerprint

MAX_EVENTS = 1_000

# (words in the scenario name, vector, severity); the first match wins.
_SCENARIO_RULES: list[tuple[tuple[str, ...], str, str]] = [
    (("ddos", "flood", "-dos", "dos-", "_dos", "dos_"), "http_flood", "high"),
    (("sqli", "sql-inj", "sql_inj"), "waf_sqli", "high"),
    (("xss",), "waf_xss", "high"),
    (("path-traversal", "lfi", "rfi"), "waf_path_traversal", "high"),
    (("cve", "exploit", "rce", "log4j", "spring4shell", "shellshock"), "waf_exploit", "high"),
    (("ssh-bf", "ssh_bf", "ssh-slow-bf", "ssh-bruteforce"), "ssh_bruteforce", "medium"),
    (
        ("http-bf", "http_bf", "http-generic-bf", "wordpress-bf", "bf_wordpress", "http-bruteforce"),
        "http_bruteforce",
        "medium",
    ),
    (("-bf", "_bf", "bruteforce", "brute"), "bruteforce", "medium"),
    (("portscan", "port-scan", "port_scan"), "port_scan", "low"),
    (("probing", "scan"), "scan", "low"),
    (("crawl", "bad-user-agent", "bad_user_agent", "sensitive-files", "backdoors", "admin-interface"), "scan", "low"),
]


def parse(body: bytes, options: Mapping[str, Any]) -> ParseResult:
    """Read CrowdSec LAPI alerts: one ParsedAlert per alert object."""
    result = ParseResult()
    for where, record in iter_json_records(body):
        items = record if isinstance(record, list) else [record]
        for index, item in enumerate(items):
            name = where if item is record else f"{where}[{index}]"
            if not isinstance(item, dict):
                raise ParseError(f"{name}: expected a CrowdSec alert object, got {type_name(item)}")
            if not clean(item.get("scenario"), 200):
                # Heartbeats and decision-only stream entries carry no scenario.
                if "decisions" in item or "new" in item or "deleted" in item:
                    bump(result.skipped, "no_scenario")
                    continue
                raise ParseError(f"{name}: not a CrowdSec alert: field `scenario` is missing")
            result.alerts.append(_parse_alert(item, options))
    return result


def _parse_alert(alert: dict[str, Any], options: Mapping[str, Any] | None = None) -> ParsedAlert:
    scenario = clean(alert.get("scenario"), 200)
    source = as_dict(alert.get("source"))
    source_value = clean(source.get("value") or source.get("ip") or source.get("range"), TEXT_MAX)
    source_ip = to_ip(source.get("ip")) or to_ip(source.get("value"))

    # LAPI answers use "events"; some fixtures and older versions spell it "Events".
    events = as_list(alert.get("events")) or as_list(alert.get("Events"))
    meta: dict[str, str] = {}
    event_ips: list[str] = []
    for event in events[:MAX_EVENTS]:
        for pair in as_list(as_dict(event).get("meta"))[:100]:
            pair = as_dict(pair)
            key = clean(pair.get("key"), 200)
            if key:
                meta.setdefault(key, clean(pair.get("value"), 2_000))
                if key == "source_ip":
                    event_ips.append(to_ip(pair.get("value")))
    for pair in as_list(alert.get("meta"))[:100]:
        pair = as_dict(pair)
        key = clean(pair.get("key"), 200)
        if key:
            meta.setdefault(key, clean(pair.get("value"), 2_000))

    vector, severity = _classify(scenario, meta.get("service", ""))
    if alert.get("simulated") is True:
        severity = "info"

    asn = to_asn(source.get("as_number")) or to_asn(meta.get("ASNNumber"))
    cn = country(source.get("cn")) or country(meta.get("IsoCode"))

    target_host = clean(meta.get("target_fqdn") or meta.get("target_host") or meta.get("http_host"), TEXT_MAX)
    target_ip = to_ip(meta.get("target_ip") or meta.get("destination_ip"))
    machine = clean(alert.get("machine_id"), TEXT_MAX)
    # The attacker is the alert's source; decisions on an Ip scope name attackers too (a
    # decision-only push has no source). The victim is the host the reporting machine
    # protects: named in the events' meta, or by the feed's `machines` option
    # ({"machine_id": "203.0.113.5" or "shop.example.com"}); else unknown, never the
    # agent's own id.
    decisions = [as_dict(d) for d in as_list(alert.get("decisions"))[:100]]
    decision_ips = [to_ip(d.get("value")) for d in decisions if clean(d.get("scope"), 20).lower() == "ip"]
    if not source_value and decisions:
        source_value = clean(decisions[0].get("value"), TEXT_MAX)
    machines = as_dict((options or {}).get("machines"))
    if target_host or target_ip:
        rule = "CrowdSec event meta names the protected host"
    elif machine and (protected := clean(machines.get(machine), TEXT_MAX)):
        target_ip = to_ip(protected)
        target_host = "" if target_ip else protected
        rule = f"feed option machines: machine {machine} protects {protected}"
    else:
        rule = f"CrowdSec names no protected host for machine {machine or 'unknown'}: victim unknown"
    victim = target_ip or target_host

    uuid = clean(alert.get("uuid"), 100)
    alert_id = clean(alert.get("id"), 40)
    # One scenario from one source against one victim is one alert: its next overflows
    # are repeats (count), not new alerts.
    fingerprint = make_fingerprint("crowdsec", scenario, source_value, victim)

    labels: dict[str, str] = {"scenario": scenario}
    optional = {
        "scenario_version": alert.get("scenario_version"),
        "scenario_hash": alert.get("scenario_hash"),
        "machine_id": machine,
        "source_scope": source.get("scope"),
        "source_range": source.get("range"),
        "source_as_name": source.get("as_name"),
        "events_count": alert.get("events_count"),
        "capacity": alert.get("capacity"),
        "leakspeed": alert.get("leakspeed"),
        "simulated": alert.get("simulated"),
        "remediation": alert.get("remediation"),
    }
    for key, value in optional.items():
        text = clean(value, 2_000)
        if text:
            labels[key] = text
    for key, value in list(meta.items())[:100]:
        labels[f"meta.{clean(key, 150)}"] = value
    label_values = [clean(v, 200) for v in as_list(alert.get("labels"))[:50]]
    if any(label_values):
        labels["labels"] = ",".join(v for v in label_values if v)
    if decisions:
        labels["decisions"] = clean(
            "; ".join(
                f"{clean(d.get('type'), 40)} {clean(d.get('scope'), 40)}:{clean(d.get('value'), 100)} "
                f"for {clean(d.get('duration'), 40)}"
                for d in decisions
            ),
            2_000,
        )

    title = scenario
    if source_value:
        title = f"{scenario} from {source_value}"
    if target_host:
        title = f"{title} on {target_host}"
    # CrowdSec reads application logs, so everything but a port scan is layer 7.
    layer = "L4" if vector == "port_scan" else "L7"

    return ParsedAlert(
        fingerprint=fingerprint,
        title=clean(title, TITLE_MAX),
        layer=layer,
        vector=vector,
        severity=severity,
        external_id=uuid or alert_id,
        event_time=parse_time(alert.get("start_at")) or parse_time(alert.get("created_at")),
        ended_at=parse_time(alert.get("stop_at")),
        target_ip=target_ip,
        target_port=to_port(meta.get("target_port") or meta.get("destination_port")),
        target_host=target_host,
        zone=clean(meta.get("target_fqdn"), TEXT_MAX),
        source_ips=unique([source_ip, *event_ips, *decision_ips]),
        direction_rule=rule,
        source_asns=[asn] if asn is not None else [],
        source_countries=[cn] if cn else [],
        labels=labels,
        description=clean(alert.get("message"), DESCRIPTION_MAX),
        raw=alert,
    )


def _classify(scenario: str, service: str) -> tuple[str, str]:
    name = scenario.lower().rsplit("/", 1)[-1]
    for words, vector, severity in _SCENARIO_RULES:
        if any(word in name for word in words):
            if vector == "bruteforce" and service:
                vector = f"{slug(service, 30)}_bruteforce"
            return vector, severity
    return (f"crowdsec_{slug(name, 40)}" if slug(name) else "unknown"), "medium"
