"""Wireshark-style statistics of a capture: conversations, endpoints, protocol hierarchy,
I/O graph and an expert-style list of anomalies.

What is counted where, so that nothing is counted twice on the upload path:

* **Conversations** (IPv4/IPv6 address pairs, TCP/UDP 5-tuples) are the one new tally:
  :class:`CaptureStatistics` is fed by :class:`~traffic.parsers.summary.PcapSummarizer`
  batch by batch and merged with it across the two-core split and the parts of
  ``traffic/parts.py``. Each table holds at most ``CONV_CAP`` conversations; once full,
  packets of conversations it has not seen count in one "other" row (exact in total),
  and every listed row stays exact for a single reader. After a merge in which a side
  was full, a listed row may miss the packets that side put in "other": the table is
  then marked ``exact: False`` (its rows are lower bounds).
* **Endpoints** (sent/received per address) come from the summary's own source and
  destination tallies (``src4``/``dst4``/``src6``/``dst6``): no second count.
* **Protocol hierarchy** is one bincount of (link type, IP version, IP protocol) with
  bytes, and one of the application protocols above TCP/UDP that ``pcap.APP_NAMES`` lists
  (HTTP and TLS by a segment's first payload bytes, DNS/NTP/SSDP/memcached by port);
  **I/O graph** is the summary's per-second series, empty seconds filled with 0.
* **Anomalies** are drawn from figures already kept (TCP flags, fragments, truncated
  frames, zero windows, parser errors) plus TCP retransmissions (:class:`_Retransmissions`).
  Checksums, out-of-order segments and duplicate ACKs are not checked, and the list says
  so rather than implying a clean capture.

Bytes are frame (wire) lengths, as in tshark's ``-z conv``/``-z endpoints``/``-z io,phs``.
Only the outer IP header of a tunnelled packet is counted here (the inner packets are in
the victim analysis' tunnel section), and a VLAN tag is not a layer of its own.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import numpy as np

from .pcap import APP_NAMES, PacketBatch, ipv6_string

__all__ = ["CaptureStatistics", "CONV_CAP"]

CONV_CAP = 200_000  # conversations per table (about 70 bytes each: ≈ 14 MB per full table)
TOP = 100  # rows of each table kept in the stored summary
_FILTER_BITS = 22  # 4 MB bitmap for a full table: ≈ 5 % of misses go on to the binary search

_KINDS = ("ip4", "ip6", "l4v4", "l4v6")
# Link-layer classes for the protocol hierarchy (tshark's names for the common ones).
_LINK_CLASS = {1: ("eth", 0), 113: ("sll", 1), 276: ("sll2", 2), 0: ("null", 3), 108: ("null", 3)}
_LINK_NAMES = ["eth", "sll", "sll2", "null", "raw"]
_L4_NAMES = {
    1: "icmp",
    2: "igmp",
    4: "ip",
    6: "tcp",
    17: "udp",
    41: "ipv6",
    47: "gre",
    50: "esp",
    58: "icmpv6",
    132: "sctp",
}
RETX_CAP = 200_000  # (direction, sequence number) starts remembered: 20 bytes each, 4 MB
RETX_FLOWS = 10_000  # flows with retransmissions named; the rest count in the total only
_NAPP = max(APP_NAMES) + 1
_APP_L4 = {"dns": 17, "http": 6, "tls": 6, "ntp": 17, "ssdp": 17, "memcache": 17}
_NPROTO = 258  # proto + 1 (0 = none), 256 = an IPv6 chain we could not finish


def _mix64(x: np.ndarray) -> np.ndarray:
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class _Conversations:
    """One bounded table of 5-tuple conversations: key → canonical endpoints (``rep``),
    A→B and B→A packets/bytes, first and last packet time ("Rel Start" and "Duration")."""

    def __init__(self, width: int, cap: int) -> None:
        self.width, self.cap = width, cap
        self.keys = np.zeros(0, np.uint64)
        self.rep = np.zeros((0, width), np.uint64)
        self.cols = np.zeros((0, 4), np.int64)  # packets A→B, bytes A→B, packets B→A, bytes B→A
        self.first = np.zeros(0, np.float64)
        self.last = np.zeros(0, np.float64)
        self.other = np.zeros(4, np.int64)
        self.full = False  # a conversation was refused: some packets are in "other"
        self.exact = True  # False once merged with a side that was full
        self._filter: np.ndarray | None = None  # see _add_full; rebuilt whenever keys change

    def add(
        self,
        keys: np.ndarray,
        rep: np.ndarray | tuple[np.ndarray, ...],
        ab: np.ndarray,
        nbytes: np.ndarray,
        ts: np.ndarray,
    ) -> None:
        """``rep``: the rows' endpoints, as a 2-D array or its columns (stacked only for new keys)."""
        if keys.size == 0:
            return
        if self.keys.size >= self.cap:
            self._add_full(keys, ab, nbytes, ts)
            return
        order = np.argsort(keys)
        ks = keys[order]
        start = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
        abo = ab[order].astype(np.int64)
        bo = nbytes[order].astype(np.int64)
        tso = ts[order]
        pab = np.add.reduceat(abo, start)
        bab = np.add.reduceat(bo * abo, start)
        n = np.diff(np.r_[start, ks.size])
        cols = np.stack([pab, bab, n - pab, np.add.reduceat(bo, start) - bab], axis=1)
        first, last = np.minimum.reduceat(tso, start), np.maximum.reduceat(tso, start)
        self._merge(ks[start], rep, order[start], cols, first, last)

    def _add_full(self, keys: np.ndarray, ab: np.ndarray, nbytes: np.ndarray, ts: np.ndarray) -> None:
        """A full table (a spoofed flood: every packet a new conversation): no sort, the
        packets of listed conversations are added where they stand, the rest are "other"."""
        size = self.keys.size
        if self._filter is None:
            # A bitmap of the listed keys' top bits: most packets of a flood miss it, and one
            # gather is far cheaper than a binary search of the table per packet.
            self._filter = np.zeros(1 << _FILTER_BITS, bool)
            self._filter[self.keys >> np.uint64(64 - _FILTER_BITS)] = True
        cand = np.flatnonzero(self._filter[keys >> np.uint64(64 - _FILTER_BITS)])
        hit = np.zeros(keys.size, bool)
        pos = np.zeros(keys.size, np.intp)
        if cand.size:
            p = np.minimum(np.searchsorted(self.keys, keys[cand]), size - 1)
            pos[cand] = p
            hit[cand] = self.keys[p] == keys[cand]
        nb = nbytes.astype(np.int64)
        miss = ~hit
        if miss.any():
            self.full = True
            ab_m, nb_m = ab[miss], nb[miss]
            p_ab, b_ab = int(np.count_nonzero(ab_m)), int(nb_m[ab_m].sum())
            self.other += np.array([p_ab, b_ab, ab_m.size - p_ab, int(nb_m.sum()) - b_ab], np.int64)
        if hit.any():
            at, ab_h, nb_h = pos[hit], ab[hit].astype(np.int64), nb[hit]
            vals = np.stack([ab_h, nb_h * ab_h, 1 - ab_h, nb_h * (1 - ab_h)], axis=1)
            np.add.at(self.cols, at, vals)
            np.minimum.at(self.first, at, ts[hit])
            np.maximum.at(self.last, at, ts[hit])

    def _merge(
        self,
        k: np.ndarray,
        rep: np.ndarray | tuple[np.ndarray, ...],
        rep_at: np.ndarray,
        cols: np.ndarray,
        first: np.ndarray,
        last: np.ndarray,
    ) -> None:
        """Adds sorted unique rows (``rep[rep_at]`` their endpoints); new keys enter while
        there is room, the rest count in "other"."""
        size = self.keys.size
        if size:
            pos = np.searchsorted(self.keys, k)
            hit = pos < size
            hit[hit] = self.keys[pos[hit]] == k[hit]
            at = pos[hit]
            self.cols[at] += cols[hit]
            self.first[at] = np.minimum(self.first[at], first[hit])
            self.last[at] = np.maximum(self.last[at], last[hit])
            new = np.flatnonzero(~hit)
        else:
            pos = np.zeros(k.size, np.intp)
            new = np.arange(k.size)
        if new.size == 0:
            return
        room = self.cap - size
        if new.size > room:
            # The heaviest newcomers (by packets) take the room left; the rest are "other".
            self.full = True
            if room <= 0:
                self.other += cols[new].sum(axis=0)
                return
            weight = cols[new, 0] + cols[new, 2]
            keep = np.zeros(new.size, bool)
            keep[np.argpartition(-weight, room - 1)[:room]] = True
            self.other += cols[new[~keep]].sum(axis=0)
            new = new[keep]
        self._filter = None
        # Both sides sorted and unique: new key j lands at pos + j in the result.
        total = size + new.size
        dest = pos[new] + np.arange(new.size)
        old = np.ones(total, bool)
        old[dest] = False

        def spread(col: np.ndarray, vals: np.ndarray) -> np.ndarray:
            out = np.empty((total, *col.shape[1:]), col.dtype)
            out[old] = col
            out[dest] = vals
            return out

        self.keys = spread(self.keys, k[new])
        at = rep_at[new]
        self.rep = spread(self.rep, rep[at] if isinstance(rep, np.ndarray) else np.stack([c[at] for c in rep], axis=1))
        self.cols = spread(self.cols, cols[new])
        self.first = spread(self.first, first[new])
        self.last = spread(self.last, last[new])

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_filter": None}  # rebuilt on demand: no 4 MB through the pipe

    def merge(self, other: _Conversations) -> None:
        if self.full or other.full:
            self.exact = False
        self.exact = self.exact and other.exact
        self.full = self.full or other.full
        self.other += other.other
        self._merge(other.keys, other.rep, np.arange(other.keys.size), other.cols, other.first, other.last)

    @property
    def count(self) -> int:
        return int(self.keys.size)


