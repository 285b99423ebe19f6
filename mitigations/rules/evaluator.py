"""Evaluate a rule over a columnar batch of traffic records: the simulation.

Columns are named after the rule fields ("ip.src", "tcp.dstport", ...). Accepted
column shapes:

- IP fields: strings ("10.0.0.1", "2001:db8::1"); IPv4 may also be an integer column.
- Integer fields: any integer column; null where the field is absent (e.g.
  "tcp.dstport" is null for a UDP packet). "ip.proto" may also hold names ("tcp").
- "tcp.flags.syn" and friends: a boolean column if present, else derived from the
  "tcp.flags" bitmask (FIN=1, SYN=2, RST=4, PSH=8, ACK=16, URG=32, ECE=64, CWR=128).
- String fields: strings (or UTF-8 binary).
- "http.request.headers.names": list<string>, in the order sent, case as sent; if the
  column is missing it is derived from "http.request.headers".
- "http.request.headers": one of list<struct<name, value>>, map<string, string> or
  map<string, list<string>>, a JSON string of {name: [values]} (or {name: value}), or,
  in a plain mapping, Python dicts / lists of (name, value) pairs. Names are matched
  case-insensitively, as Cloudflare lowercases the key.

Semantics for absent values (null, or a missing column): any comparison on them is
false, as in Cloudflare where a field that does not apply has no value; ``not`` is
plain negation, so ``not tcp.dstport eq 80`` is true for a UDP packet. The packet-filter
compilers reproduce exactly this (see ``normalize.py``).

Vectorised with numpy and pyarrow.compute: integer tests, IP membership (sorted
interval search over integers), sets (``np.isin``/``is_in``), string operators and
regexes (RE2 through pyarrow, linear time like Cloudflare's Rust regex). Per-row
Python only extracts header values and runs a regex RE2 rejects.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .ast import IP, STAR, Call, Compare, FieldRef, Int, IPRange, ListRef, Logical, Node, Not, Range, Str
from .errors import RuleError
from .fields import FIELDS, PROTOCOL_NUMBERS, TCP_FLAG_BITS
from .parser import Rule, parse

REGEX_SUBJECT_CAP = 8192  # bytes of a value a Python-fallback regex looks at
URL_DECODE_ROUNDS = 8  # url_decode(x, "r"): Cloudflare decodes recursively; bounded here
MAP_FIELDS = {"http.request.headers", "http.request.cookies", "http.request.uri.args"}
_UNICODE_ESCAPE = re.compile(r"%u([0-9A-Fa-f]{4})")


@dataclass
class _IntV:
    data: np.ndarray  # int64
    valid: np.ndarray  # bool


@dataclass
class _StrV:
    arr: pa.Array  # string, nulls where absent


@dataclass
class _IPV:
    v4: np.ndarray  # uint32, meaningful where is4
    is4: np.ndarray
    hi: np.ndarray  # uint64 halves of an IPv6 address, meaningful where ~is4
    lo: np.ndarray
    valid: np.ndarray


@dataclass
class _ArrV:
    flat: pa.Array | np.ndarray  # element values (strings) or element results (bools)
    offsets: np.ndarray  # int64, len n+1
    valid: np.ndarray
    star: bool

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def evaluate(
    rule: Rule | str, table: pa.Table | Mapping[str, Sequence], lists: Mapping[str, Sequence] | None = None
) -> np.ndarray:
    """Return a boolean array: which rows of ``table`` the rule matches.

    ``lists`` maps a ``$name`` to its values (CIDRs/addresses for IP fields, numbers
    for ASNs, strings otherwise). An unknown list is a ``RuleError``.
    """
    if isinstance(rule, str):
        rule = parse(rule)
    return _Evaluator(table, lists or {}).bool_of(rule.ast)


class _Evaluator:
    def __init__(self, table: pa.Table | Mapping[str, Sequence], lists: Mapping[str, Sequence]) -> None:
        self.table = table
        self.lists = lists
        if isinstance(table, pa.Table):
            self.n = table.num_rows
        else:
            self.n = len(next(iter(table.values()))) if table else 0
        self.cache: dict[tuple, object] = {}

    # -- columns ----------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in (self.table.column_names if isinstance(self.table, pa.Table) else self.table)

    def raw(self, name: str):
        """The column as given (arrow array or Python sequence), or None if absent."""
        if not self.has(name):
            return None
        col = self.table[name]
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        return col

    def arrow(self, name: str) -> pa.Array:
        col = self.raw(name)
        if col is None:
            return pa.nulls(self.n)
        if isinstance(col, pa.Array):
            arr = col
        else:
            try:
                arr = pa.array(col if isinstance(col, np.ndarray) else list(col))
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                arr = pa.array([None if v is None else str(v) for v in col], type=pa.string())
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        if len(arr) != self.n:
            raise ValueError(f"column {name} has {len(arr)} rows, expected {self.n}")
        return arr

    def valid_of(self, arr: pa.Array) -> np.ndarray:
        return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)

    def int_field(self, name: str) -> _IntV:
        arr = self.arrow(name)
        if pa.types.is_null(arr.type):
            return _IntV(np.zeros(self.n, np.int64), np.zeros(self.n, bool))
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            # ip.proto given as names; unknown names count as absent.
            values = [PROTOCOL_NUMBERS.get(v.lower()) if v is not None else None for v in arr.to_pylist()]
            arr = pa.array(values, type=pa.int64())
        valid = self.valid_of(arr)
        data = pc.fill_null(arr, 0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        return _IntV(data, valid)

    def str_field(self, name: str) -> _StrV:
        arr = self.arrow(name)
        if pa.types.is_null(arr.type):
            return _StrV(pa.nulls(self.n, pa.string()))
        if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
            try:
                arr = arr.cast(pa.string())
            except pa.ArrowInvalid:
                arr = pa.array([None if v is None else v.decode("utf-8", "replace") for v in arr.to_pylist()])
        elif not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            arr = arr.cast(pa.string())
        return _StrV(arr)

    def bool_field(self, name: str) -> np.ndarray:
        if self.has(name):
            arr = self.arrow(name)
            if not pa.types.is_null(arr.type):
                return np.asarray(pc.fill_null(arr.cast(pa.bool_()), False).to_numpy(zero_copy_only=False), bool)
        if not name.startswith("tcp.flags."):
            return np.zeros(self.n, bool)  # ssl, ip.flags.mf, ...: only from their own column
        flags = self.int_field("tcp.flags")
        bit = TCP_FLAG_BITS[name.rsplit(".", 1)[1]]
        return flags.valid & ((flags.data & bit) != 0)

    def ip_field(self, name: str) -> _IPV:
        arr = self.arrow(name)
        n = self.n
        v4 = np.zeros(n, np.uint32)
        hi = np.zeros(n, np.uint64)
        lo = np.zeros(n, np.uint64)
        if pa.types.is_null(arr.type):
            return _IPV(v4, np.zeros(n, bool), hi, lo, np.zeros(n, bool))
        valid = self.valid_of(arr)
        if pa.types.is_integer(arr.type):
            v4 = pc.fill_null(arr, 0).to_numpy(zero_copy_only=False).astype(np.uint32)
            return _IPV(v4, valid.copy(), hi, lo, valid)
        arr = arr.cast(pa.string())
        has_colon = np.asarray(pc.fill_null(pc.match_substring(arr, ":"), False).to_numpy(zero_copy_only=False), bool)
        is4 = valid & ~has_colon
        idx4 = np.flatnonzero(is4)
        if len(idx4):
            parsed, ok = _parse_ipv4(arr.filter(pa.array(is4)))
            v4[idx4] = parsed
            bad = idx4[~ok]
            is4[bad] = False
            valid[bad] = False
        for i in np.flatnonzero(valid & has_colon):
            try:
                value = int(ipaddress.IPv6Address(arr[int(i)].as_py().split("%", 1)[0]))
            except ValueError:
                valid[i] = False
                continue
            hi[i] = value >> 64
            lo[i] = value & 0xFFFFFFFFFFFFFFFF
        return _IPV(v4, is4, hi, lo, valid)

    def array_from_lists(self, values: list) -> _ArrV:
        arr = pa.array(values, type=pa.list_(pa.string()))
        return self.array_of(arr)

    def array_of(self, arr: pa.Array) -> _ArrV:
        valid = self.valid_of(arr)
        lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        offsets = np.zeros(len(arr) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = pc.list_flatten(arr)
        if not (pa.types.is_string(flat.type) or pa.types.is_large_string(flat.type)):
            flat = flat.cast(pa.string())
        return _ArrV(flat, offsets, valid, star=False)

    def header_rows(self) -> list:
        return self.pair_rows("http.request.headers")

    def pair_rows(self, name: str) -> list:
        """One Map field as [(key, value), ...] per row (None where the request has none).

        ``http.request.cookies`` falls back to parsing ``http.cookie``, and
        ``http.request.uri.args`` to splitting ``http.request.uri.query`` (values kept raw,
        not percent-decoded, as Cloudflare keeps them)."""
        cache_key = ("pairs", name)
        if cache_key in self.cache:
            return self.cache[cache_key]
        col = self.raw(name)
        if col is not None:
            rows = col.to_pylist() if isinstance(col, pa.Array) else list(col)
            result = [_header_pairs(row) for row in rows]
        elif name == "http.request.cookies" and self.has("http.cookie"):
            result = [None if v is None else _cookie_pairs(v) for v in self.str_field("http.cookie").arr.to_pylist()]
        elif name == "http.request.uri.args" and self.has("http.request.uri.query"):
            query = self.str_field("http.request.uri.query").arr.to_pylist()
            result = [None if v is None else _query_pairs(v) for v in query]
        else:
            result = [None] * self.n
        self.cache[cache_key] = result
        return result

    def headers_names(self) -> _ArrV:
        if self.has("http.request.headers.names"):
            arr = self.arrow("http.request.headers.names")
            if pa.types.is_null(arr.type):
                return self.array_from_lists([None] * self.n)
            return self.array_of(arr)
        rows = self.header_rows()
        return self.array_from_lists([None if r is None else [name for name, _ in r] for r in rows])

    def header_values(self, key: str) -> _ArrV:
        return self.map_values("http.request.headers", key)

    def map_values(self, name: str, key: str) -> _ArrV:
        """``name[key]``: the values under that key, or a missing value where the key is absent
        (Cloudflare: any comparison on it is false). Header names are matched case-insensitively,
        cookie and argument names exactly."""
        fold = name == "http.request.headers"
        out = []
        for row in self.pair_rows(name):
            values = None if row is None else [v for k, v in row if (k.lower() if fold else k) == key]
            out.append(values or None)
        return self.array_from_lists(out)

    def map_names(self, name: str) -> _ArrV:
        return self.array_from_lists([None if r is None else [k for k, _ in r] for r in self.pair_rows(name)])

    # -- expressions ------------------------------------------------------------------
    def bool_of(self, node: Node) -> np.ndarray:
        if isinstance(node, Logical):
            parts = [self.bool_of(item) for item in node.items]
            func = {"and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}[node.op]
            return func.reduce(parts) if len(parts) > 1 else parts[0]
        if isinstance(node, Compare):
            return self.compare(node)
        value = self.value_of(node)
        if isinstance(value, np.ndarray):
            return value
        raise TypeError(f"not a Boolean expression: {node!r}")

    def value_of(self, node: Node):
        key = ("value", node)
        if key in self.cache:
            return self.cache[key]
        result = self._value_of(node)
        self.cache[key] = result
        return result

    def _value_of(self, node: Node):
        if isinstance(node, Not):
            inner = self.value_of(node.operand)
            if isinstance(inner, _ArrV):  # element-wise not, inside any()/all()
                return _ArrV(~np.asarray(inner.flat, bool), inner.offsets, inner.valid, star=True)
            return ~inner
        if isinstance(node, FieldRef):
            return self.field_value(node)
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Compare):
            return self.compare(node)
        return self.bool_of(node)

    def field_value(self, node: FieldRef):
        name = node.name
        type_name = FIELDS[name].type
        if name in MAP_FIELDS:
            value = self.map_values(name, node.key or "")
        elif name == "http.request.headers.names":
            value = self.headers_names()
        elif name == "http.request.uri.args.names" and not self.has(name):
            value = self.map_names("http.request.uri.args")
        elif name == "http.request.headers.values" and not self.has(name):
            rows = self.header_rows()
            value = self.array_from_lists([None if r is None else [v for _, v in r] for r in rows])
        elif type_name.startswith("Array"):
            arr = self.arrow(name)
            value = self.array_from_lists([None] * self.n) if pa.types.is_null(arr.type) else self.array_of(arr)
        elif type_name == "IP address":
            return self.ip_field(name)
        elif type_name == "Integer":
            return self.int_field(name)
        elif type_name == "Boolean":
            return self.bool_field(name)
        else:
            return self.str_field(name)
        if node.index == STAR:
            value.star = True
            return value
        if isinstance(node.index, int):
            return _element(value, node.index)
        return value

    def call(self, node: Call):
        name = node.name
        if name in ("any", "all"):
            arg = self.value_of(node.args[0])
            counts = _segment_sums(arg.flat.astype(np.int64), arg.offsets)
            if name == "any":
                return arg.valid & (counts > 0)
            return arg.valid & (counts == arg.lengths)
        if name == "bit_slice":
            return self.bit_slice(node)
        if name == "concat":
            return self.concat(node)
        arg = self.value_of(node.args[0])
        if name in ("cidr", "cidr6"):
            bits = [a.value for a in node.args[1:]]
            return _mask_ip(arg, 32 if name == "cidr6" else bits[0], bits[-1])
        if name == "len":
            if isinstance(arg, _ArrV) and arg.star:  # len(x[*])[*]: the length of each element
                lengths = pc.fill_null(pc.binary_length(arg.flat), 0).to_numpy(zero_copy_only=False)
                return _ArrV(lengths.astype(np.int64), arg.offsets, arg.valid, star=node.star)
            if isinstance(arg, _ArrV):
                return _IntV(arg.lengths.copy(), arg.valid)
            lengths = pc.binary_length(arg.arr)
            return _IntV(
                pc.fill_null(lengths, 0).to_numpy(zero_copy_only=False).astype(np.int64), self.valid_of(lengths)
            )
        if name in ("lower", "upper", "url_decode"):
            func = {"lower": pc.ascii_lower, "upper": pc.ascii_upper}.get(name)  # ASCII only, as Cloudflare
            if func is None:
                options = node.args[1].value if len(node.args) > 1 else ""
                func = lambda arr: _url_decode(arr, options)  # noqa: E731
            if isinstance(arg, _ArrV):
                return _ArrV(func(arg.flat), arg.offsets, arg.valid, star=node.star)
            return _StrV(func(arg.arr))
        func = pc.starts_with if name == "starts_with" else pc.ends_with
        pattern = node.args[1].value
        if isinstance(arg, _ArrV):
            flat = _np_bool(func(arg.flat, pattern=pattern))
            return _ArrV(flat, arg.offsets, arg.valid, star=node.star)
        return _np_bool(func(arg.arr, pattern=pattern))

    def bit_slice(self, node: Call) -> _IntV:
        """bit_slice("tcp", start, end): bits start..end-1 of that header, read from a column of
        raw header bytes named after the protocol ("ip", "tcp", "udp", "icmp")."""
        proto, start, end = node.args[0].value, node.args[1].value, node.args[2].value
        data = np.zeros(self.n, np.int64)
        valid = np.zeros(self.n, bool)
        col = self.raw(proto)
        if col is None:
            return _IntV(data, valid)
        rows = col.to_pylist() if isinstance(col, pa.Array) else list(col)
        for i, raw in enumerate(rows):
            if isinstance(raw, str):
                try:
                    raw = bytes.fromhex(raw)
                except ValueError:
                    continue
            if not isinstance(raw, bytes | bytearray) or len(raw) * 8 < end:
                continue
            whole = int.from_bytes(raw[: (end + 7) // 8], "big")
            data[i] = (whole >> ((((end + 7) // 8) * 8) - end)) & ((1 << (end - start)) - 1)
            valid[i] = True
        return _IntV(data, valid)

    def concat(self, node: Call) -> _StrV:
        parts = []
        for arg in node.args:
            parts.append(pa.scalar(arg.value, pa.string()) if isinstance(arg, Str) else self.value_of(arg).arr)
        if not any(isinstance(p, pa.Array) for p in parts):
            return _StrV(pa.array(["".join(p.as_py() for p in parts)] * self.n, pa.string()))
        return _StrV(pc.binary_join_element_wise(*parts, ""))

    def compare(self, node: Compare) -> np.ndarray | _ArrV:
        left = self.value_of(node.left)
        op, right = node.op, node.right
        if isinstance(left, _ArrV) and isinstance(left.flat, np.ndarray):  # len(x[*])[*] in {3 4}
            ones = np.ones(len(left.flat), bool)
            flat = self.compare_int(_IntV(left.flat, ones), op, right, node)
            return _ArrV(flat, left.offsets, left.valid, star=True)
        if isinstance(left, _ArrV):  # element-wise over [*]
            flat = self.compare_str(_StrV(left.flat), op, right)
            return _ArrV(flat, left.offsets, left.valid, star=True)
        if isinstance(left, _IntV):
            return self.compare_int(left, op, right, node)
        if isinstance(left, _IPV):
            return self.compare_ip(left, op, right)
        return self.compare_str(left, op, right)

    def list_values(self, ref: ListRef) -> list:
        if ref.name not in self.lists:
            raise RuleError(f"unknown list ${ref.name}", ref.pos)
        return list(self.lists[ref.name])

    def compare_int(self, left: _IntV, op: str, right: Node, node: Compare) -> np.ndarray:
        data = left.data
        is_proto = isinstance(node.left, FieldRef) and node.left.name == "ip.proto"
        if op == "in":
            if isinstance(right, ListRef):
                values = [_list_int(v, right) for v in self.list_values(right)]
                ranges = []
            else:
                values = [_int_value(i, is_proto) for i in right.items if not isinstance(i, Range)]
                ranges = [(i.lo, i.hi) for i in right.items if isinstance(i, Range)]
            hit = np.isin(data, np.array(values, np.int64)) if values else np.zeros(len(data), bool)
            for lo, hi in ranges:
                hit |= (data >= lo) & (data <= hi)
            return hit & left.valid
        value = _int_value(right, is_proto)
        func = {
            "eq": np.equal,
            "ne": np.not_equal,
            "lt": np.less,
            "le": np.less_equal,
            "gt": np.greater,
            "ge": np.greater_equal,
        }[op]
        return func(data, value) & left.valid

    def compare_ip(self, left: _IPV, op: str, right: Node) -> np.ndarray:
        if op in ("eq", "ne"):
            hit = self.ip_in(left, [right.value])
            return hit if op == "eq" else left.valid & ~hit
        if isinstance(right, ListRef):
            nets = []
            for v in self.list_values(right):
                try:
                    nets.append(ipaddress.ip_network(str(v).strip(), strict=False))
                except ValueError:
                    raise RuleError(
                        f"list ${right.name} holds {v!r}, not an IP address or network", right.pos
                    ) from None
        else:
            nets = [n for i in right.items for n in (i.networks() if isinstance(i, IPRange) else (i.value,))]
        return self.ip_in(left, nets)

    def ip_in(self, left: _IPV, nets: list) -> np.ndarray:
        hit = np.zeros(self.n, bool)
        v4 = list(ipaddress.collapse_addresses(n for n in nets if n.version == 4))
        if v4:
            starts = np.array([int(n.network_address) for n in v4], np.uint64)
            ends = np.array([int(n.broadcast_address) for n in v4], np.uint64)
            values = left.v4.astype(np.uint64)
            pos = np.searchsorted(starts, values, side="right") - 1
            inside = (pos >= 0) & (values <= ends[np.clip(pos, 0, None)])
            hit |= left.is4 & inside
        v6_rows = left.valid & ~left.is4
        for net in ipaddress.collapse_addresses(n for n in nets if n.version == 6):
            start, end = int(net.network_address), int(net.broadcast_address)
            shi, slo, ehi, elo = start >> 64, start & (2**64 - 1), end >> 64, end & (2**64 - 1)
            above = (left.hi > shi) | ((left.hi == shi) & (left.lo >= slo))
            below = (left.hi < ehi) | ((left.hi == ehi) & (left.lo <= elo))
            hit |= v6_rows & above & below
        return hit & left.valid

    def compare_str(self, left: _StrV, op: str, right: Node) -> np.ndarray:
        arr = left.arr
        if op == "in":
            values = self.list_values(right) if isinstance(right, ListRef) else [i.value for i in right.items]
            return _np_bool(pc.is_in(arr, value_set=pa.array([str(v) for v in values], type=arr.type)))
        value = right.value
        if op in ("eq", "ne", "lt", "le", "gt", "ge"):
            func = {
                "eq": pc.equal,
                "ne": pc.not_equal,
                "lt": pc.less,
                "le": pc.less_equal,
                "gt": pc.greater,
                "ge": pc.greater_equal,
            }[op]
            return _np_bool(func(arr, pa.scalar(value, type=arr.type)))
        if op == "contains":
            return _np_bool(pc.match_substring(arr, value))
        if op in ("wildcard", "strict wildcard"):
            return _np_bool(pc.match_substring_regex(arr, wildcard_regex(value), ignore_case=op == "wildcard"))
        # matches: RE2 through pyarrow is linear-time and close to Cloudflare's Rust regex.
        try:
            return _np_bool(pc.match_substring_regex(arr, value))
        except pa.ArrowInvalid:
            pattern = re.compile(value)
            return np.array(
                [v is not None and pattern.search(v[:REGEX_SUBJECT_CAP]) is not None for v in arr.to_pylist()], bool
            )


def wildcard_regex(pattern: str) -> str:
    """Cloudflare's wildcard: ``*`` is any run of characters, ``\\*`` and ``\\\\`` are literals,
    and the whole value must match."""
    out = ["^"]
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "*\\":
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append("(?s:.*)" if ch == "*" else re.escape(ch))
        i += 1
    out.append("$")
    return "".join(out)


def _mask_ip(value: _IPV, bits4: int, bits6: int) -> _IPV:
    """cidr(): the network address of each row's address."""
    mask4 = np.uint32((0xFFFFFFFF << (32 - bits4)) & 0xFFFFFFFF)
    mask6 = (2**128 - 1) ^ (2 ** (128 - bits6) - 1)
    hi_mask, lo_mask = np.uint64(mask6 >> 64), np.uint64(mask6 & 0xFFFFFFFFFFFFFFFF)
    return _IPV(value.v4 & mask4, value.is4, value.hi & hi_mask, value.lo & lo_mask, value.valid)


