"""What a parsed capture says about its victim: direction, per-second vectors, endpoints.

``analyse_capture(columnar, summary, networks)`` reads the packet columns written at
upload (one streaming pass, bounded memory) once the victim is known:

* **Victim.** The customer's prefix assets seen among the capture's top destinations
  (or sources), else the top destination; when the top destinations are many addresses
  of one /24 that together take most of the traffic (carpet bombing), that /24.
* **Direction.** Every packet is *toward* the victim (destination in the victim scope),
  *from* it (source in scope) or *other*. Attack sources are counted toward the victim
  only, so the victim answering a flood is never its top source; each listed endpoint
  shows what it sent and what it received.
* **Vectors from the per-second series.** Each vector's packets toward the victim are
  counted per second; its rate is its **peak** second (a flood of 15 s in a capture of
  two minutes is tested on those 15 s, not on the capture's average). Its *active*
  seconds are those at ≥ 10 % of the peak; its share is its packets (or bytes) over all
  packets toward the victim in those seconds. Thresholds are the ``RATE_*`` constants;
  every vector also needs ``MIN_PACKETS`` packets and ``MIN_SHARE`` share. The victim's
  answers (SYN-ACKs to a SYN flood, ICMP unreachables to a UDP flood) flow *from* it and
  never veto a vector toward it.
"""

from __future__ import annotations

import ipaddress
import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

from .pcap import TUNNEL_KINDS, PacketBatch, ipv6_string
from .summary import AMP_PORTS, PROTO_NAMES, _HyperLogLog, _mix64, _Tally

__all__ = ["analyse_capture", "CaptureAnalyser", "find_victim", "victim_expression", "COLUMNS"]

COLUMNS = [
    "ts",
    "frame.len",
    "ip.version",
    "ip.src",
    "ip.dst",
    "ip.src.v4",
    "ip.dst.v4",
    "ip.proto",
    "ip.len",
    "ip.frag",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.flags",
    "udp.srcport",
    "udp.dstport",
    "icmp.type",
]

MIN_PACKETS = 50
MIN_SHARE = 0.30
ACTIVE = 0.10  # a second at ≥ 10 % of the peak is part of the vector's active window
RATE_SYN = 50.0
RATE_SYNACK = 50.0
RATE_ACK = 1000.0
RATE_RST = 100.0
RATE_UDP = 1000.0
RATE_AMP = 20.0
RATE_DNS_QUERY = 500.0
RATE_HTTP = 100.0  # request-carrying packets per second
RATE_ICMP = 500.0
RATE_FRAG = 50.0
RATE_GRE = 500.0
AMP_MIN_REFLECTORS = 5
RRSIG_MIN_LEN = 1000  # DNS answers this big on average: DNSSEC-signed (RRSIG) or ANY answers
SCAN_PORTS = 100  # distinct destination ports from one source to one address: vertical scan
SCAN_HOSTS = 50  # distinct destination addresses from one source on few ports: horizontal scan
CARPET_MIN_ADDRESSES = 16
CARPET_MAX_TOP = 0.25
# Plain-text web ports only: a TLS record to 443 is no countable request (HTTPS floods
# need the request logs, or the TLS handshakes).
HTTP_PORTS = (80, 8080, 8000)
_BATCH = 65_536
GEO_SOURCES = 1000  # sources behind the country and ASN breakdown
_DISTINCT_EXACT = 100_000  # past it a HyperLogLog: exact sets of millions cost a sort each

# Services grouped by name (ISAKMP has two ports); each gets its own per-second class.
_SERVICES: dict[str, list[int]] = {}
for _port, (_svc, _len) in sorted(AMP_PORTS.items()):
    _SERVICES.setdefault(_svc, []).append(_port)
_SERVICE_MIN_LEN = {svc: AMP_PORTS[ports[0]][1] for svc, ports in _SERVICES.items()}
_SERVICE_TITLES = {
    "dns": "DNS",
    "ntp": "NTP",
    "memcached": "memcached",
    "ssdp": "SSDP",
    "cldap": "CLDAP",
    "snmp": "SNMP",
    "chargen": "CharGen",
    "ws_discovery": "WS-Discovery",
    "netbios": "NetBIOS",
    "portmap": "portmapper",
    "mssql": "MS SQL browser",
    "mdns": "mDNS",
    "isakmp": "ISAKMP",
    "qotd": "QOTD",
}

# Per-second classes, all counted on packets toward the victim unless named *_from.
_BASE_CLASSES = [
    "toward",
    "from",
    "syn",
    "synack",
    "ack",
    "rst",
    "tcp",
    "http_req",
    "http_tcp",
    "udp",
    "dns_query",
    "icmp",
    "frag",
    "gre",
    "syn_from",
    "synack_from",
]
CLASSES = _BASE_CLASSES + [f"amp_{svc}" for svc in _SERVICES]
_K = {name: i for i, name in enumerate(CLASSES)}
# Classes whose distinct sources a vector reports.
_DISTINCT_CLASSES = {
    _K[c] for c in CLASSES if c not in ("toward", "from", "tcp", "http_tcp", "syn_from", "synack_from")
}
_AMP_CLASS = np.full(65536, -1, np.int64)
for _svc, _ports in _SERVICES.items():
    for _p in _ports:
        _AMP_CLASS[_p] = _K[f"amp_{_svc}"]


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# ------------------------------------------------------------------------------ victim


