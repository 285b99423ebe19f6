"""Helpers every feed parser shares: reading hostile bytes safely and normalising values.

Everything here treats the payload as untrusted: wrong types are ignored rather than
trusted, strings are cleaned and capped, numbers are bounded, and the only exception
that leaves this module is ``ParseError`` with a message an engineer can act on.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from .base import ParseError

TITLE_MAX = 500
LABEL_KEY_MAX = 200
LABEL_VALUE_MAX = 2_000
TEXT_MAX = 255  # zone, host names, ids
DESCRIPTION_MAX = 10_000
MAX_LABELS = 200
MAX_SOURCES = 1_000
# PostgreSQL bigint; a feed that reports more packets than this is lying anyway.
INT_MAX = 2**63 - 1


# -- decoding ---------------------------------------------------------------------------


def decode_text(body: bytes) -> str:
    """The body as text, or a ParseError that says which byte is not UTF-8."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = body[exc.start : exc.start + 1]
        raise ParseError(
            f"not UTF-8 text: byte 0x{bad.hex() or '??'} at offset {exc.start} cannot be decoded"
        ) from None
    return text.removeprefix("\ufeff")


def loads(text: str | bytes) -> Any:
    """``orjson.loads``, except that a lone UTF-16 surrogate (``"\\ud800"``) does not refuse the document.

    orjson refuses the whole document for one such escape; senders write them (an attacker's
    user agent, a truncated emoji). Python's json reads them, and the record that holds one
    is refused alone (``parse_delivery``) while the rest of the batch is kept.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in str(exc):
            raise
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            raise exc from None


def _json_error(exc: orjson.JSONDecodeError, where: str = "") -> ParseError:
    prefix = f"{where}: " if where else ""
    position = f" (line {exc.lineno}, column {exc.colno})" if not where else f" (column {exc.colno})"
    return ParseError(f"{prefix}not valid JSON: {exc.msg}{position}")


def load_json(body: bytes) -> Any:
    """One JSON document from the body."""
    text = decode_text(body)
    if not text.strip():
        raise ParseError("the delivery is empty: expected a JSON document")
    try:
        return loads(text)
    except orjson.JSONDecodeError as exc:
        raise _json_error(exc) from None


def load_json_object(body: bytes, what: str) -> dict[str, Any]:
    """The body as one JSON object (a webhook payload)."""
    value = load_json(body)
    if not isinstance(value, dict):
        raise ParseError(f"expected a JSON object ({what}), got {type_name(value)}")
    return value


def iter_json_records(
    body: bytes,
    *,
    lenient: bool = False,
    skipped: dict[str, int] | None = None,
    refuse: Callable[[str, str], None] | None = None,
) -> Iterator[tuple[str, Any]]:
    """Records of a body that is a JSON array, a single JSON value, or JSON lines.

    Yields ``(where, value)`` where ``where`` names the record for error messages
    ("item 3", "line 17", "body"). Blank lines are ignored. A line that is not JSON is
    a ParseError naming the line, unless ``lenient`` is set: then it is counted under
    ``skipped["malformed"]`` (bulk file imports keep going past one torn line), or
    ``refuse(where, reason)`` is given: then that line is refused and the others read.
    """
    text = decode_text(body)
    stripped = text.strip()
    if not stripped:
        raise ParseError("the delivery is empty: expected JSON (an object, an array or JSON lines)")
    if stripped[0] == "[":
        try:
            value = loads(stripped)
        except orjson.JSONDecodeError as exc:
            raise _json_error(exc) from None
        if not isinstance(value, list):  # pragma: no cover - a "[" document is a list
            raise ParseError(f"expected a JSON array, got {type_name(value)}")
        for index, item in enumerate(value, 1):
            yield f"item {index}", item
        return
    if "\n" not in stripped:
        try:
            value = loads(stripped)
        except orjson.JSONDecodeError as exc:
            if not lenient:
                raise _json_error(exc, "line 1") from None
            if skipped is not None:
                bump(skipped, "malformed")
            return
        yield "body", value
        return
    if stripped[0] == "{":
        # A pretty-printed single object spans many lines; JSON lines fail here at line 2
        # after parsing only the first record, which is cheap.
        try:
            value = loads(stripped)
        except orjson.JSONDecodeError:
            pass
        else:
            yield "body", value
            return
    # Split on "\n" only: str.splitlines() would also split on U+2028 and friends, which
    # may legally appear raw inside a JSON string.
    for number, line in enumerate(text.split("\n"), 1):
        line = line.strip()
        if not line:
            continue
        try:
            value = loads(line)
        except orjson.JSONDecodeError as exc:
            if lenient:
                if skipped is not None:
                    bump(skipped, "malformed")
                continue
            if refuse is not None:
                refuse(f"line {number}", str(_json_error(exc)))
                continue
            raise _json_error(exc, f"line {number}") from None
        yield f"line {number}", value


def bump(counter: dict[str, int], key: str, by: int = 1) -> None:
    """Count one more skipped record of this kind."""
    counter[key] = counter.get(key, 0) + by


def type_name(value: Any) -> str:
    """The JSON name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


