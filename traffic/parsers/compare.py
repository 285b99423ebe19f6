"""Attack versus baseline: which attributes give the attack away, and which rule to write.

``compare(attack, baseline)`` takes two tables with rule-language column names (request
logs from ``httplog`` or packets from ``pcap``) and returns, for every attribute, each
value's share in the attack and in the baseline, and candidate signatures written in
Shieldwall's rule language with the attack coverage and baseline collateral measured on
the two tables.

Definitions (per value ``v`` of attribute ``A``):

* ``attack_share`` = rows of the attack with ``A == v`` / attack rows (this is also the
  *coverage* a rule ``A eq v`` would have);
* ``baseline_share`` = the same in the baseline (the *collateral* of that rule);
* ``lift`` = attack_share / baseline_share, with the baseline share floored at half a
  row so that a value never seen in the baseline gets a large but finite lift.

Attributes are ranked by ``separation`` = max over values of (attack_share −
baseline_share): the best coverage-minus-collateral any single-value rule on that
attribute achieves. It is 1.0 for a perfect separator and 0 for an attribute whose
values are spread alike in both samples.

Signatures: a pool of single predicates (top values per attribute, header present or
absent, cookie present or absent, length thresholds) is searched greedily: start from
each of the best single predicates and add, up to three in all, the predicate that
keeps the most attack coverage while lowering collateral, until collateral ≤ 1 %.
Candidates are ranked by (collateral ≤ 1 %, coverage, fewer predicates, collateral).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["compare", "quote", "MAX_COLLATERAL", "REQUEST_COLUMNS"]

MAX_COLLATERAL = 0.01
# Request-log attributes compared value by value, each also a field of the rule language.
_VALUE_FIELDS = (
    "http.request.uri.path",
    "http.request.method",
    "http.host",
    "http.user_agent",
    "http.request.version",
    "cf.bot_management.ja3_hash",
    "cf.bot_management.ja4",
    "ip.src.country",
    "ip.src.asnum",
    "ip.src",
    "http.request.uri.query",
)
# The request-log columns a comparison reads (``read_logpush(..., columns=...)``).
REQUEST_COLUMNS = (
    *_VALUE_FIELDS,
    "http.response.code",
    "http.request.headers.names",
    "http.cookie",
    "cookie.names",
    "cf.bot_management.score",
)


def read_parquet_columns(path: str | os.PathLike[str], columns: list[str]) -> pa.Table:
    """Some columns of a Parquet file, read by DuckDB: the same Arrow table as pyarrow's
    reader gives (rows in file order), for about 40 % less CPU on the compared columns of a
    1 M-request sample (its list columns decode faster), on every core."""
    import duckdb
    import pyarrow.parquet as pq

    if not columns:  # no columns, but the file's row count
        return pq.read_table(path, columns=[])
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET preserve_insertion_order TO true")
        relation = con.read_parquet(str(path))
        table = relation.project(", ".join('"' + name.replace('"', '""') + '"' for name in columns)).to_arrow_table()
    except duckdb.Error as exc:
        # A damaged file gets the answer pyarrow's reader gave (ArrowInvalid is a ValueError):
        # the pages show it as the comparison's error instead of failing.
        raise ValueError(f"the parsed records cannot be read: {exc}") from exc
    finally:
        con.close()
    return table.read_all() if isinstance(table, pa.RecordBatchReader) else table


_SEARCH_ROWS = 200_000
_TOP_VALUES = 20

Column = pa.Array | pa.ChunkedArray


def quote(value: str) -> str:
    """A rule-language string literal. Attack data is hostile: only ``"`` and ``\\`` are
    escaped by backslash, control characters become ``\\xHH``."""
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


@dataclass(eq=False)
class _Pred:
    expr: str
    a: np.ndarray  # bool mask over the (sampled) attack rows searched
    b: np.ndarray  # bool mask over the (sampled) baseline rows searched
    a_full: np.ndarray | None = None  # masks over all rows, for the exact figures
    b_full: np.ndarray | None = None

    @property
    def cov(self) -> float:
        return float(self.a.mean()) if self.a.size else 0.0

    @property
    def col(self) -> float:
        return float(self.b.mean()) if self.b.size else 0.0


def _literal(field: str, value) -> str | None:
    if value is None:
        return None
    if field == "ip.src":
        try:
            ipaddress.ip_address(str(value))
        except ValueError:
            return None
        return str(value)
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | np.integer):
        return str(int(value))
    return quote(str(value))


def _prefix_col(col: Column) -> Column:
    """/24 for IPv4, /48 for IPv6, as CIDR text (computed once per distinct address)."""
    col = col if isinstance(col, pa.ChunkedArray) else pa.chunked_array([col])
    chunks = [c for c in col.dictionary_encode().unify_dictionaries().chunks if len(c)]
    if not chunks:
        return pa.chunked_array([], pa.string())
    nets = []
    for v in chunks[0].dictionary.to_pylist():
        try:
            ip = ipaddress.ip_address(v)
            nets.append(str(ipaddress.ip_network(f"{v}/{24 if ip.version == 4 else 48}", strict=False)))
        except (TypeError, ValueError):
            nets.append(None)
    table = pa.array(nets, pa.string())
    return pa.chunked_array([table.take(c.indices) for c in chunks], pa.string())


def _len_bucket(col: pa.ChunkedArray) -> pa.Array:
    edges = np.array([0, 64, 128, 256, 512, 1024, 1518, 1 << 30])
    labels = np.array(["0-63", "64-127", "128-255", "256-511", "512-1023", "1024-1517", "1518+"], dtype=object)
    v = pc.fill_null(col, -1).to_numpy()
    idx = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, len(labels) - 1)
    return pa.array(np.where(v < 0, None, labels[idx]), pa.string())


def _attributes(t: pa.Table, l7: bool = False) -> list[tuple[str, Callable[[], Column], str | None]]:
    """(attribute name, a function giving its per-row values, rule field usable with ``eq``
    or None). The values are computed lazily so that the attributes of both tables can be
    derived and encoded on all cores at once (Arrow compute releases the GIL)."""
    from .httplog import bot_band, cookie_variation, header_order

    cols = set(t.column_names)
    out: list[tuple[str, Callable[[], Column], str | None]] = []

    def add(name: str, field: str | None = None) -> None:
        if name in cols:
            out.append((name, lambda: t.column(name), field))

    if l7:
        # The HTTP requests and ClientHellos of a capture: their L7 values, and who sent them.
        for name in (*_VALUE_FIELDS, "tls.handshake.extensions_server_name"):
            if name in cols and t.column(name).null_count < t.num_rows:
                add(name, name if name != "tls.handshake.extensions_server_name" else None)
        if "http.request.headers.names" in cols and t.column("http.request.headers.names").null_count < t.num_rows:
            # Per HTTP request only: a ClientHello row has no headers and no cookie (null, not "absent").
            out.append(("header order", lambda: header_order(t), None))
            out.append(("cookie present", lambda: _request_only(t, _cookie_present(t)), None))
        if "ip.src" in cols:
            out.append(("ip.src /24", lambda: _prefix_col(t.column("ip.src")), None))
    elif "http.request.uri.path" in cols and "frame.number" not in cols:
        for name in _VALUE_FIELDS:
            add(name, name)
        add("http.response.code")
        if t.column("http.request.headers.names").null_count < t.num_rows:
            out.append(("header order", lambda: header_order(t), None))
            out.append(("cookie variation", lambda: cookie_variation(t), None))
            out.append(("cookie present", lambda: _cookie_present(t), None))
            out.append(("bot score band", lambda: bot_band(t.column("cf.bot_management.score")), None))
        out.append(("ip.src /24", lambda: _prefix_col(t.column("ip.src")), None))
    else:
        for name in (
            "ip.proto",
            "udp.srcport",
            "udp.dstport",
            "tcp.srcport",
            "tcp.dstport",
            "tcp.flags",
            "icmp.type",
            "ip.ttl",
            "ip.src",
            "ip.version",
        ):
            add(name, name if name != "ip.version" else None)
        add("ip.frag")
        if "ip.len" in cols:
            out.append(("ip.len bucket", lambda: _len_bucket(t.column("ip.len")), None))
        if "frame.len" in cols:
            out.append(("frame.len bucket", lambda: _len_bucket(t.column("frame.len")), None))
        if "ip.src" in cols:
            out.append(("ip.src /24", lambda: _prefix_col(t.column("ip.src")), None))
    return out


def _cookie_present(t: pa.Table) -> Column:
    return pc.not_equal(pc.fill_null(t.column("http.cookie"), ""), "")


def _request_only(t: pa.Table, values: Column) -> Column:
    return pc.if_else(pc.is_null(t.column("http.request.method")), pa.scalar(None, pa.bool_()), values)


def _value_rule(name: str, field: str | None, value: object) -> str | None:
    """The one-predicate rule that matches rows with this value of the attribute, or None
    when the rule language has no such predicate (header order, length buckets)."""
    if field is not None:
        lit = _literal(field, value)
        return None if lit is None else f"{field} eq {lit}"
    if name == "cookie present" and isinstance(value, bool | np.bool_):
        return 'http.cookie ne ""' if value else 'http.cookie eq ""'
    if name == "ip.src /24" and value is not None:
        return f"ip.src in {{{value}}}"
    return None


def _codes(a_col: Column, b_col: Column) -> tuple[np.ndarray, np.ndarray, list]:
    """One dictionary over both samples: integer codes per row (-1 = null) and the values
    (in order of first appearance). Chunks are encoded where they lie, then unified."""
    chunks = [c for col in (a_col, b_col) for c in (col.chunks if isinstance(col, pa.ChunkedArray) else [col])]
    both = pa.chunked_array(chunks) if chunks else pa.chunked_array([], pa.string())
    both = pa.chunked_array([c.cast(both.type) for c in both.chunks], type=both.type)
    if not len(both):
        return np.zeros(0, np.int32), np.zeros(0, np.int32), []
    enc = both.dictionary_encode().unify_dictionaries()
    enc = pa.chunked_array([c for c in enc.chunks if len(c)], type=enc.type)
    idx = np.concatenate([pc.fill_null(c.indices, -1).to_numpy() for c in enc.chunks])
    na = len(a_col)
    return idx[:na], idx[na:], enc.chunk(0).dictionary.to_pylist()


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _sample(n: int, rng: np.random.Generator) -> np.ndarray | None:
    if n <= _SEARCH_ROWS:
        return None
    return np.sort(rng.choice(n, _SEARCH_ROWS, replace=False))


def compare(
    attack_table: pa.Table,
    baseline_table: pa.Table,
    *,
    top: int = _TOP_VALUES,
    scope: str = "",
    reverse: pa.Table | None = None,
    l7: bool = False,
) -> dict:
    """Every attribute's values side by side (attack vs baseline), attributes ranked by how
    well they separate the two, and candidate rule expressions with measured coverage and
    collateral. Works on request-log tables and on packet tables alike.

    For captures, ``attack_table`` and ``baseline_table`` are the packets toward the
    victim, ``scope`` its clause (``ip.dst in {…}``), which every signature then starts
    with, and ``reverse`` the packets the victim sent in the attack capture. The search
    counts matches among ``reverse``, mirrored (addresses and ports swapped), as collateral
    too: what the victim sends (SYN-ACKs, pure ACKs, ICMP errors) is the kind of packet its
    peers send it in normal traffic, so a predicate that matches its mirrored replies
    (``ip.len lt 45`` or ``tcp.dstport eq 80`` on a SYN flood at a web server) would hit
    legitimate traffic toward it. Each signature shows ``reverse_matched`` apart.

    ``l7=True`` compares the HTTP requests and ClientHellos of captures (the rows that
    carry them) on their L7 values: user agent, path, host, JA3, JA4, SNI.

    Signatures are conjunctions of predicates (a value, ``x in {…}`` over the top values,
    presence, a length threshold), behind the scope; when two of them each catch a
    different part of the attack (two vectors), their OR is a candidate too. Ranked by
    coverage minus collateral (a rule above 1 % collateral last), then by ``size``: the
    number of values the rule names (``ja3 in {3 hashes}`` is 3), fewer first.
    """
    n_real_baseline = baseline_table.num_rows
    if reverse is not None and reverse.num_rows:
        reverse = mirror(reverse)
    if reverse is not None and reverse.num_rows and reverse.schema.equals(baseline_table.schema):
        baseline_table = pa.concat_tables([baseline_table, reverse])
    else:
        reverse = None
    na, nb = attack_table.num_rows, baseline_table.num_rows
    a_attrs = _attributes(attack_table, l7)
    b_attrs = {name: col for name, col, _ in _attributes(baseline_table, l7)}
    rng = np.random.default_rng(0)
    sa, sb = _sample(na, rng), _sample(nb, rng)
    jobs = [(name, a_col, b_attrs[name], field) for name, a_col, field in a_attrs if name in b_attrs]

    # Deriving and dictionary-encoding the attributes is most of the work; it runs in
    # Arrow with the GIL released, so it is spread over the cores. Results are taken in
    # attribute order; the "has header" masks come from the header orders once encoded.
    names_col = "http.request.headers.names"
    with ThreadPoolExecutor(max_workers=_workers()) as ex:
        coded = [ex.submit(lambda j: _codes(j[1](), j[2]()), j) for j in jobs]
        attributes = []
        pool: list[_Pred] = []
        orders = None
        for (name, _, _, field), codes in zip(jobs, coded, strict=True):
            attribute, preds = _attribute(name, field, codes.result(), na, nb, top, sa, sb)
            attributes.append(attribute)
            pool += preds
            if name == "header order":
                orders = codes.result()
        if names_col in attack_table.column_names and attack_table.column(names_col).null_count < na:
            # From the header orders when they stand for the names (_has_by_order), else flattened.
            sides = [(attack_table.column(names_col), 0), (baseline_table.column(names_col), 1)]
            has = [_has_by_order(col, orders[i], orders[2]) if orders is not None else None for col, i in sides]
            flat = [ex.submit(_has_matrix, col) if h is None else None for (col, _), h in zip(sides, has, strict=True)]
            has_a, has_b = (h if f is None else f.result() for h, f in zip(has, flat, strict=True))
            attribute, preds = _header_preds(has_a, has_b, na, nb, sa, sb)
            if attribute is not None:
                attributes.append(attribute)
            pool += preds

    pool += _length_preds(attack_table, baseline_table, sa, sb)
    attributes.sort(key=lambda d: (-d["separation"], d["attribute"]))
    for attribute in attributes:
        for row in attribute["values"]:
            # A rule proposed from one value carries the victim scope, as every signature does.
            if row.get("rule") and scope:
                row["rule"] = f"{scope} and {row['rule']}"

    signatures = [[preds] for preds in _search(pool)[:8]]
    signatures += _either(signatures)
    kinds = _baseline_kinds(baseline_table.slice(0, n_real_baseline))
    # Exact figures on the full tables for what we show.
    out_sigs = []
    for terms in signatures:
        preds = [p for term in terms for p in term]
        ma = np.logical_or.reduce([np.logical_and.reduce([p.a_full for p in term]) for term in terms])
        mb = np.logical_or.reduce([np.logical_and.reduce([p.b_full for p in term]) for term in terms])
        body = " and ".join(p.expr for p in terms[0])
        if len(terms) > 1:
            body = "(" + " or ".join(" and ".join(p.expr for p in term) for term in terms) + ")"
        expr = " and ".join(([scope] if scope else []) + [body])
        mb_real, mb_rev = mb[:n_real_baseline], mb[n_real_baseline:]
        cov = float(ma.mean()) if na else 0.0
        col: float | None = float(mb_real.mean()) if n_real_baseline else None
        matched: int | None = int(mb_real.sum())
        unknown = ""
        kind = _rule_kind(preds) if len(terms) == 1 else ""
        if kind and kinds.get(kind, 0) == 0:
            # Nothing of the rule's kind to hit in the baseline: its collateral is not known, not 0.
            col, matched = None, None
            unknown = f"unknown — the baseline has no {kind}"
        elif col is None:
            unknown = "unknown — no baseline traffic"
        rev = int(mb_rev.sum())
        out_sigs.append(
            {
                "expression": expr,
                "predicates": len(preds) + (1 if scope else 0),
                "size": sum(_size(p.expr) for p in preds),
                "vectors": len(terms),
                "attack_coverage": round(cov, 6),
                "baseline_collateral": None if col is None else round(col, 6),
                "collateral_unknown": unknown,
                "attack_matched": round(cov * na),
                "baseline_matched": matched,
                "reverse_matched": rev if reverse is not None else None,
                "reverse_rows": (nb - n_real_baseline) if reverse is not None else None,
                "broad_predicates": sum(p.expr.startswith(_BROAD) for p in preds),
            }
        )

    def rank(sig: dict) -> tuple:
        rev_share = sig["reverse_matched"] / sig["reverse_rows"] if sig["reverse_rows"] else 0.0
        fails = (sig["baseline_collateral"] or 0.0) > MAX_COLLATERAL or rev_share > MAX_COLLATERAL
        # Length thresholds and whole protocols are the predicates most likely to hit
        # traffic a short baseline did not show: at the same coverage, a rule on ports
        # or flags ranks first.
        score = sig["attack_coverage"] - (sig["baseline_collateral"] or 0.0) - rev_share
        return (fails, -round(score, 2), sig["broad_predicates"], sig["size"], sig["predicates"])

    out_sigs.sort(key=rank)
    out_sigs = out_sigs[:5]
    return {
        "attack_rows": na,
        "baseline_rows": n_real_baseline,
        "scope": scope,
        "attributes": attributes,
        "signatures": out_sigs,
        "score": "separation = max over values of (attack_share - baseline_share)",
    }


_BROAD = ("ip.len ", "ip.proto ")
_KIND_FIELDS = (("udp.", "UDP"), ("tcp.", "TCP"), ("icmp.", "ICMP"))
_PROTO_KINDS = {"6": "TCP", "17": "UDP", "1": "ICMP", "58": "ICMP", "47": "GRE"}


_MIRROR = {"ip.src": "ip.dst", "ip.src.v4": "ip.dst.v4", "tcp.srcport": "tcp.dstport", "udp.srcport": "udp.dstport"}
_MIRROR |= {v: k for k, v in _MIRROR.items()}


def mirror(table: pa.Table) -> pa.Table:
    """Packets as their peers would send them back: source and destination swapped (same schema order)."""
    swapped = table.rename_columns([_MIRROR.get(c, c) for c in table.column_names])
    return swapped.select(table.column_names)


def _rule_kind(preds: list[_Pred]) -> str:
    """The traffic kind a packet rule can only match (UDP for ``udp.srcport eq 123``), or ""."""
    for p in preds:
        for prefix, kind in _KIND_FIELDS:
            if p.expr.startswith(prefix):
                return kind
        if p.expr.startswith("ip.proto eq "):
            return _PROTO_KINDS.get(p.expr.rsplit(" ", 1)[1], "")
    return ""


def _baseline_kinds(t: pa.Table) -> dict[str, int]:
    if "ip.proto" not in t.column_names:
        return {}
    v = pc.fill_null(t.column("ip.proto"), -1).to_numpy()
    return {
        "TCP": int(np.count_nonzero(v == 6)),
        "UDP": int(np.count_nonzero(v == 17)),
        "ICMP": int(np.count_nonzero((v == 1) | (v == 58))),
        "GRE": int(np.count_nonzero(v == 47)),
    }


def _attribute(
    name: str, field: str | None, codes: tuple[np.ndarray, np.ndarray, list], na: int, nb: int, top: int, sa, sb
) -> tuple[dict, list[_Pred]]:
    """One attribute's top values side by side, and its single-value predicates."""
    ia, ib, values = codes
    pool: list[_Pred] = []
    k = len(values)
    ca = np.bincount(ia[ia >= 0], minlength=k) if k else np.zeros(0, np.int64)
    cb = np.bincount(ib[ib >= 0], minlength=k) if k else np.zeros(0, np.int64)
    sa_ = ca / max(na, 1)
    sb_ = cb / max(nb, 1)
    diff = sa_ - sb_
    order = np.lexsort((-sa_, -diff))[:top] if k else np.zeros(0, np.int64)
    rows = []
    for i in order.tolist():
        lift = sa_[i] / max(sb_[i], 0.5 / max(nb, 1))
        rows.append(
            {
                "value": values[i],
                "attack_share": round(float(sa_[i]), 6),
                "baseline_share": round(float(sb_[i]), 6),
                "lift": round(float(lift), 3),
                "coverage": round(float(sa_[i]), 6),
                "attack_rows": int(ca[i]),
                "baseline_rows": int(cb[i]),
                "rule": _value_rule(name, field, values[i]),
            }
        )
    separation = float(diff.max()) if k else 0.0
    attribute = {"attribute": name, "field": field, "separation": round(separation, 6), "values": rows}
    if field is not None:
        for i in order[:8].tolist():
            lit = _literal(field, values[i])
            if lit is None or diff[i] <= 0.05:
                continue
            ma, mb = ia == i, ib == i
            pool.append(_P(f"{field} eq {lit}", ma, mb, sa, sb))
        # A set of the top values that each give the attack away (JA3 hashes, reflector
        # ports): one rule where single values each cover a part.
        good = [i for i in order[:8].tolist() if diff[i] > 0.02 and _literal(field, values[i]) is not None]
        # ... and the set of those never (or almost never) seen in the baseline: the bots'
        # three JA3 hashes, not the browser hash they share with real users.
        clean = [i for i in good if sb_[i] <= MAX_COLLATERAL / len(good)]
        for chosen in {tuple(good), tuple(clean)}:
            if len(chosen) >= 2:
                lits = " ".join(_literal(field, values[i]) for i in chosen)
                pool.append(_P(f"{field} in {{{lits}}}", np.isin(ia, chosen), np.isin(ib, chosen), sa, sb))
    elif name == "cookie present":
        for i, v in enumerate(values):
            if v is None or abs(diff[i]) < 0.05 or diff[i] <= 0:
                continue
            expr = 'http.cookie ne ""' if v else 'http.cookie eq ""'
            pool.append(_P(expr, ia == i, ib == i, sa, sb))
    elif name == "ip.src /24":
        for i in order[:5].tolist():
            if values[i] is None or diff[i] <= 0.05:
                continue
            pool.append(_P(f"ip.src in {{{values[i]}}}", ia == i, ib == i, sa, sb))
    return attribute, pool