def find_victim(summary: dict, networks: Iterable[Network] = ()) -> dict:
    """The victim scope of a capture: the customer's prefixes it shows, else its top destination.

    Returns ``{"scope": [CIDR, ...], "source": why, "expression": rule text}``; an empty
    scope when the capture has no IP destination at all.
    """
    networks = list(networks)
    seen = []
    for row in summary.get("top_destinations", []) + summary.get("top_sources", []):
        try:
            addr = ipaddress.ip_address(row.get("ip"))
        except (TypeError, ValueError):
            continue
        for net in networks:
            if addr.version == net.version and addr in net and net not in seen:
                seen.append(net)
    if seen:
        scope = [str(n) for n in seen]
        return {"scope": scope, "source": "customer assets", "expression": victim_expression(scope)}
    dests = [d for d in summary.get("top_destinations", []) if d.get("ip")]
    if not dests:
        return {"scope": [], "source": "unknown", "expression": ""}
    top = dests[0]
    total = max(int(summary.get("packets") or 0), 1)
    # Carpet bombing: no one address stands out, but the heaviest ones share a /24.
    try:
        net24 = ipaddress.ip_network(f"{top['ip']}/24", strict=False)
    except ValueError:
        net24 = None
    if net24 is not None and net24.version == 4:
        # Only the top ten destinations are known here: all in one /24, none dominant.
        inside = [d for d in dests if ipaddress.ip_address(d["ip"]) in net24]
        if len(inside) >= 4 and len(inside) == len(dests) and top["packets"] <= CARPET_MAX_TOP * total:
            scope = [str(net24)]
            return {"scope": scope, "source": "top destinations (one /24)", "expression": victim_expression(scope)}
    scope = [str(ipaddress.ip_network(top["ip"]))]
    return {"scope": scope, "source": "top destination", "expression": victim_expression(scope)}


def victim_expression(scope: Iterable[str]) -> str:
    """``ip.dst in {…}``: the clause every candidate signature carries."""
    items = []
    for s in scope:
        net = ipaddress.ip_network(s, strict=False)
        items.append(str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net))
    return f"ip.dst in {{{' '.join(items)}}}" if items else ""


def _scope_mask(v4: np.ndarray, is4: np.ndarray, texts, is6: np.ndarray, nets: list[Network]) -> np.ndarray:
    out = np.zeros(v4.size, bool)
    for net in nets:
        if net.version == 4:
            mask = np.uint32((0xFFFFFFFF << (32 - net.prefixlen)) & 0xFFFFFFFF)
            out |= is4 & ((v4 & mask) == np.uint32(int(net.network_address)))
    six = [n for n in nets if n.version == 6]
    if six and is6.any():
        idx = np.flatnonzero(is6)
        vals = [texts[i] for i in idx.tolist()]
        hit = {}
        for v in set(vals):
            try:
                a = ipaddress.ip_address(v)
            except (TypeError, ValueError):
                hit[v] = False
                continue
            hit[v] = any(a in n for n in six)
        out[idx] = [hit[v] for v in vals]
    return out


# ------------------------------------------------------------------------------ counting


class _FastHLL(_HyperLogLog):
    """The summary's HyperLogLog with a sort-based update (``np.maximum.at`` is slow on big batches)."""

    def add(self, hashes: np.ndarray) -> None:
        if hashes.size == 0:
            return
        idx = (hashes >> np.uint64(64 - self.P)).astype(np.int64)
        rest = (hashes & np.uint64((1 << (64 - self.P)) - 1)).astype(np.float64)
        rank = (64 - self.P + 1 - np.frexp(rest)[1]).astype(np.int64)
        packed = np.sort((idx << 6) | rank)
        last = np.flatnonzero(np.r_[packed[1:] >> 6 != packed[:-1] >> 6, True])
        reg_idx, best = packed[last] >> 6, (packed[last] & 63).astype(np.uint8)
        self.reg[reg_idx] = np.maximum(self.reg[reg_idx], best)


class _Distinct:
    """Distinct uint32 keys: exact up to ``_DISTINCT_EXACT``, then a HyperLogLog (≈ 0.4 %).

    Keys are buffered and reduced a few million at a time, so each is sorted about once.
    """

    def __init__(self) -> None:
        self.keys = np.zeros(0, np.uint32)
        self.pending: list[np.ndarray] = []
        self.n_pending = 0
        self.hll: _FastHLL | None = None

    def add(self, keys: np.ndarray) -> None:
        if keys.size == 0:
            return
        if self.hll is not None:
            self.hll.add(_mix64(keys))
            return
        self.pending.append(keys)
        self.n_pending += keys.size
        if self.n_pending >= max(1 << 20, self.keys.size):
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            keys = np.sort(np.concatenate([self.keys, *self.pending]))  # far faster than np.unique's hashing
            self.keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if keys.size else keys
            self.pending, self.n_pending = [], 0
        if self.hll is None and self.keys.size > _DISTINCT_EXACT:
            self.hll = _FastHLL()
            self.hll.add(_mix64(self.keys))
            self.keys = np.zeros(0, np.uint32)

    def count(self) -> int:
        self._flush()
        return self.hll.count() if self.hll is not None else int(self.keys.size)

    @property
    def estimated(self) -> bool:
        self._flush()
        return self.hll is not None


