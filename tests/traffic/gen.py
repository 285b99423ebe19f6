"""Synthetic captures and request logs for the traffic tests and for bench/traffic.py.

Packets are packed by hand with ``struct`` so every header field is known exactly: the
tests can assert on them without trusting any other parser. Checksums are left at zero
(tshark does not verify them by default). Large captures are streamed to disk.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import random
import re
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

Packet = tuple[float, bytes, int]  # (epoch seconds, captured bytes, wire length)

# --------------------------------------------------------------------------- headers


def ip4(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


def ip6(text: str) -> bytes:
    import ipaddress

    return ipaddress.IPv6Address(text).packed


def eth(payload: bytes, ethertype: int = 0x0800, vlans: Iterable[tuple[int, int]] = ()) -> bytes:
    """Ethernet frame; ``vlans`` is a list of (tpid, vid) outermost first."""
    hdr = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02"
    for tpid, vid in vlans:
        hdr += struct.pack("!HH", tpid, vid)
    return hdr + struct.pack("!H", ethertype) + payload


def sll(payload: bytes, proto: int = 0x0800) -> bytes:
    return struct.pack("!HHH8sH", 0, 1, 6, b"\x02\0\0\0\0\x01\0\0", proto) + payload


def sll2(payload: bytes, proto: int = 0x0800) -> bytes:
    return struct.pack("!HHIHBB8s", proto, 0, 2, 1, 0, 6, b"\x02\0\0\0\0\x01\0\0") + payload


def ipv4(
    src: str, dst: str, proto: int, payload: bytes, *, ttl: int = 64, ident: int = 1, mf: bool = False, frag: int = 0
) -> bytes:
    """IPv4 header + payload; ``frag`` is the fragment offset in 8-byte units."""
    ff = (0x2000 if mf else 0) | (frag & 0x1FFF)
    return (
        struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, ff, ttl, proto, 0, ip4(src), ip4(dst)) + payload
    )


def ipv6(
    src: str, dst: str, nh: int, payload: bytes, *, hlim: int = 64, ext: Iterable[tuple[int, bytes]] = ()
) -> bytes:
    """IPv6 packet; ``ext`` is a list of (header type, body) with the body padded here."""
    chain = b""
    types = [t for t, _ in ext] + [nh]
    for i, (t, body) in enumerate(ext):
        nxt = types[i + 1]
        if t == 44:
            chain += struct.pack("!BB", nxt, 0) + body[:6].ljust(6, b"\0")
        else:
            size = max(6, len(body))
            full = body.ljust(size + (-(size + 2) % 8), b"\0")
            chain += struct.pack("!BB", nxt, (len(full) + 2) // 8 - 1) + full
    first = types[0]
    body = chain + payload
    return struct.pack("!IHBB16s16s", 6 << 28, len(body), first, hlim, ip6(src), ip6(dst)) + body


def tcp(sport: int, dport: int, flags: int, payload: bytes = b"", seq: int = 1) -> bytes:
    return (
        struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4 | (flags >> 8 & 1), flags & 0xFF, 65535, 0, 0) + payload
    )


def udp(sport: int, dport: int, payload: bytes = b"") -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def icmp(typ: int, code: int = 0, payload: bytes = b"") -> bytes:
    return struct.pack("!BBHI", typ, code, 0, 0) + payload


SYN, ACK, RST, PSH, FIN = 0x02, 0x10, 0x04, 0x08, 0x01

# Chrome's ClientHello offer as FoxIO's JA4 README shows it (t13d1516h2_8daaf6152771_e5627efa2ab1).
CHROME_CIPHERS = [0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013, 0xC014]
CHROME_CIPHERS += [0x009C, 0x009D, 0x002F, 0x0035]
CHROME_EXTENSIONS = [0x0000, 0x0017, 0xFF01, 0x000A, 0x000B, 0x0023, 0x0010, 0x0005, 0x000D, 0x0012, 0x0033]
CHROME_EXTENSIONS += [0x002D, 0x002B, 0x001B, 0x0015, 0x4469]
CHROME_SIGALGS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]


def client_hello(
    ciphers: list[int],
    extensions: list[int],
    *,
    sni: str = "",
    alpn: list[bytes] = (),
    groups: list[int] = (0x001D, 0x0017, 0x0018),
    sig_algs: list[int] = (),
    versions: list[int] = (),
    legacy_version: int = 0x0303,
) -> bytes:
    """A TLS record holding a ClientHello (RFC 8446 §4.1.2) with the extensions named, in
    order; the ones a fingerprint reads get their real contents, the others are empty."""

    def u16s(values) -> bytes:
        return b"".join(struct.pack("!H", v) for v in values)

    def vec16(body: bytes) -> bytes:
        return struct.pack("!H", len(body)) + body

    body = {
        0x0000: vec16(b"\x00" + vec16(sni.encode())),
        0x000A: vec16(u16s(groups)),
        0x000B: b"\x01\x00",
        0x000D: vec16(u16s(sig_algs)),
        0x0010: vec16(b"".join(bytes([len(a)]) + a for a in alpn)),
        0x002B: bytes([2 * len(versions)]) + u16s(versions),
    }
    exts = b"".join(struct.pack("!H", e) + vec16(body.get(e, b"")) for e in extensions)
    hello = struct.pack("!H", legacy_version) + bytes(32) + b"\x20" + bytes(32) + vec16(u16s(ciphers)) + b"\x01\x00"
    hello += vec16(exts)
    hs = b"\x01" + len(hello).to_bytes(3, "big") + hello
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def http_request(method: str, path: str, headers: list[tuple[str, str]], version: str = "HTTP/1.1") -> bytes:
    head = f"{method} {path} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    return (head + "\r\n").encode()


# --------------------------------------------------------------------------- writers


def write_pcap(
    path: str | Path,
    packets: Iterable[Packet],
    *,
    linktype: int = 1,
    nanos: bool = False,
    big_endian: bool = False,
    snaplen: int = 65535,
) -> int:
    """Classic pcap, streamed; returns the packet count."""
    e = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    scale = 1_000_000_000 if nanos else 1_000_000
    rec = struct.Struct(e + "IIII")
    n = 0
    with open(path, "wb") as fh:
        fh.write(struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        buf: list[bytes] = []
        for ts, data, wire in packets:
            sec = int(ts)
            frac = round((ts - sec) * scale)
            buf.append(rec.pack(sec, frac, len(data), wire))
            buf.append(data)
            n += 1
            if len(buf) > 20000:
                fh.write(b"".join(buf))
                buf.clear()
        fh.write(b"".join(buf))
    return n


def _opt(code: int, value: bytes, e: str) -> bytes:
    return struct.pack(e + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _block(btype: int, body: bytes, e: str) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def pcapng_bytes(
    interfaces: list[tuple[int, int | None]],
    packets: Iterable[tuple[int, float, bytes, int, str]],
    *,
    big_endian: bool = False,
) -> bytes:
    """A pcapng section: interfaces are (linktype, tsresol byte or None); packets are
    (interface, ts, data, wire length, block kind "epb" | "spb" | "opb")."""
    e = ">" if big_endian else "<"
    out = [_block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), e)]
    res: list[int] = []
    for lt, tsresol in interfaces:
        opts = b""
        if tsresol is not None:
            opts = _opt(9, bytes([tsresol]), e) + _opt(0, b"", e)
        out.append(_block(1, struct.pack(e + "HHI", lt, 0, 0) + opts, e))
        r = 6 if tsresol is None else tsresol
        res.append(2 ** (r & 0x7F) if r & 0x80 else 10**r)
    for iface, ts, data, wire, kind in packets:
        ticks = round(ts * res[iface])
        if kind == "spb":
            out.append(_block(3, struct.pack(e + "I", wire) + data, e))
        elif kind == "opb":
            body = struct.pack(e + "HHIIII", iface, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data), wire) + data
            out.append(_block(2, body, e))
        else:
            body = struct.pack(e + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), wire) + data
            out.append(_block(6, body, e))
    return b"".join(out)


# --------------------------------------------------------------------------- scenarios

T0 = 1_700_000_000.0
VICTIM = "10.10.10.10"


def rand_ip(rng: random.Random) -> str:
    return f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def syn_flood(n: int, *, rng: random.Random, t0: float = T0, pps: float = 20000) -> Iterator[Packet]:
    for i in range(n):
        f = eth(ipv4(rand_ip(rng), VICTIM, 6, tcp(rng.randint(1024, 65535), 80, SYN), ttl=rng.randint(30, 250)))
        yield t0 + i / pps, f, len(f)


def reflection(
    n: int, sport: int, size: int, *, rng: random.Random, reflectors: int = 50, t0: float = T0, pps: float = 5000
) -> Iterator[Packet]:
    """Amplified UDP responses from a pool of reflectors at the victim."""
    pool = [rand_ip(rng) for _ in range(reflectors)]
    body = bytes(size)
    for i in range(n):
        f = eth(ipv4(pool[i % reflectors], VICTIM, 17, udp(sport, rng.randint(1024, 65535), body), ttl=52))
        yield t0 + i / pps, f, len(f)


def tls_session(n: int, *, rng: random.Random, t0: float = T0, rate: float = 200) -> Iterator[Packet]:
    """A few browsers talking HTTPS to the customer: handshakes then mixed-size data."""
    clients = [f"192.0.2.{i}" for i in range(1, 30)]
    for i in range(n):
        c = clients[i % len(clients)]
        port = 40000 + i % len(clients)
        if i % 2:
            f = eth(ipv4(c, VICTIM, 6, tcp(port, 443, ACK | PSH, bytes(rng.choice((0, 100, 517)))), ttl=64))
        else:
            f = eth(ipv4(VICTIM, c, 6, tcp(443, port, ACK | PSH, bytes(rng.choice((0, 1200, 1448)))), ttl=58))
        yield t0 + i / rate, f, len(f)


def merge(*streams: Iterable[Packet]) -> list[Packet]:
    return sorted((p for s in streams for p in s), key=lambda p: p[0])


def special_cases() -> list[Packet]:
    """One of each awkward shape, in order, each with a known decode (see test_pcap)."""
    t = T0
    p6 = ipv6("2001:db8::1", "2001:db8::2", 17, udp(5353, 53, b"q"), ext=[(0, b""), (60, b"")])
    frag1 = ipv4("198.51.100.7", VICTIM, 17, udp(53, 4444, bytes(64))[:48], ident=7, mf=True)
    frag2 = ipv4("198.51.100.7", VICTIM, 17, bytes(40), ident=7, frag=6)
    v6frag = ipv6("2001:db8::9", "2001:db8::2", 17, bytes(16), ext=[(44, struct.pack("!HI", 2 << 3, 9))])
    frames = [
        eth(ipv4("192.0.2.1", VICTIM, 6, tcp(1234, 80, SYN))),
        eth(ipv4("192.0.2.2", VICTIM, 6, tcp(1234, 80, SYN | ACK)), vlans=[(0x88A8, 10), (0x8100, 20)]),
        eth(p6, 0x86DD),
        eth(frag1),
        eth(frag2),
        eth(v6frag, 0x86DD),
        eth(ipv4("192.0.2.3", VICTIM, 1, icmp(8))),
        eth(ipv6("2001:db8::3", "2001:db8::2", 58, icmp(128)), 0x86DD),
        eth(b"\0" * 28, 0x0806),
    ]
    return [(t + i * 0.5, f, len(f)) for i, f in enumerate(frames)]


def write_mixed_capture(path: str | Path, packets: int, *, seed: int = 1) -> int:
    """The bench capture: SYN flood, DNS/NTP/memcached reflection and normal TLS,
    interleaved as on the wire (≈ 475 bytes per record, so 2 M packets ≈ 950 MB)."""
    rng = random.Random(seed)
    # Templates patched per packet keep generation at a few seconds per million.
    tmpl: dict[str, bytes] = {
        "syn": eth(ipv4("0.0.0.0", VICTIM, 6, tcp(0, 80, SYN))),
        "dns": eth(ipv4("0.0.0.0", VICTIM, 17, udp(53, 0, bytes(1230)))),
        "ntp": eth(ipv4("0.0.0.0", VICTIM, 17, udp(123, 0, b"\x17" + bytes(439)))),
        "mem": eth(ipv4("0.0.0.0", VICTIM, 17, udp(11211, 0, bytes(1400)))),
        "tls_c": eth(ipv4("0.0.0.0", VICTIM, 6, tcp(0, 443, ACK | PSH, bytes(120)))),
        "tls_s": eth(ipv4(VICTIM, "0.0.0.0", 6, tcp(443, 0, ACK | PSH, bytes(1200)))),
    }
    mix = ["syn"] * 45 + ["dns"] * 15 + ["ntp"] * 10 + ["mem"] * 10 + ["tls_c"] * 10 + ["tls_s"] * 10
    reflectors = [struct.pack("!I", rng.getrandbits(32) | 0x01000000) for _ in range(3000)]
    clients = [ip4(f"192.0.2.{i}") for i in range(1, 200)]
    rec = struct.Struct("<IIII")
    n = 0
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        out: list[bytes] = []
        for i in range(packets):
            kind = mix[rng.getrandbits(7) % 100]
            f = tmpl[kind]
            if kind == "syn":
                addr = struct.pack("!I", rng.getrandbits(32))
                f = f[:26] + addr + f[30:34] + struct.pack("!H", 1024 + (i & 0xEFFF)) + f[36:]
            elif kind in ("dns", "ntp", "mem"):
                f = f[:26] + reflectors[i % 3000] + f[30:36] + struct.pack("!H", 1024 + (i & 0xEFFF)) + f[38:]
            elif kind == "tls_c":
                f = f[:26] + clients[i % 199] + f[30:34] + struct.pack("!H", 40000 + i % 199) + f[36:]
            else:
                f = f[:30] + clients[i % 199] + f[34:36] + struct.pack("!H", 40000 + i % 199) + f[38:]
            usec = (i * 7) % 1_000_000
            out.append(rec.pack(1_700_000_000 + i // 150_000, usec, len(f), len(f)))
            out.append(f)
            n += 1
            if len(out) >= 40000:
                fh.write(b"".join(out))
                out.clear()
        fh.write(b"".join(out))
    return n


def write_spoofed_syn_capture(path: str | Path, packets: int, *, seed: int = 1) -> int:
    """A SYN flood from random (spoofed) IPv4 sources, 70 bytes per record: the worst
    case for per-address tallies (almost every packet has a new source)."""
    import numpy as np

    frame = np.frombuffer(eth(ipv4("0.0.0.0", VICTIM, 6, tcp(0, 80, SYN))), np.uint8)
    size = 16 + frame.size
    rng = np.random.default_rng(seed)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for start in range(0, packets, 1_000_000):
            m = min(1_000_000, packets - start)
            i = np.arange(start, start + m, dtype=np.int64)
            head = np.empty((m, 4), "<u4")
            head[:, 0], head[:, 1] = 1_700_000_000 + i // 100_000, (i % 100_000) * 10
            head[:, 2] = head[:, 3] = frame.size
            rec = np.empty((m, size), np.uint8)
            rec[:, :16] = head.view(np.uint8).reshape(m, 16)
            rec[:, 16:] = frame
            rec[:, 16 + 26 : 16 + 30] = (
                rng.integers(0, 2**32, m, dtype=np.uint64).astype(">u4").view(np.uint8).reshape(m, 4)
            )
            fh.write(rec.tobytes())
    return packets


# --------------------------------------------------------------------------- HTTP logs

_COMBINED = re.compile(
    r'^(?P<ip>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<method>\S+) (?P<uri>\S+) (?P<proto>[^"]+)" '
    r'(?P<status>\d{3}) \S+ "(?P<ref>[^"]*)" "(?P<ua>[^"]*)"'
)
_COUNTRIES = ["US", "DE", "FR", "GB", "IN", "BR", "JP", "NL", "CA", "RU"]
_ASNS = [7922, 3320, 3215, 2856, 9829, 28573, 2516, 1136, 812, 12389]
_JA3_BROWSER = {
    "chrome": "cd08e31494f9531f560d64c695473da9",
    "firefox": "b32309a26951912be7dba376398abc3b",
    "safari": "773906b0efdefa24a7f2b8eb6985bf37",
    "other": "4d7a28d6f2263ed61de88ca66eb011e3",
}
BOT_JA3 = "3b5074b1b5d032e5620f69f9f700ff0e"
BOT_JA4 = "t13d1516h2_8daaf6152771_02713d6af862"


def apache_lines(path: str | Path) -> list[str]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        return [line.rstrip("\n") for line in fh if line.strip()]


def _family(ua: str) -> str:
    u = ua.lower()
    if "firefox" in u:
        return "firefox"
    if "chrome" in u:
        return "chrome"
    if "safari" in u:
        return "safari"
    return "other"


def _geo(ip: str) -> tuple[int, str]:
    h = int(hashlib.blake2b(ip.encode(), digest_size=2).hexdigest(), 16)
    return _ASNS[h % 10], _COUNTRIES[(h // 10) % 10]


def _browser_headers(fam: str, ua: str, referer: str, cookie: str) -> dict[str, str]:
    h: dict[str, str] = {"host": "semicomplete.com"}
    if fam == "firefox":
        h |= {"user-agent": ua, "accept": "text/html,*/*;q=0.8", "accept-language": "en-US,en;q=0.5"}
        h |= {"accept-encoding": "gzip, deflate, br"}
        if referer:
            h["referer"] = referer
        h["connection"] = "keep-alive"
    elif fam in ("chrome", "safari"):
        h |= {"connection": "keep-alive", "user-agent": ua, "accept": "text/html,*/*;q=0.8"}
        if referer:
            h["referer"] = referer
        h |= {"accept-encoding": "gzip, deflate, br", "accept-language": "en-US,en;q=0.9"}
    else:
        h |= {"user-agent": ua, "accept": "*/*"}
        if referer:
            h["referer"] = referer
    if cookie:
        h["cookie"] = cookie
    return h


def logpush_record(
    *,
    ts: dt.datetime,
    ip: str,
    method: str,
    uri: str,
    proto: str,
    status: int,
    ua: str,
    headers: dict[str, str],
    cookies: dict[str, str],
    ja3: str,
    ja4: str,
    bot_score: int,
) -> dict:
    path, _, query = uri.partition("?")
    asn, country = _geo(ip)
    return {
        "ClientIP": ip,
        "ClientASN": asn,
        "ClientCountry": country.lower(),
        "ClientRequestHost": "semicomplete.com",
        "ClientRequestMethod": method,
        "ClientRequestPath": path,
        "ClientRequestURI": uri,
        "ClientRequestProtocol": proto,
        "ClientRequestUserAgent": ua,
        "EdgeResponseStatus": status,
        "EdgeStartTimestamp": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "RequestHeaders": headers,
        "Cookies": cookies,
        "JA3Hash": ja3,
        "JA4": ja4,
        "BotScore": bot_score,
        "ClientRequestBytes": 400 + len(uri),
        "EdgeColoCode": "FRA",
    }


def baseline_records(lines: list[str], *, seed: int = 7) -> list[dict]:
    """The real Apache log as Logpush records, with browser-like headers, cookies and JA3."""
    rng = random.Random(seed)
    out = []
    for line in lines:
        m = _COMBINED.match(line)
        if not m:
            continue
        ua = m["ua"]
        fam = _family(ua)
        ts = dt.datetime.strptime(m["time"], "%d/%b/%Y:%H:%M:%S %z")
        cookies = {"_ga": f"GA1.2.{rng.getrandbits(30)}"} if fam != "other" and rng.random() < 0.8 else {}
        if cookies and rng.random() < 0.5:
            cookies["sessionid"] = f"{rng.getrandbits(64):x}"
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        ref = "" if m["ref"] == "-" else m["ref"]
        headers = _browser_headers(fam, ua, ref, cookie)
        method, uri = m["method"], m["uri"]
        if fam != "other" and rng.random() < 0.015:
            method, uri = "POST", "/login"  # real users log in too: a path-only rule has collateral
        out.append(
            logpush_record(
                ts=ts,
                ip=m["ip"],
                method=method,
                uri=uri,
                proto=m["proto"],
                status=int(m["status"]),
                ua=ua,
                headers=headers,
                cookies=cookies,
                ja3=_JA3_BROWSER[fam],
                ja4="",
                bot_score=rng.randint(1, 29) if fam == "other" else rng.randint(60, 99),
            )
        )
    return out


def attack_records(lines: list[str], n: int = 3000, *, seed: int = 11) -> list[dict]:
    """A credential-stuffing bot built from the baseline: it borrows real user agents and
    client IPs, but has its own header order, no cookies, one JA3, and POSTs /login."""
    rng = random.Random(seed)
    uas = []
    ips = []
    for line in lines[:2000]:
        m = _COMBINED.match(line)
        if m:
            uas.append(m["ua"])
            ips.append(m["ip"])
    start = dt.datetime(2015, 5, 18, 3, 0, tzinfo=dt.UTC)
    out = []
    for i in range(n):
        ua = rng.choice(uas)
        headers = {
            "host": "semicomplete.com",
            "user-agent": ua,
            "content-type": "application/x-www-form-urlencoded",
            "accept": "*/*",
            "content-length": "41",
        }
        # A sliver of the bot's requests hit another path: coverage must be honest.
        uri = "/login" if rng.random() < 0.98 else "/login?next=%2Fadmin"
        out.append(
            logpush_record(
                ts=start + dt.timedelta(seconds=i / 50),
                ip=rng.choice(ips),
                method="POST",
                uri=uri,
                proto="HTTP/1.1",
                status=rng.choice((401, 401, 401, 200)),
                ua=ua,
                headers=headers,
                cookies={},
                ja3=BOT_JA3,
                ja4=BOT_JA4,
                bot_score=rng.randint(1, 15),
            )
        )
    return out


def write_jsonl(path: str | Path, records: Iterable[dict]) -> int:
    n = 0
    with open(path, "wb") as fh:
        for r in records:
            fh.write(orjson.dumps(r) + b"\n")
            n += 1
    return n


def write_logpush_bench(
    path: str | Path, lines: int, apache_log: str | Path, *, seed: int = 3, bot_share: float = 0.2
) -> int:
    """1 M-line bench file: the baseline records recycled with a bot mixed in (20 %; none for a baseline)."""
    src = apache_lines(apache_log)
    base = [orjson.dumps(r) for r in baseline_records(src, seed=seed)]
    bot = [orjson.dumps(r) for r in attack_records(src, 2000, seed=seed)]
    rng = random.Random(seed)
    n = 0
    with open(path, "wb") as fh:
        out = []
        for _ in range(lines):
            out.append(bot[rng.randrange(len(bot))] if rng.random() < bot_share else base[rng.randrange(len(base))])
            n += 1
            if len(out) >= 50000:
                fh.write(b"\n".join(out) + b"\n")
                out.clear()
        if out:
            fh.write(b"\n".join(out) + b"\n")
    return n
