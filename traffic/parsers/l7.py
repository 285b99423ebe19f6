"""HTTP/1.x requests and TLS ClientHello fingerprints (JA3, JA4) from captured TCP payloads.

Why it is built this way: L7 rules (user agent, path, JA3) must be simulated on a capture
as on a request log, but parsing every payload in Python would cost the capture summary
its speed. So the reader first picks, vectorised, the TCP segments whose first payload
bytes *are* an HTTP request line ("GET ", "POST", ...) or a TLS handshake record holding a
ClientHello (``16 03 0x .. .. 01``), whatever the port (HTTP on 8081, TLS on 8443 are
common in attacks); only those are copied out of the file and parsed here, lazily, when a
batch becomes a table.

Values are those tshark shows: ``tls.handshake.ja3_full`` / ``tls.handshake.ja3`` (GREASE
values left out of ciphers, extensions and groups, as Wireshark does) and FoxIO's JA4
(``t13d1516h2_8daaf6152771_e5627efa2ab1``). Column names are the rule-language fields
the request logs use (``http.user_agent``, ``cf.bot_management.ja3_hash``, ...), so one
rule reads both.

What is handled and what is not:

* a request's header block or a ClientHello that spans several segments is joined from
  the following segments *of the same flow in the same read batch* whose sequence
  numbers follow on (up to ``MAX_JOIN`` bytes); out-of-order or retransmitted segments,
  and a message cut by a batch boundary or the snap length, are parsed as far as they go
  (a cut ClientHello has no fingerprint: unknown rather than wrong);
* only the first request of a segment is read (pipelined requests after it are not);
* HTTP/2, QUIC (HTTP/3), DTLS and decrypted TLS are not read;
* header names are lower-cased (as Cloudflare logs them); values are kept as sent.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["L7_SCHEMA", "select_payloads", "parse_payloads", "ja3", "ja4", "empty_columns"]

MAX_PAYLOAD = 16_384  # bytes kept per message (a ClientHello with post-quantum key shares is ≈ 1.8 kB)
MAX_JOIN = 4  # following segments joined into one message

_METHODS = (b"GET ", b"POST", b"HEAD", b"PUT ", b"DELE", b"OPTI", b"PATC", b"CONN", b"TRAC")
_METHOD_WORDS = np.array([int.from_bytes(m, "big") for m in _METHODS], dtype=np.uint32)
_GREASE = {0x0A0A + 0x1010 * i for i in range(16)}
_TLS_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3", 0x0002: "s2"}


def _schema() -> pa.Schema:
    import pyarrow as pa

    header = pa.struct([("name", pa.string()), ("value", pa.string())])
    return pa.schema(
        [
            ("http.request.method", pa.string()),
            ("http.host", pa.string()),
            ("http.request.uri.path", pa.string()),
            ("http.request.uri.query", pa.string()),
            ("http.request.version", pa.string()),
            ("http.user_agent", pa.string()),
            ("http.referer", pa.string()),
            ("http.cookie", pa.string()),
            ("http.request.headers.names", pa.list_(pa.string())),
            ("http.request.headers", pa.list_(header)),
            ("cookie.names", pa.list_(pa.string())),
            ("tls.handshake.extensions_server_name", pa.string()),
            ("tls.handshake.ja3_full", pa.string()),
            ("cf.bot_management.ja3_hash", pa.string()),
            ("cf.bot_management.ja4", pa.string()),
        ]
    )


L7_SCHEMA = None  # filled on first use (pyarrow is imported lazily, see pcap.py)


def schema() -> pa.Schema:
    global L7_SCHEMA  # a cache of an immutable value
    if L7_SCHEMA is None:
        L7_SCHEMA = _schema()
    return L7_SCHEMA


# ---------------------------------------------------------------------------------------
# selection in the reader (vectorised; runs on every batch, so it must stay cheap)


def select_payloads(
    v,  # pcap._Views
    tcp_rows: np.ndarray,
    pay: np.ndarray,
    pend: np.ndarray,
    seq: np.ndarray,
    flow: np.ndarray,
) -> tuple[np.ndarray, list[bytes]] | None:
    """Rows (indices into ``tcp_rows``'s batch) whose payload starts an HTTP request or a
    ClientHello, and each one's bytes (joined with following segments when cut).

    ``tcp_rows`` are the batch rows of TCP segments with payload, ``pay``/``pend`` their
    payload start and end in the file, ``seq`` their sequence numbers and ``flow`` a key
    equal for the segments of one direction of one connection.
    """
    ok = pend - pay >= 4
    if not ok.any():
        return None
    word = v.u32be[np.where(ok, pay, 0)]
    tls = ok & ((word >> 16) == 0x1603) & ((word >> 8 & 0xFF) <= 4) & (pend - pay >= 6)
    tls[tls] = v.u8[pay[tls] + 5] == 1
    http = ok & np.isin(word, _METHOD_WORDS)
    pick = np.flatnonzero(tls | http)
    if pick.size == 0:
        return None
    u8 = v.u8
    out: list[bytes] = []
    for k in pick.tolist():
        lo, hi = int(pay[k]), int(pend[k])
        data = bytes(u8[lo : min(hi, lo + MAX_PAYLOAD)])
        if _incomplete(data):
            data = _join(u8, data, k, pay, pend, seq, flow)
        out.append(data)
    return tcp_rows[pick], out


def _incomplete(data: bytes) -> bool:
    if data[:1] == b"\x16":
        return len(data) < 5 + int.from_bytes(data[3:5], "big") and len(data) < MAX_PAYLOAD
    return b"\r\n\r\n" not in data and len(data) < MAX_PAYLOAD


def _join(u8: np.ndarray, data: bytes, k: int, pay, pend, seq, flow) -> bytes:
    """Append the next in-sequence segments of the same flow found later in the batch."""
    want = (int(seq[k]) + len(data)) & 0xFFFFFFFF
    same = np.flatnonzero(flow[k + 1 :] == flow[k]) + k + 1
    for j in same[: 8 * MAX_JOIN].tolist():
        if pend[j] <= pay[j] or int(seq[j]) != want:
            continue
        part = bytes(u8[int(pay[j]) : int(pend[j])])
        data = (data + part)[:MAX_PAYLOAD]
        want = (want + len(part)) & 0xFFFFFFFF
        if not _incomplete(data):
            break
    return data


# ---------------------------------------------------------------------------------------
# parsing (Python, only for the selected payloads)


def _text(raw: bytes) -> str:
    # Attacker-written: keep every byte, decoded one to one (escaping is the page's job).
    return raw.decode("utf-8", "surrogateescape").encode("utf-8", "backslashreplace").decode("utf-8")


def parse_http(data: bytes) -> dict | None:
    """Request line and headers of one HTTP/1.x request (None if it is none)."""
    head = data.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
        return None
    method, target, version = parts
    path, _, query = target.partition(b"?")
    names: list[str] = []
    headers: list[dict] = []
    values: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            continue
        key = _text(name).lower()
        val = _text(value.strip(b" \t"))
        names.append(key)
        headers.append({"name": key, "value": val})
        values.setdefault(key, val)
    cookie = values.get("cookie")
    cookie_names = [c.split("=", 1)[0].strip() for c in cookie.split(";") if c.strip()] if cookie else []
    return {
        "http.request.method": _text(method),
        "http.host": values.get("host"),
        "http.request.uri.path": _text(path),
        "http.request.uri.query": _text(query),
        "http.request.version": _text(version),
        "http.user_agent": values.get("user-agent"),
        "http.referer": values.get("referer"),
        "http.cookie": cookie,
        "http.request.headers.names": names,
        "http.request.headers": headers,
        "cookie.names": cookie_names,
    }


class _Hello:
    """The fields of a ClientHello the fingerprints read."""

    def __init__(self) -> None:
        self.version = 0
        self.ciphers: list[int] = []
        self.extensions: list[int] = []
        self.groups: list[int] = []
        self.point_formats: list[int] = []
        self.sig_algs: list[int] = []
        self.supported_versions: list[int] = []
        self.alpn: list[bytes] = []
        self.sni: str | None = None


def _u16s(b: bytes) -> list[int]:
    return [int.from_bytes(b[i : i + 2], "big") for i in range(0, len(b) - 1, 2)]


def parse_client_hello(data: bytes) -> _Hello | None:
    """The ClientHello in a TLS handshake record (None when cut short or malformed)."""
    if len(data) < 9 or data[0] != 0x16 or data[5] != 1:
        return None
    rec_len = int.from_bytes(data[3:5], "big")
    body_len = int.from_bytes(data[6:9], "big")
    if len(data) < 5 + min(rec_len, 4 + body_len):
        return None
    # A ClientHello longer than its record continues in the next record: join the bodies.
    body = data[9 : 5 + rec_len]
    pos = 5 + rec_len
    while len(body) < body_len and pos + 5 <= len(data) and data[pos] == 0x16:
        n = int.from_bytes(data[pos + 3 : pos + 5], "big")
        body += data[pos + 5 : pos + 5 + n]
        pos += 5 + n
    if len(body) < body_len:
        return None
    b = body[:body_len]
    h = _Hello()
    try:
        h.version = int.from_bytes(b[0:2], "big")
        p = 34
        p += 1 + b[p]  # session id
        n = int.from_bytes(b[p : p + 2], "big")
        h.ciphers = _u16s(b[p + 2 : p + 2 + n])
        p += 2 + n
        p += 1 + b[p]  # compression methods
        if p + 2 <= len(b):
            end = p + 2 + int.from_bytes(b[p : p + 2], "big")
            p += 2
            while p + 4 <= end:
                typ = int.from_bytes(b[p : p + 2], "big")
                ln = int.from_bytes(b[p + 2 : p + 4], "big")
                ext = b[p + 4 : p + 4 + ln]
                p += 4 + ln
                h.extensions.append(typ)
                if typ == 0x000A:
                    h.groups = _u16s(ext[2 : 2 + int.from_bytes(ext[:2], "big")])
                elif typ == 0x000B:
                    h.point_formats = list(ext[1 : 1 + ext[0]]) if ext else []
                elif typ == 0x000D:
                    h.sig_algs = _u16s(ext[2 : 2 + int.from_bytes(ext[:2], "big")])
                elif typ == 0x002B:
                    h.supported_versions = _u16s(ext[1 : 1 + ext[0]]) if ext else []
                elif typ == 0x0010:
                    q, stop = 2, 2 + int.from_bytes(ext[:2], "big")
                    while q < stop and q < len(ext):
                        h.alpn.append(ext[q + 1 : q + 1 + ext[q]])
                        q += 1 + ext[q]
                elif typ == 0x0000 and len(ext) >= 5 and ext[2] == 0:
                    h.sni = _text(ext[5 : 5 + int.from_bytes(ext[3:5], "big")])
    except IndexError:
        return None
    return h


def ja3(h: _Hello) -> str:
    """The JA3 string (tshark's ``tls.handshake.ja3_full``); its MD5 is the JA3 hash."""

    def join(values: list[int]) -> str:
        return "-".join(str(x) for x in values if x not in _GREASE)

    return ",".join(
        [str(h.version), join(h.ciphers), join(h.extensions), join(h.groups), "-".join(map(str, h.point_formats))]
    )


def ja4(h: _Hello, transport: str = "t") -> str:
    """FoxIO's JA4 fingerprint of a ClientHello."""
    versions = [v for v in h.supported_versions if v not in _GREASE]
    version = _TLS_VERSIONS.get(max(versions) if versions else h.version, "00")
    ciphers = [c for c in h.ciphers if c not in _GREASE]
    exts = [e for e in h.extensions if e not in _GREASE]
    alpn = "00"
    if h.alpn and h.alpn[0]:
        first = h.alpn[0]
        a, z = chr(first[0]), chr(first[-1])
        plain = a.isascii() and a.isalnum() and z.isascii() and z.isalnum()
        alpn = a + z if plain else first.hex()[0] + first.hex()[-1]
    head = f"{transport}{version}{'d' if 0 in exts else 'i'}{min(len(ciphers), 99):02d}{min(len(exts), 99):02d}{alpn}"

    def digest(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()[:12] if text else "000000000000"

    cipher_text = ",".join(f"{c:04x}" for c in sorted(ciphers))
    ext_text = ",".join(f"{e:04x}" for e in sorted(e for e in exts if e not in (0x0000, 0x0010)))
    sigs = [s for s in h.sig_algs if s not in _GREASE]
    if sigs:
        ext_text += "_" + ",".join(f"{s:04x}" for s in sigs)
    return f"{head}_{digest(cipher_text)}_{digest(ext_text)}"


def parse_payloads(payloads: list[bytes]) -> list[dict]:
    """One dict of L7 columns per payload (empty when it turned out to be neither)."""
    rows = []
    for data in payloads:
        if data[:1] == b"\x16":
            h = parse_client_hello(data)
            if h is None:
                rows.append({})
                continue
            full = ja3(h)
            rows.append(
                {
                    "tls.handshake.extensions_server_name": h.sni,
                    "tls.handshake.ja3_full": full,
                    "cf.bot_management.ja3_hash": hashlib.md5(full.encode(), usedforsecurity=False).hexdigest(),
                    "cf.bot_management.ja4": ja4(h),
                }
            )
        else:
            rows.append(parse_http(data) or {})
    return rows


def columns(n: int, rows: np.ndarray | None, payloads: list[bytes] | None) -> dict[str, pa.Array]:
    """The L7 columns of a batch of ``n`` packets: values on ``rows``, null elsewhere."""
    import pyarrow as pa

    sch = schema()
    if rows is None or not payloads:
        return empty_columns(n)
    parsed = parse_payloads(payloads)
    where = rows.tolist()
    out = {}
    for f in sch:
        vals: list = [None] * n
        for i, d in zip(where, parsed, strict=True):
            if f.name in d:
                vals[i] = d[f.name]
        out[f.name] = pa.array(vals, f.type)
    return out


def empty_columns(n: int) -> dict[str, pa.Array]:
    import pyarrow as pa

    return {f.name: pa.nulls(n, f.type) for f in schema()}


# ---------------------------------------------------------------------------------------
# what a capture can answer

_TLS_FIELDS = ("cf.bot_management.ja3_hash", "cf.bot_management.ja4", "tls.")
_KINDS = {"http": ("http.request.method", "HTTP requests"), "tls": ("tls.handshake.ja3_full", "TLS ClientHellos")}


def field_kind(name: str) -> str:
    """ "tls" or "http" for the L7 fields a capture carries, "" for the others."""
    if name.startswith(_TLS_FIELDS):
        return "tls"
    if name.startswith(("http.", "cookie.")):
        return "http"
    return ""


def capture_rows(table: pa.Table, fields) -> tuple[np.ndarray | None, str]:
    """The packets of a capture an L7 rule can be judged on, or why there are none.

    (None, "") when the rule reads no L7 field (every packet counts). Else a mask of the
    packets that carry what the rule reads (HTTP requests for ``http.*``, ClientHellos
    for JA3/JA4) and "" — or an empty mask and the reason: "this capture has no HTTP
    requests: http.user_agent cannot be evaluated", never a silent 0 matched.
    """
    import pyarrow.compute as pc

    kinds = sorted({field_kind(f) for f in fields} - {""})
    if not kinds:
        return None, ""
    mask = np.ones(table.num_rows, bool)
    for kind in kinds:
        column, _ = _KINDS[kind]
        if column in table.column_names:
            mask &= pc.is_valid(table.column(column)).to_numpy(zero_copy_only=False)
        else:
            mask[:] = False
    if mask.any():
        return mask, ""
    named = ", ".join(sorted(f for f in fields if field_kind(f)))
    if len(kinds) == 2 and all(_KINDS[k][0] in table.column_names for k in kinds):
        reason = "HTTP request fields and TLS fingerprints are never on the same packet of a capture"
    else:
        missing = [
            k
            for k in kinds
            if not (_KINDS[k][0] in table.column_names and table[_KINDS[k][0]].null_count < table.num_rows)
        ]
        reason = "this capture has no " + " and no ".join(_KINDS[k][1] for k in missing or kinds)
    return mask, f"{reason}: {named} cannot be evaluated"


def capture_counted(fields) -> str:
    """What the records of an L7 simulation on a capture are ("HTTP requests")."""
    kinds = sorted({field_kind(f) for f in fields} - {""})
    return " and ".join(_KINDS[k][1] for k in kinds)