class _Series:
    """Per-second packets and bytes per class, dense from the first second seen."""

    def __init__(self) -> None:
        self.base: int | None = None
        self.pk = np.zeros((len(CLASSES), 0), np.int64)
        self.by = np.zeros((len(CLASSES), 0), np.int64)

    def _fit(self, lo: int, hi: int) -> None:
        if self.base is None:
            self.base = lo
        if lo < self.base:
            pad = self.base - lo
            z = np.zeros((len(CLASSES), pad), np.int64)
            self.pk, self.by = np.hstack([z, self.pk]), np.hstack([z, self.by])
            self.base = lo
        need = hi - self.base + 1
        if need > self.pk.shape[1]:
            z = np.zeros((len(CLASSES), need - self.pk.shape[1]), np.int64)
            self.pk, self.by = np.hstack([self.pk, z]), np.hstack([self.by, z])

    def add(self, secs: np.ndarray, nbytes: np.ndarray, rows: dict[int, np.ndarray]) -> None:
        """``rows``: per class, the indices of its packets in this batch."""
        if secs.size == 0:
            return
        lo, hi = int(secs.min()), int(secs.max())
        if hi - lo > 7 * 86_400:  # a broken clock: the rest of it counts in the week's last second
            hi = lo + 7 * 86_400
            secs = np.minimum(secs, hi)
        self._fit(lo, hi)
        rel = secs - self.base
        span = hi - self.base + 1
        for k, i in rows.items():
            r = rel[i]
            self.pk[k, :span] += np.bincount(r, minlength=span)
            self.by[k, :span] += np.bincount(r, weights=nbytes[i], minlength=span).astype(np.int64)


def _np(batch, name: str, fill) -> np.ndarray:
    import pyarrow.compute as pc

    return pc.fill_null(batch.column(name), fill).to_numpy(zero_copy_only=False)


def _iter_batches(columnar) -> Iterable:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(columnar, pa.Table):
        yield from columnar.select([c for c in COLUMNS if c in columnar.column_names]).to_batches(_BATCH)
        return
    pf = pq.ParquetFile(str(columnar))
    cols = [c for c in COLUMNS if c in pf.schema_arrow.names]
    yield from pf.iter_batches(batch_size=_BATCH, columns=cols)