def _url_decode(arr: pa.Array, options: str) -> pa.Array:
    """Cloudflare's url_decode: %XX and + to bytes/space; "u" also %uXXXX; "r" until nothing changes."""

    def one(text: str | None) -> str | None:
        if text is None:
            return None
        for _ in range(URL_DECODE_ROUNDS if "r" in options else 1):
            before = text
            if "u" in options:
                text = _UNICODE_ESCAPE.sub(lambda m: urllib.parse.quote(chr(int(m.group(1), 16))), text)
            text = urllib.parse.unquote_plus(text, errors="replace")
            if text == before:
                break
        return text

    return pa.array([one(v) for v in arr.to_pylist()], pa.string())


def _cookie_pairs(header: str) -> list[tuple[str, str]]:
    pairs = []
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if name and sep:
            pairs.append((name, value))
    return pairs


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for part in query.lstrip("?").split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((name, value))
    return pairs


def _parse_ipv4(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised dotted-quad parse; rows that are not valid IPv4 come back with ok=False."""
    n = len(arr)
    parts = pc.split_pattern(arr, ".")
    lengths = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
    if np.all(lengths == 4):
        try:
            nums = pc.cast(pc.list_flatten(parts), pa.uint16()).to_numpy(zero_copy_only=False).reshape(n, 4)
            if np.all(nums <= 255):
                nums = nums.astype(np.uint32)
                return (nums[:, 0] << 24) | (nums[:, 1] << 16) | (nums[:, 2] << 8) | nums[:, 3], np.ones(n, bool)
        except (pa.ArrowInvalid, ValueError):
            pass
    values = np.zeros(n, np.uint32)
    ok = np.zeros(n, bool)
    for i, text in enumerate(arr.to_pylist()):
        try:
            values[i] = int(ipaddress.IPv4Address(text.strip()))
            ok[i] = True
        except ValueError:
            pass
    return values, ok


def _header_pairs(row) -> list[tuple[str, str]] | None:
    """Normalise one row of http.request.headers to [(name, value), ...]."""
    if row is None:
        return None
    if isinstance(row, str | bytes):
        try:
            row = orjson.loads(row)
        except orjson.JSONDecodeError:
            return None
    pairs: list[tuple[str, str]] = []
    items = row.items() if isinstance(row, Mapping) else row
    for entry in items:
        if isinstance(entry, Mapping):
            name, value = entry.get("name"), entry.get("value")
        else:
            name, value = entry
        values = value if isinstance(value, list | tuple) else [value]
        pairs.extend((str(name), str(v)) for v in values if v is not None)
    return pairs


def _element(value: _ArrV, index: int) -> _StrV:
    has = value.valid & (value.lengths > index)
    if len(value.flat) == 0:
        return _StrV(pa.nulls(len(has), pa.string()))
    idx = np.where(has, value.offsets[:-1] + index, 0)
    taken = pc.take(value.flat, pa.array(idx))
    return _StrV(pc.if_else(pa.array(has), taken, pa.scalar(None, type=taken.type)))


def _segment_sums(flat: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    cumulative = np.zeros(len(flat) + 1, np.int64)
    np.cumsum(flat, out=cumulative[1:])
    return cumulative[offsets[1:]] - cumulative[offsets[:-1]]


def _np_bool(arr: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _int_value(node: Node, is_proto: bool) -> int:
    if isinstance(node, Str) and is_proto:
        return PROTOCOL_NUMBERS[node.value]
    assert isinstance(node, Int)
    return node.value


def _list_int(value, ref: ListRef) -> int:
    text = str(value).strip().upper().removeprefix("AS")
    if not text.isdigit():
        raise RuleError(f"list ${ref.name} holds {value!r}, not a number", ref.pos)
    return int(text)


__all__ = ["evaluate", "wildcard_regex", "IP", "Int"]