def _pick(mask: np.ndarray, sel: np.ndarray | None) -> np.ndarray:
    return mask if sel is None else mask[sel]


def _P(expr: str, ma: np.ndarray, mb: np.ndarray, sa: np.ndarray | None, sb: np.ndarray | None) -> _Pred:
    return _Pred(expr, _pick(ma, sa), _pick(mb, sb), ma, mb)


def _header_preds(has_a: dict, has_b: dict, na: int, nb: int, sa, sb) -> tuple[dict | None, list[_Pred]]:
    """The "has header" attribute (None when no request had a header) and its predicates."""
    col = "http.request.headers.names"
    preds = []
    names = sorted(set(has_a) | set(has_b))
    rows = []
    for name in names:
        ma = has_a.get(name, np.zeros(na, bool))
        mb = has_b.get(name, np.zeros(nb, bool))
        pa_, pb_ = float(ma.mean()) if ma.size else 0.0, float(mb.mean()) if mb.size else 0.0
        rows.append(
            {
                "value": name,
                "attack_share": round(pa_, 6),
                "baseline_share": round(pb_, 6),
                "lift": round(pa_ / max(pb_, 0.5 / max(nb, 1)), 3),
                "coverage": round(pa_, 6),
            }
        )
        lit = quote(name)
        if pa_ - pb_ > 0.05:
            preds.append(_P(f"any({col}[*] eq {lit})", ma, mb, sa, sb))
        if pb_ - pa_ > 0.05:
            preds.append(_P(f"not any({col}[*] eq {lit})", ~ma, ~mb, sa, sb))
    if not rows:
        return None, preds
    sep = max(abs(r["attack_share"] - r["baseline_share"]) for r in rows)
    rows.sort(key=lambda r: -abs(r["attack_share"] - r["baseline_share"]))
    return {"attribute": "has header", "field": col, "separation": round(sep, 6), "values": rows}, preds


