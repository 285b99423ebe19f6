"""What a packet rule matches for sure, decided by its logic over the values packets can carry.

The approval gate asks this before any traffic is looked at: ``ip.ttl ge 0`` matches every
packet whatever the baseline says (and a baseline without TTLs says nothing). The question is
answered exactly, not by sampling: each field the rule compares splits its range of values
into a few intervals (at the numbers and networks the rule names) on which every comparison
is constant, so evaluating one point per interval covers every packet there can be.

- Integer fields (ports, ttl, length, flags...) must be matched on *every* interval: a port,
  a length or a TTL is not spread evenly in real traffic, so "all ports but 80 and 443" is
  not "practically all traffic" (for a web customer it is almost none of it).
- Address fields are weighed by how many addresses each interval holds: "every source but
  1.2.3.4" is practically every source.
- Fields the analysis cannot weigh (strings, countries, functions) are unknown, in the
  three-valued logic below: a rule that depends on them is never said to match everything.

Classes of packets are taken one by one (TCP, UDP, ICMP over IPv4 and IPv6), because a
field exists only in some (``tcp.dstport`` has no value in a UDP packet, so
``tcp.dstport le 65535`` matches every TCP packet and no UDP one).
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from .ast import IP, Compare, FieldRef, Int, IPRange, ListRef, Logical, Node, Not, Range, to_text, walk
from .evaluator import evaluate
from .fields import FIELD_FAMILY, FIELD_PROTOCOL, PACKET_RANGES
from .parser import Rule, parse

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_ROWS = 50_000  # beyond this many witness packets the rule is left to the simulation
PROTOCOLS = {"TCP": 6, "UDP": 17, "ICMP": 1}  # ICMP is protocol 58 over IPv6
INT_FIELDS = {"ip.len", "ip.ttl", "ip.hdr_len", "icmp.type", "icmp.code", "tcp.srcport", "tcp.dstport"}
INT_FIELDS |= {"udp.srcport", "udp.dstport", "tcp.flags"}
SYMBOLS = {"eq": "=", "ne": "≠", "lt": "<", "le": "≤", "gt": ">", "ge": "≥"}
FAMILY_SPACE = {4: ipaddress.ip_network("0.0.0.0/0"), 6: ipaddress.ip_network("::/0")}


@dataclass(frozen=True)
class Coverage:
    """Per protocol, the share of its packets the rule matches for sure (worst case over the integer fields).

    ``because`` names the conditions that hold for (practically) every value of their field,
    in words: "ip.ttl is always ≥ 0".
    """

    shares: dict[str, float]
    threshold: float
    because: list[str] = field(default_factory=list)

    @property
    def every(self) -> list[str]:
        """The protocols whose packets the rule matches (practically) all of."""
        return [name for name, share in self.shares.items() if share >= self.threshold]

    @property
    def all_traffic(self) -> bool:
        return bool(self.shares) and len(self.every) == len(self.shares)

    def describe(self, where: str = "") -> str:
        """'matches every packet to X: ip.ttl is always ≥ 0', or '' when it singles something out."""
        every = self.every
        if not every:
            return ""
        what = "every packet" if self.all_traffic else f"every {' and '.join(every)} packet"
        exact = all(self.shares[name] >= 1.0 for name in every)
        text = f"it matches {'' if exact else 'practically '}{what}{f' {where}' if where else ''}"
        return text + (": " + "; ".join(self.because) if self.because else "")


def coverage(
    rule: Rule | str,
    *,
    victims: Sequence[Network] = (),
    lists: Mapping[str, Sequence] | None = None,
    threshold: float = 0.99,
) -> Coverage | None:
    """How much of the traffic toward ``victims`` (all traffic if none) a packet rule matches for sure.

    None for an L7 rule, a rule whose lists are not given, or one with too many distinct values
    to enumerate: then only the simulation over real traffic can tell.
    """
    rule = parse(rule) if isinstance(rule, str) else rule
    lists = dict(lists or {})
    if rule.layer == "L7" or any(name not in lists for name in rule.lists):
        return None
    families = sorted({n.version for n in victims}) if victims else [4, 6]
    shares: dict[str, float] = {}
    for name, proto in PROTOCOLS.items():
        worst = 1.0
        for family in families:
            share = _class_share(rule, family, 58 if (name == "ICMP" and family == 6) else proto, victims, lists)
            if share is None:
                return None
            worst = min(worst, share)
        shares[name] = worst
    result = Coverage(shares, threshold)
    if not result.every:
        return result
    return Coverage(shares, threshold, _because(rule, victims, lists, threshold))


def possible_values(node: Node, table: pa.Table, lists: Mapping[str, Sequence]) -> tuple[np.ndarray, np.ndarray]:
    """Three-valued evaluation: (could be true, could be false) per row.

    A comparison on a column the table has is decided; one on a field it lacks (or a
    function of it) could be either, so ``ip.dst in {x} and tcp.dstport eq 80`` could be
    true for a row with ``ip.dst`` = x alone, and is necessarily false for any other.
    """
    n = table.num_rows
    if isinstance(node, Not):
        t, f = possible_values(node.operand, table, lists)
        return f, t
    if isinstance(node, Logical):
        parts = [possible_values(item, table, lists) for item in node.items]
        if node.op == "and":
            return np.logical_and.reduce([p[0] for p in parts]), np.logical_or.reduce([p[1] for p in parts])
        if node.op == "or":
            return np.logical_or.reduce([p[0] for p in parts]), np.logical_and.reduce([p[1] for p in parts])
        t, f = parts[0]
        for t2, f2 in parts[1:]:
            t, f = (t & f2) | (f & t2), (t & t2) | (f & f2)
        return t, f
    if _decided(node, table):
        value = np.asarray(evaluate(parse(to_text(node)), table, lists), dtype=bool)
        return value, ~value
    return np.ones(n, bool), np.ones(n, bool)


def _decided(node: Node, table: pa.Table) -> bool:
    names = table.column_names
    if isinstance(node, FieldRef):  # a Boolean field used alone (tcp.flags.syn)
        flag = node.name.startswith("tcp.flags.") and "tcp.flags" in names
        return node.key is None and node.index is None and (node.name in names or flag)
    return (
        isinstance(node, Compare)
        and isinstance(node.left, FieldRef)
        and node.left.name in names
        and node.left.key is None
        and node.left.index is None
    )


# --------------------------------------------------------------------------- witnesses


def _compared(rule_node: Node, name: str) -> list[Compare]:
    return [
        n for n in walk(rule_node) if isinstance(n, Compare) and isinstance(n.left, FieldRef) and n.left.name == name
    ]


def _int_points(node: Node, name: str) -> list[tuple[int, float]]:
    """One value per interval of ``name`` on which every comparison of the rule is constant, with its width."""
    span = PACKET_RANGES[name]
    if name == "tcp.flags" and any(isinstance(n, FieldRef) and n.name.startswith("tcp.flags.") for n in walk(node)):
        # Flag tests read bits, not intervals: every flags byte is its own case.
        return [(v, 1.0) for v in range(256)]
    cuts = {span.low}
    for compare in _compared(node, name):
        for lit in walk(compare.right):
            if isinstance(lit, Int):
                cuts |= {lit.value, lit.value + 1}
            elif isinstance(lit, Range):
                cuts |= {lit.lo, lit.hi + 1}
    ordered = sorted(c for c in cuts if span.low <= c <= span.high)
    ends = [*ordered[1:], span.high + 1]
    return [(lo, float(hi - lo)) for lo, hi in zip(ordered, ends, strict=True)]


def _networks(node: Node, name: str, lists: Mapping[str, Sequence]) -> list[Network]:
    out: list[Network] = []
    for compare in _compared(node, name):
        for lit in walk(compare.right):
            if isinstance(lit, IP):
                out.append(lit.value)
            elif isinstance(lit, IPRange):
                out.extend(lit.networks())
            elif isinstance(lit, ListRef):
                for value in lists.get(lit.name, ()):
                    try:
                        out.append(ipaddress.ip_network(str(value), strict=False))
                    except ValueError:
                        continue
    return out


def _ip_points(node: Node, name: str, family: int, domain: Sequence[Network], lists) -> list[tuple[str, float]]:
    """One address per interval of the ``domain`` on which the rule's address tests are constant, weighted by size."""
    domain = [n for n in domain if n.version == family] or [FAMILY_SPACE[family]]
    nets = [n for n in _networks(node, name, lists) if n.version == family] + list(domain)
    cuts = {int(n.network_address) for n in nets} | {int(n.broadcast_address) + 1 for n in nets}
    top = 2 ** (32 if family == 4 else 128)
    ordered = sorted(c for c in cuts if c < top)
    ends = [*ordered[1:], top]
    size = sum(n.num_addresses for n in ipaddress.collapse_addresses(domain))
    points = []
    for lo, hi in zip(ordered, ends, strict=True):
        address = ipaddress.IPv4Address(lo) if family == 4 else ipaddress.IPv6Address(lo)
        if any(address in n for n in domain):
            points.append((str(address), (hi - lo) / size))
    return points


