"""Feed formats: raw delivery bytes in, normalised alerts out. Plain Python, no Django.

``parse_delivery(format, body, options)`` is the one entry point the ingest task
calls. It returns a ``ParseResult`` or raises ``ParseError`` with a message for the
dead-letter view ("line 17: not valid JSON: ..."); no other exception escapes, for
any bytes whatsoever, so a hostile or broken delivery is kept with its error and never
kills the worker.

Normalisation every parser follows:

* times are aware UTC datetimes; an unreadable time is None, not an error;
* ``target_ip`` and ``source_ips`` hold only real IP addresses (canonical text); a
  masked or bogus address is kept in ``target_host`` or the labels instead;
* text is kept as sent (escaping is the templates' job) minus NUL characters, and
  capped: titles 500 characters, label values 2,000, descriptions 10,000;
* numbers are finite and non-negative, ports 0-65535, counters fit a bigint.

Gzip bodies (first bytes 1f 8b) are decompressed transparently, up to
``options["max_decompressed_bytes"]`` (256 MiB by default) so a gzip bomb is refused.
"""

from __future__ import annotations

import dataclasses
import re
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from . import alertmanager, cloudflare, crowdsec, fastnetmon, generic, pagerduty, suricata, wazuh
from .base import ParsedAlert, ParseError, ParseResult, RecordRefused, make_fingerprint, storable, surrogate_at
from .limits import DEFAULT_MAX_JSON_DEPTH, depth_error

__all__ = [
    "FORMATS",
    "ParseError",
    "ParseResult",
    "ParsedAlert",
    "RecordRefused",
    "make_fingerprint",
    "parse_delivery",
    "refused_records",
]

Parser = Callable[[bytes, Mapping[str, Any]], ParseResult]

FORMATS: dict[str, Parser] = {
    "cloudflare": cloudflare.parse,
    "alertmanager": alertmanager.parse,
    "suricata": suricata.parse,
    "fastnetmon": fastnetmon.parse,
    "crowdsec": crowdsec.parse,
    "generic": generic.parse,
    "wazuh": wazuh.parse,
    "pagerduty": pagerduty.parse,
}

DEFAULT_MAX_DECOMPRESSED = 256 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"


def parse_delivery(format: str, body: bytes, options: Mapping[str, Any] | None = None) -> ParseResult:
    """Parse one delivery's raw bytes with the feed's format.

    ``options`` are the feed's format options (Suricata ``lenient``, the generic
    ``mapping``, ...). Raises ParseError, and only ParseError, when the delivery
    cannot be read.
    """
    parser = FORMATS.get(format) if isinstance(format, str) else None
    if parser is None:
        known = ", ".join(sorted(FORMATS))
        raise ParseError(f"unknown feed format {format!r}: expected one of {known}")
    if options is None:
        options = {}
    elif not isinstance(options, Mapping):
        raise ParseError(f"feed options must be an object, got {type(options).__name__}")
    if isinstance(body, bytearray | memoryview):
        body = bytes(body)
    if not isinstance(body, bytes):
        raise ParseError(f"the delivery body must be bytes, got {type(body).__name__}")
    if body.startswith(GZIP_MAGIC):
        body = _gunzip(body, _max_size(options))
    problem = depth_error(body, _max_depth(options)) if format != "fastnetmon" or body.lstrip()[:1] in b"[{" else ""
    if problem:
        raise ParseError(problem)
    try:
        result = parser(body, options)
        if _may_hold_unstorable_text(body):
            result.alerts = _storable_alerts(result)
        if result.refused and not result.alerts and not result.skipped:
            reasons = "; ".join(f"{r['record']}: {r['reason']}" for r in result.refused[:5])
            more = f" (and {len(result.refused) - 5} more)" if len(result.refused) > 5 else ""
            raise ParseError(f"every record was refused: {reasons}{more}", refused=result.refused)
        return result
    except ParseError:
        raise
    except RecursionError:
        raise ParseError("the payload is nested too deeply to read") from None
    except MemoryError:
        raise ParseError("the payload is too large to parse in memory") from None
    except Exception as exc:  # a parser bug must dead-letter the delivery, not kill the worker
        raise ParseError(
            f"the {format} parser failed on this delivery ({type(exc).__name__}: {str(exc)[:200]}); "
            "this is a bug in Shieldwall, please report it with the delivery"
        ) from exc


