"""Fast PCAP / PCAPNG reader: turns a capture into columns the engineer can filter and count.

Why it is built this way: a support engineer drops a multi-gigabyte capture of an attack
into the console and wants the summary in seconds, not the minutes tshark needs. Python
only steps from one record header to the next (the one part that is inherently
sequential); every header field is then pulled out for a whole batch of packets at once
with numpy fancy indexing on unaligned, big-endian views of the memory-mapped file.

Column names are the rule-language field names (``ip.src``, ``tcp.flags``, ...) so the
same table can be fed to the rule simulator in ``mitigations/rules``.

Conventions (they match what tshark shows, which the tests check):

* packet numbers in errors are 1-based, like Wireshark's frame numbers;
* ``ip.*`` describe the outermost IP header (an ICMP error quoting an inner packet, or a
  tunnel, is counted once, by its outer header);
* ``ip.proto`` is the upper-layer protocol: for IPv6 the next header after the
  extension headers (hop-by-hop, routing, fragment, destination options, AH);
* a non-first fragment has no L4 ports (``ip.frag`` is true, ports are null); a first
  fragment keeps its ports because its L4 header is really there;
* ``ip.len`` is the IPv4 total length, or 40 + payload length for IPv6.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .l7 import columns as l7_columns
from .l7 import select_payloads

if TYPE_CHECKING:
    import pyarrow as pa

# pyarrow is imported where a table is built: the summary path never needs it, and its
# import is a good part of the start-up of a ``summarize_pcap`` process.

__all__ = [
    "PcapError",
    "PcapResult",
    "PacketBatch",
    "PcapReader",
    "read_pcap",
    "iter_batches",
    "LINKTYPE_NAMES",
]

LINKTYPE_ETHERNET = 1
LINKTYPE_NULL = 0
LINKTYPE_LOOP = 108
LINKTYPE_RAW = 101
LINKTYPE_RAW_BSD12 = 12  # DLT_RAW on most BSDs/Linux writes 12 or 14 for raw IP
LINKTYPE_RAW_BSD14 = 14
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276

LINKTYPE_NAMES = {
    LINKTYPE_NULL: "null",
    LINKTYPE_ETHERNET: "ethernet",
    LINKTYPE_RAW_BSD12: "raw",
    LINKTYPE_RAW_BSD14: "raw",
    LINKTYPE_RAW: "raw",
    LINKTYPE_LOOP: "loop",
    LINKTYPE_LINUX_SLL: "linux_sll",
    LINKTYPE_IPV4: "ipv4",
    LINKTYPE_IPV6: "ipv6",
    LINKTYPE_LINUX_SLL2: "linux_sll2",
}
_RAW_LINKTYPES = (LINKTYPE_RAW, LINKTYPE_RAW_BSD12, LINKTYPE_RAW_BSD14, LINKTYPE_IPV4, LINKTYPE_IPV6)

# libpcap and wiretap refuse records above 256 KiB whatever the header says; a larger
# caplen is a corrupt record, not a jumbo frame.
MAX_RECORD = 262_144
DEFAULT_BATCH = 32_768  # small enough that a batch's headers stay in CPU cache between gathers
_RELEASE_EVERY = 64 << 20  # hand decoded pages back to the kernel every 64 MB
_VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)
_IPV6_EXT = (0, 43, 60)  # hop-by-hop, routing, destination options: (len+1)*8 bytes
_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"


class PcapError(ValueError):
    """The file is not a packet capture at all (no pcap or pcapng magic, empty, unreadable)."""


@dataclass
class PacketBatch:
    """Decoded header fields of up to one batch of packets, as numpy arrays.

    Missing values use sentinels so that batches stay plain numpy: ``-1`` for absent
    ints, ``ip_version == 0`` for non-IP. ``to_table()`` turns sentinels into nulls.
    """

    number: np.ndarray  # int64, 1-based packet number in the file
    ts: np.ndarray  # float64 epoch seconds
    wirelen: np.ndarray  # int64
    caplen: np.ndarray  # int64
    linktype: np.ndarray  # int32
    ip_version: np.ndarray  # int8: 0, 4 or 6
    src4: np.ndarray  # uint32 (0 unless IPv4)
    dst4: np.ndarray
    src6: np.ndarray  # (n, 2) uint64 hi/lo (0 unless IPv6)
    dst6: np.ndarray
    proto: np.ndarray  # int16, -1 non-IP
    ip_len: np.ndarray  # int32, -1 non-IP
    ttl: np.ndarray  # int16, -1 non-IP
    frag: np.ndarray  # bool: any fragment (first, middle or last)
    frag_nonfirst: np.ndarray  # bool: offset > 0, L4 header absent
    sport: np.ndarray  # int32, -1 when not TCP/UDP or not captured
    dport: np.ndarray
    tcp_flags: np.ndarray  # int16, -1 when not TCP
    icmp_type: np.ndarray  # int16, -1 when not ICMP/ICMPv6
    udp_payload0: np.ndarray  # int16: first UDP payload byte (NTP mode, DHCP op), -1 absent
    # Tunnels (GRE, IPIP, 6in4, VXLAN, GENEVE): the inner packets decoded as a batch of
    # their own, ``tunnel_index`` their rows in this batch, ``tunnel_kind`` TUNNEL_KINDS codes.
    # The ``ip.*`` fields above stay the outer header's (see the module docstring).
    inner: PacketBatch | None = None
    tunnel_index: np.ndarray | None = None
    tunnel_kind: np.ndarray | None = None
    # HTTP requests and TLS ClientHellos (see ``l7``): their rows and raw bytes, parsed
    # only when the batch becomes a table.
    l7_rows: np.ndarray | None = None
    l7_payloads: list[bytes] | None = None
    tcp_window: np.ndarray | None = None  # int32, -1 when not TCP or not captured (statistics only)
    # Sequence number and segment length (tshark's tcp.seq_raw, tcp.len: from the IP length,
    # so a snaplen cut does not shorten it) for the retransmission check; -1 when not TCP.
    tcp_seq: np.ndarray | None = None  # int64
    tcp_len: np.ndarray | None = None  # int32
    # Application protocol above TCP/UDP for the protocol hierarchy: APP_NAMES codes, 0 none.
    app: np.ndarray | None = None  # int8

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def to_table(self) -> pa.Table:
        """The batch as an Arrow table with rule-language column names."""
        return _batch_to_table(self)


@dataclass
class PcapResult:
    """A whole capture parsed into one table, plus whatever went wrong along the way."""

    table: pa.Table
    errors: list[str] = field(default_factory=list)
    link_types: list[int] = field(default_factory=list)
    format: str = "pcap"


# ---------------------------------------------------------------------------------------
# byte views


class _Views:
    """Unaligned views over one buffer so that ``v.u32be[pos_array]`` gathers in one step."""

    def __init__(self, buf) -> None:
        n = len(buf)
        self.n = n
        self.u8 = np.frombuffer(buf, dtype=np.uint8)

        def view(dt: str, size: int) -> np.ndarray:
            if n < size:
                return np.zeros(0, dtype=dt)
            return np.ndarray((n - size + 1,), dtype=dt, buffer=buf, strides=(1,))

        self.u16be = view(">u2", 2)
        self.u32be = view(">u4", 4)
        self.u64be = view(">u8", 8)
        self.u16le = view("<u2", 2)
        self.u32le = view("<u4", 4)


def _safe(pos: np.ndarray, ok: np.ndarray) -> np.ndarray:
    # Masked-out packets read offset 0 instead of past the end of the buffer.
    return np.where(ok, pos, 0)


# ---------------------------------------------------------------------------------------
# vectorised decoding of link, network and transport headers


def _decode(
    v: _Views,
    number: np.ndarray,
    ts: np.ndarray,
    data: np.ndarray,
    caplen: np.ndarray,
    wirelen: np.ndarray,
    linktype: np.ndarray,
    *,
    depth: int = 0,
) -> PacketBatch:
    n = data.shape[0]
    end = data + caplen  # first byte after the captured data of each packet
    et = np.zeros(n, dtype=np.int64)  # ethertype; 0 = unknown
    l3 = data.copy()

    for lt in np.unique(linktype).tolist():
        m = linktype == lt
        if lt == LINKTYPE_ETHERNET:
            ok = m & (caplen >= 14)
            et[ok] = v.u16be[data[ok] + 12]
            l3[m] = data[m] + 14
        elif lt == LINKTYPE_LINUX_SLL:
            ok = m & (caplen >= 16)
            et[ok] = v.u16be[data[ok] + 14]
            l3[m] = data[m] + 16
        elif lt == LINKTYPE_LINUX_SLL2:
            ok = m & (caplen >= 20)
            et[ok] = v.u16be[data[ok]]
            l3[m] = data[m] + 20
        elif lt in _RAW_LINKTYPES:
            ok = m & (caplen >= 1)
            ver = v.u8[data[ok]] >> 4
            et[ok] = np.where(ver == 4, 0x0800, np.where(ver == 6, 0x86DD, 0))
        elif lt in (LINKTYPE_NULL, LINKTYPE_LOOP):
            # The 4-byte address family is in host order for NULL, network order for LOOP.
            ok = m & (caplen >= 4)
            fam = (v.u32be if lt == LINKTYPE_LOOP else v.u32le)[data[ok]].astype(np.int64)
            if lt == LINKTYPE_NULL:
                fam = np.where(fam > 0xFFFF, fam >> 24, fam)
            et[ok] = np.where(fam == 2, 0x0800, np.where(np.isin(fam, (24, 28, 30)), 0x86DD, 0))
            l3[m] = data[m] + 4

    # Stacked 802.1Q / 802.1ad tags: each is 4 bytes, the inner ethertype follows.
    for _ in range(4):
        tagged = np.isin(et, _VLAN_TPIDS)
        if not tagged.any():
            break
        idx = np.nonzero(tagged)[0]
        ok = l3[idx] + 4 <= end[idx]
        et[idx] = np.where(ok, v.u16be[_safe(l3[idx] + 2, ok)], 0)
        l3[idx] += 4

    ip_version = np.zeros(n, dtype=np.int8)
    src4 = np.zeros(n, dtype=np.uint32)
    dst4 = np.zeros(n, dtype=np.uint32)
    src6 = np.zeros((n, 2), dtype=np.uint64)
    dst6 = np.zeros((n, 2), dtype=np.uint64)
    proto = np.full(n, -1, dtype=np.int16)
    ip_len = np.full(n, -1, dtype=np.int32)
    ttl = np.full(n, -1, dtype=np.int16)
    frag = np.zeros(n, dtype=bool)
    nonfirst = np.zeros(n, dtype=bool)
    l4 = np.zeros(n, dtype=np.int64)

    # IPv4: three 8/4-byte gathers cover the whole fixed header.
    i4 = np.nonzero((et == 0x0800) & (l3 + 20 <= end))[0]
    if i4.size:
        p = l3[i4]
        w0 = v.u64be[p]
        good = (w0 >> 60) == 4
        i4, p, w0 = i4[good], p[good], w0[good]
        w1 = v.u64be[p + 8]
        ihl = ((w0 >> 56) & 0xF).astype(np.int64) * 4
        ff = (w0 & 0xFFFF).astype(np.int64)
        off = ff & 0x1FFF
        ip_version[i4] = 4
        ip_len[i4] = (w0 >> 32) & 0xFFFF
        ttl[i4] = (w1 >> 56).astype(np.int16)
        proto[i4] = ((w1 >> 48) & 0xFF).astype(np.int16)
        src4[i4] = (w1 & 0xFFFFFFFF).astype(np.uint32)
        dst4[i4] = v.u32be[p + 16]
        frag[i4] = (off > 0) | ((ff & 0x2000) != 0)
        nonfirst[i4] = off > 0
        l4[i4] = np.where(ihl >= 20, p + ihl, -1)

    # IPv6 with its extension-header chain.
    i6 = np.nonzero((et == 0x86DD) & (l3 + 40 <= end))[0]
    if i6.size:
        p = l3[i6]
        w0 = v.u64be[p]
        good = (w0 >> 60) == 6
        i6, p, w0 = i6[good], p[good], w0[good]
        ip_version[i6] = 6
        ip_len[i6] = ((w0 >> 16) & 0xFFFF).astype(np.int32) + 40
        ttl[i6] = (w0 & 0xFF).astype(np.int16)
        src6[i6, 0] = v.u64be[p + 8]
        src6[i6, 1] = v.u64be[p + 16]
        dst6[i6, 0] = v.u64be[p + 24]
        dst6[i6, 1] = v.u64be[p + 32]
        nh = ((w0 >> 8) & 0xFF).astype(np.int64)
        cur = p + 40
        for _ in range(8):
            ext = np.isin(nh, (*_IPV6_EXT, 44, 51)) & (cur + 8 <= end[i6])
            if not ext.any():
                break
            e = np.nonzero(ext)[0]
            c = cur[e]
            kind = nh[e]
            nxt = v.u8[c].astype(np.int64)
            hl = v.u8[c + 1].astype(np.int64)
            isfrag = kind == 44
            if isfrag.any():
                fo = v.u16be[c[isfrag] + 2].astype(np.int64)
                fi = i6[e[isfrag]]
                frag[fi] = True
                nonfirst[fi] = (fo >> 3) > 0
            size = np.where(isfrag, 8, np.where(kind == 51, (hl + 2) * 4, (hl + 1) * 8))
            nh[e] = nxt
            cur[e] = c + size
        # A chain we could not finish (still an ext header) has no upper layer we know.
        proto[i6] = nh.astype(np.int16)
        l4[i6] = cur

    # Transport: one 4-byte gather gives both ports (or ICMP type/code).
    has_l4 = (ip_version > 0) & ~nonfirst & (l4 > 0)
    sport = np.full(n, -1, dtype=np.int32)
    dport = np.full(n, -1, dtype=np.int32)
    tcp_flags = np.full(n, -1, dtype=np.int16)
    icmp_type = np.full(n, -1, dtype=np.int16)
    udp_payload0 = np.full(n, -1, dtype=np.int16)

    tu = np.nonzero(has_l4 & ((proto == 6) | (proto == 17)) & (l4 + 4 <= end))[0]
    if tu.size:
        w = v.u32be[l4[tu]]
        sport[tu] = (w >> 16).astype(np.int32)
        dport[tu] = (w & 0xFFFF).astype(np.int32)
    t = np.nonzero(has_l4 & (proto == 6) & (l4 + 14 <= end))[0]
    if t.size:
        tcp_flags[t] = (v.u16be[l4[t] + 12] & 0x0FFF).astype(np.int16)
    tcp_window = np.full(n, -1, dtype=np.int32)
    tw = t[l4[t] + 16 <= end[t]] if t.size else t
    if tw.size:
        tcp_window[tw] = v.u16be[l4[tw] + 14]
    tcp_seq = np.full(n, -1, dtype=np.int64)
    tcp_len = np.full(n, -1, dtype=np.int32)
    lt = l4[t]
    tpay = lt + ((v.u8[lt + 12] >> 4).astype(np.int64) << 2)  # TCP payload offset
    tip_end = l3[t] + ip_len[t]
    tpend = np.minimum(end[t], tip_end)  # captured end of the payload
    if t.size:
        tcp_seq[t] = v.u32be[lt + 4]
        tcp_len[t] = np.maximum(tip_end - tpay, 0)
    u = np.nonzero(has_l4 & (proto == 17) & (l4 + 9 <= end))[0]
    if u.size:
        udp_payload0[u] = v.u8[l4[u] + 8]
    ic = np.nonzero(has_l4 & (((proto == 1) & (ip_version == 4)) | (proto == 58)) & (l4 + 1 <= end))[0]
    if ic.size:
        icmp_type[ic] = v.u8[l4[ic]]

    app = _app_classes(v, n, t, tpay, tpend, u, l3, l4, ip_len, sport, dport) if depth == 0 else None
    inner = tunnel_index = tunnel_kind = None
    l7_rows = l7_payloads = None
    if depth == 0 and t.size:
        # TCP segments with payload only; their first bytes decide (see l7.select_payloads).
        lt4, pay, pend = lt, tpay, tpend
        has = np.flatnonzero(pend - pay >= 4)
        if has.size:
            rows = t[has]
            ports = (sport[rows].astype(np.uint64) << np.uint64(16)) | dport[rows].astype(np.uint64)
            flow = _flow_key(src4[rows], dst4[rows], src6[rows], dst6[rows], ports)
            picked = select_payloads(v, rows, pay[has], pend[has], v.u32be[lt4[has] + 4], flow)
            if picked is not None:
                l7_rows, l7_payloads = picked
    if depth == 0:
        tun = has_l4 & (np.isin(proto, (4, 41, 47)) | ((proto == 17) & np.isin(dport, _TUNNEL_UDP_PORTS)))
        if tun.any():
            inner, tunnel_index, tunnel_kind = _tunnels(v, number, ts, wirelen, l4, end, proto, dport, tun)

    return PacketBatch(
        number=number,
        ts=ts,
        wirelen=wirelen,
        caplen=caplen,
        linktype=linktype.astype(np.int32, copy=False),
        ip_version=ip_version,
        src4=src4,
        dst4=dst4,
        src6=src6,
        dst6=dst6,
        proto=proto,
        ip_len=ip_len,
        ttl=ttl,
        frag=frag,
        frag_nonfirst=nonfirst,
        sport=sport,
        dport=dport,
        tcp_flags=tcp_flags,
        icmp_type=icmp_type,
        udp_payload0=udp_payload0,
        inner=inner,
        tunnel_index=tunnel_index,
        tunnel_kind=tunnel_kind,
        l7_rows=l7_rows,
        l7_payloads=l7_payloads,
        tcp_window=tcp_window,
        tcp_seq=tcp_seq,
        tcp_len=tcp_len,
        app=app,
    )


def _flow_key(src4, dst4, src6, dst6, ports) -> np.ndarray:
    # One uint64 per direction of a connection (a hash: l7 also checks sequence numbers).
    z = (src4.astype(np.uint64) << np.uint64(32)) | dst4.astype(np.uint64)
    for col in (src6[:, 0], src6[:, 1], dst6[:, 0], dst6[:, 1], ports):
        z = (z ^ col) * np.uint64(0x9E3779B97F4A7C15)
        z ^= z >> np.uint64(29)
    return z


# Tunnel kinds, as coded in ``PacketBatch.tunnel_kind``.
TUNNEL_KINDS = {1: "ipip", 2: "6in4", 3: "gre", 4: "vxlan", 5: "geneve"}
_TUNNEL_UDP_PORTS = (4789, 6081)

# Protocols above layer 4 named in the protocol hierarchy (tshark's ``io,phs`` names).
APP_NAMES = {1: "dns", 2: "http", 3: "tls", 4: "ntp", 5: "ssdp", 6: "memcache"}
_HTTP_STARTS = np.sort(
    np.array(
        [
            int.from_bytes(m, "big")
            for m in (b"GET ", b"POST", b"HEAD", b"PUT ", b"DELE", b"OPTI", b"PATC", b"CONN", b"TRAC")
        ],
        dtype=np.uint32,
    )
)
_UDP_APP_BY_PORT = np.zeros(65536, np.int8)
_UDP_APP_BY_PORT[[53, 123, 1900, 11211]] = [1, 4, 5, 6]


def _app_classes(v: _Views, n: int, t, tpay, tpend, u, l3, l4, ip_len, sport, dport) -> np.ndarray:  # noqa: ANN001
    """HTTP/TLS from a TCP segment's first payload bytes (a request line or ``HTTP/``, a TLS
    record header); DNS, NTP, SSDP, memcached by UDP port as tshark dissects them, DNS only
    with room for its 12-byte header. A message spread over segments counts in its first."""
    app = np.zeros(n, np.int8)
    ok = np.flatnonzero(tpend - tpay >= 5)
    if ok.size:
        rows, pay = t[ok], tpay[ok]
        w = v.u32be[pay]
        ct = w >> 24
        tls = (ct >= 20) & (ct <= 23) & (((w >> 16) & 0xFF) == 3) & (((w >> 8) & 0xFF) <= 4)
        app[rows[tls]] = 3
        # Only words between "CONN" and "TRAC" can start a request line or "HTTP/".
        c = np.flatnonzero((w >= _HTTP_STARTS[0]) & (w <= _HTTP_STARTS[-1]))
        if c.size:
            wc = w[c]
            http = np.isin(wc, _HTTP_STARTS) | ((wc == 0x48545450) & (v.u8[pay[c] + 4] == 0x2F))  # "HTTP/"
            app[rows[c[http]]] = 2
    if u.size:
        sp, dp = _UDP_APP_BY_PORT[sport[u]], _UDP_APP_BY_PORT[dport[u]]
        code = np.where(sp > 0, sp, dp)
        dns = code == 1
        if dns.any():
            d = u[dns]
            code[dns] = np.where((l3[d] + ip_len[d]) - (l4[d] + 8) >= 12, 1, 0)
        app[u] = code
    return app


def _tunnels(
    v: _Views,
    number: np.ndarray,
    ts: np.ndarray,
    wirelen: np.ndarray,
    l4: np.ndarray,
    end: np.ndarray,
    proto: np.ndarray,
    dport: np.ndarray,
    tun: np.ndarray,
) -> tuple[PacketBatch | None, np.ndarray | None, np.ndarray | None]:
    """The packets inside IPIP (4), 6in4 (41), GRE (47, version 0), VXLAN (UDP 4789) and
    GENEVE (UDP 6081), decoded one level deep as raw IP or Ethernet frames."""
    idx = np.flatnonzero(tun)
    p, e, pr, dp = l4[idx], end[idx], proto[idx], dport[idx]
    off = np.full(idx.size, -1, np.int64)
    lt = np.full(idx.size, LINKTYPE_RAW, np.int32)
    kind = np.zeros(idx.size, np.int8)
    m = pr == 4
    off[m], kind[m] = p[m], 1
    m = pr == 41
    off[m], kind[m] = p[m], 2
    g = np.flatnonzero((pr == 47) & (p + 4 <= e))
    if g.size:
        flags = v.u16be[p[g]].astype(np.int64)
        ptype = v.u16be[p[g] + 2].astype(np.int64)
        # C (checksum + reserved), K (key) and S (sequence) each add 4 bytes.
        hl = 4 + 4 * ((flags >> 15) & 1) + 4 * ((flags >> 13) & 1) + 4 * ((flags >> 12) & 1)
        ok = ((flags & 7) == 0) & np.isin(ptype, (0x0800, 0x86DD, 0x6558))
        gi = g[ok]
        off[gi], kind[gi] = p[gi] + hl[ok], 3
        lt[gi] = np.where(ptype[ok] == 0x6558, LINKTYPE_ETHERNET, LINKTYPE_RAW)
    x = np.flatnonzero((pr == 17) & (dp == 4789) & (p + 16 <= e))
    off[x], kind[x], lt[x] = p[x] + 16, 4, LINKTYPE_ETHERNET  # UDP 8 + VXLAN 8, then Ethernet
    ge = np.flatnonzero((pr == 17) & (dp == 6081) & (p + 16 <= e))
    if ge.size:
        optlen = (v.u8[p[ge] + 8] & 0x3F).astype(np.int64) * 4
        ptype = v.u16be[p[ge] + 10].astype(np.int64)
        ok = np.isin(ptype, (0x0800, 0x86DD, 0x6558))
        gi = ge[ok]
        off[gi], kind[gi] = p[gi] + 16 + optlen[ok], 5
        lt[gi] = np.where(ptype[ok] == 0x6558, LINKTYPE_ETHERNET, LINKTYPE_RAW)
    good = (off > 0) & (off < e)
    if not good.any():
        return None, None, None
    sel = idx[good]
    inner = _decode(v, number[sel], ts[sel], off[good], e[good] - off[good], wirelen[sel], lt[good], depth=1)
    return inner, sel, kind[good]


# ---------------------------------------------------------------------------------------
# address formatting (only ever done for the rows that are shown or tabled)


def ipv4_strings(addrs: np.ndarray) -> pa.Array:
    """Dotted-quad strings for an array of uint32 addresses, vectorised through Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    a = np.asarray(addrs, dtype=np.uint32)
    octets = [pa.array(((a >> s) & 0xFF).astype(np.uint8)).cast(pa.string()) for s in (24, 16, 8, 0)]
    return pc.binary_join_element_wise(*octets, ".")


