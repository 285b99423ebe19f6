"""Generic JSON feeds: any tool's JSON, read through a per-feed field mapping.

For the in-house scripts and odd vendors that have no parser of their own. The body
is a JSON object, an array of objects, or JSON lines; the feed's options say where
each field lives, as dotted paths into one record::

    {
      "records": "data.events",            # optional: where the array of records is
      "mapping": {
        "title": "msg",                    # required in every record
        "severity": "level",
        "target_ip": "dst.ip",
        "event_time": "ts",
        "fingerprint": ["rule_id", "dst.ip"],
        "vector": "kind",
        "source_ips": "src",               # a scalar or an array
        "labels": {"rule": "rule_id"}      # or a list of paths
      },
      "severity_map": {"5": "critical", "4": "high"},
      "defaults": {"layer": "L7", "vector": "waf_custom"}
    }

Fields the mapping does not name are looked up under common names (``title``,
``message``, ``severity``, ``timestamp``, ``src_ip``, ``dest_ip`` ...). A record with
no title is refused, naming its index, and the batch's other records are kept; when no
record has one the delivery is rejected, so a broken mapping is noticed on the first
delivery instead of filling the queue with empty alerts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._common import (
    DESCRIPTION_MAX,
    LABEL_VALUE_MAX,
    TEXT_MAX,
    TITLE_MAX,
    clean,
    clean_labels,
    country,
    flood_vector,
    iter_json_records,
    normalise_layer,
    parse_time,
    severity_word,
    slug,
    to_asn,
    to_float,
    to_int,
    to_ip,
    to_port,
    type_name,
    unique,
)
from .base import SEVERITIES, ParsedAlert, ParseError, ParseResult, RecordRefused, make_fingerprint
from .labels import resolve

# Where a field is looked for when the feed's mapping does not say.
DEFAULT_PATHS: dict[str, tuple[str, ...]] = {
    "title": ("title", "summary", "message", "msg", "name", "signature", "description"),
    "severity": ("severity", "level", "priority"),
    "event_time": ("event_time", "timestamp", "@timestamp", "time", "ts", "start", "started_at"),
    "ended_at": ("ended_at", "end", "end_time", "stopped_at"),
    "target_ip": ("target_ip", "dest_ip", "dst_ip", "destination_ip", "ip"),
    "target_port": ("target_port", "dest_port", "dst_port", "destination_port"),
    "target_host": ("target_host", "hostname", "host", "domain"),
    "zone": ("zone", "customer", "tenant", "account"),
    "vector": ("vector", "attack_vector", "attack_type", "type"),
    "layer": ("layer",),
    "external_id": ("id", "uuid", "alert_id", "event_id"),
    "description": ("description", "details", "text"),
    "source_ips": ("source_ips", "src_ip", "source_ip", "src"),
    "source_asns": ("source_asns", "asn", "src_asn"),
    "source_countries": ("source_countries", "country", "src_country"),
    "pps": ("pps", "packets_per_second"),
    "bps": ("bps", "bits_per_second"),
    "rps": ("rps", "requests_per_second"),
    "packets": ("packets",),
    "bytes": ("bytes",),
    "resolved": ("resolved",),
}
RESOLVED_WORDS = {"true", "1", "yes", "resolved", "end", "ended", "closed", "ok", "recovered", "unban"}
MAX_PATH_DEPTH = 32


def parse(body: bytes, options: Mapping[str, Any]) -> ParseResult:
    """Read generic JSON records through the feed's field mapping."""
    mapping = options.get("mapping", {})
    if not isinstance(mapping, Mapping):
        raise ParseError(f"feed options: `mapping` must be an object, got {type_name(mapping)}")
    severity_map = options.get("severity_map", {})
    if not isinstance(severity_map, Mapping):
        raise ParseError(f"feed options: `severity_map` must be an object, got {type_name(severity_map)}")
    defaults = options.get("defaults", {})
    if not isinstance(defaults, Mapping):
        raise ParseError(f"feed options: `defaults` must be an object, got {type_name(defaults)}")
    records_path = options.get("records")

    result = ParseResult()
    index = 0
    for where, value in iter_json_records(
        body, lenient=bool(options.get("lenient", False)), skipped=result.skipped, refuse=result.refuse
    ):
        if records_path:
            found = lookup(value, str(records_path))
            if found is None:
                raise ParseError(f"{where}: no records at `{records_path}`")
            value = found
        records = value if isinstance(value, list) else [value]
        for record in records:
            # A record that cannot be read is refused and reported; the batch's others are kept.
            name = f"record {index}"
            index += 1
            try:
                if not isinstance(record, dict):
                    raise RecordRefused(f"expected a JSON object, got {type_name(record)}")
                alert = _parse_record(record, index - 1, mapping, severity_map, defaults, options.get("label_mapping"))
            except RecordRefused as exc:
                result.refuse(name, str(exc))
                continue
            alert.record = name
            result.alerts.append(alert)
    return result


def lookup(record: Any, path: str) -> Any:
    """The value at a dotted path ("dst.ip", "items.0.name"), or None."""
    if isinstance(record, dict) and path in record:
        return record[path]
    current = record
    for part in path.split(".")[:MAX_PATH_DEPTH]:
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
        if current is None:
            return None
    return current