_NO_PORTS = np.uint64(1 << 40)  # in a row's ports word: a packet without ports (ICMP, GRE, a fragment)


class _Retransmissions:
    """TCP retransmissions, roughly as Wireshark's ``tcp.analysis.retransmission`` flags them:
    a segment that occupies sequence space (payload, SYN or FIN) whose direction of the
    connection already carried a segment starting at the same sequence number.

    Each such segment start is remembered as one 64-bit hash of (direction, seq) in a
    sorted array of at most ``RETX_CAP`` keys. Once it is full, segments starting at a new
    sequence number are no longer remembered, so later copies of them are missed: the
    count is then a lower bound (``exact: False``). Wireshark's other rule (a segment
    that starts below the highest sequence number seen, e.g. a repacketised one) and its
    keep-alive exception are not reproduced: a 1-byte segment with neither SYN nor FIN is
    not remembered, as Wireshark would call its repeat a keep-alive.
    """

    def __init__(self, cap: int = RETX_CAP) -> None:
        self.cap = cap
        self.seen = np.zeros(0, np.uint64)
        # Per remembered start, for merges: its flow, and to name it, the IPv4 address pair
        # (0 for IPv6, named from ``v6_names``) and the ports: 20 bytes a key in all.
        self.seen_flow = np.zeros(0, np.uint64)
        self.seen_pair = np.zeros(0, np.uint64)
        self.seen_ports = np.zeros(0, np.uint32)
        self.v6_names: dict[int, tuple[str, str]] = {}  # bounded at RETX_FLOWS
        self.unnamed = 0  # repeats found in a merge whose flow could not be named
        self.full = False
        self.count = 0
        self.flows: dict[int, list] = {}  # flow hash -> [retransmissions, from, to]

    def add(self, b: PacketBatch) -> None:
        if b.tcp_seq is None or b.tcp_len is None:
            return
        f = b.tcp_flags
        ln = b.tcp_len
        i = np.flatnonzero((f >= 0) & (((f & 0x03) != 0) | (ln > 1)))
        if i.size == 0:
            return
        # One 64-bit word of ports and sequence number, one of the addresses (IPv6 folded).
        word = (
            (b.sport[i].astype(np.uint64) << np.uint64(48))
            | (b.dport[i].astype(np.uint64) << np.uint64(32))
            | b.tcp_seq[i].astype(np.uint64)
        )
        addr = (b.src4[i].astype(np.uint64) << np.uint64(32)) | b.dst4[i].astype(np.uint64)
        pair = addr.copy()
        v6 = np.flatnonzero(b.ip_version[i] == 6)
        if v6.size:
            j = i[v6]
            addr[v6] = _mix64(_mix64(_mix64(_mix64(b.src6[j, 0]) ^ b.src6[j, 1]) ^ b.dst6[j, 0]) ^ b.dst6[j, 1])
        # The SYN bit in the key: a crafted SYN and data segment may share a sequence number.
        syn = np.where((f[i] & 0x02) != 0, _SYN_SALT, np.uint64(0))
        key = _mix64(_mix64(addr ^ syn) ^ word)
        # Sort once (np.unique's stable sort is slower); a key's first copy is its lowest row.
        order = np.argsort(key)
        ks = key[order]
        start = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
        uniq, first = ks[start], np.minimum.reduceat(order, start)
        repeat = np.ones(i.size, bool)
        repeat[first] = False  # repeats inside this batch
        known = _member(self.seen, uniq)
        repeat[first[known]] = True  # a first copy in this batch of a start seen earlier
        if not self.full:
            new, at = uniq[~known], first[~known]
            room = self.cap - self.seen.size
            if new.size > room:
                keep = np.sort(np.argsort(at, kind="stable")[:room])
                new, at = new[keep], at[keep]
                self.full = True
            if new.size:
                flows = _flow_of(addr[at], word[at])
                self._insert(new, flows, pair[at], (word[at] >> np.uint64(32)).astype(np.uint32))
                if v6.size:
                    self._name_v6(b, i[at], flows)
        r = np.flatnonzero(repeat)
        if r.size:
            self.count += int(r.size)
            self._name(b, i[r], _flow_of(addr[r], word[r]))

    def _name(self, b: PacketBatch, rows: np.ndarray, flow: np.ndarray) -> None:
        u, at, n = np.unique(flow, return_index=True, return_counts=True)
        for h, j, c in zip(u.tolist(), at.tolist(), n.tolist(), strict=True):
            entry = self.flows.get(h)
            if entry is not None:
                entry[0] += c
            elif len(self.flows) < RETX_FLOWS:
                k = int(rows[j])
                if b.ip_version[k] == 4:
                    a, z = str(ipaddress.IPv4Address(int(b.src4[k]))), str(ipaddress.IPv4Address(int(b.dst4[k])))
                else:
                    a = ipv6_string(int(b.src6[k, 0]), int(b.src6[k, 1]))
                    z = ipv6_string(int(b.dst6[k, 0]), int(b.dst6[k, 1]))
                self.flows[h] = [c, f"{a}:{int(b.sport[k])}", f"{z}:{int(b.dport[k])}"]

    def merge(self, other: _Retransmissions) -> None:
        """Adds the part after this one: its first copy of a start this part saw is a repeat."""
        known = _member(self.seen, other.seen)
        self.count += other.count + int(np.count_nonzero(known))
        self.unnamed += other.unnamed
        self.full |= other.full
        for h, (c, a, z) in other.flows.items():
            if h in self.flows:
                self.flows[h][0] += c
            elif len(self.flows) < RETX_FLOWS:
                self.flows[h] = [c, a, z]
        for h, p, pt in zip(
            other.seen_flow[known].tolist(),
            other.seen_pair[known].tolist(),
            other.seen_ports[known].tolist(),
            strict=True,
        ):
            if h in self.flows:
                self.flows[h][0] += 1
                continue
            if p:
                a = f"{ipaddress.IPv4Address(p >> 32)}:{pt >> 16}"
                z = f"{ipaddress.IPv4Address(p & 0xFFFFFFFF)}:{pt & 0xFFFF}"
            elif h in other.v6_names or h in self.v6_names:
                a, z = other.v6_names.get(h) or self.v6_names[h]
            else:
                self.unnamed += 1
                continue
            if len(self.flows) < RETX_FLOWS:
                self.flows[h] = [1, a, z]
            else:
                self.unnamed += 1
        for h, names in other.v6_names.items():
            if len(self.v6_names) < RETX_FLOWS:
                self.v6_names.setdefault(h, names)
        new = ~known
        if new.any() and not self.full:
            keep = np.flatnonzero(new)[: self.cap - self.seen.size]
            self.full = bool(keep.size < np.count_nonzero(new))
            self._insert(other.seen[keep], other.seen_flow[keep], other.seen_pair[keep], other.seen_ports[keep])

    def _insert(self, keys: np.ndarray, flows: np.ndarray, pairs: np.ndarray, ports: np.ndarray) -> None:
        order = np.argsort(keys)
        keys = keys[order]
        at = np.searchsorted(self.seen, keys)
        self.seen = np.insert(self.seen, at, keys)
        self.seen_flow = np.insert(self.seen_flow, at, flows[order])
        self.seen_pair = np.insert(self.seen_pair, at, pairs[order])
        self.seen_ports = np.insert(self.seen_ports, at, ports[order])

    def _name_v6(self, b: PacketBatch, rows: np.ndarray, flows: np.ndarray) -> None:
        six = np.flatnonzero(b.ip_version[rows] == 6)
        for k, h in zip(rows[six].tolist(), flows[six].tolist(), strict=True):
            if len(self.v6_names) >= RETX_FLOWS:
                return
            if h not in self.v6_names:
                self.v6_names[h] = (
                    f"{ipv6_string(int(b.src6[k, 0]), int(b.src6[k, 1]))}:{int(b.sport[k])}",
                    f"{ipv6_string(int(b.dst6[k, 0]), int(b.dst6[k, 1]))}:{int(b.dport[k])}",
                )

    def result(self, top: int) -> dict:
        rows = sorted(self.flows.values(), key=lambda e: (-e[0], e[1], e[2]))[:top]
        return {
            "count": self.count,
            "exact": not self.full,
            "unnamed": self.unnamed,  # on a connection cut by the split into parts, not named
            "flows": [{"from": a, "to": z, "retransmissions": c} for c, a, z in rows],
        }