class _Analyser:
    def __init__(self, nets: list[Network], scan_sources: list[str]) -> None:
        self.nets = nets
        self.series = _Series()
        self.distinct = {k: _Distinct() for k in range(len(CLASSES))}
        self.proto = {d: np.zeros(257, np.int64) for d in ("toward", "from", "other")}
        self.packets = dict.fromkeys(("toward", "from", "other"), 0)
        self.bytes = dict.fromkeys(("toward", "from", "other"), 0)
        self.flags = np.zeros(4096, np.int64)
        self.dport = {k: np.zeros(65536, np.int64) for k in ("tcp", "udp", "syn", "http_tcp", "dns_query")}
        self.sport_udp = np.zeros(65536, np.int64)
        self.len_sum = np.zeros(len(CLASSES), np.int64)
        self.first = np.full(len(CLASSES), math.inf)
        self.last = np.full(len(CLASSES), -math.inf)
        self.src_toward = _Tally()
        self.dst_from = _Tally()
        self.src6_toward: Counter[str] = Counter()
        self.dst6_from: Counter[str] = Counter()
        self.byte6_toward: Counter[str] = Counter()
        self.byte6_from: Counter[str] = Counter()
        self.victim_rx: Counter[str] = Counter()  # per attacked address: packets, bytes
        self.victim_rx_bytes: Counter[str] = Counter()
        self.victim_tx: Counter[str] = Counter()
        self.victim_tx_bytes: Counter[str] = Counter()
        self.tunnels: Counter[str] = Counter()
        self.tunnel_bytes = 0
        self.tunnel_outer: Counter[tuple[int, int]] = Counter()
        self.inner_proto = np.zeros(257, np.int64)
        self.inner_src = _Tally()
        self.inner_dst = _Tally()
        self.scan_src = {}
        for s in scan_sources:
            try:
                a = ipaddress.ip_address(s)
            except ValueError:
                continue
            if a.version == 4:
                self.scan_src[int(a)] = {"ports": _Distinct(), "hosts": _Distinct(), "dport": Counter(), "n": 0}

    def add(self, batch) -> None:
        """One Arrow record batch of the packet table."""
        if batch.num_rows == 0:
            return
        ver = _np(batch, "ip.version", 0)
        srcs = dsts = None
        if (ver == 6).any():
            srcs, dsts = batch.column("ip.src").to_pylist(), batch.column("ip.dst").to_pylist()
        self._add(
            ts=_np(batch, "ts", 0.0),
            flen=_np(batch, "frame.len", 0).astype(np.int64),
            ver=ver,
            src4=_np(batch, "ip.src.v4", 0).astype(np.uint32),
            dst4=_np(batch, "ip.dst.v4", 0).astype(np.uint32),
            proto=_np(batch, "ip.proto", -1),
            iplen=_np(batch, "ip.len", 0).astype(np.int64),
            frag=_np(batch, "ip.frag", False).astype(bool),
            tdport=_np(batch, "tcp.dstport", -1),
            flags=_np(batch, "tcp.flags", -1),
            usport=_np(batch, "udp.srcport", -1),
            udport=_np(batch, "udp.dstport", -1),
            srcs=srcs,
            dsts=dsts,
        )

    def add_tunnels(self, b: PacketBatch) -> None:
        """Inner packets of GRE/IPIP/6in4/VXLAN/GENEVE, their outer endpoints apart."""
        inner, idx, kind = b.inner, b.tunnel_index, b.tunnel_kind
        if inner is None or idx is None or kind is None or len(inner) == 0:
            return
        wl = inner.wirelen
        for k, c in zip(*np.unique(kind, return_counts=True), strict=True):
            self.tunnels[TUNNEL_KINDS[int(k)]] += int(c)
        self.tunnel_bytes += int(wl.sum())
        self.inner_proto += np.bincount(inner.proto.astype(np.int64) + 1, minlength=257)[:257]
        i4 = inner.ip_version == 4
        self.inner_src.add(inner.src4[i4], wl[i4])
        self.inner_dst.add(inner.dst4[i4], wl[i4])
        o4 = b.ip_version[idx] == 4
        pair = (b.src4[idx].astype(np.uint64) << np.uint64(32)) | b.dst4[idx].astype(np.uint64)
        packed = np.stack([pair[o4], kind[o4].astype(np.uint64)], axis=1)
        if packed.size:
            u, c = np.unique(packed, axis=0, return_counts=True)
            for (pr, k), n in zip(u.tolist(), c.tolist(), strict=True):
                self.tunnel_outer[(pr, k)] += n
            if len(self.tunnel_outer) > 20_000:  # a spoofed outer header: keep the heaviest
                self.tunnel_outer = Counter(dict(self.tunnel_outer.most_common(10_000)))

    def add_packets(self, b: PacketBatch) -> None:
        """One batch straight from the reader (the upload path: no second read of the file)."""
        if len(b) == 0:
            return
        if b.inner is not None:
            self.add_tunnels(b)
        srcs = dsts = None
        is6 = b.ip_version == 6
        if is6.any():
            srcs, dsts = [None] * len(b), [None] * len(b)
            for i in np.flatnonzero(is6).tolist():
                srcs[i] = ipv6_string(*b.src6[i])
                dsts[i] = ipv6_string(*b.dst6[i])
        tcp = (b.proto == 6) & (b.sport >= 0)
        udp = (b.proto == 17) & (b.sport >= 0)
        self._add(
            ts=b.ts,
            flen=b.wirelen.astype(np.int64, copy=False),
            ver=b.ip_version,
            src4=b.src4,
            dst4=b.dst4,
            proto=b.proto,
            iplen=np.maximum(b.ip_len, 0).astype(np.int64),
            frag=b.frag,
            tdport=np.where(tcp, b.dport, -1),
            flags=b.tcp_flags,
            usport=np.where(udp, b.sport, -1),
            udport=np.where(udp, b.dport, -1),
            srcs=srcs,
            dsts=dsts,
        )

    def _add(self, *, ts, flen, ver, src4, dst4, proto, iplen, frag, tdport, flags, usport, udport, srcs, dsts) -> None:
        is4, is6 = ver == 4, ver == 6
        toward = _scope_mask(dst4, is4, dsts, is6, self.nets)
        frm = _scope_mask(src4, is4, srcs, is6, self.nets) & ~toward
        other = ~toward & ~frm
        for d, m in (("toward", toward), ("from", frm), ("other", other)):
            c = int(np.count_nonzero(m))
            if c:
                self.packets[d] += c
                self.bytes[d] += int(flen[m].sum())
                self.proto[d] += np.bincount(proto[m].astype(np.int64) + 1, minlength=257)[:257]
        tcp = toward & (proto == 6) & (flags >= 0)
        # A non-first fragment carries no UDP header: it is a fragment, not a UDP packet.
        udp = toward & (proto == 17) & (usport >= 0)
        f = np.where(flags >= 0, flags, 0)
        syn_any = (proto == 6) & (flags >= 0) & ((f & 0x17) == 0x02)
        synack_any = (proto == 6) & (flags >= 0) & ((f & 0x16) == 0x12)
        http_tcp = tcp & np.isin(tdport, HTTP_PORTS)
        masks = {
            _K["toward"]: toward,
            _K["from"]: frm,
            _K["syn"]: toward & syn_any,
            _K["synack"]: toward & synack_any,
            _K["ack"]: tcp & ((f & 0x17) == 0x10) & ((f & 0x08) == 0),
            _K["rst"]: tcp & ((f & 0x04) != 0),
            _K["tcp"]: tcp,
            # A request rides a PSH segment with payload (40 bytes of headers plus options).
            _K["http_req"]: http_tcp & ((f & 0x08) != 0) & (iplen > 64),
            _K["http_tcp"]: http_tcp,
            _K["udp"]: udp,
            _K["dns_query"]: udp & (udport == 53) & (usport != 53),
            _K["icmp"]: toward & ((proto == 1) | (proto == 58)),
            _K["frag"]: toward & frag,
            _K["gre"]: toward & (proto == 47),
            _K["syn_from"]: frm & syn_any,
            _K["synack_from"]: frm & synack_any,
        }
        if udp.any():
            cls = np.where(udp & (usport >= 0), _AMP_CLASS[np.clip(usport, 0, 65535)], -1)
            for k in np.unique(cls[cls >= 0]).tolist():
                masks[k] = cls == k
        secs = np.floor(ts).astype(np.int64)
        # Indices once per class: every later gather touches only the class's own packets.
        rows = {k: i for k, i in ((k, np.flatnonzero(m)) for k, m in masks.items()) if i.size}
        self.series.add(secs, flen, rows)
        for k, i in rows.items():
            if k in _DISTINCT_CLASSES:
                self.distinct[k].add(src4[i][is4[i]])
            self.len_sum[k] += int(iplen[i].sum())
            t = ts[i]
            self.first[k] = min(self.first[k], float(t.min()))
            self.last[k] = max(self.last[k], float(t.max()))
        if tcp.any():
            self.flags += np.bincount(f[tcp].astype(np.int64), minlength=4096)[:4096]
            self.dport["tcp"] += np.bincount(tdport[tcp & (tdport >= 0)], minlength=65536)
            for name in ("syn", "http_tcp"):
                m = masks[_K[name]] & (tdport >= 0)
                if m.any():
                    self.dport[name] += np.bincount(tdport[m], minlength=65536)
        if udp.any():
            m = udp & (udport >= 0)
            self.dport["udp"] += np.bincount(udport[m], minlength=65536)
            self.sport_udp += np.bincount(usport[m], minlength=65536)
            q = masks[_K["dns_query"]]
            if q.any():
                self.dport["dns_query"][53] += int(np.count_nonzero(q))
        t4 = toward & is4
        self.src_toward.add(src4[t4], flen[t4])
        f4 = frm & is4
        self.dst_from.add(dst4[f4], flen[f4])
        self._victim_addrs(dst4[t4], flen[t4], self.victim_rx, self.victim_rx_bytes)
        self._victim_addrs(src4[f4], flen[f4], self.victim_tx, self.victim_tx_bytes)
        if is6.any():
            for i in np.flatnonzero(is6 & toward).tolist():
                self.src6_toward[srcs[i]] += 1
                self.byte6_toward[srcs[i]] += int(flen[i])
                self.victim_rx[dsts[i]] += 1
                self.victim_rx_bytes[dsts[i]] += int(flen[i])
            for i in np.flatnonzero(is6 & frm).tolist():
                self.dst6_from[dsts[i]] += 1
                self.byte6_from[dsts[i]] += int(flen[i])
                self.victim_tx[srcs[i]] += 1
                self.victim_tx_bytes[srcs[i]] += int(flen[i])
        if self.scan_src:
            cand = np.isin(src4, np.array(list(self.scan_src), np.uint32)) & is4
            probe = cand & (syn_any | (proto == 17))
            if probe.any():
                dport = np.where(proto == 6, tdport, udport)
                for s in np.unique(src4[probe]).tolist():
                    m = probe & (src4 == s)
                    slot = self.scan_src[s]
                    slot["n"] += int(np.count_nonzero(m))
                    slot["hosts"].add(np.unique(dst4[m]))
                    ports = dport[m]
                    slot["ports"].add(np.unique(ports[ports >= 0]).astype(np.uint32))
                    u, c = np.unique(ports[ports >= 0], return_counts=True)
                    slot["dport"].update(dict(zip(u.tolist(), c.tolist(), strict=True)))

    @staticmethod
    def _victim_addrs(addrs: np.ndarray, nbytes: np.ndarray, packets: Counter, byts: Counter) -> None:
        if addrs.size == 0:
            return
        if addrs.min() == addrs.max():  # one attacked address (the usual case): no sort
            text = str(ipaddress.IPv4Address(int(addrs[0])))
            packets[text] += int(addrs.size)
            byts[text] += int(nbytes.sum())
            return
        u, inv, c = np.unique(addrs, return_inverse=True, return_counts=True)
        b = np.bincount(inv, weights=nbytes)
        for a, cc, bb in zip(u.tolist(), c.tolist(), b.tolist(), strict=True):
            text = str(ipaddress.IPv4Address(a))
            packets[text] += cc
            byts[text] += int(bb)