def _has_by_order(col: Column, codes: np.ndarray, orders: list) -> dict[str, np.ndarray] | None:
    """The "has header" masks from the distinct header orders (a few hundred, already
    encoded for the "header order" attribute) instead of every row's names (six per row).

    An order is its names joined by "|", so it splits back into them exactly unless a name
    holds "|" or is empty; then a row has fewer names than its order splits into (or one
    more, for a lone empty name), and None is returned: the caller flattens the names."""
    if codes.size and codes.min() < 0:
        return None
    names_of = [o.split("|") if o else [] for o in orders]
    expected = np.array([len(n) for n in names_of] or [0], np.int64)
    lengths = pc.fill_null(pc.list_value_length(col), 0).to_numpy(zero_copy_only=False)
    if codes.size and not np.array_equal(expected[codes], lengths):
        return None
    present = np.unique(codes).tolist()
    names = sorted({name for i in present for name in names_of[i]})
    index = {name: k for k, name in enumerate(names)}
    small = np.zeros((len(names), max(len(orders), 1)), bool)
    for i in present:
        small[[index[name] for name in names_of[i]], i] = True
    return dict(zip(names, small[:, codes], strict=True))


def _has_matrix(col: pa.ChunkedArray) -> dict[str, np.ndarray]:
    chunks = [c for c in col.chunks if len(c)] if isinstance(col, pa.ChunkedArray) else [col]
    n = len(col)
    if not chunks:
        return {}
    starts = np.cumsum([0] + [len(c) for c in chunks])
    parents = np.concatenate(
        [pc.list_parent_indices(c).to_numpy() + start for c, start in zip(chunks, starts, strict=False)]
    )
    flat = pa.chunked_array([pc.list_flatten(c) for c in chunks], type=chunks[0].type.value_type)
    enc = flat.dictionary_encode().unify_dictionaries()
    if not len(flat):
        return {}
    names = next(c.dictionary for c in enc.chunks if len(c)).to_pylist()
    idx = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in enc.chunks])
    m = np.zeros((len(names), n), bool)
    m[idx, parents] = True  # one scatter for all names
    return dict(zip(names, m, strict=True))