def ipv6_string(hi: int, lo: int) -> str:
    """Compressed IPv6 text (RFC 5952, as tshark prints it) from two 64-bit halves."""
    import ipaddress

    return ipaddress.IPv6Address((int(hi) << 64) | int(lo)).compressed


def _addr_column(version: np.ndarray, v4: np.ndarray, v6: np.ndarray) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    is4 = version == 4
    col = ipv4_strings(v4)
    col = pc.if_else(pa.array(is4), col, pa.scalar(None, pa.string()))
    is6 = version == 6
    if is6.any():
        sub = np.ascontiguousarray(v6[is6]).view([("hi", "<u8"), ("lo", "<u8")]).ravel()
        uniq, inv = np.unique(sub, return_inverse=True)
        texts = [ipv6_string(h, lo) for h, lo in zip(uniq["hi"].tolist(), uniq["lo"].tolist(), strict=True)]
        six = pa.array(texts, pa.string()).take(pa.array(inv.ravel()))
        col = pc.replace_with_mask(col, pa.array(is6), six)
    return col


def _nullable(arr: np.ndarray, valid: np.ndarray, typ: pa.DataType) -> pa.Array:
    import pyarrow as pa

    return pa.array(arr, type=typ, mask=~valid)


def _batch_to_table(b: PacketBatch) -> pa.Table:
    import pyarrow as pa

    isip = b.ip_version > 0
    is4 = b.ip_version == 4
    cols = {
        "frame.number": pa.array(b.number, pa.int64()),
        "ts": pa.array(b.ts, pa.float64()),
        "frame.len": pa.array(b.wirelen, pa.int64()),
        "frame.cap_len": pa.array(b.caplen, pa.int64()),
        "ip.version": _nullable(b.ip_version.astype(np.int32), isip, pa.int32()),
        "ip.src": _addr_column(b.ip_version, b.src4, b.src6),
        "ip.dst": _addr_column(b.ip_version, b.dst4, b.dst6),
        "ip.src.v4": _nullable(b.src4, is4, pa.uint32()),
        "ip.dst.v4": _nullable(b.dst4, is4, pa.uint32()),
        "ip.proto": _nullable(b.proto.astype(np.int32), isip, pa.int32()),
        "ip.len": _nullable(b.ip_len, isip, pa.int32()),
        "ip.ttl": _nullable(b.ttl.astype(np.int32), isip, pa.int32()),
        "ip.frag": _nullable(b.frag, isip, pa.bool_()),
    }
    tcp = (b.proto == 6) & (b.sport >= 0)
    udp = (b.proto == 17) & (b.sport >= 0)
    cols["tcp.srcport"] = _nullable(b.sport, tcp, pa.int32())
    cols["tcp.dstport"] = _nullable(b.dport, tcp, pa.int32())
    cols["tcp.flags"] = _nullable(b.tcp_flags.astype(np.int32), b.tcp_flags >= 0, pa.int32())
    cols["udp.srcport"] = _nullable(b.sport, udp, pa.int32())
    cols["udp.dstport"] = _nullable(b.dport, udp, pa.int32())
    cols["icmp.type"] = _nullable(b.icmp_type.astype(np.int32), b.icmp_type >= 0, pa.int32())
    cols.update(l7_columns(len(b), b.l7_rows, b.l7_payloads))
    return pa.table(cols)


