"""The words of a report: numbers as people read them, the executive summary, recommendations.

Pure functions over the report's figures (plain dicts): every sentence states only what
the figures hold, and a sentence whose figure is unknown is left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from console.units import duration, percent, si, vector_title

AMPLIFICATION = {
    # vector: (name in the summary, reflector source port)
    "dns_amplification": ("DNS", 53),
    "ntp_amplification": ("NTP", 123),
    "memcached_amplification": ("memcached", 11211),
    "ssdp_amplification": ("SSDP", 1900),
    "cldap_amplification": ("CLDAP", 389),
    "snmp_amplification": ("SNMP", 161),
    "chargen_amplification": ("CharGEN", 19),
    "udp_amplification": ("", None),
}
# How a vector reads in a sentence, with its article.
VECTOR_PHRASES = {
    "syn_flood": "a SYN flood",
    "ack_flood": "an ACK flood",
    "rst_flood": "an RST flood",
    "synack_reflection": "a SYN-ACK reflection attack",
    "tcp_flood": "a TCP flood",
    "udp_flood": "a UDP flood",
    "gre_flood": "a GRE flood",
    "icmp_flood": "an ICMP flood",
    "ip_fragmentation": "an IP fragmentation attack",
    "dns_flood": "a DNS query flood",
    "http_flood": "an HTTP flood",
}
TCP_STATE = {"syn_flood", "ack_flood", "rst_flood", "synack_reflection", "tcp_flood"}
WEB_PORTS = {80, 443, 8080, 8443}


def count(value: float | int | None) -> str:
    return "—" if value is None else f"{int(value):,}"


def day(moment: datetime) -> str:
    return f"{moment.day} {moment:%B %Y}"


def clock(moment: datetime) -> str:
    return f"{moment:%H:%M}"


def stamp(moment: datetime) -> str:
    """A full local time as a table shows it: 2026-03-03 02:14:00 EST."""
    return f"{moment:%Y-%m-%d %H:%M:%S} {moment:%Z}"


def join(items: Sequence[str]) -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def attack_phrase(vectors: Iterable[str]) -> str:
    """The attack in words, amplification vectors grouped.

    ["dns_amplification", "ntp_amplification", "syn_flood"]
    -> "a UDP amplification attack (DNS, NTP) and a SYN flood"
    """
    vectors = [v for v in vectors if v and v != "unknown"]
    amps = [v for v in vectors if v in AMPLIFICATION]
    parts = []
    if amps:
        names = [AMPLIFICATION[v][0] for v in amps if AMPLIFICATION[v][0]]
        parts.append("a UDP amplification attack" + (f" ({', '.join(names)})" if names else ""))
    for v in vectors:
        if v not in AMPLIFICATION:
            parts.append(VECTOR_PHRASES.get(v, f"a {vector_title(v)} attack"))
    return join(parts) or "an attack"


def peaks_phrase(peaks: dict[str, Any]) -> str:
    values = [
        si(peaks[m]["value"], unit) for m, unit in (("bps", "bps"), ("pps", "pps"), ("rps", "rps")) if peaks.get(m)
    ]
    return join(values)


def targets_phrase(targets: Sequence[dict[str, Any]]) -> str:
    names = [t["target"] for t in targets if t.get("target")]
    if not names:
        return "your service"
    if len(names) <= 2:
        return join(names)
    others = len(names) - 2
    return f"{names[0]}, {names[1]} and {others} other target{'s' if others > 1 else ''}"


def span_phrase(start: datetime, end: datetime | None, ongoing: bool) -> str:
    """The when of the first sentence, in the customer's time zone."""
    if ongoing or end is None:
        return f"Since {day(start)} {clock(start)} {start:%Z}"
    if start.date() == end.date():
        zone = f"{start:%Z}" if f"{start:%Z}" == f"{end:%Z}" else ""
        if zone:
            return f"On {day(start)} between {clock(start)} and {clock(end)} {zone}"
        return f"On {day(start)} between {clock(start)} {start:%Z} and {clock(end)} {end:%Z}"
    return f"Between {day(start)} {clock(start)} {start:%Z} and {day(end)} {clock(end)} {end:%Z}"