# -- reading fields ---------------------------------------------------------------------


def as_dict(value: Any) -> dict[str, Any]:
    """The value if it is an object, else an empty one (optional sub-objects)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """The value if it is an array, else an empty one."""
    return value if isinstance(value, list) else []


def clean(value: Any, limit: int = TEXT_MAX) -> str:
    """A scalar as text: NULs stripped (PostgreSQL rejects them), capped at ``limit``.

    Attacker-written text is otherwise kept exactly as sent; escaping is the
    templates' job. Objects and arrays are not text and give "".
    """
    if type(value) is str:
        # The common case first (most fields of every record are text): no type dispatch.
        if "\x00" in value:
            value = value.replace("\x00", "")
        if len(value) > limit:
            value = value[: limit - 1] + "…"
        return value.strip()
    if value is None or isinstance(value, dict | list):
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = repr(value) if math.isfinite(value) else ""
    else:
        text = str(value)
    if "\x00" in text:
        text = text.replace("\x00", "")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.strip()


def first_text(mapping: Mapping[str, Any], *keys: str, limit: int = TEXT_MAX) -> str:
    """The first non-empty text among ``keys``."""
    for key in keys:
        text = clean(mapping.get(key), limit)
        if text:
            return text
    return ""


_NUMBER_PREFIX = re.compile(r"\s*([-+]?(?:\d[\d,_]*)?(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*([kKmMgGtT]?)(?![A-Za-z])")
_SI = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}


def to_float(value: Any) -> float | None:
    """A rate or count from a number or a numeric string ("750000", "800.00 pps", "1.5M").

    Garbage, booleans, NaN, infinities and negatives give None rather than a wrong
    number on the triage page.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value) if not isinstance(value, int) or abs(value) < 2**1000 else math.inf
    elif isinstance(value, str):
        match = _NUMBER_PREFIX.match(value[:100])
        if not match or not any(ch.isdigit() for ch in match.group(1)):
            return None
        try:
            number = float(match.group(1).replace(",", "").replace("_", ""))
        except (ValueError, OverflowError):
            return None
        number *= _SI[match.group(2).lower()]
    else:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return number


_RATE = re.compile(
    r"\s*(?P<number>\d[\d,_]*(?:\.\d+)?)\s*(?P<prefix>[kKmMgGtT]?)\s*(?P<unit>pps|bps|rps|qps|packets?|bits?|requests?|queries)?",
)
_RATE_KIND = {"pps": "pps", "packet": "pps", "packets": "pps", "bps": "bps", "bit": "bps", "bits": "bps"}


def parse_rate(value: Any) -> tuple[float | None, str]:
    """A rate with its unit from text such as "800.00 pps", "3.5 Gbps", "12K rps", "753 mbps".

    Returns (value in base units per second, "pps" | "bps" | "rps" | ""); the kind is
    "" when the text names no unit.
    """
    if not isinstance(value, str):
        return to_float(value), ""
    match = _RATE.match(value[:100])
    if match is None:
        return None, ""
    try:
        number = float(match["number"].replace(",", "").replace("_", ""))
    except (ValueError, OverflowError):
        return None, ""
    unit = (match["unit"] or "").lower()
    number *= _SI[match["prefix"].lower()]
    if not math.isfinite(number):
        return None, ""
    return number, _RATE_KIND.get(unit, "rps" if unit else "")


def to_int(value: Any, *, maximum: int = INT_MAX) -> int | None:
    """A non-negative integer no larger than ``maximum``, else None."""
    if type(value) is int:
        # JSON integers (ports, ids, counters): exact, where a trip through float rounds past 2**53.
        return value if 0 <= value <= maximum else None
    number = to_float(value)
    if number is None or number > maximum:
        return None
    return int(number)


