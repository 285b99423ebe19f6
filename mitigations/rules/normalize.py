"""Turn a rule into what packet filters can run: a disjunction of conjunctions.

nftables and iptables rules are conjunctions of matches; a rule set is their union.
So the tree is put in negation normal form (``not`` pushed down to comparisons, ``xor``
expanded), then in disjunctive normal form, and each conjunction becomes one packet-
filter rule. ``or`` over one field with ``eq``/``in`` is first merged into a single set,
so ``tcp.dstport eq 80 or tcp.dstport eq 443`` stays one rule.

Absent fields need care to keep the evaluator's semantics: ``tcp.dstport eq 80`` is
false for a UDP packet, so ``not tcp.dstport eq 80`` is true for it, while nft's
``tcp dport != 80`` only ever matches TCP. Each comparison therefore carries the guards
under which its field exists (transport protocol; address family for an IP literal),
and a negated comparison becomes ``(not guard) or (guard and negated comparison)``.
The result is exactly the evaluator's truth table, never an approximation.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .ast import IP, Call, Compare, FieldRef, Int, IPRange, ListRef, Logical, Node, Not, Range, SetLit, Str, to_text
from .errors import CompileError
from .fields import BIT_SLICE_PROTOCOLS, FIELD_FAMILY, FIELD_PROTOCOL, FIELDS, MANAGED_LISTS, PROTOCOL_NUMBERS

# Fields only Cloudflare's edge can resolve (geo and ASN databases).
GEO_FIELDS = {
    "ip.src.country",
    "ip.src.asnum",
    "ip.geoip.country",
    "ip.geoip.asnum",
    "ip.src.continent",
    "ip.dst.country",
}
# Why a packet filter cannot run a function, by function.
FUNCTION_REASONS = {
    "cidr": "cidr() is evaluated by Cloudflare's WAF only; write ip.src in {<network>} instead",
    "cidr6": "cidr6() is evaluated by Cloudflare's WAF only; write ip.src in {<network>} instead",
}

MAX_CONJUNCTIONS = 64
NEGATE_OP = {"eq": "ne", "ne": "eq", "lt": "ge", "ge": "lt", "le": "gt", "gt": "le", "in": "not in", "not in": "in"}


@dataclass(frozen=True)
class Guard:
    """The packet is of this kind: ("l4proto", 6) or ("family", 4)."""

    kind: str
    value: int
    negated: bool = False

    def negate(self) -> Guard:
        return Guard(self.kind, self.value, not self.negated)


@dataclass(frozen=True)
class Atom:
    """One comparison a packet filter can test.

    ``op`` is eq ne lt le gt ge, "in", "not in", or "bool"/"not bool" for a flag.
    ``values`` hold ints, (lo, hi) ranges or ip networks; ``list_name`` is set when the
    values came from a ``$list`` (targets may emit a named set for it).
    """

    field: str
    op: str
    values: tuple
    clause: str
    list_name: str | None = None
    family: int | None = None  # for IP atoms: every value is of this family
    bits: tuple[str, int, int] | None = None  # field "bit_slice": (protocol header, start, end)

    @property
    def guards(self) -> tuple[Guard, ...]:
        guards = []
        if self.field in FIELD_PROTOCOL:
            guards.append(Guard("l4proto", FIELD_PROTOCOL[self.field]))
        if self.field in FIELD_FAMILY:
            guards.append(Guard("family", FIELD_FAMILY[self.field]))  # ICMP not ICMPv6, IPv4 header fields
        if self.bits is not None:
            proto = BIT_SLICE_PROTOCOLS[self.bits[0]]
            if proto is not None:
                guards.append(Guard("l4proto", proto))
            if self.bits[0] in ("ip", "icmp"):
                guards.append(Guard("family", 4))  # offsets into an IPv4 / ICMPv4 header
        if self.family is not None:
            guards.append(Guard("family", self.family))
        return tuple(guards)

    def negate(self) -> Atom:
        op = {"bool": "not bool", "not bool": "bool"}.get(self.op) or NEGATE_OP[self.op]
        return Atom(self.field, op, self.values, self.clause, self.list_name, self.family, self.bits)


Literal = Atom | Guard
Conjunction = tuple[Literal, ...]


def to_dnf(
    node: Node, target: str, lists: Mapping[str, Sequence] | None = None, *, split_sets: frozenset[str] = frozenset()
) -> list[Conjunction]:
    """Conjunctions whose union is exactly the rule (unsatisfiable ones removed).

    ``split_sets``: fields whose ``in`` sets the target cannot match in one go; they
    become one alternative per set member.
    """
    return _Normalizer(target, lists or {}, split_sets).run(node)


class _Normalizer:
    def __init__(self, target: str, lists: Mapping[str, Sequence], split_sets: frozenset[str]) -> None:
        self.target = target
        self.lists = lists
        self.split_sets = split_sets

    def refuse(self, node: Node, reason: str) -> CompileError:
        return CompileError(self.target, to_text(node), reason)

    def run(self, node: Node) -> list[Conjunction]:
        dnf = self.dnf(_merge_sets(node), negated=False)
        result = []
        seen = set()
        for conj in dnf:
            simplified = _simplify(conj)
            if simplified is not None and simplified not in seen:
                seen.add(simplified)
                result.append(simplified)
        return result

    def dnf(self, node: Node, negated: bool) -> list[Conjunction]:
        if isinstance(node, Not):
            return self.dnf(node.operand, not negated)
        if isinstance(node, Logical):
            if node.op == "xor":
                expanded = node.items[0]
                for item in node.items[1:]:
                    expanded = Logical(
                        "or", (Logical("and", (expanded, Not(item))), Logical("and", (Not(expanded), item)))
                    )
                return self.dnf(expanded, negated)
            conjunctive = (node.op == "and") != negated
            parts = [self.dnf(item, negated) for item in node.items]
            if not conjunctive:
                return [c for part in parts for c in part]
            result: list[Conjunction] = [()]
            for part in parts:
                result = [a + b for a in result for b in part]
                if len(result) > MAX_CONJUNCTIONS * 4:
                    raise self.refuse(node, f"expands to more than {MAX_CONJUNCTIONS} rules; simplify it or use a list")
            return self._capped(node, result)
        alternatives = self.atoms(node)  # a disjunction of atoms
        if not negated:
            return [(a,) for a in alternatives]
        # not (A1 or A2 ...) = (not A1) and (not A2) ...; not Ai = (not guard) or (guard and negated Ai)
        result: list[Conjunction] = [()]
        for alt in alternatives:
            if isinstance(alt, Guard):
                options: list[Conjunction] = [(alt.negate(),)]
            else:
                options = [(guard.negate(),) for guard in alt.guards]
                options.append((*alt.guards, alt.negate()))
            result = [a + b for a in result for b in options]
        return self._capped(node, result)

    def _capped(self, node: Node, result: list[Conjunction]) -> list[Conjunction]:
        if len(result) > MAX_CONJUNCTIONS:
            raise self.refuse(node, f"expands to {len(result)} rules (more than {MAX_CONJUNCTIONS}); simplify it")
        return result

    def atoms(self, node: Node) -> list[Atom | Guard]:
        """One comparison as a disjunction of atoms (split by IP family or set member)."""
        clause = to_text(node)
        if isinstance(node, FieldRef) and FIELDS[node.name].type == "Boolean" and node.index is None:
            if FIELDS[node.name].layer == "L7":
                raise self.refuse(node, f"{self.target} cannot see {node.name}: use the cloudflare target")
            return [Atom(node.name, "bool", (), clause)]
        if isinstance(node, Call):
            raise self.refuse(node, f"{self.target} cannot evaluate {node.name}()")
        if not isinstance(node, Compare):
            raise self.refuse(node, f"{self.target} has no array tests")
        left = node.left
        if isinstance(left, Call) and left.name == "bit_slice" and self.target == "nftables":
            if isinstance(node.right, ListRef):
                raise self.refuse(node, "bit_slice() compares with numbers or a set of numbers, not a list")
            values = node.right.items if isinstance(node.right, SetLit) else (node.right,)
            bits = (left.args[0].value, left.args[1].value, left.args[2].value)
            return [Atom("bit_slice", node.op, tuple(_value(v) for v in values), clause, bits=bits)]
        if isinstance(left, Call):
            reason = FUNCTION_REASONS.get(left.name, f"{self.target} cannot evaluate {left.name}()")
            if left.name == "bit_slice":
                reason = "bit_slice() reads raw header bits: use the nftables target (or Cloudflare Magic Firewall)"
            raise self.refuse(node, reason)
        spec = FIELDS[left.name]
        if spec.layer == "L7":
            raise self.refuse(node, f"{self.target} cannot see {left.name}: use the cloudflare target")
        if left.name in GEO_FIELDS:
            raise self.refuse(
                node, f"{self.target} has no geo/ASN data for {left.name}: resolve it to a CIDR $list first"
            )
        if spec.type not in ("Integer", "IP address"):
            raise self.refuse(node, f"{self.target} cannot compare {spec.type} values")
        op = node.op
        right = node.right
        list_name = None
        if isinstance(right, ListRef):
            if right.name in MANAGED_LISTS:
                reason = f"${right.name} is a managed list only Cloudflare's edge can read: use the cloudflare target"
                raise self.refuse(node, reason)
            list_name = right.name.replace(".", "_")
            values = self.list_values(right, spec.type == "IP address", node)
        elif isinstance(right, SetLit):
            values = tuple(v for i in right.items for v in (i.networks() if isinstance(i, IPRange) else (_value(i),)))
        else:
            values = (_value(right),)
        if left.name == "ip.proto":
            values = tuple(PROTOCOL_NUMBERS[v] if isinstance(v, str) else v for v in values)
        if spec.type == "IP address":
            result = []
            for family in (4, 6):
                fam_values = tuple(v for v in values if v.version == family)
                if fam_values:
                    result.append(Atom(left.name, op, fam_values, clause, list_name, family))
            if op == "ne":  # ne one address: also true for every packet of the other family
                (atom,) = result
                return [atom, Guard("family", 6 if atom.family == 4 else 4)]
            return result
        if op == "in" and left.name in self.split_sets:
            return [Atom(left.name, "eq" if not isinstance(v, tuple) else "in", (v,), clause) for v in values]
        return [Atom(left.name, op, values, clause, list_name)]

    def list_values(self, ref: ListRef, is_ip: bool, node: Node) -> tuple:
        if ref.name not in self.lists:
            raise self.refuse(node, f"list ${ref.name} was not provided")
        values = []
        for item in self.lists[ref.name]:
            if is_ip:
                try:
                    values.append(ipaddress.ip_network(str(item).strip(), strict=False))
                except ValueError:
                    raise self.refuse(node, f"list ${ref.name} holds {item!r}, not an IP network") from None
            else:
                text = str(item).strip().upper().removeprefix("AS")
                if not text.isdigit():
                    raise self.refuse(node, f"list ${ref.name} holds {item!r}, not a number")
                values.append(int(text))
        if not values:
            raise self.refuse(node, f"list ${ref.name} is empty")
        return tuple(values)


def _value(item: Node):
    if isinstance(item, Range):
        return (item.lo, item.hi)
    if isinstance(item, IP):
        return item.value
    if isinstance(item, Int):
        return item.value
    if isinstance(item, Str):
        return item.value
    raise TypeError(item)


def _merge_sets(node: Node) -> Node:
    """``f eq a or f in {b c}`` -> ``f in {a b c}`` for integer and IP fields."""
    if isinstance(node, Not):
        return Not(_merge_sets(node.operand), pos=node.pos)
    if not isinstance(node, Logical):
        return node
    items = [_merge_sets(i) for i in node.items]
    if node.op != "or":
        return Logical(node.op, tuple(items), pos=node.pos)
    merged: dict[str, list] = {}
    rest: list[Node] = []
    for item in items:
        if (
            isinstance(item, Compare)
            and isinstance(item.left, FieldRef)
            and item.left.index is None
            and FIELDS[item.left.name].type in ("Integer", "IP address")
            and (item.op == "eq" or (item.op == "in" and isinstance(item.right, SetLit)))
        ):
            values = item.right.items if isinstance(item.right, SetLit) else (item.right,)
            if item.left.name not in merged:
                merged[item.left.name] = []
                rest.append(item.left)  # placeholder keeps the original order
            merged[item.left.name].extend(values)
        else:
            rest.append(item)
    out = []
    for item in rest:
        if isinstance(item, FieldRef) and item.name in merged:
            values = tuple(dict.fromkeys(merged.pop(item.name)))
            if len(values) == 1 and not isinstance(values[0], Range | IPRange):
                out.append(Compare(item, "eq", values[0]))
            else:
                out.append(Compare(item, "in", SetLit(values)))
        else:
            out.append(item)
    return out[0] if len(out) == 1 else Logical("or", tuple(out), pos=node.pos)


def _simplify(conj: Conjunction) -> Conjunction | None:
    """Drop duplicates and redundant guards; None if the conjunction can never hold."""
    literals = tuple(dict.fromkeys(conj))
    guards = [lit for lit in literals if isinstance(lit, Guard)]
    for atom in literals:
        if isinstance(atom, Atom):
            guards.extend(atom.guards)
    positive: dict[str, set[int]] = {}
    negative: dict[str, set[int]] = {}
    for guard in guards:
        (negative if guard.negated else positive).setdefault(guard.kind, set()).add(guard.value)
    for kind, values in positive.items():
        if len(values) > 1 or values & negative.get(kind, set()):
            return None
    if {4, 6} <= negative.get("family", set()):
        return None  # every packet a filter sees here is IPv4 or IPv6
    out = []
    for lit in literals:
        if isinstance(lit, Guard):
            if lit.negated and lit.kind in positive:
                continue  # "not UDP" is implied by "TCP"
            if not lit.negated and any(isinstance(a, Atom) and lit in a.guards for a in literals):
                continue  # implied by an atom on a field of that protocol/family
        out.append(lit)
    return tuple(out)