_SYN_SALT = np.uint64(0x9E3779B97F4A7C15)


def _flow_of(addr: np.ndarray, word: np.ndarray) -> np.ndarray:
    """One direction of a connection: addresses and ports (the top half of ``word``)."""
    return _mix64(_mix64(addr) ^ (word >> np.uint64(32)))


def _member(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    if sorted_keys.size == 0:
        return np.zeros(keys.size, bool)
    at = np.searchsorted(sorted_keys, keys)
    return sorted_keys[np.minimum(at, sorted_keys.size - 1)] == keys


class CaptureStatistics:
    """The conversation tables and the per-packet counters the summary does not keep.

    One table per IP version keyed on (addresses, protocol, ports); packets without ports
    have a row of their own per (addresses, protocol). The IP conversations are those rows
    added up per address pair (``result``): one sort per batch serves both views.
    """

    def __init__(self, cap: int = CONV_CAP) -> None:
        self.conv = {
            "v4": _Conversations(2, cap),  # rep: (a << 32 | b), ports word
            "v6": _Conversations(5, cap),  # rep: a.hi, a.lo, b.hi, b.lo, ports word
        }
        n = len(_LINK_NAMES) * 3 * _NPROTO
        self.layers = np.zeros((2, n), np.int64)  # packets, bytes per (link, IP version, protocol)
        self.apps = np.zeros((2, len(_LINK_NAMES) * 3 * _NAPP), np.int64)  # ... per application
        self.truncated = 0
        self.truncated_bytes_lost = 0
        self.zero_window = 0
        self.retx = _Retransmissions()

    # ------------------------------------------------------------------ feeding

    def add(self, b: PacketBatch) -> None:
        n = len(b)
        if n == 0:
            return
        wl = b.wirelen
        trunc = b.caplen < wl
        if trunc.any():
            self.truncated += int(np.count_nonzero(trunc))
            self.truncated_bytes_lost += int((wl[trunc] - b.caplen[trunc]).sum())
        self._layers(b)
        if b.tcp_window is not None:
            f = b.tcp_flags
            # tshark's tcp.analysis.zero_window: window 0 on a segment that is not SYN, FIN or RST.
            self.zero_window += int(np.count_nonzero((b.tcp_window == 0) & (f >= 0) & ((f & 0x07) == 0)))
        self.retx.add(b)
        is4 = b.ip_version == 4
        if is4.all():
            self._v4(b, slice(None))
        elif is4.any():
            self._v4(b, np.flatnonzero(is4))
        is6 = b.ip_version == 6
        if is6.any():
            self._v6(b, np.flatnonzero(is6))

    def _layers(self, b: PacketBatch) -> None:
        lt = b.linktype
        lk: int | np.ndarray
        if lt.size and lt[0] == lt[-1] and (lt == lt[0]).all():
            lk = _LINK_CLASS.get(int(lt[0]), ("raw", 4))[1]
        else:
            per_packet = np.full(lt.size, 4, np.int64)  # raw IP unless named
            for code, (_name, idx) in _LINK_CLASS.items():
                per_packet[lt == code] = idx
            lk = per_packet
        vk = np.where(b.ip_version == 4, 1, np.where(b.ip_version == 6, 2, 0))
        pk = np.clip(b.proto.astype(np.int64) + 1, 0, _NPROTO - 1)
        key = (lk * 3 + vk) * _NPROTO + pk
        size = self.layers.shape[1]
        self.layers[0] += np.bincount(key, minlength=size)
        self.layers[1] += np.bincount(key, weights=b.wirelen, minlength=size).astype(np.int64)
        if b.app is not None:
            a = np.flatnonzero(b.app)
            if a.size:
                lka = lk if isinstance(lk, int) else lk[a]
                akey = (lka * 3 + vk[a]) * _NAPP + b.app[a]
                size = self.apps.shape[1]
                self.apps[0] += np.bincount(akey, minlength=size)
                self.apps[1] += np.bincount(akey, weights=b.wirelen[a], minlength=size).astype(np.int64)

    @staticmethod
    def _ports(b: PacketBatch, i: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sp, dp, proto = b.sport[i], b.dport[i], b.proto[i]
        has = (sp >= 0) & ((proto == 6) | (proto == 17))
        high = (proto.astype(np.uint64) & np.uint64(0xFF)) << np.uint64(32)
        high = np.where(has, high, high | _NO_PORTS)
        return np.where(has, sp, 0).astype(np.uint64), np.where(has, dp, 0).astype(np.uint64), high

    def _v4(self, b: PacketBatch, i: np.ndarray | slice) -> None:
        s, d = b.src4[i].astype(np.uint64), b.dst4[i].astype(np.uint64)
        sp, dp, high = self._ports(b, i)
        ab = (s < d) | ((s == d) & (sp <= dp))
        pair = np.where(ab, (s << np.uint64(32)) | d, (d << np.uint64(32)) | s)
        ports = high | np.where(ab, (sp << np.uint64(16)) | dp, (dp << np.uint64(16)) | sp)
        key = _mix64(_mix64(pair) ^ ports)
        self.conv["v4"].add(key, (pair, ports), ab, b.wirelen[i], b.ts[i])

    def _v6(self, b: PacketBatch, i: np.ndarray) -> None:
        s, d = b.src6[i], b.dst6[i]
        sp, dp, high = self._ports(b, i)
        same = (s[:, 0] == d[:, 0]) & (s[:, 1] == d[:, 1])
        less = (s[:, 0] < d[:, 0]) | ((s[:, 0] == d[:, 0]) & (s[:, 1] < d[:, 1]))
        ab = less | (same & (sp <= dp))
        lo, hi = np.where(ab[:, None], s, d), np.where(ab[:, None], d, s)
        ports = high | np.where(ab, (sp << np.uint64(16)) | dp, (dp << np.uint64(16)) | sp)
        rep = np.concatenate([lo, hi, ports[:, None]], axis=1)
        key = _mix64(_mix64(_mix64(_mix64(_mix64(rep[:, 0]) ^ rep[:, 1]) ^ rep[:, 2]) ^ rep[:, 3]) ^ ports)
        self.conv["v6"].add(key, rep, ab, b.wirelen[i], b.ts[i])

    def merge(self, other: CaptureStatistics) -> None:
        """Adds another part of the same capture (in file order after this one)."""
        for name, table in self.conv.items():
            table.merge(other.conv[name])
        self.layers += other.layers
        self.apps += other.apps
        self.truncated += other.truncated
        self.truncated_bytes_lost += other.truncated_bytes_lost
        self.zero_window += other.zero_window
        self.retx.merge(other.retx)

    # ------------------------------------------------------------------ result

    def result(self, summarizer: Any, start: float | None, top: int = TOP) -> dict:  # noqa: ANN401 - PcapSummarizer
        """The stored ``summary["statistics"]``; ``summarizer`` gives endpoints, flags, series."""
        t0 = start or 0.0
        return {
            "conversations": {
                "ipv4": self._ip_rows("v4", t0, top),
                "ipv6": self._ip_rows("v6", t0, top),
                "tcp": self._l4_rows(6, t0, top),
                "udp": self._l4_rows(17, t0, top),
            },
            "endpoints": _endpoints(summarizer, top),
            "protocol_hierarchy": self._hierarchy(),
            "io": _io_graph(summarizer.per_sec),
            "anomalies": self._anomalies(summarizer),
            "retransmissions": self.retx.result(10),
            "bytes": "frame length",
        }

    def _meta(self, t: _Conversations, count: int) -> dict:
        other = None
        if t.other.any():
            other = {
                k: int(v)
                for k, v in zip(("packets_ab", "bytes_ab", "packets_ba", "bytes_ba"), t.other.tolist(), strict=True)
            }
        # "other" holds the refused packets of every protocol of this IP version.
        return {"count": count, "full": t.full, "exact": t.exact, "other": other}

    def _ip_rows(self, name: str, t0: float, top: int) -> dict:
        """Address pairs: the 5-tuple rows added up per pair."""
        t = self.conv[name]
        pairs = t.rep[:, :1] if name == "v4" else t.rep[:, :4]
        if t.count == 0:
            return {**self._meta(t, 0), "rows": []}
        # Sort-based grouping (np.unique over rows views them as bytes and is ~30x slower).
        order = np.lexsort(pairs.T[::-1])
        ps = pairs[order]
        start = np.flatnonzero(np.r_[True, (ps[1:] != ps[:-1]).any(axis=1)])
        u = ps[start]
        cols = np.add.reduceat(t.cols[order], start, axis=0)
        first = np.minimum.reduceat(t.first[order], start)
        last = np.maximum.reduceat(t.last[order], start)
        # Same address on both ends: at the IP level every packet goes A→B.
        same = (
            (u[:, 0] >> np.uint64(32)) == (u[:, 0] & np.uint64(0xFFFFFFFF))
            if name == "v4"
            else ((u[:, 0] == u[:, 2]) & (u[:, 1] == u[:, 3]))
        )
        cols[same, 0] += cols[same, 2]
        cols[same, 1] += cols[same, 3]
        cols[same, 2:] = 0
        rows = []
        for i in _top(cols, np.arange(len(u)), top).tolist():
            r = u[i]
            if name == "v4":
                a, b = str(ipaddress.IPv4Address(int(r[0]) >> 32)), str(ipaddress.IPv4Address(int(r[0]) & 0xFFFFFFFF))
            else:
                a, b = ipv6_string(int(r[0]), int(r[1])), ipv6_string(int(r[2]), int(r[3]))
            rows.append(_row(a, b, cols[i], first[i], last[i], t0))
        return {**self._meta(t, len(u)), "rows": rows}

    def _l4_rows(self, proto: int, t0: float, top: int) -> dict:
        rows: list[dict] = []
        out = {"count": 0, "full": False, "exact": True, "other": None}
        for name in ("v4", "v6"):
            t = self.conv[name]
            ports = t.rep[:, 1] if name == "v4" else t.rep[:, 4]
            sel = np.flatnonzero((ports >> np.uint64(32)) == np.uint64(proto))
            meta = self._meta(t, int(sel.size))
            out["count"] += meta["count"]
            out["full"] |= meta["full"]
            out["exact"] &= meta["exact"]
            if meta["other"]:
                out["other"] = meta["other"]
            for i in _top(t.cols, sel, top).tolist():
                a, b = _l4_ends(name, t.rep[i])
                rows.append(_row(a, b, t.cols[i], t.first[i], t.last[i], t0))
        rows.sort(key=lambda r: (-(r["bytes_ab"] + r["bytes_ba"]), -(r["packets_ab"] + r["packets_ba"])))
        return {**out, "rows": rows[:top]}

    def _hierarchy(self) -> list[dict]:
        """Rows of (depth, protocol, frames, bytes) in tshark ``io,phs`` order (heaviest first)."""
        pk = self.layers[0].reshape(len(_LINK_NAMES), 3, _NPROTO)
        by = self.layers[1].reshape(len(_LINK_NAMES), 3, _NPROTO)
        apk = self.apps[0].reshape(len(_LINK_NAMES), 3, _NAPP)
        aby = self.apps[1].reshape(len(_LINK_NAMES), 3, _NAPP)
        total = int(pk.sum())
        rows: list[dict] = []

        def row(depth: int, name: str, p: int, b: int) -> None:
            share = round(p / total, 4) if total else 0
            rows.append({"depth": depth, "protocol": name, "frames": p, "bytes": b, "share": share})

        for li in np.argsort(-pk.sum(axis=(1, 2)), kind="stable").tolist():
            lp = int(pk[li].sum())
            if not lp:
                continue
            row(0, _LINK_NAMES[li], lp, int(by[li].sum()))
            for vi in np.argsort(-pk[li].sum(axis=1), kind="stable").tolist():
                vp = int(pk[li, vi].sum())
                if not vp:
                    continue
                if vi == 0:
                    row(1, "other (not IP)", vp, int(by[li, vi].sum()))
                    continue
                row(1, "ip" if vi == 1 else "ipv6", vp, int(by[li, vi].sum()))
                for pi in np.argsort(-pk[li, vi], kind="stable").tolist():
                    n = int(pk[li, vi, pi])
                    if not n:
                        continue
                    name = _L4_NAMES.get(pi - 1, f"ip.proto {pi - 1}") if 0 < pi < 257 else "unknown"
                    if vi == 1 and pi == 0:
                        name = "unknown"
                    row(2, name, n, int(by[li, vi, pi]))
                    for ai in np.argsort(-apk[li, vi], kind="stable").tolist():
                        if apk[li, vi, ai] and _APP_L4[APP_NAMES[ai]] == pi - 1:
                            row(3, APP_NAMES[ai], int(apk[li, vi, ai]), int(aby[li, vi, ai]))
        return rows

    def _anomalies(self, s: Any) -> list[dict]:  # noqa: ANN401 - PcapSummarizer
        out: list[dict] = []
        flags = s.flags
        tcp = int(flags.sum())
        idx = np.arange(flags.size)
        rst = int(flags[(idx & 0x04) != 0].sum())
        syn = int(flags[(idx & 0x17) == 0x02].sum())
        synack = int(flags[(idx & 0x16) == 0x12].sum())

        def add(severity: str, group: str, summary: str, count: int) -> None:
            out.append({"severity": severity, "group": group, "summary": summary, "count": count})

        if self.truncated:
            add(
                "warning",
                "Malformed",
                f"{self.truncated:,} frames cut short by the capture's snapshot length "
                f"({self.truncated_bytes_lost:,} bytes not captured): their upper layers may be missing",
                self.truncated,
            )
        if s.fragments:
            add(
                "note",
                "Sequence",
                f"{s.fragments:,} IP fragments ({s.fragments_nonfirst:,} without their transport header)",
                int(s.fragments),
            )
        if rst and tcp and (rst >= 100 and rst / tcp >= 0.10):
            add("warning", "Sequence", f"RST storm: {rst:,} TCP segments with RST, {rst / tcp:.1%} of TCP", rst)
        elif rst:
            add("note", "Sequence", f"{rst:,} TCP segments with RST ({rst / tcp:.1%} of TCP)", rst)
        if syn >= 100 and synack < 0.5 * syn:
            add(
                "warning",
                "Sequence",
                f"{syn:,} SYNs against {synack:,} SYN-ACKs: {1 - synack / syn:.1%} of handshakes "
                "not answered in this capture",
                syn - synack,
            )
        if self.zero_window:
            add("warning", "Sequence", f"{self.zero_window:,} TCP segments advertise a zero window", self.zero_window)
        nonip = int(s.proto[0])
        if nonip:
            add("note", "Protocol", f"{nonip:,} frames carry no IP packet we decode (ARP, LLDP, other)", nonip)
        add("note", "Checksum", "Checksums are not verified (as in Wireshark by default)", 0)
        rx = self.retx
        if rx.count:
            top_flows = rx.result(1)["flows"]  # ties broken by address, so parts merge alike
            worst = top_flows[0] if top_flows else None
            where = f"; most on {worst['from']} → {worst['to']} ({worst['retransmissions']:,})" if worst else ""
            bound = "at least " if rx.full else ""
            add(
                "warning" if tcp and rx.count / tcp >= 0.05 else "note",
                "Sequence",
                f"{bound}{rx.count:,} TCP retransmissions (a segment starting at a sequence number its "
                f"direction already carried){where}",
                rx.count,
            )
        else:
            add("note", "Sequence", "No TCP retransmissions (no segment repeats a sequence number)", 0)
        add("note", "Sequence", "Out-of-order segments and duplicate ACKs are not checked", 0)
        return out


def _top(cols: np.ndarray, idx: np.ndarray, top: int) -> np.ndarray:
    """The ``top`` rows of ``idx`` by total bytes, then packets (tshark's own order)."""
    total_b = cols[idx, 1] + cols[idx, 3]
    total_p = cols[idx, 0] + cols[idx, 2]
    return idx[np.lexsort((-total_p, -total_b))][:top]


def _row(a: str, b: str, c: np.ndarray, first: float, last: float, t0: float) -> dict:
    return {
        "a": a,
        "b": b,
        "packets_ab": int(c[0]),
        "bytes_ab": int(c[1]),
        "packets_ba": int(c[2]),
        "bytes_ba": int(c[3]),
        "start": round(float(first) - t0, 6),
        "duration": round(float(last - first), 6),
    }


def _l4_ends(name: str, r: np.ndarray) -> tuple[str, str]:
    if name == "v4":
        pair, ports = int(r[0]), int(r[1])
        a, b = str(ipaddress.IPv4Address(pair >> 32)), str(ipaddress.IPv4Address(pair & 0xFFFFFFFF))
        return f"{a}:{(ports >> 16) & 0xFFFF}", f"{b}:{ports & 0xFFFF}"
    ports = int(r[4])
    a, b = ipv6_string(int(r[0]), int(r[1])), ipv6_string(int(r[2]), int(r[3]))
    return f"[{a}]:{(ports >> 16) & 0xFFFF}", f"[{b}]:{ports & 0xFFFF}"


def _endpoints(s: Any, top: int) -> dict:  # noqa: ANN401 - PcapSummarizer
    """Sent (tx) and received (rx) per address, from the summary's own two tallies."""
    src, dst = s.src4.result(), s.dst4.result()
    # Both tallies are key-sorted: a stable sort (timsort) merges the two runs in linear time,
    # where np.union1d would hash every key again.
    keys = np.sort(np.concatenate([src.keys, dst.keys]), kind="stable")
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if keys.size else keys
    cols = np.zeros((keys.size, 4), np.int64)
    if src.keys.size:
        at = np.searchsorted(keys, src.keys)
        cols[at, 0], cols[at, 1] = src.counts, src.bytes
    if dst.keys.size:
        at = np.searchsorted(keys, dst.keys)
        cols[at, 2], cols[at, 3] = dst.counts, dst.bytes
    packets, nbytes = cols[:, 0] + cols[:, 2], cols[:, 1] + cols[:, 3]
    # Only the listed rows become Python objects: a spoofed flood has millions of addresses.
    # The top rows by (packets, bytes) in one partition, then sorted, ties by address.
    weight = (packets.astype(np.uint64) << np.uint64(40)) | np.minimum(nbytes, (1 << 40) - 1).astype(np.uint64)
    best = np.argpartition(~weight, top - 1)[:top] if keys.size > top else np.arange(keys.size)
    best = best[np.lexsort((keys[best], -nbytes[best], -packets[best]))]
    rows = [(int(packets[i]), int(nbytes[i]), str(ipaddress.IPv4Address(int(keys[i]))), cols[i]) for i in best.tolist()]
    six: dict[tuple[int, int], list[int]] = {}
    for key, v in s.src6.store.items():
        six.setdefault(key, [0, 0, 0, 0])[0:2] = v[0], v[1]
    for key, v in s.dst6.store.items():
        six.setdefault(key, [0, 0, 0, 0])[2:4] = v[0], v[1]
    rows += [(c[0] + c[2], c[1] + c[3], ipv6_string(*key), c) for key, c in six.items()]
    count = int(keys.size) + len(six)
    rows.sort(key=lambda r: (-r[0], -r[1], r[2]))
    estimated = bool(src.bounded or dst.bounded or s.src6.bounded or s.dst6.bounded)
    return {
        "count": count,
        "estimated": estimated,
        "rows": [
            {
                "ip": ip,
                "packets": p,
                "bytes": b,
                "tx_packets": int(c[0]),
                "tx_bytes": int(c[1]),
                "rx_packets": int(c[2]),
                "rx_bytes": int(c[3]),
            }
            for p, b, ip, c in rows[:top]
        ],
    }


IO_SECONDS = 10_800  # the I/O graph's first 3 h at 1 s (the stored summary stays small)


def _io_graph(per_sec: dict[int, list[int]], limit: int = IO_SECONDS) -> dict:
    """Packets and bytes per 1 s interval from the first to the last second, empty ones 0."""
    if not per_sec:
        return {"interval_s": 1, "start": None, "packets": [], "bytes": [], "truncated": False}
    lo, hi = min(per_sec), max(per_sec)
    span = min(hi - lo + 1, limit)
    pk = [0] * span
    by = [0] * span
    for t, (p, b) in per_sec.items():
        if t - lo < span:
            pk[t - lo], by[t - lo] = p, b
    return {"interval_s": 1, "start": lo, "packets": pk, "bytes": by, "truncated": hi - lo + 1 > span}
