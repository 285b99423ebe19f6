"""Compile a rule to an nftables ruleset for ``nft -f``.

Everything lives in one dedicated table, ``table inet shieldwall`` (inet: one rule set
for IPv4 and IPv6), with a base chain per hook:

- ``input`` (default): traffic to this host, the usual case for a protected server;
- ``forward``: a router or Magic-Transit-style scrubbing box protecting what is behind it;
- ``prerouting``: before routing and conntrack-heavy work, cheapest for floods.

The base chain has priority -10 so it runs before a distribution's own filter chains
(priority 0) and a drop here cannot be overridden by their accepts. Re-declaring the
table and chain in every compiled file is idempotent with ``nft -f``: it adds rules and
sets, it never flushes what other mitigations installed.

Every rule carries ``comment "<name>"`` and every set is named ``<name>-...``, so a
backend finds exactly this mitigation's rules (``nft -a list chain``) and deletes them
by handle. Rules are exact translations (see ``normalize.py``); what nft cannot
express raises ``CompileError`` naming the clause.

Rule expiry is the backend's job (Celery beat deletes the rules); list *elements*
expire by themselves through per-element ``timeout``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence

from .ast import ip_text
from .errors import CompileError
from .fields import IP_FLAG_BITS, TCP_FLAG_ALIASES
from .normalize import Atom, Conjunction, Guard, to_dnf
from .parser import Rule, parse

TABLE = "shieldwall"
HOOKS = ("input", "forward", "prerouting")
ACTIONS = {"drop": "drop", "accept": "accept", "reject": "reject", "block": "drop", "allow": "accept"}
UNITS = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,40}")
OPS = {"eq": "", "ne": "!= ", "lt": "< ", "le": "<= ", "gt": "> ", "ge": ">= ", "in": "", "not in": "!= "}
PAYLOAD = {
    "tcp.srcport": "tcp sport",
    "tcp.dstport": "tcp dport",
    "udp.srcport": "udp sport",
    "udp.dstport": "udp dport",
    "tcp.flags": "tcp flags",
    "icmp.type": "icmp type",
    "ip.proto": "meta l4proto",
    "ip.len": "meta length",
    "icmp.code": "icmp code",
    "ip.hdr_len": "ip hdrlength",
}
PROTO_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "ipv6-icmp"}


def compile_nftables(
    rule: Rule | str,
    action: str = "drop",
    *,
    rate: Mapping | None = None,
    name: str = "sw-0",
    timeout: int | None = None,
    lists: Mapping[str, Sequence] | None = None,
    hook: str = "input",
) -> str:
    """A complete ``nft -f`` ruleset for ``rule``.

    ``rate``: {"requests": 100, "period": 1, "unit": "second", "burst": 20,
    "per_source": False}: act only on traffic above that rate (``limit rate over``), or
    per source address with a dynamic set (``per_source``; a "meter").
    ``timeout``: default timeout (seconds) of the elements of ``$list`` sets.
    ``lists``: values of the ``$lists`` the rule names; each becomes a named set.
    """
    rule = parse(rule) if isinstance(rule, str) else rule
    verdict = _verdict(action)
    _check_name(name)
    if hook not in HOOKS:
        raise ValueError(f"hook must be one of {', '.join(HOOKS)}")
    conjunctions = to_dnf(rule.ast, "nftables", lists)
    if not conjunctions:
        raise CompileError("nftables", rule.to_text(), "the rule can never match")
    sets: dict[str, str] = {}
    lines = []
    for conj in conjunctions:
        for family in _families(conj):
            lines.append(_rule_matches(conj, family, name, sets, timeout))
    statements = _rate_statements(rate, name, sets) if rate else [("", "")]
    comment = f'comment "{name}"'
    rules = []
    if rate and len(lines) > 1:
        # One shared bucket for the whole rule: every match jumps to one chain that limits.
        for match in lines:
            rules.append(f"{match} jump {name} {comment}".replace("  ", " ").strip())
        chain_rules = [" ".join(p for p in (fam, stmt, "counter", verdict, comment) if p) for fam, stmt in statements]
        extra_chain = f"\tchain {name} {{\n" + "".join(f"\t\t{r}\n" for r in chain_rules) + "\t}\n"
    else:
        for match in lines:
            for fam, stmt in statements:
                rules.append(" ".join(p for p in (match, fam, stmt, "counter", verdict, comment) if p))
        extra_chain = ""
    out = [f"table inet {TABLE} {{\n"]
    for set_text in sets.values():
        out.append(set_text)
    out.append(extra_chain)
    out.append(f"\tchain {hook} {{\n\t\ttype filter hook {hook} priority -10; policy accept;\n")
    out.extend(f"\t\t{r}\n" for r in rules)
    out.append("\t}\n}\n")
    return "".join(out)


def compile_nftables_ip_list(
    name: str,
    items: Iterable[tuple[str, int | None]],
    action: str = "drop",
    *,
    direction: str = "src",
    hook: str = "input",
) -> str:
    """An IP block/allow list: two named interval sets (IPv4, IPv6) whose elements each
    carry their own ``timeout`` (None = permanent), and the rules that use them.

    Adding elements later is ``nft add element inet shieldwall <name>-v4 { 1.2.3.4 timeout 3600s }``.
    """
    verdict = _verdict(action)
    _check_name(name)
    if direction not in ("src", "dst"):
        raise ValueError("direction must be src or dst")
    families: dict[int, list[str]] = {4: [], 6: []}
    for cidr, ttl in items:
        try:
            net = ipaddress.ip_network(str(cidr).strip(), strict=False)
        except ValueError:
            raise CompileError("nftables", str(cidr), "not an IP address or network") from None
        element = ip_text(net)
        if ttl is not None:
            if int(ttl) <= 0:
                raise CompileError("nftables", str(cidr), "a timeout must be a positive number of seconds")
            element += f" timeout {int(ttl)}s"
        families[net.version].append(element)
    out = [f"table inet {TABLE} {{\n"]
    rules = []
    for version, elements in families.items():
        set_name = f"{name}-v{version}"
        out.append(_set_text(set_name, f"ipv{version}_addr", elements, interval=True, timeout=None))
        keyword = "ip" if version == 4 else "ip6"
        rules.append(f'{keyword} {direction[0]}addr @{set_name} counter {verdict} comment "{name}"')
    out.append(f"\tchain {hook} {{\n\t\ttype filter hook {hook} priority -10; policy accept;\n")
    out.extend(f"\t\t{r}\n" for r in rules)
    out.append("\t}\n}\n")
    return "".join(out)


def _verdict(action: str) -> str:
    if action not in ACTIONS:
        raise CompileError("nftables", action, f"unknown action; use one of {', '.join(ACTIONS)}")
    return ACTIONS[action]


def _check_name(name: str) -> None:
    if not NAME_RE.fullmatch(name):
        raise ValueError(f"mitigation name {name!r} must match {NAME_RE.pattern}")


def _families(conj: Conjunction) -> list[int | None]:
    """ip.ttl is ``ip ttl`` for IPv4 and ``ip6 hoplimit`` for IPv6: split if not decided."""
    family = _family_of(conj)
    if family is None and any(isinstance(a, Atom) and a.field == "ip.ttl" for a in conj):
        return [4, 6]
    return [family]


def _family_of(conj: Conjunction) -> int | None:
    for lit in conj:
        if isinstance(lit, Guard) and lit.kind == "family" and not lit.negated:
            return lit.value
        if isinstance(lit, Atom):
            for guard in lit.guards:
                if guard.kind == "family":
                    return guard.value
    return None


def _rule_matches(conj: Conjunction, family: int | None, name: str, sets: dict, timeout: int | None) -> str:
    parts = []
    if family is not None and _family_of(conj) is None:
        parts.append(f"meta nfproto ipv{family}")
    for lit in conj:
        if isinstance(lit, Guard):
            neg = "!= " if lit.negated else ""
            if lit.kind == "family":
                parts.append(f"meta nfproto {neg}ipv{lit.value}")
            else:
                parts.append(f"meta l4proto {neg}{PROTO_NAMES.get(lit.value, lit.value)}")
            continue
        parts.append(_atom(lit, family, name, sets, timeout))
    return " ".join(parts)


def _atom(atom: Atom, family: int | None, name: str, sets: dict, timeout: int | None) -> str:
    field = atom.field
    if field.startswith("tcp.flags."):
        flag = field.rsplit(".", 1)[1]
        flag = TCP_FLAG_ALIASES.get(flag, flag)
        return f"tcp flags & {flag} {'==' if atom.op == 'bool' else '!='} {flag}"
    if field.startswith("ip.flags."):
        bit = IP_FLAG_BITS[field.rsplit(".", 1)[1]]
        return f"ip frag-off & 0x{bit:04x} {'!=' if atom.op == 'bool' else '=='} 0"
    op = OPS[atom.op]
    if field == "bit_slice":
        header, start, end = atom.bits
        base = "@nh" if header == "ip" else "@th"  # network header / transport header, offsets in bits
        return f"{base},{start},{end - start} {op}{_values(atom)}"
    if field in ("ip.src", "ip.dst"):
        keyword = ("ip" if atom.family == 4 else "ip6") + (" saddr" if field == "ip.src" else " daddr")
        if atom.list_name:
            set_name = f"{name}-{atom.list_name}-v{atom.family}"
            elements = [ip_text(v) for v in atom.values]
            sets[set_name] = _set_text(set_name, f"ipv{atom.family}_addr", elements, interval=True, timeout=timeout)
            return f"{keyword} {op}@{set_name}"
        return f"{keyword} {op}{_values(atom)}"
    if field == "ip.ttl":
        keyword = "ip ttl" if family == 4 else "ip6 hoplimit"
        return f"{keyword} {op}{_values(atom)}"
    if field not in PAYLOAD:
        raise CompileError("nftables", atom.clause, f"nftables has no match for {field}")
    if field == "tcp.flags" and atom.values and any(isinstance(v, int) and v > 0xFF for v in atom.values):
        raise CompileError("nftables", atom.clause, "TCP flags fit in one byte (0..255)")
    return f"{PAYLOAD[field]} {op}{_values(atom)}"


def _values(atom: Atom) -> str:
    rendered = []
    for v in atom.values:
        if isinstance(v, tuple):
            rendered.append(f"{v[0]}-{v[1]}")
        elif isinstance(v, ipaddress.IPv4Network | ipaddress.IPv6Network):
            rendered.append(ip_text(v))
        elif atom.field == "tcp.flags":
            rendered.append(f"0x{v:02x}")
        else:
            rendered.append(str(v))
    if atom.op in ("in", "not in") and (len(rendered) > 1 or atom.list_name):
        return "{ " + ", ".join(rendered) + " }"
    return rendered[0]


def _set_text(set_name: str, type_: str, elements: list[str], *, interval: bool, timeout: int | None) -> str:
    flags = ["interval"] if interval else []
    flags.append("timeout")  # elements may carry their own timeout
    lines = [f"\tset {set_name} {{\n", f"\t\ttype {type_}; flags {', '.join(flags)};\n"]
    if timeout:
        lines.append(f"\t\ttimeout {int(timeout)}s;\n")
    if elements:
        lines.append(f"\t\telements = {{ {', '.join(elements)} }}\n")
    lines.append("\t}\n")
    return "".join(lines)


def _rate_statements(rate: Mapping, name: str, sets: dict) -> list[tuple[str, str]]:
    """(family prefix, limit statement) pairs: one global, or one per family per source."""
    try:
        requests = int(rate["requests"])
        unit = rate.get("unit", "second")
        period = int(rate.get("period", 1))
        burst = int(rate.get("burst", 0))
    except (KeyError, TypeError, ValueError):
        raise CompileError("nftables", str(rate), "rate needs integer requests (and period, burst)") from None
    if requests <= 0 or unit not in UNIT_SECONDS or period <= 0:
        raise CompileError(
            "nftables", str(rate), "rate needs requests > 0, period > 0 and a unit second|minute|hour|day"
        )
    seconds = period * UNIT_SECONDS[unit]
    if seconds not in UNITS:
        raise CompileError(
            "nftables",
            str(rate),
            f"nft limits count per second, minute, hour or day; {requests} per {seconds}s is not one of those",
        )
    limit = f"limit rate over {requests}/{UNITS[seconds]}" + (f" burst {burst} packets" if burst else "")
    if not rate.get("per_source"):
        return [("", limit)]
    masks = rate.get("source_mask") or {}
    out = []
    for version, keyword in ((4, "ip"), (6, "ip6")):
        set_name = f"{name}-meter-v{version}"
        sets[set_name] = (
            f"\tset {set_name} {{\n\t\ttype ipv{version}_addr; size 65535; flags dynamic, timeout;\n"
            f"\t\ttimeout {max(60, seconds * 2)}s;\n\t}}\n"
        )
        key = f"{keyword} saddr"
        if masks.get(version):  # one bucket per network: the address with its host bits cleared
            mask = ipaddress.ip_network(f"{'0.0.0.0' if version == 4 else '::'}/{masks[version]}").netmask
            key += f" & {mask}"
        out.append((f"meta nfproto ipv{version}", f"update @{set_name} {{ {key} {limit} }}"))
    return out
