"""What every feed parser returns: plain data, no Django.

A parser turns the raw bytes of one delivery into ``ParsedAlert`` objects. The
ingest service maps them to customers and upserts them on (feed, fingerprint).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

LAYERS = ("L3", "L4", "L7")
SEVERITIES = ("critical", "high", "medium", "low", "info")


class ParseError(ValueError):
    """The delivery cannot be read as this format. The message is shown to engineers.

    ``refused`` lists the records refused on the way, when every record of a batch was.
    """

    def __init__(self, message: str, refused: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.refused = refused or []


class RecordRefused(ParseError):
    """One record of a batch cannot be read: it is refused and reported, the others are kept."""


@dataclass
class ParsedAlert:
    """One normalised alert, as read from a feed payload.

    ``fingerprint`` identifies the alert across repeats: the same attack notified twice
    has the same fingerprint. ``resolved`` is True for an END/resolved event, which
    closes the open alert of that fingerprint instead of opening a new one.
    """

    fingerprint: str
    title: str
    layer: str = "L4"  # one of LAYERS
    vector: str = "unknown"  # syn_flood, udp_flood, dns_amplification, http_flood, waf_sqli, ...
    severity: str = "medium"  # one of SEVERITIES
    external_id: str = ""
    event_time: datetime | None = None  # aware, UTC
    ended_at: datetime | None = None
    resolved: bool = False
    target_ip: str = ""
    target_port: int | None = None
    target_host: str = ""
    # what the mapping to a customer looks at: zone name, account, label values
    zone: str = ""
    pps: float | None = None
    bps: float | None = None
    rps: float | None = None
    packets: int | None = None
    bytes: int | None = None
    source_ips: list[str] = field(default_factory=list)
    source_asns: list[int] = field(default_factory=list)
    source_countries: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict)  # the part of the payload this alert came from
    # Which rule decided who is the victim (target) and who the attacker (source), in
    # words for the alert page: "Suricata flow: client 198.51.100.7 attacks server ...".
    direction_rule: str = ""
    # The attacker's port when the sender names one peer (an IDS tuple): if the customer's
    # assets say the parser's victim is really the attacker, ``orient`` swaps the two sides.
    source_port: int | None = None
    swappable: bool = False
    # A customer named by the sender (a label's value): a slug or name, matched by the mapper.
    customer_ref: str = ""
    # An end event that only closes an open alert and is dropped when none is open
    # (FastNetMon unban): never a resolved alert of its own.
    resolve_only: bool = False
    # Ids of the customer's accounts the sender names, by asset kind: {"cf_zone": zone_tag,
    # "cf_account": account_id}; the mapper looks them up among the customers' assets.
    owner_ids: dict[str, str] = field(default_factory=dict)
    # The sender acknowledged it (PagerDuty ``acknowledge``): the open alert becomes acknowledged.
    acknowledged: bool = False
    # Which record of the delivery it came from ("alerts[2]", "line 7"), to name it when refused.
    record: str = ""


@dataclass
class ParseResult:
    """Alerts read from one delivery, plus counts of records that are not alerts."""

    alerts: list[ParsedAlert] = field(default_factory=list)
    # e.g. {"flow": 120, "stats": 3} for Suricata events that are counted, not alerted
    skipped: dict[str, int] = field(default_factory=dict)
    # Records of the batch that were refused while the others were kept: {"record", "reason"}.
    refused: list[dict[str, str]] = field(default_factory=list)

    def refuse(self, record: str, reason: str) -> None:
        self.refused.append({"record": record, "reason": reason[:500]})


def make_fingerprint(*parts: object) -> str:
    """A stable 32-hex-digit key from the parts that identify one alert."""
    joined = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def storable(value: Any) -> Any:
    """``value`` (text, or lists and dicts of it) without what PostgreSQL refuses to store.

    NUL characters are dropped (PostgreSQL text and jsonb cannot hold them) and lone UTF-16
    surrogates become "?" (they are not UTF-8). Attackers write both; storing the rest
    beats losing the record.
    """
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


SURROGATE = re.compile("[\\ud800-\\udfff]")


def surrogate_at(value: Any) -> str:
    """The path of the first text holding a lone surrogate in ``value``, or ''. Iterative: no recursion."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if SURROGATE.search(item):
                return path or "text"
        elif isinstance(item, dict):
            # Pushed in reverse, popped in order: the first bad text as the payload lists it.
            for key, child in reversed(item.items()):
                key_text = str(key)
                if SURROGATE.search(key_text):
                    return f"{path}.{key_text.encode('utf-8', 'replace').decode()}".lstrip(".")
                stack.append((f"{path}.{key_text}".lstrip("."), child))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}[{i}]", child) for i, child in reversed(list(enumerate(item))))
    return ""