def to_port(value: Any) -> int | None:
    """A TCP/UDP port (0-65535) or None."""
    return to_int(value, maximum=65_535)


def to_ip(value: Any) -> str:
    """The canonical text of an IP address, or "" when the value is not one.

    Feeds send masked addresses ("AA.BB.CC.66") and placeholders; only real addresses
    go into IP columns so the database and the network-matching code never choke.
    """
    text = clean(value, 64)
    if not text:
        return ""
    if _CANONICAL_IPV4.fullmatch(text):
        return text  # already what ipaddress would print: skip building the object
    return _canonical_ip(text)


# A dotted quad without leading zeros, each part 0-255: exactly the texts ipaddress prints as themselves.
_CANONICAL_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)")


@functools.lru_cache(maxsize=65_536)
def _canonical_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return ""


def to_asn(value: Any) -> int | None:
    """An autonomous system number from 16276, "16276" or "AS16276"."""
    if isinstance(value, str):
        value = value.strip().upper().removeprefix("AS")
        if not value.isdigit():
            return None
    return to_int(value, maximum=2**32 - 1)


def clean_labels(items: Any, prefix: str = "") -> dict[str, str]:
    """Flat string labels from an object: nested values become dotted keys, capped."""
    labels: dict[str, str] = {}
    stack: list[tuple[str, Any]] = [(prefix, items)]
    # Iterative walk: depth is bounded by orjson's nesting limit, but recursion would
    # still cost a stack frame per level on hostile input.
    while stack and len(labels) < MAX_LABELS:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, sub in reversed(list(value.items())[:MAX_LABELS]):
                stack.append((f"{path}.{key}" if path else str(key), sub))
        elif isinstance(value, list):
            scalars = [clean(v, LABEL_VALUE_MAX) for v in value[:50] if not isinstance(v, dict | list)]
            if path and scalars:
                labels[clean(path, LABEL_KEY_MAX)] = clean(",".join(scalars), LABEL_VALUE_MAX)
        elif path:
            text = clean(value, LABEL_VALUE_MAX)
            key = clean(path, LABEL_KEY_MAX)
            if key:
                labels[key] = text
    return labels


def unique(values: list[str], limit: int = MAX_SOURCES) -> list[str]:
    """Values in first-seen order without repeats or blanks."""
    seen: dict[str, None] = {}
    for value in values:
        if value and value not in seen:
            seen[value] = None
            if len(seen) >= limit:
                break
    return list(seen)


def country(value: Any) -> str:
    """A country as sent, ISO codes upper-cased ("fr" -> "FR")."""
    text = clean(value, 64)
    return text.upper() if len(text) == 2 else text


# -- time -------------------------------------------------------------------------------