# ------------------------------------------------------------------------------ vectors


def _fmt(n: float) -> str:
    return f"{round(n):,}"


def _size(nbytes: float) -> str:
    return f"{round(nbytes):,}-byte"


class _Window:
    """One class's per-second figures: peak, active window, share of the traffic toward the victim."""

    def __init__(self, a: _Analyser, k: int) -> None:
        s = a.series
        self.pk = s.pk[k]
        self.by = s.by[k]
        self.packets = int(self.pk.sum())
        self.bytes = int(self.by.sum())
        peak_i = int(np.argmax(self.pk)) if self.pk.size else 0
        peak = int(self.pk[peak_i]) if self.pk.size else 0
        active = self.pk >= max(1, ACTIVE * peak)
        self.active = active
        idx = np.flatnonzero(active)
        first, last = float(a.first[k]), float(a.last[k])
        span = max(last - first, 0.0) if self.packets else 0.0
        # Under three seconds the buckets are mostly partial: the class's own span is the better clock.
        if span < 3.0 and self.packets:
            self.peak_pps = self.packets / max(span, 0.001)
            self.peak_bps = self.bytes * 8 / max(span, 0.001)
            self.duration = span
        else:
            self.peak_pps = float(peak)
            self.peak_bps = float(self.by.max() * 8) if self.by.size else 0.0
            self.duration = float(idx[-1] - idx[0] + 1) if idx.size else 0.0
        tw_p = s.pk[_K["toward"]][active].sum()
        tw_b = s.by[_K["toward"]][active].sum()
        self.share_packets = float(self.pk[active].sum() / tw_p) if tw_p else 0.0
        self.share_bytes = float(self.by[active].sum() / tw_b) if tw_b else 0.0
        self.share = max(self.share_packets, self.share_bytes)
        self.avg_pps = self.packets / max(span, 0.001) if self.packets else 0.0
        self.start = (s.base + int(idx[0])) if idx.size and s.base is not None else None
        self.end = (s.base + int(idx[-1])) if idx.size and s.base is not None else None
        self.sources = a.distinct[k].count()
        self.sources_estimated = a.distinct[k].estimated
        self.mean_len = a.len_sum[k] / self.packets if self.packets else 0.0

    def passes(self, rate: float) -> bool:
        return self.packets >= MIN_PACKETS and self.share >= MIN_SHARE and self.peak_pps >= rate

    def vector(self, name: str, words: str, *, kind: str = "attack", **extra: Any) -> dict:
        conf = "high" if self.share >= 0.6 and self.peak_pps >= 1000 else "medium"
        evidence = {
            "packets": self.packets,
            "peak_pps": round(self.peak_pps, 1),
            "peak_bps": round(self.peak_bps),
            "average_pps": round(self.avg_pps, 1),
            "duration_s": round(self.duration, 3),
            "share": round(self.share, 4),
            "sources": self.sources,
            **extra,
        }
        if self.sources_estimated:
            evidence["sources_estimated"] = True
        return {
            "name": name,
            "kind": kind,
            "confidence": conf,
            "summary": words,
            "evidence": evidence,
            "start": self.start,
            "end": self.end,
        }


