"""The syntax tree and its canonical printer.

Nodes are frozen dataclasses; ``pos`` (where the node starts in the source text) is
kept for error messages but excluded from equality, so a tree parsed from printed text
compares equal to the tree that was printed. The printer emits Cloudflare's English
operators and the fewest parentheses that keep the tree's shape, so
``parse(print(t)) == t`` for every well-typed tree (the property test checks this).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

STAR = "*"


@dataclass(frozen=True)
class FieldRef:
    """A field, optionally keyed (``http.request.headers["x"]``) and indexed (``[0]``/``[*]``)."""

    name: str
    key: str | None = None
    index: int | str | None = None  # None, an int, or STAR
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Str:
    value: str
    # Printed back as r"..." so regexes stay readable. Not part of equality: the same string
    # written raw or quoted is the same value.
    raw: bool = field(default=False, compare=False)
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Int:
    value: int
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class IP:
    """An address (a /32 or /128) or a CIDR network."""

    value: IPNetwork
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Range:
    lo: int
    hi: int
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class IPRange:
    """An explicit address range ``lo..hi`` (inside a set), both ends included."""

    lo: ipaddress.IPv4Address | ipaddress.IPv6Address
    hi: ipaddress.IPv4Address | ipaddress.IPv6Address
    pos: int = field(default=0, compare=False)

    def networks(self) -> tuple[IPNetwork, ...]:
        """The fewest CIDR networks that cover exactly lo..hi."""
        return tuple(ipaddress.summarize_address_range(self.lo, self.hi))


@dataclass(frozen=True)
class SetLit:
    items: tuple[Str | Int | IP | Range | IPRange, ...]
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class ListRef:
    """``$name``: a managed list, resolved when the rule is evaluated or compiled."""

    name: str
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]
    star: bool = False  # ``lower(x[*])[*]``: iterate the array the call returns
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Compare:
    left: FieldRef | Call
    op: str  # canonical English: eq ne lt le gt ge in contains matches wildcard "strict wildcard"
    right: Str | Int | IP | SetLit | ListRef
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Not:
    operand: Node
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Logical:
    op: str  # and, xor, or
    items: tuple[Node, ...]
    pos: int = field(default=0, compare=False)


Node = FieldRef | Str | Int | IP | Range | IPRange | SetLit | ListRef | Call | Compare | Not | Logical
Value = Str | Int | IP | SetLit | ListRef

# Binding strength: not > and > xor > or, as in Cloudflare's Rules language.
PRECEDENCE = {"or": 1, "xor": 2, "and": 3}


def quote(value: str) -> str:
    """A quoted string literal: only ``"`` and ``\\`` need escaping; control bytes as \\xHH."""
    out = ['"']
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def raw_quote(value: str) -> str:
    """A raw literal ``r"..."`` / ``r#"..."#`` with as few hashes as the content allows."""
    hashes = 0
    while '"' + "#" * hashes in value:
        hashes += 1
    h = "#" * hashes
    return f'r{h}"{value}"{h}'


def ip_text(net: IPNetwork) -> str:
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return str(net)


def to_text(node: Node) -> str:
    """Canonical text of a node (English operators, minimal parentheses)."""
    if isinstance(node, Logical):
        parts = []
        for item in node.items:
            text = to_text(item)
            if isinstance(item, Logical) and PRECEDENCE[item.op] <= PRECEDENCE[node.op]:
                text = f"({text})"
            parts.append(text)
        return f" {node.op} ".join(parts)
    if isinstance(node, Not):
        inner = to_text(node.operand)
        if isinstance(node.operand, Logical):
            inner = f"({inner})"
        return f"not {inner}"
    if isinstance(node, Compare):
        right = node.right
        if node.op == "matches" and isinstance(right, Str) and "\\" in right.value:
            # A quoted regex keeps its backslashes verbatim (Cloudflare's regex escaping), so a
            # pattern holding one is printed raw: the only form that reads back the same.
            return f"{to_text(node.left)} matches {raw_quote(right.value)}"
        return f"{to_text(node.left)} {node.op} {to_text(right)}"
    if isinstance(node, FieldRef):
        text = node.name
        if node.key is not None:
            text += f"[{quote(node.key)}]"
        if node.index is not None:
            text += f"[{node.index}]"
        return text
    if isinstance(node, Call):
        text = f"{node.name}({', '.join(to_text(a) for a in node.args)})"
        return text + "[*]" if node.star else text
    if isinstance(node, Str):
        return raw_quote(node.value) if node.raw else quote(node.value)
    if isinstance(node, Int):
        return str(node.value)
    if isinstance(node, IP):
        return ip_text(node.value)
    if isinstance(node, Range):
        return f"{node.lo}..{node.hi}"
    if isinstance(node, IPRange):
        return f"{node.lo}..{node.hi}"
    if isinstance(node, SetLit):
        return "{" + " ".join(to_text(i) for i in node.items) + "}"
    if isinstance(node, ListRef):
        return f"${node.name}"
    raise TypeError(f"not a rule node: {node!r}")


def walk(node: Node):
    """Every node of the tree, parents before children."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, Logical):
            stack.extend(reversed(current.items))
        elif isinstance(current, Not):
            stack.append(current.operand)
        elif isinstance(current, Compare):
            stack.extend([current.right, current.left])
        elif isinstance(current, Call):
            stack.extend(reversed(current.args))
        elif isinstance(current, SetLit):
            stack.extend(reversed(current.items))