def _length_preds(at: pa.Table, bt: pa.Table, sa, sb) -> list[_Pred]:
    if "ip.len" not in at.column_names or "ip.len" not in bt.column_names:
        return []
    va = pc.fill_null(at.column("ip.len"), -1).to_numpy()
    vb = pc.fill_null(bt.column("ip.len"), -1).to_numpy()
    va_ok = va[va >= 0]
    if va_ok.size == 0:
        return []
    preds = []
    for q in (1, 5, 50):
        t = int(np.percentile(va_ok, q)) - 1
        if t > 0:
            preds.append(_P(f"ip.len gt {t}", va > t, vb > t, sa, sb))
    for q in (95, 99):
        t = int(np.percentile(va_ok, q)) + 1
        preds.append(_P(f"ip.len lt {t}", (va >= 0) & (va < t), (vb >= 0) & (vb < t), sa, sb))
    return preds


def _size(expr: str) -> int:
    """Values a predicate names: one, or each member of ``x in {…}``."""
    if " in {" in expr:
        inner = expr[expr.index(" in {") + 5 : expr.rindex("}")]
        return max(1, len(_SET_ITEM.findall(inner)))
    return 1


_SET_ITEM = re.compile(r'"(?:[^"\\]|\\.)*"|[^\s"]+')


