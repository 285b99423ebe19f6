"""Label mapping: which labels (or annotations) of a sender name the target, customer, size.

Alertmanager alerts and generic records carry whatever labels their authors chose:
``dst_ip``, ``target``, ``victim``, ``ip``... A feed's ``label_mapping`` lists, for each
field Shieldwall needs, the label names to try in order; the first one with a usable
value wins. ``last_resort`` names (``instance`` by default: the router or exporter that
raised the alert, not its victim) are only used for the target when no other name gives
one, so a router name never hides a labelled victim.

Plain Python, no Django: the parsers read it, and a feed page can preview a mapping by
parsing a stored delivery with it (``alerts.formats.preview``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._common import TEXT_MAX, clean, parse_rate, slug, to_float, to_ip, to_port

DEFAULT_LABEL_MAPPING: dict[str, list[str]] = {
    "target_ip": [
        "dst_ip",
        "target_ip",
        "dest_ip",
        "destination_ip",
        "victim_ip",
        "target",
        "victim",
        "ip",
        "instance",
    ],
    "target_host": ["target_host", "dst_host", "hostname", "host", "target", "victim", "instance"],
    "target_port": ["dst_port", "target_port", "dest_port", "port"],
    "customer": ["customer", "tenant", "customer_slug"],
    "zone": ["zone", "zone_name"],
    "vector": ["vector", "attack_vector", "attack_type"],
    "severity": ["severity", "priority", "level"],
    "bps": ["bps", "bits_per_second"],
    "pps": ["pps", "packets_per_second"],
    "rps": ["rps", "requests_per_second"],
    "last_resort": ["instance"],
}
FIELDS = tuple(DEFAULT_LABEL_MAPPING)


def default_label_mapping() -> dict[str, list[str]]:
    """A fresh copy of the defaults (a model field default must not share one dict)."""
    return {key: list(names) for key, names in DEFAULT_LABEL_MAPPING.items()}


def effective(mapping: Any) -> dict[str, list[str]]:
    """The feed's mapping with the defaults filling every field it does not name."""
    result = default_label_mapping()
    if isinstance(mapping, Mapping):
        for key, names in mapping.items():
            if key not in result:
                continue
            if isinstance(names, str):
                names = [names]
            if isinstance(names, list):
                result[key] = [clean(n, 200) for n in names[:50] if clean(n, 200)]
    return result


def _host_part(value: str) -> str:
    """ "10.0.0.1:9100" -> "10.0.0.1", "[2001:db8::1]:80" -> "2001:db8::1", else the value."""
    if value.startswith("[") and "]" in value:
        return value[1 : value.index("]")]
    if value.count(":") == 1:
        return value.rsplit(":", 1)[0]
    return value


class Resolved:
    """What a mapping found in one alert's labels, and which label each value came from."""

    def __init__(self) -> None:
        self.target_ip = ""
        self.target_host = ""
        self.target_port: int | None = None
        self.customer = ""
        self.zone = ""
        self.vector = ""
        self.severity = ""
        self.bps: float | None = None
        self.pps: float | None = None
        self.rps: float | None = None
        self.target_label = ""  # the label that named the target, for the direction rule


def resolve(labels: Mapping[str, Any], annotations: Mapping[str, Any], mapping: Any) -> Resolved:
    """Read the mapped fields from labels first, then annotations."""
    rules = effective(mapping)
    last_resort = set(rules["last_resort"])
    found = Resolved()

    def values(field: str, *, skip_last_resort: bool = False):
        for name in rules[field]:
            if skip_last_resort and name in last_resort:
                continue
            for source in (labels, annotations):
                text = clean(source.get(name), TEXT_MAX)
                if text:
                    yield name, text
                    break

    def first(field: str) -> tuple[str, str]:
        return next(values(field), ("", ""))

    for skip in (True, False):
        for name, text in values("target_ip", skip_last_resort=skip):
            if ip := to_ip(_host_part(text)):
                found.target_ip, found.target_label = ip, name
                break
        if not found.target_ip:
            for name, text in values("target_host", skip_last_resort=skip):
                if not to_ip(_host_part(text)):
                    found.target_host, found.target_label = _host_part(text), name
                    break
        if found.target_ip or found.target_host:
            if found.target_ip and not found.target_host:
                # A hostname next to a labelled address is context, never a router name.
                for _name, text in values("target_host", skip_last_resort=True):
                    if not to_ip(_host_part(text)):
                        found.target_host = _host_part(text)
                        break
            break

    for _name, text in values("target_port"):
        if (port := to_port(text)) is not None:
            found.target_port = port
            break
    found.customer = first("customer")[1]
    found.zone = first("zone")[1]
    found.vector = slug(first("vector")[1])
    found.severity = first("severity")[1]
    for field in ("bps", "pps", "rps"):
        for _name, text in values(field):
            # "2.4e9" and "1.2M" first, then text with a unit ("3.5 Gbps", "800 pps")
            number = to_float(text)
            if number is None:
                number, _kind = parse_rate(text)
            if number is not None:
                setattr(found, field, number)
                break
    return found