def _top_port(hist: np.ndarray) -> tuple[int, float, int]:
    """(top port, its share, distinct ports) of a port histogram."""
    total = int(hist.sum())
    if total == 0:
        return -1, 0.0, 0
    p = int(np.argmax(hist))
    return p, float(hist[p] / total), int(np.count_nonzero(hist))


def _sources_words(w: _Window, noun: str = "sources") -> str:
    approx = "about " if w.sources_estimated else ""
    return f"{approx}{_fmt(w.sources)} {noun if w.sources != 1 else noun.rstrip('s')}"


def _vectors(a: _Analyser) -> list[dict]:
    vec: list[dict] = []
    if a.packets["toward"] == 0:
        return vec
    W = {name: _Window(a, k) for name, k in _K.items()}
    scans = _scans(a)
    vec += scans
    scan_packets = sum(v["evidence"]["packets"] for v in scans)

    syn, synack_from = W["syn"], W["synack_from"]
    if syn.passes(RATE_SYN) and scan_packets < 0.9 * syn.packets:
        port, pshare, nports = _top_port(a.dport["syn"])
        dest = f"to tcp/{port}" if pshare >= 0.5 else f"to {_fmt(nports)} destination ports"
        answered = f", answered by {_fmt(synack_from.packets)} SYN-ACKs from the victim" if synack_from.packets else ""
        vec.append(
            syn.vector(
                "syn_flood",
                f"SYN flood from {_sources_words(syn)} {dest}{answered}, peak {_fmt(syn.peak_pps)} pps",
                synack_answers=synack_from.packets,
            )
        )
    synack, syn_from = W["synack"], W["syn_from"]
    if synack.passes(RATE_SYNACK) and syn_from.packets < 0.2 * synack.packets and synack.sources >= 10:
        vec.append(
            synack.vector(
                "synack_reflection",
                f"SYN-ACK reflection from {_sources_words(synack, 'reflectors')} the victim never sent SYNs to "
                f"({_fmt(syn_from.packets)} SYNs from it), peak {_fmt(synack.peak_pps)} pps",
            )
        )
    ack, rst = W["ack"], W["rst"]
    if ack.passes(RATE_ACK) and ack.sources >= 50 and syn.packets < 0.01 * ack.packets:
        vec.append(
            ack.vector(
                "ack_flood",
                f"ACK flood from {_sources_words(ack)} with no handshakes, {_size(ack.mean_len)} packets, "
                f"peak {_fmt(ack.peak_pps)} pps",
            )
        )
    if rst.passes(RATE_RST) and rst.sources >= 50 and syn.packets < 0.01 * rst.packets:
        vec.append(rst.vector("rst_flood", f"RST flood from {_sources_words(rst)}, peak {_fmt(rst.peak_pps)} pps"))

    amp_packets = 0
    for svc, ports in _SERVICES.items():
        w = W[f"amp_{svc}"]
        if not (w.passes(RATE_AMP) and w.mean_len >= _SERVICE_MIN_LEN[svc] and w.sources >= AMP_MIN_REFLECTORS):
            continue
        amp_packets += w.packets
        title = _SERVICE_TITLES.get(svc, svc)
        name = f"{svc}_amplification"
        port_words = "/".join(str(p) for p in ports)
        if svc == "dns" and w.mean_len >= RRSIG_MIN_LEN:
            name, title = "dns_rrsig_amplification", "DNS (DNSSEC RRSIG-sized answers)"
        frag_words = ""
        if W["frag"].packets:
            frag_words = f", plus {_fmt(W['frag'].packets)} fragments"
        vec.append(
            w.vector(
                name,
                f"{title} amplification from {_sources_words(w, 'reflectors')}, UDP source port {port_words}, "
                f"{_size(w.mean_len)} packets{frag_words}, peak {_fmt(w.peak_pps)} pps",
                reflectors=w.sources,
                src_ports=ports,
                mean_ip_len=round(w.mean_len, 1),
            )
        )
    dnsq = W["dns_query"]
    if dnsq.passes(RATE_DNS_QUERY):
        vec.append(
            dnsq.vector(
                "dns_query_flood",
                f"DNS query flood from {_sources_words(dnsq)} to UDP port 53, {_size(dnsq.mean_len)} queries, "
                f"peak {_fmt(dnsq.peak_pps)} pps",
            )
        )
    udp = W["udp"]
    explained = amp_packets + (dnsq.packets if any(v["name"] == "dns_query_flood" for v in vec) else 0)
    if udp.passes(RATE_UDP) and explained < 0.5 * udp.packets:
        port, pshare, nports = _top_port(a.dport["udp"])
        if pshare >= 0.5:
            ports_words, mode = f"to fixed port udp/{port}", "fixed"
        else:
            ports_words, mode = f"to random destination ports ({_fmt(nports)} distinct)", "random"
        vec.append(
            udp.vector(
                "udp_flood",
                f"UDP flood from {_sources_words(udp)} {ports_words}, {_size(udp.mean_len)} packets, "
                f"peak {_fmt(udp.peak_pps)} pps",
                ports=mode,
                top_port=port if mode == "fixed" else None,
            )
        )
    http = W["http_req"]
    if http.packets >= MIN_PACKETS and http.peak_pps >= RATE_HTTP and W["http_tcp"].share >= MIN_SHARE:
        port, _, _ = _top_port(a.dport["http_tcp"])
        vec.append(
            http.vector(
                "http_flood",
                f"HTTP flood from {_sources_words(http)} to tcp/{port}, peak {_fmt(http.peak_pps)} requests per "
                "second (one per request-carrying segment)",
            )
        )
    icmp = W["icmp"]
    if icmp.passes(RATE_ICMP):
        vec.append(
            icmp.vector(
                "icmp_flood",
                f"ICMP flood from {_sources_words(icmp)}, {_size(icmp.mean_len)} packets, "
                f"peak {_fmt(icmp.peak_pps)} pps",
            )
        )
    fr = W["frag"]
    if fr.passes(RATE_FRAG) and amp_packets == 0:
        vec.append(
            fr.vector(
                "ip_fragment_flood",
                f"IP fragment flood from {_sources_words(fr)}, peak {_fmt(fr.peak_pps)} pps",
            )
        )
    gre = W["gre"]
    if gre.passes(RATE_GRE):
        vec.append(
            gre.vector(
                "gre_flood",
                f"GRE flood from {_sources_words(gre)}, {_size(gre.mean_len)} packets, peak {_fmt(gre.peak_pps)} pps",
            )
        )
    floods = [v for v in vec if v["kind"] == "attack" and v["name"] not in ("vertical_scan", "horizontal_scan")]
    rx = a.victim_rx
    total_rx = sum(rx.values())
    if floods and len(rx) >= CARPET_MIN_ADDRESSES and total_rx:
        top_addr, top_n = rx.most_common(1)[0]
        if top_n <= CARPET_MAX_TOP * total_rx:
            tw = W["toward"]
            vec.append(
                tw.vector(
                    "carpet_bombing",
                    f"Carpet bombing: the {floods[0]['name'].replace('_', ' ')} is spread over {_fmt(len(rx))} "
                    f"addresses of the victim's prefix, none above {top_n / total_rx:.1%} (top {top_addr})",
                    addresses=len(rx),
                )
            )
    return vec


