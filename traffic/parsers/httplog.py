"""HTTP request logs (Cloudflare Logpush ``http_requests`` JSON lines, nginx/Apache combined)
as Arrow tables with rule-language column names, and the request-log summary.

Logpush files are read by DuckDB with an explicit column list: it parses on both cores
and never guesses a schema from a sample (a guessed schema silently drops header keys
first seen late in the file). Header and cookie objects are kept as raw JSON and each is
parsed once more per row for its keys and values, so any key is kept, in the order the
client sent it and as often as it was sent; header names are lower-cased. ``columns=``
builds only the columns asked for (a comparison needs 16 of the 19), and DuckDB then
extracts only the fields those are made from.

A line that is not valid JSON does not stop the import: it is skipped and named in
``errors`` ("line 17: ...") and everything else is kept.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from traffic.parsers.bounded import DEFAULT_LIMITS, Limits, UploadRefused, bounded_copy

__all__ = ["LogResult", "LogError", "read_logpush", "read_combined", "read_log", "summarize_log", "LOG_SCHEMA"]

HEADER = pa.struct([("name", pa.string()), ("value", pa.string())])
LOG_SCHEMA = pa.schema(
    [
        ("ts", pa.float64()),
        ("ip.src", pa.string()),
        ("ip.src.asnum", pa.int64()),
        ("ip.src.country", pa.string()),
        ("http.host", pa.string()),
        ("http.request.method", pa.string()),
        ("http.request.uri.path", pa.string()),
        ("http.request.uri.query", pa.string()),
        ("http.request.version", pa.string()),
        ("http.user_agent", pa.string()),
        ("http.referer", pa.string()),
        ("http.cookie", pa.string()),
        ("http.request.headers.names", pa.list_(pa.string())),
        ("http.request.headers", pa.list_(HEADER)),
        ("http.response.code", pa.int64()),
        ("cf.bot_management.ja3_hash", pa.string()),
        ("cf.bot_management.ja4", pa.string()),
        ("cf.bot_management.score", pa.int64()),
        ("cookie.names", pa.list_(pa.string())),
    ]
)

# Logpush fields read, with DuckDB types. Anything else in the line is ignored.
_LOGPUSH_COLUMNS = {
    "ClientIP": "VARCHAR",
    "ClientASN": "BIGINT",
    "ClientCountry": "VARCHAR",
    "ClientRequestHost": "VARCHAR",
    "ClientRequestMethod": "VARCHAR",
    "ClientRequestPath": "VARCHAR",
    "ClientRequestURI": "VARCHAR",
    "ClientRequestProtocol": "VARCHAR",
    "ClientRequestUserAgent": "VARCHAR",
    "ClientRequestReferer": "VARCHAR",
    "EdgeResponseStatus": "BIGINT",
    "EdgeStartTimestamp": "VARCHAR",
    # Kept as raw JSON: json_keys() gives names in sent order at a fraction of the cost
    # of building a MAP per row; values are only materialised when asked for.
    "RequestHeaders": "JSON",
    "Cookies": "JSON",
    "JA3Hash": "VARCHAR",
    "JA4": "VARCHAR",
    "BotScore": "BIGINT",
}

# Timestamps come as RFC 3339 text or as unix s/ms/us/ns integers depending on the job.
_TS_SQL = """
CASE WHEN regexp_full_match(EdgeStartTimestamp, '[0-9]+(\\.[0-9]+)?') THEN
    CAST(EdgeStartTimestamp AS DOUBLE) / CASE
        WHEN length(EdgeStartTimestamp) >= 18 THEN 1e9
        WHEN length(EdgeStartTimestamp) >= 15 THEN 1e6
        WHEN length(EdgeStartTimestamp) >= 12 THEN 1e3 ELSE 1 END
