"""PagerDuty Events API v2: what many monitoring tools send to ``/v2/enqueue``.

One delivery is one event, or a JSON array / JSON lines of them::

    {"routing_key": "...", "event_action": "trigger" | "acknowledge" | "resolve",
     "dedup_key": "...",
     "payload": {"summary", "source", "severity": critical|error|warning|info,
                 "timestamp", "component", "group", "class", "custom_details": {...}},
     "client", "client_url", "links": [...], "images": [...]}

``dedup_key`` is the alert's identity: a ``trigger`` opens (or repeats) it, an
``acknowledge`` acknowledges the open alert and a ``resolve`` resolves it; both need no
``payload`` and never create an alert of their own. A trigger without ``dedup_key`` gets
one from its routing key, source and summary (PagerDuty makes one up too).

``payload.source`` is, by PagerDuty's definition, the affected system: the target,
unless the feed's label mapping finds a victim in ``custom_details`` (``dst_ip`` ...).
Severity: critical -> critical, error -> high, warning -> medium, info -> info.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._common import (
    DESCRIPTION_MAX,
    TEXT_MAX,
    TITLE_MAX,
    as_dict,
    clean,
    clean_labels,
    flood_vector,
    iter_json_records,
    normalise_layer,
    parse_time,
    severity_word,
    to_ip,
    type_name,
)
from .base import ParsedAlert, ParseError, ParseResult, make_fingerprint
from .labels import resolve

ACTIONS = ("trigger", "acknowledge", "resolve")
_SEVERITY = {"critical": "critical", "error": "high", "warning": "medium", "info": "info"}


def parse(body: bytes, options: Mapping[str, Any]) -> ParseResult:
    """Read PagerDuty Events API v2 events: one ParsedAlert per event."""
    result = ParseResult()
    for where, record in iter_json_records(body):
        items = record if isinstance(record, list) else [record]
        for index, item in enumerate(items):
            name = where if item is record else f"{where}[{index}]"
            if not isinstance(item, dict):
                raise ParseError(f"{name}: expected a PagerDuty event object, got {type_name(item)}")
            result.alerts.append(_parse_event(item, name, options.get("label_mapping")))
    return result


def _parse_event(event: dict[str, Any], where: str, label_mapping: Any) -> ParsedAlert:
    action = clean(event.get("event_action"), 20).lower()
    if action not in ACTIONS:
        if "event_action" not in event:
            raise ParseError(f"{where}: not a PagerDuty Events v2 event: field `event_action` is missing")
        raise ParseError(f"{where}: `event_action` must be one of trigger, acknowledge, resolve, got {action!r}")
    payload = event.get("payload")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise ParseError(f"{where}: field `payload` must be an object, got {type_name(payload)}")
    dedup_key = clean(event.get("dedup_key"), 255)
    summary = clean(payload.get("summary"), TITLE_MAX)
    source = clean(payload.get("source"), TEXT_MAX)
    if action != "trigger" and not dedup_key:
        raise ParseError(f"{where}: an {action} event needs the `dedup_key` of the alert it closes")
    if action == "trigger" and not summary:
        raise ParseError(f"{where}: a trigger event needs `payload.summary`")
    fingerprint = make_fingerprint(
        "pagerduty", dedup_key or f"{clean(event.get('routing_key'), 64)}\x1f{source}\x1f{summary}"
    )

    details = payload.get("custom_details")
    detail_labels = clean_labels(details if isinstance(details, dict) else {"details": details}, "")
    labels = {
        key: value
        for key, value in {
            "event_action": action,
            "source": source,
            "component": clean(payload.get("component"), TEXT_MAX),
            "group": clean(payload.get("group"), TEXT_MAX),
            "class": clean(payload.get("class"), TEXT_MAX),
            "client": clean(event.get("client"), TEXT_MAX),
            "client_url": clean(event.get("client_url"), 2_000),
        }.items()
        if value
    }
    labels.update({f"details.{k}": v for k, v in detail_labels.items()})

    mapped = resolve(detail_labels, {}, label_mapping)
    target_ip, target_host = mapped.target_ip, mapped.target_host
    if mapped.target_label:
        rule = f"PagerDuty custom_details.{mapped.target_label} names the target"
    elif source:
        target_ip = to_ip(source)
        target_host = "" if target_ip else source
        rule = "PagerDuty payload.source names the affected system"
    else:
        rule = "the event names no affected system: unknown"

    kind = clean(payload.get("class"), 100)
    vector = mapped.vector or flood_vector(kind, summary) or "unknown"
    layer = normalise_layer(detail_labels.get("layer")) or ("L7" if vector.startswith(("http", "waf")) else "L4")
    severity = (
        _SEVERITY.get(clean(payload.get("severity"), 20).lower())
        or severity_word(mapped.severity)
        or severity_word(payload.get("severity"))
        or "medium"
    )
    at = parse_time(payload.get("timestamp"))
    description = clean(details, DESCRIPTION_MAX) if isinstance(details, str) else ""
    return ParsedAlert(
        fingerprint=fingerprint,
        title=summary or f"PagerDuty {action} {dedup_key}",
        layer=layer,
        vector=vector,
        severity=severity,
        external_id=dedup_key,
        event_time=at,
        ended_at=at if action == "resolve" else None,
        resolved=action == "resolve",
        acknowledged=action == "acknowledge",
        resolve_only=action != "trigger",
        target_ip=target_ip,
        target_port=mapped.target_port,
        target_host=target_host,
        zone=mapped.zone,
        customer_ref=mapped.customer,
        direction_rule=rule,
        bps=mapped.bps,
        pps=mapped.pps,
        rps=mapped.rps,
        labels=labels,
        description=description,
        raw=as_dict(event),
    )