def _scans(a: _Analyser) -> list[dict]:
    out = []
    for src, slot in a.scan_src.items():
        addr = str(ipaddress.IPv4Address(src))
        hosts, ports = slot["hosts"].count(), slot["ports"].count()
        if slot["n"] < MIN_PACKETS:
            continue
        base = {"packets": slot["n"], "sources": 1, "source": addr}
        if ports >= SCAN_PORTS and hosts <= 3:
            out.append(
                {
                    "name": "vertical_scan",
                    "kind": "attack",
                    "confidence": "medium",
                    "summary": f"Vertical port scan from {addr}: {_fmt(ports)} ports probed on {_fmt(hosts)} "
                    f"address{'es' if hosts != 1 else ''}",
                    "evidence": {**base, "ports": ports, "addresses": hosts},
                }
            )
        elif hosts >= SCAN_HOSTS and len(slot["dport"]) <= 3:
            top = ", ".join(str(p) for p, _ in slot["dport"].most_common(3))
            out.append(
                {
                    "name": "horizontal_scan",
                    "kind": "attack",
                    "confidence": "medium",
                    "summary": f"Horizontal scan from {addr}: port {top} probed on {_fmt(hosts)} addresses",
                    "evidence": {**base, "ports": len(slot["dport"]), "addresses": hosts},
                }
            )
    return out


# ------------------------------------------------------------------------------ the result


