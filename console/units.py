"""One vocabulary for attack vectors and one way to write rates, counts and durations.

Pages (template filters in ``console.templatetags.units``), customer mail, reports and
CSV all call these, so the same attack reads "SYN-ACK reflection, 312 Gbps, 48 min"
everywhere. Plain Python: imported by every app, imports none.
"""

from __future__ import annotations

import math

PREFIXES = ("", "k", "M", "G", "T", "P")
RATE_UNITS = {"bps": "bps", "pps": "pps", "rps": "rps"}
METRIC_AXIS = {"bps": "bits/s", "pps": "packets/s", "rps": "requests/s"}

VECTOR_TITLES = {
    "syn_flood": "SYN flood",
    "ack_flood": "ACK flood",
    "rst_flood": "RST flood",
    "synack_reflection": "SYN-ACK reflection",
    "tcp_flood": "TCP flood",
    "udp_flood": "UDP flood",
    "gre_flood": "GRE flood",
    "icmp_flood": "ICMP flood",
    "ip_fragmentation": "IP fragmentation",
    "dns_flood": "DNS query flood",
    "http_flood": "HTTP flood",
    "dns_amplification": "DNS amplification",
    "ntp_amplification": "NTP amplification",
    "memcached_amplification": "memcached amplification",
    "ssdp_amplification": "SSDP amplification",
    "cldap_amplification": "CLDAP amplification",
    "snmp_amplification": "SNMP amplification",
    "chargen_amplification": "CharGEN amplification",
    "udp_amplification": "UDP amplification",
    "unknown": "unknown vector",
}


def vector_title(vector: str | None) -> str:
    """ "synack_reflection" -> "SYN-ACK reflection"; a vector we do not know keeps its words."""
    if not vector:
        return "unknown vector"
    return VECTOR_TITLES.get(vector, str(vector).replace("_", " "))


def si(value: float | None, unit: str) -> str:
    """312e9, "bps" -> "312 Gbps"; 2.45e6, "pps" -> "2.45 Mpps" (three significant figures)."""
    if value is None:
        return "—"
    value = float(value)
    exponent = 0
    while abs(value) >= 999.5 and exponent < len(PREFIXES) - 1:
        value /= 1000
        exponent += 1
    digits = 0 if abs(value) >= 100 else (1 if abs(value) >= 10 else 2)
    text = f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} {PREFIXES[exponent]}{unit}"


def rate(value: float | None, metric: str) -> str:
    """A rate of a metric (bps, pps, rps) as engineers write it; "" when not measured."""
    if value is None or value == "":
        return ""
    return si(value, RATE_UNITS.get(metric, metric))


def rates(bps: float | None = None, pps: float | None = None, rps: float | None = None, sep: str = ", ") -> str:
    """The measured rates of an alert or attack, joined; "" when none is known."""
    return sep.join(r for r in (rate(bps, "bps"), rate(pps, "pps"), rate(rps, "rps")) if r)


def duration(seconds: float | None) -> str:
    """Seconds as "48 min", "2 h 5 min", "45 s"; "—" when unknown."""
    if seconds is None:
        return "—"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, _ = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = []
    if days:
        parts.append(f"{days} d")
    if hours:
        parts.append(f"{hours} h")
    if minutes or not parts:
        parts.append(f"{minutes} min")
    return " ".join(parts)


def percent(share: float | None) -> str:
    """0.99974 -> "99.97" (floored: never rounds a 99.996% up to a full 100%)."""
    if share is None:
        return "—"
    return f"{math.floor(share * 10000) / 100:.2f}".rstrip("0").rstrip(".")