_FRACTION = re.compile(r"(\.\d{6})\d+")
_UTC_SUFFIX = re.compile(r"\s*(?:Z|UTC|GMT)$", re.IGNORECASE)
_EPOCH_MIN = datetime(1971, 1, 1, tzinfo=UTC)


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from RFC 3339 text (Z, offsets, nanoseconds), Suricata's
    "+0000" offsets, or epoch seconds (milli/micro/nanoseconds are recognised by size).

    Unset markers such as Alertmanager's "0001-01-01T00:00:00Z", placeholders and
    garbage give None: a bad timestamp loses the time, never the alert.
    """
    if isinstance(value, bool) or value is None:
        return None
    if type(value) is str and len(value) <= 64 and value[4:5] == "-" and value[:4].isdigit():
        # RFC 3339 as senders write it (Suricata's "+0000" and "Z" included) parses as is; only
        # the rest goes through the rewrites below. Same result either way.
        try:
            parsed = datetime.fromisoformat(value)
            fast = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        except (ValueError, OverflowError):
            pass  # the general path below decides (and refuses what is out of range)
        else:
            return None if fast < _EPOCH_MIN else fast
    result: datetime | None = None
    try:
        if isinstance(value, int | float) or (isinstance(value, str) and _is_number(value)):
            seconds = float(value)
            if not math.isfinite(seconds) or seconds <= 0:
                return None
            for _ in range(3):  # milliseconds, microseconds or nanoseconds
                if seconds > 1e11:
                    seconds /= 1000
            if seconds > 1e11:
                return None
            result = datetime.fromtimestamp(seconds, tz=UTC)
        elif isinstance(value, str):
            text = value.strip()[:64]
            text = _UTC_SUFFIX.sub("+00:00", text)
            text = _FRACTION.sub(r"\1", text)
            parsed = datetime.fromisoformat(text)
            result = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        return None
    if result is None or result < _EPOCH_MIN:
        return None
    return result


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# -- classification ---------------------------------------------------------------------

# Ordered: the first pattern that matches wins, so specific reflections come before the
# generic protocol floods they ride on (a DNS amplification is also UDP).
_VECTOR_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p, re.IGNORECASE), vector)
    for p, vector in [
        (r"\bdns\b.*\b(amp|reflect)|\b(amp|reflect)\w*\b.*\bdns\b", "dns_amplification"),
        (r"\bntp\b.*\b(amp|reflect|ddos|dos)|mon_?list", "ntp_amplification"),
        (r"memcache", "memcached_amplification"),
        (r"\bssdp\b", "ssdp_amplification"),
        (r"\bcldap\b|\bldap\b.*\b(amp|reflect)", "cldap_amplification"),
        (r"\bsnmp\b.*\b(amp|reflect)", "snmp_amplification"),
        (r"chargen", "chargen_amplification"),
        (r"syn[\s_-]*ack|synack", "synack_reflection"),
        (r"\bsyn\b|syn[\s_-]*flood", "syn_flood"),
        (r"\back\b.*flood|ack[\s_-]*flood", "ack_flood"),
        (r"\brst\b.*flood|rst[\s_-]*flood", "rst_flood"),
        (r"\bgre\b", "gre_flood"),
        (r"\bicmp|ping[\s_-]*flood", "icmp_flood"),
        (r"fragment", "ip_fragmentation"),
        (r"\bdns\b.*(flood|query|water)", "dns_flood"),
        (r"(amplif|reflect)", "udp_amplification"),
        (r"\budp\b|udp[\s_-]*flood", "udp_flood"),
        (r"\bhttp|request[\s_-]*flood|\bl7\b|layer[\s_-]*7|\brps\b", "http_flood"),
        (r"\btcp\b", "tcp_flood"),
    ]
]


def flood_vector(*texts: str) -> str | None:
    """The flood kind named in free text ("SYN Flood" -> syn_flood), or None."""
    # Capped: the patterns hold ".*", and signatures longer than this name no new vector.
    joined = " ".join(t for t in texts if t)[:300]
    if not joined:
        return None
    for pattern, vector in _VECTOR_PATTERNS:
        if pattern.search(joined):
            return vector
    return None


_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: str, limit: int = 60) -> str:
    """lower_snake_case of free text, for vectors and label keys."""
    return _SLUG.sub("_", text.lower()).strip("_")[:limit].strip("_")


def normalise_layer(value: Any) -> str | None:
    """ "L7", "l4", "7", "layer 3" -> one of L3/L4/L7, else None."""
    text = clean(value, 20).upper().replace("LAYER", "L").replace(" ", "")
    if text in {"3", "4", "7"}:
        text = "L" + text
    if text in {"L3", "L4", "L7"}:
        return text
    if text in {"L3/4", "L34", "L3/L4"}:
        return "L4"
    return None


SEVERITY_WORDS: dict[str, str] = {
    "critical": "critical",
    "crit": "critical",
    "fatal": "critical",
    "emergency": "critical",
    "page": "critical",
    "p1": "critical",
    "disaster": "critical",
    "high": "high",
    "error": "high",
    "err": "high",
    "major": "high",
    "p2": "high",
    "medium": "medium",
    "middle": "medium",
    "moderate": "medium",
    "warning": "medium",
    "warn": "medium",
    "average": "medium",
    "p3": "medium",
    "low": "low",
    "minor": "low",
    "p4": "low",
    "info": "info",
    "informational": "info",
    "information": "info",
    "notice": "info",
    "debug": "info",
    "none": "info",
    "ok": "info",
    "p5": "info",
}


def severity_word(value: Any) -> str | None:
    """A severity from the words feeds use (critical, warning, middle, P2, ...)."""
    return SEVERITY_WORDS.get(clean(value, 30).lower())


_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


def max_severity(*levels: str) -> str:
    """The most urgent of the given severities."""
    return max(levels, key=lambda level: _RANK.get(level, 0))
