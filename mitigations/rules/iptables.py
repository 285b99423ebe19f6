"""Compile a rule to ``iptables-restore`` / ``ip6tables-restore`` scripts plus ipset.

Output is an ``IptablesScript``: ``rules`` (IPv4, for ``iptables-restore --noflush``),
``rules6`` (IPv6, for ``ip6tables-restore --noflush``: iptables is one family per
tool, so IPv6 traffic gets its own script rather than an error) and ``ipset`` (input
for ``ipset restore``: sets must exist before rules that use them are loaded).

Rules go into a custom chain ``SHIELDWALL`` (declared with ``:SHIELDWALL - [0:0]``);
the backend hooks it once from INPUT/FORWARD (``-I INPUT -j SHIELDWALL`` if
``-C`` fails), so compiled output never touches built-in chains. Every rule has
``-m comment --comment <name>`` and sets are named ``<name>-...`` so one mitigation
can be found and removed alone.

Refused (``CompileError`` naming the clause): L7 fields, country/ASN, functions;
``tcp.flags`` compared as a number and the ECE/CWR flags (``--tcp-flags`` only knows
FIN SYN RST PSH ACK URG, so ``--tcp-flags ALL SYN`` would also match SYN+ECE: not
exact); order comparisons on ``ip.proto``/``icmp.type``; more than one excluded
protocol in one conjunction (one ``-p`` per rule); port sets over 15 entries.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .ast import ip_text
from .errors import CompileError
from .fields import TCP_FLAG_ALIASES
from .normalize import Atom, Conjunction, Guard, to_dnf
from .parser import Rule, parse

ACTIONS = {"drop": "DROP", "accept": "ACCEPT", "reject": "REJECT", "block": "DROP", "allow": "ACCEPT"}
UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
HASHLIMIT_UNITS = {1: "sec", 60: "minute", 3600: "hour", 86400: "day"}
NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,14}")
PROTO_NAMES = {6: "tcp", 17: "udp", 1: "icmp"}
FLAG_NAMES = {"fin": "FIN", "syn": "SYN", "rst": "RST", "psh": "PSH", "ack": "ACK", "urg": "URG"}
PORT_OPTION = {"tcp.srcport": "sport", "tcp.dstport": "dport", "udp.srcport": "sport", "udp.dstport": "dport"}
SPLIT = frozenset({"ip.proto", "icmp.type", "ip.len", "ip.ttl", "tcp.flags"})


@dataclass(frozen=True)
class IptablesScript:
    rules: str
    rules6: str
    ipset: str


def compile_iptables(
    rule: Rule | str,
    action: str = "drop",
    *,
    rate: Mapping | None = None,
    name: str = "sw-0",
    lists: Mapping[str, Sequence] | None = None,
    chain: str = "SHIELDWALL",
) -> IptablesScript:
    """``rate`` as for nftables ({"requests", "period", "unit", "burst", "per_source"}),
    enforced with ``-m hashlimit --hashlimit-above``. ``name`` is at most 15 characters
    (it is also the hashlimit table name)."""
    rule = parse(rule) if isinstance(rule, str) else rule
    verdict = _verdict(action)
    if not NAME_RE.fullmatch(name):
        raise ValueError(f"mitigation name {name!r} must match {NAME_RE.pattern} (hashlimit names are short)")
    conjunctions = to_dnf(rule.ast, "iptables", lists, split_sets=SPLIT)
    if not conjunctions:
        raise CompileError("iptables", rule.to_text(), "the rule can never match")
    ipsets: dict[str, list[str]] = {}
    scripts = []
    for family in (4, 6):
        matches = []
        for conj in conjunctions:
            match = _conjunction(conj, family, name, ipsets)
            if match is not None:
                matches.append(match)
        family_rate = dict(rate, source_mask=(rate.get("source_mask") or {}).get(family)) if rate else None
        scripts.append(_script(matches, verdict, family_rate, name, chain))
    return IptablesScript(
        rules=scripts[0], rules6=scripts[1], ipset="".join(line for lines in ipsets.values() for line in lines)
    )


def compile_iptables_ip_list(
    name: str,
    items: Iterable[tuple[str, int | None]],
    action: str = "drop",
    *,
    direction: str = "src",
    chain: str = "SHIELDWALL",
) -> IptablesScript:
    """An IP list as two ipsets (inet, inet6) whose entries carry their own timeout."""
    verdict = _verdict(action)
    if not NAME_RE.fullmatch(name):
        raise ValueError(f"list name {name!r} must match {NAME_RE.pattern}")
    sets: dict[int, list[str]] = {4: [], 6: []}
    for cidr, ttl in items:
        try:
            net = ipaddress.ip_network(str(cidr).strip(), strict=False)
        except ValueError:
            raise CompileError("iptables", str(cidr), "not an IP address or network") from None
        suffix = f" timeout {int(ttl)}" if ttl else ""
        sets[net.version].append(f"add {name}-{net.version} {ip_text(net)}{suffix} -exist\n")
    ipset = []
    scripts = []
    for version in (4, 6):
        family = "inet" if version == 4 else "inet6"
        ipset.append(f"create {name}-{version} hash:net family {family} timeout 0 -exist\n")
        ipset.extend(sets[version])
        match = f"-m set --match-set {name}-{version} {direction}"
        scripts.append(_script([match], verdict, None, name, chain))
    return IptablesScript(rules=scripts[0], rules6=scripts[1], ipset="".join(ipset))


def _verdict(action: str) -> str:
    if action not in ACTIONS:
        raise CompileError("iptables", action, f"unknown action; use one of {', '.join(ACTIONS)}")
    return ACTIONS[action]


def _script(matches: list[str], verdict: str, rate: Mapping | None, name: str, chain: str) -> str:
    comment = f'-m comment --comment "{name}"'
    lines = ["*filter\n", f":{chain} - [0:0]\n"]
    limit = _hashlimit(rate, name) if rate else ""
    if rate and len(matches) > 1:
        sub = f"{chain}-{name}"[:28]
        lines.append(f":{sub} - [0:0]\n")
        lines.extend(_line(chain, m, f"{comment} -j {sub}") for m in matches)
        lines.append(_line(sub, limit, f"{comment} -j {verdict}"))
    else:
        lines.extend(_line(chain, f"{m} {limit}".strip(), f"{comment} -j {verdict}") for m in matches)
    lines.append("COMMIT\n")
    return "".join(lines)


def _line(chain: str, match: str, tail: str) -> str:
    return " ".join(p for p in (f"-A {chain}", match, tail) if p) + "\n"


def _hashlimit(rate: Mapping, name: str) -> str:
    try:
        requests = int(rate["requests"])
        unit = rate.get("unit", "second")
        period = int(rate.get("period", 1))
        burst = int(rate.get("burst", 0))
    except (KeyError, TypeError, ValueError):
        raise CompileError("iptables", str(rate), "rate needs integer requests (and period, burst)") from None
    if requests <= 0 or unit not in UNIT_SECONDS or period <= 0:
        raise CompileError(
            "iptables", str(rate), "rate needs requests > 0, period > 0 and a unit second|minute|hour|day"
        )
    seconds = period * UNIT_SECONDS[unit]
    if seconds not in HASHLIMIT_UNITS:
        raise CompileError(
            "iptables", str(rate), f"hashlimit counts per second, minute, hour or day, not per {seconds}s"
        )
    parts = [f"-m hashlimit --hashlimit-above {requests}/{HASHLIMIT_UNITS[seconds]}"]
    if burst:
        parts.append(f"--hashlimit-burst {burst}")
    if rate.get("per_source"):
        parts.append("--hashlimit-mode srcip")
        if rate.get("source_mask"):  # this family's prefix length: one bucket per network
            parts.append(f"--hashlimit-srcmask {int(rate['source_mask'])}")
    parts.append(f"--hashlimit-name {name}")
    return " ".join(parts)


def _refuse(atom: Atom, reason: str) -> CompileError:
    return CompileError("iptables", atom.clause, reason)


def _conjunction(conj: Conjunction, family: int, name: str, ipsets: dict) -> str | None:
    """The match part of one rule for one family, or None if it cannot match that family."""
    atoms = [lit for lit in conj if isinstance(lit, Atom)]
    guards = [lit for lit in conj if isinstance(lit, Guard)] + [g for a in atoms for g in a.guards]
    for guard in guards:
        if guard.kind == "family" and (guard.value == family) == guard.negated:
            return None
    positive = {g.value for g in guards if g.kind == "l4proto" and not g.negated}
    negative = {g.value for g in guards if g.kind == "l4proto" and g.negated}
    for atom in atoms:
        if atom.field == "ip.proto":
            if atom.op == "eq":
                positive.add(atom.values[0])
            elif atom.op == "ne":
                negative.add(atom.values[0])
            else:
                raise _refuse(atom, "iptables -p matches one protocol; use eq, ne or a set")
    if len(positive) > 1 or positive & negative:
        return None
    parts = []
    if positive:
        (proto,) = positive
        parts.append(f"-p {PROTO_NAMES.get(proto, proto)}")
    elif len(negative) > 1:
        clause = " and ".join(a.clause for a in atoms) or "the rule"
        raise CompileError(
            "iptables", clause, "one iptables rule can exclude only one protocol (one ! -p); use the nftables target"
        )
    elif negative:
        (proto,) = negative
        parts.append(f"! -p {PROTO_NAMES.get(proto, proto)}")
    used_builtin: set[str] = set()
    flag_mask: list[str] = []
    flag_set: list[str] = []
    for atom in atoms:
        field = atom.field
        if field == "ip.proto":
            continue
        if field in ("ip.src", "ip.dst"):
            parts.append(_ip_match(atom, name, ipsets, used_builtin))
        elif field in PORT_OPTION:
            part = _port_match(atom, used_builtin)
            if part is None:
                return None
            parts.append(part)
        elif field.startswith("tcp.flags."):
            flag = field.rsplit(".", 1)[1]
            flag = TCP_FLAG_ALIASES.get(flag, flag)
            if flag not in FLAG_NAMES:
                raise _refuse(atom, f"iptables --tcp-flags has no {flag.upper()} flag; use the nftables target")
            flag_mask.append(FLAG_NAMES[flag])
            if atom.op == "bool":
                flag_set.append(FLAG_NAMES[flag])
        elif field == "tcp.flags":
            raise _refuse(
                atom,
                "iptables --tcp-flags ignores ECE/CWR, so a numeric tcp.flags test would not be "
                "exact; test single flags (tcp.flags.syn and not tcp.flags.ack) or use nftables",
            )
        elif field == "icmp.type":
            if atom.op not in ("eq", "ne"):
                raise _refuse(atom, "iptables matches one ICMP type per rule (eq, ne or a set)")
            parts.append(f"{'! ' if atom.op == 'ne' else ''}--icmp-type {atom.values[0]}")
        elif field == "ip.len":
            part = _range_match(atom, 65535, "-m length", "--length")
            if part is None:
                return None
            parts.append(part)
        elif field == "ip.ttl":
            part = _ttl_match(atom, family)
            if part is None:
                return None
            if part:
                parts.append(part)
        elif field == "bit_slice":
            raise _refuse(atom, "iptables cannot slice header bits (bit_slice); use the nftables target")
        elif field == "icmp.code":
            raise _refuse(atom, "iptables matches an ICMP code only as part of one --icmp-type; use nftables")
        else:
            raise _refuse(atom, f"iptables has no match for {field}; use the nftables target")
    if flag_mask:  # right after -p tcp, whose match owns --tcp-flags
        parts.insert(1, f"--tcp-flags {','.join(flag_mask)} {','.join(flag_set) or 'NONE'}")
    return " ".join(parts)


def _ip_match(atom: Atom, name: str, ipsets: dict, used: set[str]) -> str:
    direction = "src" if atom.field == "ip.src" else "dst"
    negate = atom.op in ("ne", "not in")
    if len(atom.values) == 1 and not atom.list_name and direction not in used:
        used.add(direction)
        flag = "-s" if direction == "src" else "-d"
        return f"{'! ' if negate else ''}{flag} {ip_text(atom.values[0])}"
    base = f"{name}-{atom.list_name}" if atom.list_name else f"{name}-{direction}{len(ipsets)}"
    set_name = f"{base}-{atom.family}"[:31]
    family = "inet" if atom.family == 4 else "inet6"
    ipsets[set_name] = [f"create {set_name} hash:net family {family} -exist\n"] + [
        f"add {set_name} {ip_text(v)} -exist\n" for v in atom.values
    ]
    return f"-m set {'! ' if negate else ''}--match-set {set_name} {direction}"


def _bounds(atom: Atom, top: int) -> tuple[int, int] | None:
    value = atom.values[0]
    lo, hi = {
        "eq": (value, value),
        "ne": (value, value),
        "lt": (0, value - 1),
        "le": (0, value),
        "gt": (value + 1, top),
        "ge": (value, top),
    }[atom.op]
    return (lo, min(hi, top)) if lo <= min(hi, top) else None


def _span(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}:{hi}"


def _port_match(atom: Atom, used: set[str]) -> str | None:
    option = PORT_OPTION[atom.field]
    if atom.op in ("in", "not in"):
        entries = [_span(*v) if isinstance(v, tuple) else str(v) for v in atom.values]
        weight = sum(2 if ":" in e else 1 for e in entries)
        if weight > 15:
            raise _refuse(atom, "-m multiport takes at most 15 ports (a range counts 2); use a smaller set or nftables")
        neg = "! " if atom.op == "not in" else ""
        return f"-m multiport {neg}--{option}s {','.join(entries)}"
    bounds = _bounds(atom, 65535)
    if bounds is None:
        return None if atom.op != "ne" else ""
    neg = "! " if atom.op == "ne" else ""
    if atom.field not in used:
        used.add(atom.field)
        return f"{neg}--{option} {_span(*bounds)}"
    return f"-m multiport {neg}--{option}s {_span(*bounds)}"


def _range_match(atom: Atom, top: int, module: str, option: str) -> str | None:
    if atom.op in ("in", "not in"):  # split into eq alternatives, except ranges from sets
        lo, hi = atom.values[0]
        neg = "! " if atom.op == "not in" else ""
        return f"{module} {neg}{option} {_span(lo, min(hi, top))}"
    bounds = _bounds(atom, top)
    if bounds is None:
        return None
    return f"{module} {'! ' if atom.op == 'ne' else ''}{option} {_span(*bounds)}"


def _ttl_match(atom: Atom, family: int) -> str | None:
    module, prefix = ("-m ttl", "--ttl") if family == 4 else ("-m hl", "--hl")
    value = atom.values[0]
    if atom.op in ("in", "not in"):
        raise _refuse(atom, "iptables ttl/hl match takes one value or a bound, not a range set")
    if atom.op == "eq":
        return f"{module} {prefix}-eq {value}"
    if atom.op == "ne":
        return f"{module} ! {prefix}-eq {value}"
    if atom.op in ("lt", "le"):
        bound = value if atom.op == "lt" else value + 1
        return None if bound <= 0 else f"{module} {prefix}-lt {bound}" if bound <= 255 else ""
    bound = value if atom.op == "gt" else value - 1
    return None if bound >= 255 else f"{module} {prefix}-gt {bound}" if bound >= 0 else ""