def _either(found: list[list[list[_Pred]]]) -> list[list[list[_Pred]]]:
    """ORs of two clean signatures that catch different parts of the attack (two vectors:
    a SYN flood and an NTP reflection at once), when together they cover clearly more."""
    clean = []
    for terms in found:
        (term,) = terms
        a = np.logical_and.reduce([p.a for p in term])
        b = np.logical_and.reduce([p.b for p in term])
        if a.size and (not b.size or b.mean() <= MAX_COLLATERAL):
            clean.append((term, a, b))
    out = []
    for i, (t1, a1, b1) in enumerate(clean):
        for t2, a2, b2 in clean[i + 1 :]:
            if len(t1) == len(t2) == 1 and t1[0].expr.split(" ", 1)[0] == t2[0].expr.split(" ", 1)[0]:
                continue  # two values of one field: that is the field's set predicate
            both = a1 | a2
            col = (b1 | b2).mean() if b1.size else 0.0
            if both.mean() >= max(a1.mean(), a2.mean()) + 0.05 and col <= MAX_COLLATERAL:
                out.append((-both.mean(), [t1, t2]))
    out.sort(key=lambda x: x[0])
    return [terms for _, terms in out[:3]]


def _search(pool: list[_Pred]) -> list[list[_Pred]]:
    if not pool:
        return []
    # Seeds: the single predicates with the best coverage-minus-collateral.
    pool = sorted(pool, key=lambda p: -(p.cov - p.col))[:40]
    found: list[tuple[tuple, list[_Pred]]] = []
    seen: set[frozenset[str]] = set()
    for seed in pool[:10]:
        chosen = [seed]
        ma, mb = seed.a, seed.b
        while len(chosen) < 3 and (mb.mean() if mb.size else 0.0) > MAX_COLLATERAL:
            best = None
            cur_col = mb.mean()
            for p in pool:
                if p in chosen:
                    continue
                na_, nb_ = ma & p.a, mb & p.b
                cov, col = na_.mean(), (nb_.mean() if nb_.size else 0.0)
                if col >= cur_col:
                    continue
                key = (col <= MAX_COLLATERAL, cov, -col)
                if best is None or key > best[0]:
                    best = (key, p, na_, nb_)
            if best is None:
                break
            chosen.append(best[1])
            ma, mb = best[2], best[3]
        sig = frozenset(p.expr for p in chosen)
        if sig in seen:
            continue
        seen.add(sig)
        cov = float(ma.mean()) if ma.size else 0.0
        col = float(mb.mean()) if mb.size else 0.0
        found.append(((col > MAX_COLLATERAL, -cov, len(chosen), col), chosen))
    found.sort(key=lambda x: x[0])
    return [c for _, c in found]
