"""Prometheus Alertmanager webhooks (payload version 4).

One delivery is one notification for an alert group; each entry of ``alerts[]`` is
one alert with its own ``status`` (firing/resolved), ``labels``, ``annotations``,
``startsAt``/``endsAt`` and ``fingerprint``. The group's ``commonLabels`` are merged
under each alert's own labels so a route's labels (customer, zone) are never lost.

Severity comes from ``labels.severity``: critical/page -> critical, error/high ->
high, warning -> medium, low/minor -> low, info/none -> info, missing or unknown ->
medium (someone wrote a rule for it, so it deserves a look).
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
    first_text,
    flood_vector,
    load_json_object,
    normalise_layer,
    parse_time,
    severity_word,
    slug,
    to_float,
    to_ip,
    to_port,
    type_name,
)
from .base import ParsedAlert, ParseError, ParseResult, make_fingerprint


def parse(body: bytes, options: Mapping[str, Any]) -> ParseResult:
    """Read one Alertmanager webhook notification: one alert per ``alerts[]`` entry."""
    payload = load_json_object(body, "an Alertmanager webhook")
    if "alerts" not in payload:
        raise ParseError("not an Alertmanager webhook: field `alerts` is missing")
    entries = payload["alerts"]
    if not isinstance(entries, list):
        raise ParseError(f"field `alerts` must be an array, got {type_name(entries)}")
    common = as_dict(payload.get("commonLabels"))
    common_annotations = as_dict(payload.get("commonAnnotations"))
    group_status = clean(payload.get("status"), 20).lower()
    alerts = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ParseError(f"alerts[{index}]: expected an object, got {type_name(entry)}")
        alerts.append(_parse_alert(entry, common, common_annotations, group_status, payload))
    return ParseResult(alerts=alerts)


def _parse_alert(
    entry: dict[str, Any],
    common: dict[str, Any],
    common_annotations: dict[str, Any],
    group_status: str,
    payload: dict[str, Any],
) -> ParsedAlert:
    labels = clean_labels({**common, **as_dict(entry.get("labels"))})
    annotations = {**common_annotations, **as_dict(entry.get("annotations"))}
    status = clean(entry.get("status"), 20).lower() or group_status
    resolved = status == "resolved"

    own_fingerprint = clean(entry.get("fingerprint"), 100)
    # Alertmanager's own fingerprint is a hash of the labels; recompute one only if absent.
    fingerprint = own_fingerprint or make_fingerprint("alertmanager", *sorted(f"{k}={v}" for k, v in labels.items()))

    alertname = labels.get("alertname", "")
    title = first_text(annotations, "summary", "title", limit=TITLE_MAX) or alertname or "Alertmanager alert"
    description = first_text(annotations, "description", "message", limit=DESCRIPTION_MAX)

    vector = slug(labels.get("vector", "") or labels.get("attack_vector", ""))
    if not vector:
        vector = flood_vector(alertname) or "unknown"
    layer = normalise_layer(labels.get("layer")) or ("L7" if vector.startswith(("http", "waf")) else "L4")

    instance = labels.get("instance", "")
    host_part = instance.rsplit(":", 1)[0].strip("[]") if instance.count(":") <= 1 or "]" in instance else instance
    target_ip = to_ip(labels.get("target_ip")) or to_ip(labels.get("ip")) or to_ip(host_part)
    target_host = clean(labels.get("target_host") or labels.get("hostname") or labels.get("host"), TEXT_MAX)
    if not target_host and instance and not target_ip:
        target_host = clean(host_part, TEXT_MAX)
    zone = clean(labels.get("zone") or labels.get("customer") or labels.get("tenant"), TEXT_MAX)

    ends_at = parse_time(entry.get("endsAt"))
    extra = {
        "receiver": payload.get("receiver"),
        "groupKey": payload.get("groupKey"),
        "externalURL": payload.get("externalURL"),
        "generatorURL": entry.get("generatorURL"),
    }
    for key, value in extra.items():
        text = clean(value, 2_000)
        if text:
            labels.setdefault(f"am.{key}", text)

    return ParsedAlert(
        fingerprint=fingerprint,
        title=title,
        layer=layer,
        vector=vector,
        severity=severity_word(labels.get("severity")) or "medium",
        external_id=own_fingerprint,
        event_time=parse_time(entry.get("startsAt")),
        ended_at=ends_at if resolved else None,
        resolved=resolved,
        target_ip=target_ip,
        target_port=to_port(labels.get("target_port") or labels.get("port")),
        target_host=target_host,
        zone=zone,
        pps=to_float(labels.get("pps")),
        bps=to_float(labels.get("bps")),
        rps=to_float(labels.get("rps")),
        labels=labels,
        description=description,
        raw=entry,
    )