def _class_fields(rule: Rule, family: int, proto: int) -> list[str]:
    """The integer fields of the rule that a packet of this class carries."""
    wanted = set(rule.fields)
    if any(f.startswith("tcp.flags.") for f in wanted):
        wanted.add("tcp.flags")
    out = []
    for name in sorted(wanted & INT_FIELDS):
        needs_proto = FIELD_PROTOCOL.get(name)
        if needs_proto is not None and needs_proto != proto:
            continue
        if FIELD_FAMILY.get(name, family) != family:
            continue
        out.append(name)
    return out


def _class_share(
    rule: Rule, family: int, proto: int, victims: Sequence[Network], lists: Mapping[str, Sequence]
) -> float | None:
    """Worst case, over the integer intervals, of the share of addresses the rule matches for sure."""
    ints = _class_fields(rule, family, proto)
    int_axes = [_int_points(rule.ast, name) for name in ints]
    src = _ip_points(rule.ast, "ip.src", family, (), lists)
    dst = _ip_points(rule.ast, "ip.dst", family, victims, lists)
    combos = int(np.prod([len(a) for a in int_axes])) if int_axes else 1
    if combos * len(src) * len(dst) > MAX_ROWS:
        return None
    rows = list(itertools.product(*[[v for v, _ in axis] for axis in int_axes], src, dst))
    columns: dict[str, pa.Array] = {
        "ip.proto": pa.array([proto] * len(rows), pa.int64()),
        "ip.src": pa.array([r[-2][0] for r in rows], pa.string()),
        "ip.dst": pa.array([r[-1][0] for r in rows], pa.string()),
    }
    for i, name in enumerate(ints):
        columns[name] = pa.array([r[i] for r in rows], pa.int64())
    for name in sorted(rule.fields - set(columns)):
        # A field this class of packet does not carry has no value (decided); any other is unknown.
        if FIELD_PROTOCOL.get(name, proto) != proto or FIELD_FAMILY.get(name, family) != family:
            columns[name] = pa.nulls(len(rows), pa.int64())
    table = pa.table(columns)
    _, could_be_false = possible_values(rule.ast, table, lists)
    sure = ~could_be_false
    weight = np.array([r[-2][1] * r[-1][1] for r in rows])
    per_combo = (sure * weight).reshape(combos, -1).sum(axis=1)
    return float(per_combo.min()) if len(per_combo) else 0.0