ELSE epoch(TRY_CAST(EdgeStartTimestamp AS TIMESTAMPTZ)) END
"""

# Each JSON object is parsed once per row: its keys (names in the order sent), the header
# values the wanted columns need (cookie, and referer if asked: one multi-path extract)
# and, only for the rows that have keys, all values in key order ('$.*'); the output
# columns are built from those. A duplicated key is kept twice, as the client sent it.
_PARSED = """
WITH r AS (
    SELECT *,
        json_keys(RequestHeaders) AS _hk,
        json_extract_string(RequestHeaders, [{header_paths}]) AS _hx,
        json_keys(Cookies) AS _ck
    FROM src
), c AS (
    SELECT *, COALESCE(_hx[1], _hx[2], '') AS _cookie_hdr FROM r
)
"""

# Output column (LOG_SCHEMA name) -> its expression over ``c``.
_COLUMN_SQL = {
    "ts": _TS_SQL.strip(),
    "ip.src": "ClientIP",
    "ip.src.asnum": "ClientASN",
    "ip.src.country": "upper(ClientCountry)",
    "http.host": "lower(ClientRequestHost)",
    "http.request.method": "ClientRequestMethod",
    "http.request.uri.path": "COALESCE(ClientRequestPath, split_part(ClientRequestURI, '?', 1))",
    "http.request.uri.query": (
        "CASE WHEN strpos(ClientRequestURI, '?') > 0"
        " THEN substr(ClientRequestURI, strpos(ClientRequestURI, '?') + 1) ELSE '' END"
    ),
    "http.request.version": "ClientRequestProtocol",
    "http.user_agent": "COALESCE(ClientRequestUserAgent, '')",
    "http.referer": "COALESCE(ClientRequestReferer, _hx[3], _hx[4], '')",
    "http.cookie": (
        "CASE WHEN len(_ck) > 0 THEN array_to_string(list_transform(json_extract_string(Cookies, '$.*'),"
        " lambda v, i: _ck[i] || '=' || v), '; ') ELSE _cookie_hdr END"
    ),
    "http.request.headers.names": "COALESCE(list_transform(_hk, lambda k: lower(k)), [])",
    "http.request.headers": (
        "CASE WHEN len(_hk) > 0 THEN list_transform(json_extract_string(RequestHeaders, '$.*'),"
        " lambda v, i: {'name': lower(_hk[i]), 'value': v}) ELSE [] END"
    ),
    "http.response.code": "EdgeResponseStatus",
    "cf.bot_management.ja3_hash": "COALESCE(JA3Hash, '')",
    "cf.bot_management.ja4": "COALESCE(JA4, '')",
    "cf.bot_management.score": "BotScore",
    "cookie.names": (
        "CASE WHEN len(_ck) > 0 THEN _ck WHEN _cookie_hdr = '' THEN [] ELSE list_filter(list_transform("
        "string_split(_cookie_hdr, ';'), lambda x: trim(split_part(x, '=', 1))), lambda x: x <> '') END"
    ),
}


def _select_sql(columns: Collection[str]) -> str:
    """The query for the wanted columns only: DuckDB then reads, from each line, just the
    Logpush fields those columns are made from."""
    exprs = ",\n    ".join(f'{_COLUMN_SQL[name]} AS "{name}"' for name in LOG_SCHEMA.names if name in columns)
    # The referer paths only when asked for (a comparison does not): fewer values per row.
    paths = (
        "'$.cookie', '$.Cookie', '$.referer', '$.Referer'" if "http.referer" in columns else "'$.cookie', '$.Cookie'"
    )
    return f"{_PARSED.format(header_paths=paths)}SELECT\n    {exprs or 'NULL AS _none'}\nFROM c\n"


class LogError(ValueError):
    """The file cannot be read as a request log at all (missing, unreadable, not text)."""


@dataclass
class LogResult:
    """Parsed requests plus the lines that could not be parsed (kept out, named here)."""

    table: pa.Table
    errors: list[str] = field(default_factory=list)
    format: str = "logpush"


def _duck():
    import duckdb

    con = duckdb.connect(":memory:")
    con.execute("SET threads TO 2")
    con.execute("SET preserve_insertion_order TO true")
    con.execute("SET enable_progress_bar TO false")
    return con


def _read_json_sql(path: str, ignore_errors: bool) -> str:
    cols = ", ".join(f"'{k}': '{v}'" for k, v in _LOGPUSH_COLUMNS.items())
    p = path.replace("'", "''")
    return (
        f"read_json('{p}', format='newline_delimited', columns={{{cols}}}, "
        f"ignore_errors={'true' if ignore_errors else 'false'}, maximum_object_size=67108864)"
    )


def _split_bad_lines(path: Path, good_out: Path, limit: int = 100) -> list[str]:
    """Slow path, only run when DuckDB refused the file: copy the lines that are JSON
    objects to ``good_out`` and name the others, so the engineer sees which ones."""
    errors: list[str] = []
    bad = 0
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh, open(good_out, "wb") as out:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
                reason = "" if isinstance(obj, dict) else "not a JSON object"
            except orjson.JSONDecodeError as exc:
                reason = str(exc)
            if reason:
                bad += 1
                if len(errors) < limit:
                    errors.append(f"line {i}: {reason}")
            else:
                out.write(line.rstrip(b"\r\n") + b"\n")
    if bad > limit:
        errors.append(f"... and {bad - limit} more bad lines")
    return errors


def read_logpush(
    path: str | os.PathLike[str], *, header_values: bool = True, columns: Collection[str] | None = None
) -> LogResult:
    """Read a Cloudflare Logpush ``http_requests`` NDJSON file (optionally .gz).

    ``columns`` (LOG_SCHEMA names) reads only those; the others are null. Every line is
    still parsed (and a bad one still named), but only the fields the wanted columns are
    made from are extracted: ``compare.REQUEST_COLUMNS`` is what a comparison needs.
    ``header_values=False`` leaves ``http.request.headers`` (name/value pairs) null: the
    comparison only needs header names and order, and building a million value lists is
    the most expensive part of the read."""
    import tempfile

    import duckdb

    path = Path(path)
    if not path.is_file():
        raise LogError(f"{path}: no such file")
    wanted = set(LOG_SCHEMA.names if columns is None else columns)
    if unknown := wanted - set(LOG_SCHEMA.names):
        raise ValueError(f"not request-log columns: {sorted(unknown)}")
    if not header_values:
        wanted.discard("http.request.headers")
    errors: list[str] = []
    try:
        table = _query(path, wanted)
    except (duckdb.InvalidInputException, duckdb.ConversionException) as exc:
        with tempfile.TemporaryDirectory() as tmp:
            good = Path(tmp) / "good.jsonl"
            errors = _split_bad_lines(path, good) or [f"unreadable as Logpush records: {exc}"]
            try:
                table = _query(good, wanted) if good.stat().st_size else LOG_SCHEMA.empty_table()
            except (duckdb.InvalidInputException, duckdb.ConversionException) as exc2:
                errors.append(f"records with values of the wrong type: {exc2}")
                table = LOG_SCHEMA.empty_table()
    return LogResult(table=_conform(table), errors=errors, format="logpush")


def _query(path: Path, columns: Collection[str]) -> pa.Table:
    con = _duck()
    try:
        con.execute(f"CREATE TEMP VIEW src AS SELECT * FROM {_read_json_sql(str(path), False)}")
        table = con.sql(_select_sql(columns)).to_arrow_table()
    finally:
        con.close()
    if isinstance(table, pa.RecordBatchReader):
        table = table.read_all()
    return table


def _conform(table: pa.Table) -> pa.Table:
    cols = []
    for f in LOG_SCHEMA:
        col = table.column(f.name) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        if col.type != f.type:
            col = col.cast(f.type)
        cols.append(col)
    return pa.Table.from_arrays(cols, schema=LOG_SCHEMA)


_COMBINED = re.compile(
    r'^(?P<ip>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<req>(?:[^"\\]|\\.)*)" (?P<status>\d{3}|-) (?P<size>\S+)'
    r'(?: "(?P<ref>(?:[^"\\]|\\.)*)" "(?P<ua>(?:[^"\\]|\\.)*)")?'
)


def read_combined(path: str | os.PathLike[str]) -> LogResult:
    """Read an nginx/Apache combined (or common) access log. Header names, cookies and
    TLS fingerprints are not in this format: those columns are null, not empty."""
    path = Path(path)
    if not path.is_file():
        raise LogError(f"{path}: no such file")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        return parse_combined_lines(fh)


def parse_combined_lines(lines: Iterable[str]) -> LogResult:
    cols: dict[str, list] = {k: [] for k in ("ts", "ip", "m", "path", "q", "ver", "code", "ua", "ref")}
    errors: list[str] = []
    bad = 0
    cache: dict[str, float] = {}
    for i, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        m = _COMBINED.match(line)
        ts = None
        if m:
            t = m["time"]
            ts = cache.get(t)
            if ts is None:
                try:
                    ts = dt.datetime.strptime(t, "%d/%b/%Y:%H:%M:%S %z").timestamp()
                except ValueError:
                    ts = None
                cache[t] = ts
        if not m or ts is None:
            bad += 1
            if len(errors) < 100:
                errors.append(f"line {i}: not in combined log format: {line[:120]!r}")
            continue
        parts = m["req"].split(" ")
        method, target, ver = (parts + ["", "", ""])[:3] if len(parts) >= 2 else ("", m["req"], "")
        p, _, q = target.partition("?")
        cols["ts"].append(ts)
        cols["ip"].append(m["ip"])
        cols["m"].append(method)
        cols["path"].append(p)
        cols["q"].append(q)
        cols["ver"].append(ver)
        cols["code"].append(None if m["status"] == "-" else int(m["status"]))
        ua = m["ua"]
        cols["ua"].append("" if ua in (None, "-") else ua)
        ref = m["ref"]
        cols["ref"].append("" if ref in (None, "-") else ref)
    if bad > 100:
        errors.append(f"... and {bad - 100} more bad lines")
    n = len(cols["ts"])
    data = {
        "ts": pa.array(cols["ts"], pa.float64()),
        "ip.src": pa.array(cols["ip"], pa.string()),
        "http.request.method": pa.array(cols["m"], pa.string()),
        "http.request.uri.path": pa.array(cols["path"], pa.string()),
        "http.request.uri.query": pa.array(cols["q"], pa.string()),
        "http.request.version": pa.array(cols["ver"], pa.string()),
        "http.response.code": pa.array(cols["code"], pa.int64()),
        "http.user_agent": pa.array(cols["ua"], pa.string()),
        "http.referer": pa.array(cols["ref"], pa.string()),
    }
    table = pa.table(data) if n else pa.table({k: pa.array([], v.type) for k, v in data.items()})
    return LogResult(table=_conform(table), errors=errors, format="combined")


def read_log(path: str | os.PathLike[str], *, fmt: str | None = None, limits: Limits | None = None) -> LogResult:
    """Read either format, within ``limits`` (bounded.py); without ``fmt`` the first non-blank line decides.

    The parsers read a bounded copy: over-long lines skipped and counted (named in ``errors``),
    a compressed upload decompressed once with a cap, a log past the size limit refused.
    """
    path = Path(path)
    if not path.is_file():
        raise LogError(f"{path}: no such file")
    try:
        with bounded_copy(path, limits or DEFAULT_LIMITS) as copy:
            result = _read_log(copy.path, fmt=fmt)
    except UploadRefused as exc:
        raise LogError(str(exc)) from exc
    result.errors[:0] = copy.notes
    return result


def _read_log(path: Path, *, fmt: str | None) -> LogResult:
    if fmt is None:
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
                first = next((ln for ln in fh if ln.strip()), "")
        except OSError as exc:
            raise LogError(f"{path}: {exc}") from exc
        fmt = "logpush" if first.lstrip().startswith("{") else "combined"
    return read_logpush(path) if fmt == "logpush" else read_combined(path)


# ---------------------------------------------------------------------------------------
# summary


def header_order(table: pa.Table) -> pa.ChunkedArray:
    """Header-name order signature per request: "host|user-agent|accept"."""
    return pc.binary_join(table.column("http.request.headers.names"), "|")


def cookie_variation(table: pa.Table) -> pa.ChunkedArray:
    """Sorted cookie-name set per request ("" when the request had no cookie)."""
    names = table.column("cookie.names")
    return pc.binary_join(pc.list_sort(names) if hasattr(pc, "list_sort") else names, ",") if len(names) else names


def bot_band(scores: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Cloudflare's bands: 1 automated, 2-29 likely automated, 30-99 likely human."""
    s = np.asarray(pc.fill_null(scores, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    labels = pa.array(["none", "1 automated", "2-29 likely automated", "30-99 likely human"], pa.string())
    idx = np.where(s < 1, 0, np.where(s == 1, 1, np.where(s < 30, 2, 3))).astype(np.int8)
    return labels.take(pa.array(idx))


def _top(arr, top: int) -> list[dict]:
    vc = pc.value_counts(arr)
    if len(vc) == 0:
        return []
    vals = vc.field("values").to_pylist()
    counts = vc.field("counts").to_numpy()
    order = sorted(range(len(vals)), key=lambda i: (-counts[i], str(vals[i])))[:top]
    return [{"value": vals[i], "requests": int(counts[i])} for i in order if vals[i] is not None]


def summarize_log(table: pa.Table, *, top: int = 10) -> dict:
    """The request-log summary: rate over time and the top values of every attribute an
    engineer pivots on (IPs, ASNs, countries, hosts, paths, methods, UAs, status, JA3/JA4,
    header-name order, cookie names and variations, bot-score bands)."""
    n = table.num_rows
    out: dict = {"requests": n}
    ts = table.column("ts").to_numpy(zero_copy_only=False) if n else np.zeros(0)
    ts = ts[~np.isnan(ts)] if ts.size else ts
    if ts.size:
        secs = np.floor(ts).astype(np.int64)
        u, c = np.unique(secs, return_counts=True)
        out["start"], out["end"] = float(ts.min()), float(ts.max())
        out["duration_s"] = round(float(ts.max() - ts.min()), 3)
        out["per_second"] = [{"t": int(t), "requests": int(k)} for t, k in zip(u.tolist(), c.tolist(), strict=True)]
        out["peak_rps"] = int(c.max())
    else:
        out.update(start=None, end=None, duration_s=0.0, per_second=[], peak_rps=0)
    for key, col in (
        ("top_ips", "ip.src"),
        ("top_asns", "ip.src.asnum"),
        ("top_countries", "ip.src.country"),
        ("top_hosts", "http.host"),
        ("top_paths", "http.request.uri.path"),
        ("top_methods", "http.request.method"),
        ("top_user_agents", "http.user_agent"),
        ("top_status", "http.response.code"),
        ("top_ja3", "cf.bot_management.ja3_hash"),
        ("top_ja4", "cf.bot_management.ja4"),
    ):
        out[key] = _top(table.column(col), top) if n else []
    if n and table.column("http.request.headers.names").null_count < n:
        out["header_orders"] = _top(header_order(table), top)
        names = pc.list_flatten(table.column("http.request.headers.names"))
        out["header_names"] = _top(names, 30)
        out["cookie_names"] = _top(pc.list_flatten(table.column("cookie.names")), 30)
        out["cookie_variations"] = _top(cookie_variation(table), top)
        out["bot_score_bands"] = _top(bot_band(table.column("cf.bot_management.score")), 5)
    else:
        out.update(header_orders=[], header_names=[], cookie_names=[], cookie_variations=[], bot_score_bands=[])
    return out