# A NUL byte, or a JSON escape of NUL or of a UTF-16 surrogate: text PostgreSQL refuses
# (in text and in jsonb, anywhere in the raw payload). Most deliveries have none, and skip
# the walk below.
_MAY_HOLD_UNSTORABLE_TEXT = re.compile(rb"\x00|\\u0000|\\u[dD][89a-fA-F]")


def _may_hold_unstorable_text(body: bytes) -> bool:
    # bytes.find first: the alternation alone costs ~20 ms on a 300 kB body, the finds a few µs.
    return b"\x00" in body or (b"\\u" in body and _MAY_HOLD_UNSTORABLE_TEXT.search(body) is not None)


def _storable(alert: ParsedAlert) -> ParsedAlert:
    """The alert with NUL characters and lone surrogates gone from every text, raw payload included."""
    changes = {f.name: storable(getattr(alert, f.name)) for f in dataclasses.fields(alert)}
    return dataclasses.replace(alert, **changes)


def _storable_alerts(result: ParseResult) -> list[ParsedAlert]:
    """NUL characters dropped from every alert; an alert with a lone UTF-16 surrogate is refused.

    A lone surrogate is not text at all (no UTF-8 for it): the record is reported as refused,
    naming where, and the rest of the batch is kept.
    """
    kept = []
    for number, alert in enumerate(result.alerts, 1):
        where = surrogate_at(dataclasses.asdict(alert))
        if where:
            reason = f"`{where}` is not valid Unicode (a lone UTF-16 surrogate)"
            result.refuse(alert.record or f"alert {number}", reason)
            continue
        kept.append(_storable(alert))
    return kept


def refused_records(format: str, payload: Any, body: bytes = b"") -> list[dict[str, str]]:
    """Records of an already decoded delivery that its parser will refuse, found without parsing it.

    For the webhook's 202 answer, so that a sender learns at once which records were
    refused and why; the parser's own list (on the delivery page) is the authority.
    Formats without a cheap check answer []. Texts are walked for lone surrogates only when
    ``body`` has the escape of one.
    """
    if format == "alertmanager" and isinstance(payload, dict):
        return alertmanager.refused_entries(payload, surrogates=_may_hold_unstorable_text(body))
    return []


def _max_depth(options: Mapping[str, Any]) -> int:
    value = options.get("max_json_depth", DEFAULT_MAX_JSON_DEPTH)
    if isinstance(value, bool) or not isinstance(value, int):
        return DEFAULT_MAX_JSON_DEPTH
    return value


def _max_size(options: Mapping[str, Any]) -> int:
    value = options.get("max_decompressed_bytes", DEFAULT_MAX_DECOMPRESSED)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return DEFAULT_MAX_DECOMPRESSED
    return value


def _gunzip(body: bytes, limit: int) -> bytes:
    """Decompress every gzip member of the body, refusing output beyond ``limit`` bytes."""
    out = bytearray()
    data = body
    while data:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += decompressor.decompress(data, limit - len(out) + 1)
        except zlib.error as exc:
            raise ParseError(f"gzip body is corrupt: {exc}") from None
        if len(out) > limit:
            raise ParseError(f"gzip body expands beyond {limit // (1024 * 1024)} MiB; refusing to read it")
        if not decompressor.eof:
            raise ParseError("gzip body is truncated: the compressed stream ends early")
        data = decompressor.unused_data
        # Padding after the last member (some tools write NULs) is not another member.
        if data and not data.startswith(GZIP_MAGIC):
            break
    return bytes(out)
