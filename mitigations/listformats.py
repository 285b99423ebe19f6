"""Parse address lists engineers import: plain CIDR-per-line, Spamhaus DROP, FireHOL netsets.

Plain Python, no Django. Each parser returns normalised networks with a comment and the
lines it could not read (with their number), so an import reports rather than guesses.

- plain: one address or CIDR per line; blank lines and ``#`` comments ignored; anything
  after the address on the line (``# why``) becomes the comment.
- Spamhaus DROP / EDROP: ``1.2.3.0/24 ; SBL123456``; header lines start with ``;``.
- FireHOL netset: ``#`` header comments, then one address or CIDR per line.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

FORMATS = ("auto", "plain", "spamhaus", "firehol")
MAX_ITEMS = 200_000


@dataclass
class ParsedList:
    items: list[tuple[str, str]] = field(default_factory=list)  # (cidr, comment)
    errors: list[str] = field(default_factory=list)
    format: str = "plain"


def detect_format(text: str) -> str:
    for line in text.splitlines()[:50]:
        stripped = line.strip()
        if stripped.startswith(";") or " ; " in stripped or stripped.endswith("; "):
            return "spamhaus"
        if ";" in stripped and stripped.split(";", 1)[1].strip().upper().startswith(("SBL", "ESBL")):
            return "spamhaus"
        if stripped.startswith("#") and ("firehol" in stripped.lower() or "netset" in stripped.lower()):
            return "firehol"
    return "plain"


def normalise(value: str) -> str:
    """The canonical text of an address or network: host bits dropped, /32 and /128 as plain addresses."""
    net = ipaddress.ip_network(value.strip(), strict=False)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def parse_list(text: str, fmt: str = "auto") -> ParsedList:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    fmt = detect_format(text) if fmt == "auto" else fmt
    out = ParsedList(format=fmt)
    seen: set[str] = set()
    comment_mark = ";" if fmt == "spamhaus" else "#"
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip().lstrip("\ufeff")
        if not stripped or stripped.startswith(("#", ";")):
            continue
        value, _, comment = stripped.partition(comment_mark)
        value = value.strip()
        if not value:
            continue
        try:
            cidr = normalise(value.split()[0])
        except ValueError:
            out.errors.append(f"line {number}: {value[:60]!r} is not an address or CIDR")
            continue
        if cidr in seen:
            continue
        seen.add(cidr)
        out.items.append((cidr, comment.strip()[:255]))
        if len(out.items) > MAX_ITEMS:
            out.errors.append(f"line {number}: more than {MAX_ITEMS} items; the rest was not read")
            break
    return out