# --------------------------------------------------------------------------- the reasons, in words


def _because(rule: Rule, victims: Sequence[Network], lists: Mapping[str, Sequence], threshold: float) -> list[str]:
    """The single-field conditions that hold for (practically) every value of their field."""
    out = []
    seen: set[str] = set()

    def visit(node: Node) -> None:
        fields = {n.name for n in walk(node) if isinstance(n, FieldRef)}
        if len(fields) == 1 and isinstance(node, Compare | Not):
            (name,) = fields
            text = _holds_always(node, name, victims, lists, threshold)
            if text is not None:
                if text and text not in seen:
                    seen.add(text)
                    out.append(text)
                return
        if isinstance(node, Logical):
            for item in node.items:
                visit(item)

    visit(rule.ast)
    return out


def _holds_always(node: Node, name: str, victims, lists, threshold: float) -> str | None:
    """'' (analysed, nothing to say), None (not a single-field test), or the condition in words."""
    if name == "ip.dst" and victims:
        return ""  # the victim scope: what the rule is limited to, not what it matches
    if name in INT_FIELDS:
        points = _int_points(node, name)
        table = pa.table({name: pa.array([v for v, _ in points], pa.int64())})
        _, could_be_false = possible_values(node, table, lists)
        if could_be_false.any():
            return ""
        span = PACKET_RANGES[name]
        if isinstance(node, Compare) and node.op in SYMBOLS and isinstance(node.right, Int):
            return f"{name} is always {SYMBOLS[node.op]} {node.right.value} (it is {span})"
        return f"`{to_text(node)}` holds for every {name} ({span})"
    if name in ("ip.src", "ip.dst"):
        shares = []
        for family in (4, 6):
            points = _ip_points(node, name, family, victims if name == "ip.dst" else (), lists)
            table = pa.table({name: pa.array([a for a, _ in points], pa.string())})
            _, could_be_false = possible_values(node, table, lists)
            shares.append(float(sum(w for (_, w), f in zip(points, could_be_false, strict=True) if not f)))
        share = min(shares)
        if share < threshold:
            return ""
        text = to_text(node)
        text = text if len(text) <= 60 else text[:57] + "..."
        if share >= 1.0:
            return f"`{text}` holds for every {name} address"
        return f"`{text}` holds for all but {_fraction(1 - share)} of {name} addresses"
    return None


def _fraction(share: float) -> str:
    return f"{share:.2%}" if share >= 0.0001 else "a tiny fraction"


__all__ = ["Coverage", "coverage", "possible_values"]
