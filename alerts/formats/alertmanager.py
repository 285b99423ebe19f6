"""Prometheus Alertmanager webhooks (payload version 4).

One delivery is one notification for an alert group; each entry of ``alerts[]`` is
one alert with its own ``status`` (firing/resolved), ``labels``, ``annotations``,
``startsAt``/``endsAt`` and ``fingerprint``. The group's ``commonLabels`` are merged
under each alert's own labels so a route's labels (customer, zone) are never lost.

Target, customer, vector, severity and size come from the labels (then annotations)
the feed's ``label_mapping`` names (see ``labels.py``): ``dst_ip``/``target``/``victim``
... before ``instance``, which names the router that raised the alert. Two victims in
one group are two alerts with two targets, hence two attacks.

Severity comes from the mapped severity label: critical/page -> critical, error/high ->
high, warning -> medium, low/minor -> low, info/none -> info, missing or unknown ->
medium (someone wrote a rule for it, so it deserves a look).

One broken alert does not cost the group: an entry that is not an object, whose status
is neither firing nor resolved, or whose startsAt/endsAt is not a time is refused and
listed in ``ParseResult.refused`` with why; the group's other alerts are kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ._common import (
    DESCRIPTION_MAX,
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
    type_name,
)
from .base import ParsedAlert, ParseError, ParseResult, RecordRefused, make_fingerprint, surrogate_at
from .labels import resolve

STATUSES = ("firing", "resolved")
RFC3339 = re.compile(
    r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?"
    r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)"
)
# What Go writes for an unset time.Time: Alertmanager's endsAt of a firing alert it got no end for.
GO_ZERO_TIME = "0001-01-01T00:00:00"


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
    result = ParseResult()
    for index, entry in enumerate(entries):
        # One broken alert of a group is refused and reported; the group's others are kept
        # (a 4xx for the whole notification would lose them: Alertmanager does not retry it).
        record = f"alerts[{index}]"
        try:
            if not isinstance(entry, dict):
                raise RecordRefused(f"expected an object, got {type_name(entry)}")
            alert = _parse_alert(entry, common, common_annotations, group_status, payload, options.get("label_mapping"))
        except RecordRefused as exc:
            result.refuse(record, str(exc))
            continue
        alert.record = record
        result.alerts.append(alert)
    return result


def refused_entries(payload: dict[str, Any], *, surrogates: bool = True) -> list[dict[str, str]]:
    """The entries of a decoded notification that ``parse`` refuses, and why, by the same checks.

    ``surrogates=False`` skips the walk for lone surrogates (the body has no escape of one).
    """
    entries = payload.get("alerts")
    if not isinstance(entries, list):
        return []
    group_status = clean(payload.get("status"), 20).lower()
    result = ParseResult()
    for index, entry in enumerate(entries):
        try:
            if not isinstance(entry, dict):
                raise RecordRefused(f"expected an object, got {type_name(entry)}")
            _status(entry, group_status)
            for key in ("startsAt", "endsAt"):
                value = entry.get(key)
                # Go's RFC 3339 shape passes at the cost of a regular expression; anything else
                # is judged by the parser's own reading (an impossible date of that shape, say
                # 30 February, is refused by the parser only).
                if not (isinstance(value, str) and RFC3339.fullmatch(value)):
                    _time(entry, key)
            where = surrogate_at(entry) if surrogates else ""
            if where:
                raise RecordRefused(f"`{where}` is not valid Unicode (a lone UTF-16 surrogate)")
        except RecordRefused as exc:
            result.refuse(f"alerts[{index}]", str(exc))
    return result.refused


def _status(entry: dict[str, Any], group_status: str) -> str:
    """firing or resolved; anything else is refused rather than guessed (a guess could reopen an ended alert)."""
    status = clean(entry.get("status"), 20).lower() or group_status
    if status not in STATUSES:
        raise RecordRefused(f"status {clean(entry.get('status'), 40)!r} is neither firing nor resolved")
    return status


def _time(entry: dict[str, Any], key: str) -> datetime | None:
    """An RFC 3339 time, None when unset (absent, or Go's zero time); refused when unreadable."""
    value = entry.get(key)
    if value is None or value == "":
        return None
    parsed = parse_time(value)
    if parsed is None and not (isinstance(value, str) and value.startswith(GO_ZERO_TIME)):
        raise RecordRefused(f"{key} {clean(value, 40)!r} is not an RFC 3339 time")
    return parsed


def _parse_alert(
    entry: dict[str, Any],
    common: dict[str, Any],
    common_annotations: dict[str, Any],
    group_status: str,
    payload: dict[str, Any],
    label_mapping: Any = None,
) -> ParsedAlert:
    labels = clean_labels({**common, **as_dict(entry.get("labels"))})
    annotations = {**common_annotations, **as_dict(entry.get("annotations"))}
    status = _status(entry, group_status)
    starts_at = _time(entry, "startsAt")
    ends_at = _time(entry, "endsAt")
    resolved = status == "resolved"

    own_fingerprint = clean(entry.get("fingerprint"), 100)
    # Alertmanager's own fingerprint is a hash of the labels; recompute one only if absent.
    fingerprint = own_fingerprint or make_fingerprint("alertmanager", *sorted(f"{k}={v}" for k, v in labels.items()))

    alertname = labels.get("alertname", "")
    title = first_text(annotations, "summary", "title", limit=TITLE_MAX) or alertname or "Alertmanager alert"
    description = first_text(annotations, "description", "message", limit=DESCRIPTION_MAX)

    mapped = resolve(labels, clean_labels(annotations), label_mapping)
    vector = mapped.vector or flood_vector(alertname) or "unknown"
    layer = normalise_layer(labels.get("layer")) or ("L7" if vector.startswith(("http", "waf")) else "L4")
    if mapped.target_label:
        rule = f"Alertmanager label {mapped.target_label} names the target"
    else:
        rule = "no label of the feed's mapping names a target: unknown"

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
        severity=severity_word(mapped.severity) or "medium",
        external_id=own_fingerprint,
        event_time=starts_at,
        ended_at=ends_at if resolved else None,
        resolved=resolved,
        target_ip=mapped.target_ip,
        target_port=mapped.target_port,
        target_host=mapped.target_host,
        zone=mapped.zone,
        customer_ref=mapped.customer,
        direction_rule=rule,
        pps=mapped.pps,
        bps=mapped.bps,
        rps=mapped.rps,
        labels=labels,
        description=description,
        raw=entry,
    )