def _field(record: dict[str, Any], mapping: Mapping[str, Any], defaults: Mapping[str, Any], name: str) -> Any:
    path = mapping.get(name)
    if isinstance(path, str) and path:
        value = lookup(record, path)
    elif path is None:
        value = None
        for candidate in DEFAULT_PATHS.get(name, ()):
            value = record.get(candidate)
            if value is not None and value != "":
                break
    else:
        value = None
    if value is None or value == "":
        value = defaults.get(name)
    return value


def _parse_record(
    record: dict[str, Any],
    index: int,
    mapping: Mapping[str, Any],
    severity_map: Mapping[str, Any],
    defaults: Mapping[str, Any],
    label_mapping: Any = None,
) -> ParsedAlert:
    # The feed's label mapping reads the record's top-level values and its `labels`
    # object for whatever the field mapping does not name (dst_ip, victim, customer ...).
    flat = {k: v for k, v in record.items() if not isinstance(v, dict | list)}
    labelled = resolve({**flat, **clean_labels(record.get("labels") or {})}, {}, label_mapping)

    def get(name: str) -> Any:
        value = _field(record, mapping, defaults, name)
        if (value is None or value == "") and name not in mapping:
            value = getattr(labelled, name, None) or None
        return value

    title = clean(get("title"), TITLE_MAX)
    if not title:
        path = mapping.get("title")
        where = f"`{path}`" if isinstance(path, str) else "any of " + ", ".join(DEFAULT_PATHS["title"])
        raise RecordRefused(f"no title (looked at {where})")

    raw_severity = get("severity")
    severity = None
    if raw_severity is not None:
        mapped = severity_map.get(clean(raw_severity, 100))
        severity = mapped if mapped in SEVERITIES else severity_word(mapped) or severity_word(raw_severity)
    severity = severity or "medium"

    target_ip = to_ip(get("target_ip"))
    target_host = clean(get("target_host"), TEXT_MAX)
    if mapping.get("target_ip") or mapping.get("target_host"):
        rule = f"generic mapping: field {mapping.get('target_ip') or mapping.get('target_host')} names the target"
    elif labelled.target_label and (target_ip == labelled.target_ip or target_host == labelled.target_host):
        rule = f"generic record: field {labelled.target_label} names the target"
    elif target_ip or target_host:
        rule = "generic record: a target field (target_ip, dest_ip, dst_ip, host ...) names the target"
    else:
        rule = "no field names a target: unknown"
    vector_text = clean(get("vector"), 100)
    vector = slug(vector_text) if vector_text else (flood_vector(title) or "unknown")
    layer = normalise_layer(get("layer")) or ("L7" if vector.startswith(("http", "waf")) else "L4")

    fingerprint_paths = mapping.get("fingerprint")
    if isinstance(fingerprint_paths, str):
        fingerprint_paths = [fingerprint_paths]
    if isinstance(fingerprint_paths, list) and fingerprint_paths:
        parts = [clean(lookup(record, str(p)), LABEL_VALUE_MAX) for p in fingerprint_paths[:20]]
        fingerprint = make_fingerprint("generic", *parts)
    else:
        fingerprint = make_fingerprint("generic", title, target_ip or target_host, vector)

    resolved_value = get("resolved")
    resolved = resolved_value is True or clean(resolved_value, 30).lower() in RESOLVED_WORDS

    labels = _labels(record, mapping.get("labels"))
    source_ips = unique([to_ip(v) for v in _many(get("source_ips"))])
    return ParsedAlert(
        fingerprint=fingerprint,
        title=title,
        layer=layer,
        vector=vector,
        severity=severity,
        external_id=clean(get("external_id"), TEXT_MAX),
        event_time=parse_time(get("event_time")),
        ended_at=parse_time(get("ended_at")),
        resolved=resolved,
        target_ip=target_ip,
        target_port=to_port(get("target_port")),
        target_host=target_host,
        zone=clean(get("zone"), TEXT_MAX),
        pps=to_float(get("pps")),
        bps=to_float(get("bps")),
        rps=to_float(get("rps")),
        packets=to_int(get("packets")),
        bytes=to_int(get("bytes")),
        source_ips=source_ips,
        source_port=to_port(record.get("src_port") or record.get("source_port")),
        # One named peer against one target: the customer's assets may swap the two.
        swappable=len(source_ips) == 1 and bool(target_ip),
        direction_rule=rule,
        customer_ref=clean(labelled.customer, TEXT_MAX),
        source_asns=[a for a in (to_asn(v) for v in _many(get("source_asns"))) if a is not None][:1_000],
        source_countries=unique([country(v) for v in _many(get("source_countries"))]),
        labels=labels,
        description=clean(get("description"), DESCRIPTION_MAX),
        raw=record,
    )


def _many(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value[:1_000]
    if isinstance(value, str) and "," in value:
        return [part.strip() for part in value.split(",")[:1_000]]
    return [value]


def _labels(record: dict[str, Any], spec: Any) -> dict[str, str]:
    if isinstance(spec, Mapping):
        pairs = [(str(name), str(path)) for name, path in list(spec.items())[:200]]
    elif isinstance(spec, list):
        pairs = [(str(path), str(path)) for path in spec[:200]]
    else:
        # Without a label spec keep the record's top-level scalars: cheap context for triage.
        return clean_labels({k: v for k, v in list(record.items())[:200] if not isinstance(v, dict | list)})
    labels: dict[str, str] = {}
    for name, path in pairs:
        value = lookup(record, path)
        if isinstance(value, dict | list):
            labels.update(clean_labels({name: value}))
        elif value is not None:
            labels[clean(name, 200)] = clean(value, LABEL_VALUE_MAX)
    return labels