def _direction(a: _Analyser, d: str) -> dict:
    protocols: dict[str, int] = {}
    for p in np.flatnonzero(a.proto[d]).tolist():
        name = "non-ip" if p == 0 else PROTO_NAMES.get(p - 1, "other")
        protocols[name] = protocols.get(name, 0) + int(a.proto[d][p])
    return {
        "packets": a.packets[d],
        "bytes": a.bytes[d],
        "protocols": dict(sorted(protocols.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


def _endpoints(a: _Analyser, top: int, victim_addrs: set[str]) -> list[dict]:
    """Top sources toward the victim with what they sent it and what they got back."""
    t = a.src_toward.result()
    rows: list[tuple[int, int, str]] = []
    if t.keys.size:
        order = np.argsort(-t.counts, kind="stable")[: top * 2]
        rows += [
            (int(t.counts[i]), int(t.bytes[i]), str(ipaddress.IPv4Address(int(t.keys[i])))) for i in order.tolist()
        ]
    rows += [(c, a.byte6_toward[ip], ip) for ip, c in a.src6_toward.most_common(top)]
    rows.sort(key=lambda r: (-r[0], r[2]))
    back = a.dst_from.result()
    lookup = dict(zip(back.keys.tolist(), zip(back.counts.tolist(), back.bytes.tolist(), strict=True), strict=True))
    out = []
    for c, b, ip in rows:
        if ip in victim_addrs:
            continue
        addr = ipaddress.ip_address(ip)
        if addr.version == 4:
            rc, rb = lookup.get(int(addr), (0, 0))
        else:
            rc, rb = a.dst6_from.get(ip, 0), a.byte6_from.get(ip, 0)
        out.append({"ip": ip, "sent_packets": c, "sent_bytes": b, "received_packets": rc, "received_bytes": rb})
        if len(out) >= top:
            break
    return out


class CaptureAnalyser:
    """Feed it the capture's batches (``add_packets`` from the reader, or ``add`` for Arrow
    record batches), then ``result()``. The victim is fixed from the summary up front."""

    def __init__(self, summary: dict, networks: Iterable[Network] = (), *, top: int = 10) -> None:
        self.top = top
        self.victim = find_victim(summary, networks)
        self.nets = [ipaddress.ip_network(s, strict=False) for s in self.victim["scope"]]
        candidates = []
        for row in summary.get("top_sources", [])[:5]:
            addr = ipaddress.ip_address(row["ip"])
            if not any(addr.version == n.version and addr in n for n in self.nets):
                candidates.append(row["ip"])
        self.a = _Analyser(self.nets, candidates)

    def add(self, batch) -> None:
        if self.nets:
            self.a.add(batch)

    def add_packets(self, batch: PacketBatch) -> None:
        if self.nets:
            self.a.add_packets(batch)
        elif batch.inner is not None:
            self.a.add_tunnels(batch)

    def result(self) -> dict:
        a, nets, top, victim = self.a, self.nets, self.top, dict(self.victim)
        scope_addrs = {str(n.network_address) for n in nets if n.prefixlen == n.max_prefixlen}
        vectors = _vectors(a) if nets else []
        attacked = [
            {
                "ip": ip,
                "received_packets": c,
                "received_bytes": a.victim_rx_bytes[ip],
                "sent_packets": a.victim_tx.get(ip, 0),
                "sent_bytes": a.victim_tx_bytes.get(ip, 0),
            }
            for ip, c in a.victim_rx.most_common(top)
        ]
        heavy = _endpoints(a, GEO_SOURCES, scope_addrs | set(a.victim_rx) | set(a.victim_tx))
        starts = [v["start"] for v in vectors if v.get("start") is not None]
        victim["addresses"] = attacked
        victim["address_count"] = len(a.victim_rx)
        return {
            "victim": victim,
            "directions": {d: _direction(a, d) for d in ("toward", "from", "other")},
            "top_sources": heavy[:top],
            # The heaviest sources, for the country and ASN breakdown (popped before storing).
            "heavy_sources": heavy,
            "tcp_flags_toward": {
                k: int(v) for k, v in sorted(_flag_counts(a.flags).items(), key=lambda kv: -kv[1]) if v
            },
            "vectors": vectors,
            "tunnels": _tunnel_result(a, top),
            "attack_start": min(starts) if starts else None,
            "per_second": [
                {"t": a.series.base + i, "toward": int(x), "from": int(y)}
                for i, (x, y) in enumerate(
                    zip(a.series.pk[_K["toward"]].tolist(), a.series.pk[_K["from"]].tolist(), strict=True)
                )
            ]
            if a.series.base is not None and a.series.pk.shape[1] <= 3600
            else [],
        }


def _tunnel_rows(t: _Tally, top: int) -> list[dict]:
    t = t.result()
    order = np.argsort(-t.counts, kind="stable")[:top]
    return [
        {"ip": str(ipaddress.IPv4Address(int(t.keys[i]))), "packets": int(t.counts[i]), "bytes": int(t.bytes[i])}
        for i in order.tolist()
    ]


def _tunnel_result(a: _Analyser, top: int) -> dict | None:
    """Tunnelled packets: their kinds, outer endpoints, and the inner packets' tallies."""
    if not a.tunnels:
        return None
    protocols: dict[str, int] = {}
    for p in np.flatnonzero(a.inner_proto).tolist():
        name = "non-ip" if p == 0 else PROTO_NAMES.get(p - 1, "other")
        protocols[name] = protocols.get(name, 0) + int(a.inner_proto[p])
    outer = [
        {
            "src": str(ipaddress.IPv4Address(pair >> 32)),
            "dst": str(ipaddress.IPv4Address(pair & 0xFFFFFFFF)),
            "kind": TUNNEL_KINDS[k],
            "packets": n,
        }
        for (pair, k), n in a.tunnel_outer.most_common(top)
    ]
    return {
        "packets": sum(a.tunnels.values()),
        "bytes": a.tunnel_bytes,
        "kinds": dict(a.tunnels.most_common()),
        "outer_endpoints": outer,
        "inner_protocols": dict(sorted(protocols.items(), key=lambda kv: (-kv[1], kv[0]))),
        "inner_top_sources": _tunnel_rows(a.inner_src, top),
        "inner_top_destinations": _tunnel_rows(a.inner_dst, top),
    }


def analyse_capture(columnar, summary: dict, networks: Iterable[Network] = (), *, top: int = 10) -> dict:
    """Victim, direction tallies, endpoints and vectors of a parsed capture.

    ``columnar`` is the Parquet file written at upload (or a packet table); ``summary``
    is its ``summarize_pcap`` dict (for the victim and scan candidates); ``networks`` the
    customer's prefixes.
    """
    analyser = CaptureAnalyser(summary, networks, top=top)
    if analyser.nets:
        for batch in _iter_batches(columnar):
            analyser.add(batch)
    return analyser.result()


def _flag_counts(flags: np.ndarray) -> dict[str, int]:
    from .summary import flag_name

    out: dict[str, int] = {}
    for v in np.flatnonzero(flags).tolist():
        out[flag_name(v)] = out.get(flag_name(v), 0) + int(flags[v])
    return out