def incident_summary(f: dict[str, Any], start: datetime, end: datetime | None) -> list[str]:
    """The executive summary of one incident, one sentence per thing the data supports."""
    o = f["overview"]
    if not o["alerts"] and not f["peaks_table"]:
        return [f"No attack traffic was recorded for this incident of {f['report']['customer']['name']}."]
    vectors = [v["vector"] for v in f["vectors"]]
    verb = "has been receiving" if o["ongoing"] else "received"
    first = f"{span_phrase(start, end, o['ongoing'])}, {targets_phrase(f['targets'])} {verb} {attack_phrase(vectors)}"
    peaks = peaks_phrase(o["peaks"])
    if peaks:
        first += f" peaking at {peaks}"
    if o.get("dropped_share") is not None:
        first += f"; {percent(o['dropped_share'])}% was dropped at the edge"
    sentences = [first + "."]
    if o["ongoing"]:
        generated = f["report"].get("generated_local") or ""
        at = f" at {generated[11:16]} {generated[20:]}".rstrip() if generated else ""
        sentences.append(
            f"The attack was still ongoing when this report was generated{at},"
            f" {duration(o['duration_s'])} after it began."
        )
    else:
        sentences.append(f"It lasted {duration(o['duration_s'])} and was reported in {o['alerts']:,} alerts.")
    mitigations = f["mitigations"]
    if mitigations:
        firsts = mitigations[0]
        n = len(mitigations)
        text = f"{n} mitigation{'s were' if n > 1 else ' was'} applied, the first at {firsts['applied_clock']}"
        if firsts.get("after_start_s") is not None and firsts["after_start_s"] >= 0:
            text += f", {duration(firsts['after_start_s'])} after the attack began"
        active = [m["label"] for m in mitigations if m.get("active")]
        if not active:
            text += "; " + ("both have" if n == 2 else "all have" if n > 2 else "it has") + " ended"
        elif len(active) == n:
            text += "; " + ("both are" if n == 2 else "all are" if n > 2 else "it is") + " still active"
        else:
            text += f"; {join(active)} {'is' if len(active) == 1 else 'are'} still active"
        sentences.append(text + ".")
    countries = [c["country"] for c in f["top_countries"][:3]]
    asns = [a["network"] for a in f["top_asns"][:3]]
    if countries:
        sentences.append(f"The most frequently reported source countries were {join(countries)}.")
    if asns:
        sentences.append(f"The most frequently reported source networks were {join(asns)}.")
    tickets = f.get("tickets", [])
    if tickets:
        sentences.append(f"Our engineers handled it as {join([_ticket_phrase(t) for t in tickets])}.")
    return sentences


def _ticket_phrase(t: dict[str, Any]) -> str:
    """ "SW-2026-0001, resolved at 03:20 EST (true positive, with impact)" or "SW-2026-0001 (open: Mitigating)"."""
    if "status" not in t:
        return t["number"]
    if t.get("resolved"):
        outcome = f" ({t['outcome_label'][0].lower()}{t['outcome_label'][1:]})" if t.get("outcome_label") else ""
        return f"{t['number']}, resolved at {t['resolved_clock']}{outcome}"
    return f"{t['number']} (open: {t['status_label']})"


def period_summary(f: dict[str, Any], start: datetime, end: datetime) -> list[str]:
    """The executive summary of a period: how many attacks, the largest, the usual vectors."""
    o = f["overview"]
    name = f["report"]["customer"]["name"]
    when = f"Between {day(start)} and {day(end)} ({start:%Z})"
    if not o["attacks"]:
        return [f"{when}, no attacks against {name} were detected."]
    n = o["attacks"]
    targets = len(f["targets"])
    sentences = [
        f"{when}, {name} received {n:,} attack{'s' if n > 1 else ''} on {targets} target{'s' if targets != 1 else ''},"
        f" lasting {duration(o['duration_s'])} in total."
    ]
    largest = f["peaks_table"][0] if f["peaks_table"] else None
    if largest and (largest["peak_bps"] or largest["peak_pps"] or largest["peak_rps"]):
        peaks = join([si(largest[f"peak_{m}"], m) for m in ("bps", "pps", "rps") if largest[f"peak_{m}"]])
        sentences.append(
            f"The largest, {attack_phrase(largest['vectors'])} on {largest['target']} on {largest['start_day']}"
            f" at {largest['start_clock']}, peaked at {peaks}."
        )
    top = [f"{vector_title(v['vector'])} ({percent(v['share'])}%)" for v in f["vectors"][:3]]
    if top:
        sentences.append(f"The most frequent vectors were {join(top)} of alerts.")
    if f["mitigations"]:
        m = len(f["mitigations"])
        sentences.append(f"{m} mitigation{'s were' if m > 1 else ' was'} applied during the period.")
    return sentences