def empty_table() -> pa.Table:
    """A zero-row table with the full packet schema."""
    z = np.zeros(0, dtype=np.int64)
    b = PacketBatch(
        number=z,
        ts=np.zeros(0),
        wirelen=z,
        caplen=z,
        linktype=z.astype(np.int32),
        ip_version=np.zeros(0, np.int8),
        src4=np.zeros(0, np.uint32),
        dst4=np.zeros(0, np.uint32),
        src6=np.zeros((0, 2), np.uint64),
        dst6=np.zeros((0, 2), np.uint64),
        proto=np.zeros(0, np.int16),
        ip_len=np.zeros(0, np.int32),
        ttl=np.zeros(0, np.int16),
        frag=np.zeros(0, bool),
        frag_nonfirst=np.zeros(0, bool),
        sport=np.zeros(0, np.int32),
        dport=np.zeros(0, np.int32),
        tcp_flags=np.zeros(0, np.int16),
        icmp_type=np.zeros(0, np.int16),
        udp_payload0=np.zeros(0, np.int16),
    )
    return _batch_to_table(b)


# ---------------------------------------------------------------------------------------
# the readers


@dataclass
class _Iface:
    linktype: int
    snaplen: int
    units_per_s: float = 1e6
    offset_s: float = 0.0


class PcapReader:
    """Streams a capture as :class:`PacketBatch` objects of at most ``batch_packets`` packets.

    The reader's own memory is one batch whatever the file size: the file is
    memory-mapped and the pages of each finished batch are handed back to the kernel.
    What a consumer keeps on top is its own affair (``summarize_pcap`` bounds its
    per-address tallies and peaks at ≈ 430–530 MB RSS per process on 4–5 GB captures). Problems found
    while reading land in ``errors`` (reading stops at a corrupt record, everything
    before it is kept); only a file that is not a capture at all raises
    :class:`PcapError`, already in the constructor.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        batch_packets: int = DEFAULT_BATCH,
        progress: Callable[[int, int], None] | None = None,
        start: int | None = None,
        stop: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.batch_packets = max(1, int(batch_packets))
        self.progress = progress
        self.errors: list[str] = []
        self.link_types: list[int] = []
        try:
            self._fh = open(self.path, "rb")  # noqa: SIM115 - closed in close()/iteration end
        except OSError as exc:
            raise PcapError(f"cannot open {self.path}: {exc.strerror or exc}") from exc
        self.size = os.fstat(self._fh.fileno()).st_size
        head = self._fh.read(24)
        if len(head) < 4:
            self._fh.close()
            raise PcapError(f"{self.path.name}: not a packet capture (file is {self.size} bytes)")
        magic = head[:4]
        if magic in _PCAP_MAGICS:
            self.format = "pcap"
            if len(head) < 24:
                self._fh.close()
                raise PcapError(f"{self.path.name}: pcap file header is truncated ({len(head)} of 24 bytes)")
            self._endian, self._tick = _PCAP_MAGICS[magic]
            _vmaj, _vmin, _tz, _sig, snaplen, network = struct.unpack(self._endian + "HHiIII", head[4:24])
            # The upper bits of the link-type field carry FCS info in newer libpcap files.
            self._linktype = network & 0x0FFFFFFF
            self._snaplen = snaplen
            self.link_types = [self._linktype]
        elif magic == _PCAPNG_SHB:
            self.format = "pcapng"
            self.link_types = []
        else:
            self._fh.close()
            raise PcapError(f"{self.path.name}: not a pcap or pcapng file (magic {magic.hex()})")
        self._mm: mmap.mmap | None = None
        if self.size:
            self._mm = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ)
        self._start = start
        self._stop = stop
        self.packets = 0
        self.end_offset = 0
        # True when, reading up to ``stop``, a record ran past it: ``stop`` was not a
        # record boundary of the chain this reader walked.
        self.overran = False

    # -- public -------------------------------------------------------------------------

    def __iter__(self) -> Iterator[PacketBatch]:
        try:
            if self._mm is None:
                return
            if self.format == "pcap":
                yield from self._iter_pcap()
            else:
                yield from self._iter_pcapng()
        finally:
            self.close()

    def close(self) -> None:
        if self._mm is not None:
            self._mm.close()
            self._mm = None
        self._fh.close()

    # -- classic pcap ---------------------------------------------------------------------

    def record_boundary(self, near: int, *, chain: int = 64) -> int | None:
        """A classic-pcap record offset at or after ``near``, or None if none is found.

        Candidates are the offsets whose 16-byte header is plausible (caplen within the
        snaplen, origlen ≥ caplen, sub-second part below one second, seconds no earlier
        than a day before the first packet's); one is accepted when ``chain`` records
        follow it, each plausible, or the chain ends exactly at the end of the file. A
        chance match inside packet data is very unlikely, but the caller should still
        check that a reader stopping at the offset lands on it exactly (``overran``).
        """
        mm = self._mm
        if self.format != "pcap" or mm is None or self.size < 24 + 16:
            return None
        v = _Views(mm)
        u32 = v.u32le if self._endian == "<" else v.u32be
        size = self.size
        maxcap = max(self._snaplen, MAX_RECORD) if self._snaplen else MAX_RECORD
        sub = 1_000_000_000 if self._tick < 1e-6 else 1_000_000
        first_sec = int(u32[24]) - 86_400  # a day of slack for records slightly out of order
        lo = max(int(near), 24)
        hi = min(lo + 4 * (maxcap + 16), size - 16)
        if hi <= lo:
            return None
        pos = np.arange(lo, hi + 1, dtype=np.int64)
        sec = u32[pos]
        frac = u32[pos + 4]
        cap = u32[pos + 8]
        wire = u32[pos + 12]
        plausible = (sec >= first_sec) & (frac < sub) & (cap <= maxcap) & (wire >= cap)
        unpack = struct.Struct(self._endian + "IIII").unpack_from
        for cand in pos[plausible].tolist():
            off = cand
            ok = True
            for _ in range(chain):
                if off == size:
                    break
                if off + 16 > size:
                    ok = False
                    break
                s, f, c, w = unpack(mm, off)
                if s < first_sec or f >= sub or c > maxcap or w < c or off + 16 + c > size:
                    ok = False
                    break
                off += 16 + c
            if ok:
                return int(cand)
        return None

    def _release(self, lo: int, hi: int) -> None:
        # Give already-decoded pages back so RSS stays at about one batch of file.
        lo -= lo % mmap.PAGESIZE
        hi -= hi % mmap.PAGESIZE
        if hi > lo and hasattr(mmap, "MADV_DONTNEED"):
            with contextlib.suppress(OSError, ValueError):  # best effort only
                self._mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)

    def _iter_pcap(self) -> Iterator[PacketBatch]:
        mm = self._mm
        assert mm is not None
        v = _Views(mm)
        size = len(mm) if self._stop is None else min(self._stop, len(mm))
        le = self._endian == "<"
        u32 = v.u32le if le else v.u32be
        maxcap = max(self._snaplen, MAX_RECORD)
        unpack = struct.Struct(self._endian + "I").unpack_from
        off = 24 if self._start is None else self._start
        number = 0
        lim = size - 16
        released = 0
        while off < size:
            offs: list[int] = []
            ap = offs.append
            # The hot loop: nothing but one unpack and one add per packet.
            for _ in range(self.batch_packets):
                if off > lim:
                    break
                ap(off)
                off += unpack(mm, off + 8)[0] + 16
            if not offs:
                break
            o = np.array(offs, dtype=np.int64)
            cap = u32[o + 8].astype(np.int64)
            error = None
            bad = np.nonzero(cap > maxcap)[0]
            cut = len(o)
            if bad.size:
                cut = int(bad[0])
                error = (
                    f"packet {number + cut + 1} at byte offset {int(o[cut])}: record length "
                    f"{int(cap[cut])} exceeds snaplen {maxcap}"
                )
            elif off > size:
                cut = len(o) - 1
                self.overran = self._stop is not None
                if self._stop is None:
                    error = (
                        f"packet {number + cut + 1} at byte offset {int(o[cut])}: record truncated, needs "
                        f"{int(cap[cut]) + 16} bytes but the file ends after {size - int(o[cut])}"
                    )
            if cut < len(o):
                o, cap = o[:cut], cap[:cut]
                off = size  # stop after this batch
            if o.size:
                sec = u32[o].astype(np.float64)
                frac = u32[o + 4].astype(np.float64)
                wire = u32[o + 12].astype(np.int64)
                ts = sec + frac * self._tick
                nums = np.arange(number + 1, number + 1 + o.size, dtype=np.int64)
                lt = np.full(o.size, self._linktype, dtype=np.int32)
                batch = _decode(v, nums, ts, o + 16, cap, wire, lt)
                number += o.size
                self.packets = number
                yield batch
            if error:
                self.errors.append(error)
                break
            if self.progress:
                self.progress(off - 24, size - 24)
            if off - released >= _RELEASE_EVERY:
                self._release(released, off)
                released = off - off % mmap.PAGESIZE
        self.end_offset = off
        if self._stop is None and 0 < size - off < 16 and not self.errors:
            self.errors.append(
                f"packet {number + 1} at byte offset {off}: record header truncated "
                f"({size - off} of 16 bytes at end of file)"
            )

    # -- pcapng ---------------------------------------------------------------------------

    def _iter_pcapng(self) -> Iterator[PacketBatch]:
        mm = self._mm
        assert mm is not None
        v = _Views(mm)
        size = len(mm)
        off = 0
        number = 0
        endian = "<"
        ifaces: list[_Iface] = []
        all_ifaces: list[_Iface] = []
        released = 0
        while off < size:
            # Gather one batch of packet blocks; non-packet blocks are handled inline.
            pk_off: list[int] = []
            pk_kind: list[int] = []  # 6 EPB, 3 SPB, 2 OPB
            pk_if: list[int] = []  # global interface index base (section) for each packet
            section_base = len(all_ifaces) - len(ifaces)
            hdr = struct.Struct(endian + "II").unpack_from
            error = None
            flush_for_section = False
            while off < size and len(pk_off) < self.batch_packets:
                if off + 12 > size:
                    error = (
                        f"packet {number + len(pk_off) + 1} at byte offset {off}: block header truncated "
                        f"({size - off} bytes at end of file)"
                    )
                    break
                btype, blen = hdr(mm, off)
                if btype == 0x0A0D0D0A:
                    bom = bytes(mm[off + 8 : off + 12])
                    new_endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">" if bom == b"\x1a\x2b\x3c\x4d" else None
                    if new_endian is None:
                        error = f"packet {number + len(pk_off) + 1} at byte offset {off}: bad section byte-order magic"
                        break
                    if pk_off and new_endian != endian:
                        flush_for_section = True  # decode what we have with the old byte order
                        break
                    endian = new_endian
                    hdr = struct.Struct(endian + "II").unpack_from
                    btype, blen = hdr(mm, off)
                    ifaces = []
                    section_base = len(all_ifaces)
                if blen < 12 or blen % 4 or off + blen > size:
                    what = "exceeds the file" if off + blen > size else "is invalid"
                    error = (
                        f"packet {number + len(pk_off) + 1} at byte offset {off}: block length {blen} {what}"
                        f" (block type 0x{btype:08x})"
                    )
                    break
                if btype in (6, 3, 2):
                    if not ifaces:
                        error = (
                            f"packet {number + len(pk_off) + 1} at byte offset {off}: packet block before any "
                            "interface description block"
                        )
                        break
                    pk_off.append(off)
                    pk_kind.append(btype)
                    pk_if.append(section_base)
                elif btype == 1:
                    iface = self._parse_idb(mm, off, blen, endian)
                    ifaces.append(iface)
                    all_ifaces.append(iface)
                    if iface.linktype not in self.link_types:
                        self.link_types.append(iface.linktype)
                off += blen
            batch = None
            if pk_off:
                batch, err2 = self._decode_ng(v, pk_off, pk_kind, pk_if, all_ifaces, endian, number)
                if err2:
                    error = error or err2
            if batch is not None and len(batch):
                number += len(batch)
                self.packets = number
                yield batch
            if error:
                self.errors.append(error)
                break
            if self.progress:
                self.progress(off, size)
            if off - released >= _RELEASE_EVERY:
                self._release(released, off)
                released = off - off % mmap.PAGESIZE
            if not pk_off and not flush_for_section:
                break
        self.end_offset = off

    @staticmethod
    def _parse_idb(mm, off: int, blen: int, endian: str) -> _Iface:
        linktype, _res, snaplen = struct.unpack_from(endian + "HHI", mm, off + 8)
        iface = _Iface(linktype=linktype, snaplen=snaplen)
        p = off + 16
        stop = off + blen - 4
        while p + 4 <= stop:
            code, length = struct.unpack_from(endian + "HH", mm, p)
            if code == 0:
                break
            val = bytes(mm[p + 4 : p + 4 + length])
            if code == 9 and length >= 1:
                r = val[0]
                iface.units_per_s = float(2 ** (r & 0x7F)) if r & 0x80 else float(10**r)
            elif code == 14 and length >= 8:
                iface.offset_s = float(struct.unpack(endian + "q", val[:8])[0])
            p += 4 + length + (-length % 4)
        return iface

    def _decode_ng(
        self,
        v: _Views,
        pk_off: list[int],
        pk_kind: list[int],
        pk_if: list[int],
        ifaces: list[_Iface],
        endian: str,
        number: int,
    ) -> tuple[PacketBatch | None, str | None]:
        o = np.array(pk_off, dtype=np.int64)
        kind = np.array(pk_kind, dtype=np.int8)
        base = np.array(pk_if, dtype=np.int64)
        u32 = v.u32le if endian == "<" else v.u32be
        u16 = v.u16le if endian == "<" else v.u16be
        blen = u32[o + 4].astype(np.int64)
        n = o.size
        data = o + 28
        local_if = u32[o + 8].astype(np.int64)
        opb = kind == 2
        if opb.any():
            local_if[opb] = u16[o[opb] + 8]
        hi = u32[o + 12].astype(np.uint64)
        lo = u32[o + 16].astype(np.uint64)
        cap = u32[o + 20].astype(np.int64)
        wire = u32[o + 24].astype(np.int64)
        spb = kind == 3
        if spb.any():
            local_if[spb] = 0
            data[spb] = o[spb] + 12
            wire[spb] = u32[o[spb] + 8]
            cap[spb] = np.minimum(wire[spb], blen[spb] - 16)
        gif = base + local_if
        error = None
        bad = np.nonzero((gif >= len(ifaces)) | (local_if < 0) | (data + cap > o + blen - 4) | (cap < 0))[0]
        if bad.size:
            k = int(bad[0])
            error = (
                f"packet {number + k + 1} at byte offset {int(o[k])}: record length {int(cap[k])} exceeds its "
                f"block (block length {int(blen[k])}) or names an unknown interface {int(local_if[k])}"
            )
            o, kind, gif, hi, lo, cap, wire, data, spb = (a[:k] for a in (o, kind, gif, hi, lo, cap, wire, data, spb))
            n = k
        if n == 0:
            return None, error
        lt_of = np.array([i.linktype for i in ifaces], dtype=np.int32)
        div = np.array([i.units_per_s for i in ifaces], dtype=np.float64)
        shift = np.array([i.offset_s for i in ifaces], dtype=np.float64)
        ticks = (hi << np.uint64(32)) | lo
        ts = ticks.astype(np.float64) / div[gif] + shift[gif]
        if spb.any():
            # Simple packet blocks carry no timestamp: reuse the previous packet's time.
            ts[spb] = np.nan
            idx = np.where(~spb, np.arange(n), 0)
            np.maximum.accumulate(idx, out=idx)
            ts = ts[idx]
            ts[np.isnan(ts)] = 0.0
        nums = np.arange(number + 1, number + 1 + n, dtype=np.int64)
        return _decode(v, nums, ts, data, cap, wire, lt_of[gif]), error


def iter_batches(
    path: str | os.PathLike[str],
    *,
    batch_packets: int = DEFAULT_BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> PcapReader:
    """A reader to loop over: ``for batch in reader: ...``; then look at ``reader.errors``."""
    return PcapReader(path, batch_packets=batch_packets, progress=progress)


def read_pcap(
    path: str | os.PathLike[str],
    *,
    progress: Callable[[int, int], None] | None = None,
    batch_packets: int = DEFAULT_BATCH,
) -> PcapResult:
    """Parse a whole capture into one table (for drill-down and rule simulation).

    ``progress(done_bytes, total_bytes)`` is called after each batch. A corrupt or
    truncated file does not raise: the packets before the break are in ``table`` and the
    reason is in ``errors``. Raises :class:`PcapError` only for a file that is no capture.
    For big files prefer ``summarize_pcap``, which never holds the whole table.
    """
    import pyarrow as pa

    reader = PcapReader(path, batch_packets=batch_packets, progress=progress)
    tables = [b.to_table() for b in reader]
    table = pa.concat_tables(tables) if tables else empty_table()
    return PcapResult(table=table, errors=list(reader.errors), link_types=list(reader.link_types), format=reader.format)