def recommendations(
    vectors: Sequence[str],
    targets: Sequence[dict[str, Any]],
    *,
    hot_paths: Sequence[str] = (),
    spectrum_ports: Iterable[int] = (),
) -> list[dict[str, str]]:
    """What to change, from the vectors seen (a rule table, most specific first)."""
    seen = set(vectors)
    out: list[dict[str, str]] = []
    names = join([t["target"] for t in targets[:3] if t.get("target")]) or "the targets"
    if "http_flood" in seen:
        where = f"on {join(list(hot_paths[:2]))} (the most requested in the attack)" if hot_paths else "on the hot path"
        out.append(
            {
                "topic": "Rate limiting",
                "reason": "HTTP flood",
                "text": f"Enable rate limiting {where}, counted per client IP, with a managed challenge above"
                " the limit; keep cache rules for static content so the origin sees only dynamic requests.",
            }
        )
    amps = [v for v in vectors if v in AMPLIFICATION]
    if amps:
        ports = sorted({AMPLIFICATION[v][1] for v in amps if AMPLIFICATION[v][1]})
        port_text = f" (UDP source port {', '.join(str(p) for p in ports)})" if ports else ""
        out.append(
            {
                "topic": "Magic Firewall",
                "reason": join([vector_title(v) for v in amps]),
                "text": f"Tighten Magic Firewall on {names} to the ports your services use, and drop traffic"
                f" from the reflectors' source ports{port_text} unless you run that service yourself.",
            }
        )
    tcp = [v for v in vectors if v in TCP_STATE]
    if tcp:
        out.append(
            {
                "topic": "SYN protection",
                "reason": join([vector_title(v) for v in tcp]),
                "text": f"Enable SYN flood protection (SYN cookies / Advanced TCP Protection) on {names} and"
                " drop out-of-state ACK and RST packets.",
            }
        )
    if "udp_flood" in seen:
        out.append(
            {
                "topic": "UDP filtering",
                "reason": "UDP flood",
                "text": "Drop UDP to destination ports none of your services use, and rate-limit UDP per source"
                " where a UDP service must stay open.",
            }
        )
    if "icmp_flood" in seen:
        out.append(
            {
                "topic": "ICMP",
                "reason": "ICMP flood",
                "text": f"Rate-limit ICMP towards {names}, keeping only the types you need"
                " (echo for monitoring, fragmentation needed).",
            }
        )
    if "ip_fragmentation" in seen:
        out.append(
            {
                "topic": "Fragments",
                "reason": "IP fragmentation",
                "text": "Drop non-initial IP fragments at Magic Firewall unless a service relies on them.",
            }
        )
    if "gre_flood" in seen:
        out.append({"topic": "GRE", "reason": "GRE flood", "text": "Accept GRE only from your own tunnel endpoints."})
    if "dns_flood" in seen:
        out.append(
            {
                "topic": "DNS",
                "reason": "DNS query flood",
                "text": "Serve the zone through DNS Firewall and rate-limit queries per source.",
            }
        )
    have_spectrum = set(spectrum_ports)
    non_web = sorted(
        {
            (t["host"], t["port"])
            for t in targets
            if t.get("port") and t["port"] not in WEB_PORTS and t["port"] not in have_spectrum
        },
        key=lambda hp: (hp[1], hp[0]),
    )
    if non_web:
        listed = join([f"{host}:{port}" for host, port in non_web[:3]])
        out.append(
            {
                "topic": "Spectrum",
                "reason": "attack on a non-web port",
                "text": f"Move the non-web service on {listed} behind Spectrum, so L3/L4 floods against it"
                " are absorbed at the edge and only proxied connections reach you.",
            }
        )
    return out
