"""The PCAP summary an engineer reads first: what hit the customer, from where, how hard.

``summarize_pcap(path)`` streams the capture in small batches and keeps only aggregates:
fixed-size per-port, per-flag, TTL and size counters, per-second counts, and per-address
tallies. Its dict is exactly what ``manage.py analyze_pcap FILE --json`` prints.

Memory is bounded whatever the number of source addresses. Each per-address tally
counts exactly up to ``CAP`` (2 M) distinct keys (an eighth of that for IPv6); past it,
it keeps only the heaviest keys (batched Misra–Gries, see ``_Tally``): every address or
/24 with more packets than the tally's ``max_error`` is still listed, each listed count
is low by at most its own ``max_error`` (0 for keys kept since before the cap was hit:
exact), ``unique_sources`` comes from a HyperLogLog and the entropy from the kept counts
plus the rest spread evenly. Figures so derived are named in ``estimated`` (an empty
dict when everything is exact) and ``source_entropy.estimated`` is true. Packet, byte,
protocol, port, flag and per-second figures are always exact. Measured peak RSS
(``bench/traffic.py --memory``, 2 cores): 230 MB for a 0.95 GB mixed capture (exact),
≈ 430 MB for a 4.1 GB one with 5 M sources, ≈ 380 MB for a 16 M-packet SYN flood from
16 M spoofed sources, ≈ 530 MB for a 10 M-packet UDP flood spoofing both addresses.
Those are per process: a classic pcap of ``SPLIT_MIN_BYTES`` (256 MB) or more is read by
two processes, a half each (both cores; ≈ 2.5 M packets/s whole-process on the 0.95 GB
capture against 1.6 M for one process), and their summed peak RSS is ≈ 250 MB for the
0.95 GB capture and ≈ 730 MB for the 4.1 GB one (two capped tallies before the merge).

``statistics`` holds the Wireshark-style tables (conversations, endpoints, protocol
hierarchy, 1 s I/O graph, expert-style anomalies): see ``stats.py`` for what is counted
where and how its conversation tables stay bounded.

Vector detection (``vectors``): every vector must pass three kinds of test, so that a
short burst is not a flood and a busy but normal link is not an attack:

* **volume**: at least ``MIN_PACKETS`` (50) packets of the vector;
* **rate**: the vector's packets per second over the capture's duration (floored at
  1 ms) reaches the vector's own minimum (``RATE_*`` below);
* **share**: the vector is a large share of the capture (``MIN_SHARE`` = 30 %), because
  an attack dominates the link it saturates.

Per vector (all thresholds are constants in this module):

* ``syn_flood``: pure SYNs (SYN without ACK/RST/FIN) ≥ 30 % of packets, ≥ 50 pps, fewer
  SYN-ACKs than 20 % of SYNs (handshakes not completing), and not a port scan (a scan is
  ≤ 3 sources sending ≥ 90 % of the SYNs to ≥ 50 different ports);
* ``synack_reflection``: SYN-ACKs ≥ 30 %, ≥ 50 pps, from ≥ 10 sources, with fewer pure
  SYNs than 20 % of them (the victim never asked);
  With SYN-ACKs ≥ 30 % and more SYN-ACKs than SYNs but below the rate, it is reported
  as a low-confidence indicator (sampled or low-and-slow reflection);
* ``ack_flood`` / ``rst_flood``: ACK-only resp. RST ≥ 60 % resp. 50 %, ≥ 2,000 resp.
  100 pps, from ≥ 50 sources, with almost no SYNs (< 1 %: no real connections);
* ``<proto>_amplification``: UDP from a known reflector source port (``AMP_PORTS``)
  ≥ 30 % of packets or of bytes, ≥ 20 pps, mean IP length ≥ ``AMP_MIN_LEN`` (amplified answers are big; NTP
  answers ≥ 200 bytes, i.e. not the 76-byte time sync packets) and ≥ 5 reflectors; large
  answers split into fragments count towards their reflected port by source address;
* ``udp_flood``: UDP ≥ 60 %, ≥ 1,000 pps, when no amplification vector explains it;
* ``ip_fragment_flood``: fragments ≥ 30 % and ≥ 50 pps;
* ``dhcp_flood``: DHCP requests (UDP to 67, BOOTREQUEST) ≥ 50 and ≥ 10 per second;
* ``ntp_reflection_trigger`` (confidence "low", kind "indicator"): NTP mode 6/7
  requests (monlist and friends) to port 123. A single request is the trigger of an NTP
  amplification attack but is no flood, so it is reported as an indicator, not as
  ``ntp_amplification``.
* ``spoofing`` (kind "indicator", attached when some flood was found): normalised source
  entropy ≥ 0.9 over ≥ 1,000 distinct sources (estimated past the cap, which a random
  spoofed flood always reaches), or TTLs spread over ≥ 64 values.

Confidence is "high" when the share is ≥ 60 % and the rate ≥ 1,000 pps, else "medium".
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import re
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .pcap import PacketBatch, PcapReader, ipv6_string
from .stats import CaptureStatistics

__all__ = ["summarize_pcap", "PcapSummarizer", "AMP_PORTS", "PROTO_NAMES"]

PROTO_NAMES = {
    1: "icmp",
    2: "igmp",
    4: "ipip",
    6: "tcp",
    17: "udp",
    41: "ipv6",
    47: "gre",
    50: "esp",
    51: "ah",
    58: "icmpv6",
    89: "ospf",
    103: "pim",
    112: "vrrp",
    132: "sctp",
}

# UDP source ports of services abused as reflectors, with the smallest mean IP length
# we accept as "amplified" (a request-sized packet is not an amplified answer).
AMP_PORTS: dict[int, tuple[str, int]] = {
    19: ("chargen", 100),
    53: ("dns", 200),
    111: ("portmap", 100),
    123: ("ntp", 200),
    137: ("netbios", 100),
    161: ("snmp", 200),
    389: ("cldap", 200),
    500: ("isakmp", 100),
    1434: ("mssql", 100),
    1900: ("ssdp", 200),
    3283: ("arms", 200),
    3702: ("ws_discovery", 200),
    4500: ("isakmp", 100),
    5353: ("mdns", 100),
    10001: ("ubiquiti", 100),
    11211: ("memcached", 200),
    17: ("qotd", 100),
    37810: ("dvr", 100),
    47808: ("bacnet", 100),
    27015: ("steam", 100),
    5683: ("coap", 100),
    3478: ("stun", 100),
}

_AMP_INDEX = np.full(65536, -1, dtype=np.int64)
for _i, _p in enumerate(sorted(AMP_PORTS)):
    _AMP_INDEX[_p] = _i

MIN_PACKETS = 50
MIN_SHARE = 0.30
RATE_SYN = 50.0
RATE_SYNACK = 50.0
RATE_ACK = 2000.0
RATE_RST = 100.0
RATE_AMP = 20.0
RATE_UDP = 1000.0
RATE_FRAG = 50.0
RATE_DHCP = 10.0
AMP_MIN_REFLECTORS = 5
SIZE_BINS = [0, 64, 128, 256, 512, 1024, 1518, 65536 * 4]
SIZE_LABELS = ["0-63", "64-127", "128-255", "256-511", "512-1023", "1024-1517", "1518+"]
# Classic pcaps at least this big are summarised by two processes (see _summarize_split).
SPLIT_MIN_BYTES = 256 << 20
_FLUSH = 2_000_000  # raw address keys held before they are reduced to (key, count, bytes)
# Distinct keys a per-address tally counts exactly; past it the tally keeps the heaviest
# keys only (see _Tally). 2 M keys are ≈ 48 MB of table per tally.
CAP = 2_000_000
_TCP_FLAG_NAMES = [(0x02, "SYN"), (0x10, "ACK"), (0x04, "RST"), (0x01, "FIN"), (0x08, "PSH"), (0x20, "URG")]
_TCP_FLAG_EXTRA = [(0x40, "ECE"), (0x80, "CWR"), (0x100, "NS")]


def flag_name(flags: int) -> str:
    """'SYN', 'SYN,ACK', ... the way an engineer says it (ECE/CWR/NS appended)."""
    names = [n for bit, n in _TCP_FLAG_NAMES + _TCP_FLAG_EXTRA if flags & bit]
    return ",".join(names) if names else "NONE"


class _HyperLogLog:
    """Distinct-count estimate in 64 KiB (2**16 one-byte registers, ≈ 0.4 % standard error)."""

    P = 16

    def __init__(self) -> None:
        self.reg = np.zeros(1 << self.P, np.uint8)

    def add(self, hashes: np.ndarray) -> None:
        if hashes.size == 0:
            return
        idx = (hashes >> np.uint64(64 - self.P)).astype(np.intp)
        rest = (hashes & np.uint64((1 << (64 - self.P)) - 1)).astype(np.float64)  # < 2**53: exact
        rank = (64 - self.P + 1 - np.frexp(rest)[1]).astype(np.uint8)  # leading zeros + 1
        np.maximum.at(self.reg, idx, rank)

    def merge(self, other: _HyperLogLog) -> None:
        np.maximum(self.reg, other.reg, out=self.reg)

    def count(self) -> int:
        m = self.reg.size
        est = 0.7213 / (1 + 1.079 / m) * m * m / float(np.ldexp(1.0, -self.reg.astype(np.int64)).sum())
        zeros = int(np.count_nonzero(self.reg == 0))
        if est <= 2.5 * m and zeros:
            est = m * math.log(m / zeros)  # linear counting for small sets
        return int(round(est))


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads addresses over all 64 bits for the HyperLogLog."""
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class _Tally:
    """Per-key packet and byte counts over a stream, exact up to ``cap`` distinct keys.

    Keys (at most 40 bits) are buffered raw, then sorted and reduced to (key, packets,
    bytes) and merged into one key-sorted table. While the table holds at most ``cap``
    keys every figure is exact. When a merge takes it past ``cap`` the tally becomes a
    batched Misra–Gries summary: the table is cut back to at most ``cap // 2`` keys by
    subtracting the (cap//2 + 1)-th largest counter from every counter, and that amount
    is added to ``floor``. Then, as Misra–Gries guarantees:

    * a key with more than ``floor`` packets is in the table, and ``floor`` never
      exceeds packets / (cap // 2 + 1), so every real heavy hitter is kept;
    * a key's ``packets`` and ``bytes`` are what was counted since it (last) entered the
      table, and ``error`` (the floor when it entered) bounds the packets it may have had
      before: true packets lie in [packets, packets + error]. A key kept since before the
      first cut has error 0 and exact counts.

    Optional extras for the source tally: ``distinct=True`` keeps a HyperLogLog of every
    key from the cut on (seeded with the exact key set), for the number of distinct keys;
    ``prefix_shift=8`` starts, at the cut, a child tally of ``key >> 8`` (/24 prefixes)
    seeded with the exact prefix counts, so prefix counts stay as good as address ones.
    """

    def __init__(self, cap: int = CAP, *, distinct: bool = False, prefix_shift: int = 0) -> None:
        self.cap = max(2, int(cap))
        self.keep = self.cap // 2
        self.flush_at = min(_FLUSH, 4 * self.cap)
        self.distinct = distinct
        self.prefix_shift = prefix_shift
        self.raw: list[np.ndarray] = []
        self.raw_n = 0
        self.packets = 0
        self.bounded = False
        self.floor = 0
        self.hll: _HyperLogLog | None = None
        self.prefix: _Tally | None = None
        z = np.zeros(0, np.int64)
        self.keys, self.counts, self.bytes = z.astype(np.uint64), z, z
        self.error: np.ndarray | None = None  # per key, once bounded

    def add(self, keys: np.ndarray, nbytes: np.ndarray) -> None:
        if keys.size == 0:
            return
        # Key in the high 40 bits, length in the low 24: one radix-friendly sort reduces both.
        packed = (keys.astype(np.uint64) << np.uint64(24)) | np.minimum(nbytes, 0xFFFFFF).astype(np.uint64)
        self.raw.append(packed)
        self.raw_n += packed.size
        self.packets += packed.size
        if self.prefix is not None:
            self.prefix.add(keys.astype(np.uint64) >> np.uint64(self.prefix_shift), nbytes)
        if self.raw_n >= self.flush_at:
            self._flush()

    def _flush(self) -> None:
        if not self.raw:
            return
        packed = np.sort(np.concatenate(self.raw))
        self.raw, self.raw_n = [], 0
        keys = packed >> np.uint64(24)
        start = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        counts = np.diff(np.r_[start, keys.size]).astype(np.int64)
        nbytes = np.add.reduceat((packed & np.uint64(0xFFFFFF)).astype(np.int64), start)
        del packed
        keys = keys[start]
        if self.hll is not None:
            self.hll.add(_mix64(keys))
        self._merge(keys, counts, nbytes)
        if self.keys.size > self.cap:
            if not self.bounded:
                self._start_bounded()
            self._cut()

    def _merge(self, k: np.ndarray, c: np.ndarray, b: np.ndarray) -> None:
        """Adds one sorted, unique (key, packets, bytes) part into the sorted table."""
        if self.keys.size == 0:
            self.keys, self.counts, self.bytes = k, c, b
            if self.bounded:
                self.error = np.full(k.size, self.floor, np.int64)
            return
        pos = np.searchsorted(self.keys, k)
        hit = pos < self.keys.size
        hit[hit] = self.keys[pos[hit]] == k[hit]
        at = pos[hit]
        self.counts[at] += c[hit]
        self.bytes[at] += b[hit]
        new = ~hit
        n_new = int(np.count_nonzero(new))
        if n_new == 0:
            return
        # Keys are unique and both sides sorted: new key j lands at pos + j in the result.
        size = self.keys.size + n_new
        dest = pos[new] + np.arange(n_new)
        old = np.ones(size, bool)
        old[dest] = False

        def spread(col: np.ndarray, vals: np.ndarray | int) -> np.ndarray:
            out = np.empty(size, col.dtype)
            out[old] = col
            out[dest] = vals
            return out

        self.keys = spread(self.keys, k[new])
        self.counts = spread(self.counts, c[new])
        self.bytes = spread(self.bytes, b[new])
        if self.error is not None:
            self.error = spread(self.error, self.floor)

    def _start_bounded(self) -> None:
        self.bounded = True
        self.error = np.zeros(self.keys.size, np.int64)
        if self.distinct:
            self.hll = _HyperLogLog()
            self.hll.add(_mix64(self.keys))
        if self.prefix_shift:
            self.prefix = _Tally(self.cap)
            self.prefix.packets = self.packets - self.raw_n
            if self.keys.size:
                p = self.keys >> np.uint64(self.prefix_shift)
                start = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
                self.prefix._merge(p[start], np.add.reduceat(self.counts, start), np.add.reduceat(self.bytes, start))
            if self.prefix.keys.size > self.prefix.cap:
                self.prefix._start_bounded()
                self.prefix._cut()

    def _cut(self) -> None:
        """Misra–Gries step: subtract the (keep+1)-th largest counter, drop what reaches 0."""
        mg = self.counts + self.error - self.floor
        t = int(np.partition(mg, mg.size - self.keep - 1)[mg.size - self.keep - 1])
        self.floor += t
        kept = mg > t
        self.keys, self.counts, self.bytes = self.keys[kept], self.counts[kept], self.bytes[kept]
        self.error = self.error[kept]

    def result(self) -> _Tally:
        self._flush()
        if self.prefix is not None:
            self.prefix._flush()
        return self

    def merge(self, other: _Tally) -> None:
        """Adds the tally of another part of the stream (``other`` is consumed).

        Both exact: the tables are added, which is exactly what one tally over both parts
        holds (and it turns bounded the same way if the union passes ``cap``). Otherwise
        the mergeable Misra–Gries rule: an exact side first becomes a bounded one with
        floor 0, counters of the same key add, a key missing on one side may have had up
        to that side's floor there (added to its ``error``), the floors add, and the
        table is cut back if it passed ``cap``. HyperLogLogs take the register-wise max.
        """
        self.result()
        other.result()
        if not self.bounded and not other.bounded:
            self.packets += other.packets
            if other.keys.size:
                self._merge(other.keys, other.counts, other.bytes)
            if self.keys.size > self.cap:
                self._start_bounded()
                self._cut()
            return
        if not self.bounded:
            self._start_bounded()
        if not other.bounded:
            other._start_bounded()
        fa, fb = self.floor, other.floor
        keys = np.concatenate([self.keys, other.keys])
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        start = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if keys.size else np.zeros(0, np.intp)
        both = np.diff(np.r_[start, keys.size]) == 2

        def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            col = np.concatenate([a, b])[order]
            return np.add.reduceat(col, start) if start.size else col

        counts, nbytes = add(self.counts, other.counts), add(self.bytes, other.bytes)
        error = add(self.error + fb, other.error + fa)
        error[both] -= fa + fb  # a key on both sides: its own two errors, not the floors
        self.keys, self.counts, self.bytes, self.error = keys[start], counts, nbytes, error
        self.floor = fa + fb
        self.packets += other.packets
        if self.hll is not None and other.hll is not None:
            self.hll.merge(other.hll)
        if self.prefix is not None and other.prefix is not None:
            self.prefix.merge(other.prefix)
        if self.keys.size > self.cap:
            self._cut()

    def distinct_keys(self) -> int:
        """Exact number of keys, or the HyperLogLog estimate once bounded (never below the table)."""
        if self.bounded and self.hll is not None:
            return max(self.hll.count(), int(self.keys.size))
        return int(self.keys.size)


class _Tally6:
    """IPv6 addresses as a dict, with the same cap, Misra–Gries cut and HyperLogLog as :class:`_Tally`."""

    def __init__(self, cap: int = CAP // 8, *, distinct: bool = False) -> None:
        self.cap = max(2, int(cap))
        self.keep = self.cap // 2
        self.distinct = distinct
        self.store: dict[tuple[int, int], list[int]] = {}  # (hi, lo) -> [packets, bytes, error]
        self.packets = 0
        self.bounded = False
        self.floor = 0
        self.hll: _HyperLogLog | None = None

    def add(self, addrs: np.ndarray, nbytes: np.ndarray) -> None:
        if addrs.shape[0] == 0:
            return
        self.packets += addrs.shape[0]
        if self.hll is not None:
            self.hll.add(_mix64(addrs[:, 0] ^ _mix64(addrs[:, 1])))
        store, floor = self.store, self.floor
        for key, w in zip(map(tuple, addrs.tolist()), nbytes.tolist(), strict=True):
            slot = store.get(key)
            if slot is None:
                store[key] = [1, w, floor]
            else:
                slot[0] += 1
                slot[1] += w
        if len(store) > self.cap:
            self._cut()

    def _start_bounded(self) -> None:
        self.bounded = True
        if self.distinct:
            addrs = np.array(list(self.store), np.uint64).reshape(-1, 2)
            self.hll = _HyperLogLog()
            self.hll.add(_mix64(addrs[:, 0] ^ _mix64(addrs[:, 1])))

    def _cut(self) -> None:
        if not self.bounded:
            self._start_bounded()
        mg = np.array([v[0] + v[2] for v in self.store.values()], np.int64) - self.floor
        t = int(np.partition(mg, mg.size - self.keep - 1)[mg.size - self.keep - 1])
        self.floor += t
        self.store = {k: v for (k, v), m in zip(self.store.items(), (mg > t).tolist(), strict=True) if m}

    def distinct_keys(self) -> int:
        if self.bounded and self.hll is not None:
            return max(self.hll.count(), len(self.store))
        return len(self.store)

    def merge(self, other: _Tally6) -> None:
        """Adds another part's tally, by the same rules as :meth:`_Tally.merge` (with both
        sides exact, the floors and errors are all 0 and this is a plain sum)."""
        self.packets += other.packets
        if self.bounded or other.bounded:
            if not self.bounded:
                self._start_bounded()
            if not other.bounded:
                other._start_bounded()
        store, fa, fb = self.store, self.floor, other.floor
        if fb:
            for v in store.values():
                v[2] += fb
        for key, v in other.store.items():
            slot = store.get(key)
            if slot is None:
                store[key] = [v[0], v[1], v[2] + fa]
            else:
                slot[0] += v[0]
                slot[1] += v[1]
                slot[2] += v[2] - fb
        self.floor = fa + fb
        if self.hll is not None and other.hll is not None:
            self.hll.merge(other.hll)
        if len(store) > self.cap:
            self._cut()

    # Pickled as arrays (a child process sends its tallies back): far cheaper than a dict.
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        store = state.pop("store")
        state["_keys"] = np.array(list(store), np.uint64).reshape(-1, 2)
        state["_vals"] = np.array(list(store.values()), np.int64).reshape(-1, 3)
        return state

    def __setstate__(self, state: dict) -> None:
        keys, vals = state.pop("_keys"), state.pop("_vals")
        self.__dict__.update(state)
        self.store = dict(zip(map(tuple, keys.tolist()), vals.tolist(), strict=True))


_HISTOGRAMS = ("proto", "tcp_sport", "tcp_dport", "udp_sport", "udp_dport", "udp_sport_len", "flags", "ttl", "sizes")


@dataclass
class PcapSummarizer:
    """Aggregates batches from :class:`PcapReader`; ``result()`` gives the summary dict.

    ``cap`` is the number of distinct IPv4 keys each per-address tally counts exactly
    (an eighth of it for IPv6 addresses, which are held in dicts); past it the tally keeps
    only the heaviest keys and the figures drawn from it are flagged as estimates.
    """

    cap: int = CAP
    packets: int = 0
    nbytes: int = 0
    ts_min: float = math.inf
    ts_max: float = -math.inf
    proto: np.ndarray = field(default_factory=lambda: np.zeros(257, np.int64))  # index proto+1, 0 = non-IP
    tcp_sport: np.ndarray = field(default_factory=lambda: np.zeros(65536, np.int64))
    tcp_dport: np.ndarray = field(default_factory=lambda: np.zeros(65536, np.int64))
    udp_sport: np.ndarray = field(default_factory=lambda: np.zeros(65536, np.int64))
    udp_dport: np.ndarray = field(default_factory=lambda: np.zeros(65536, np.int64))
    udp_sport_len: np.ndarray = field(default_factory=lambda: np.zeros(65536, np.float64))
    flags: np.ndarray = field(default_factory=lambda: np.zeros(4096, np.int64))
    ttl: np.ndarray = field(default_factory=lambda: np.zeros(256, np.int64))
    sizes: np.ndarray = field(default_factory=lambda: np.zeros(len(SIZE_LABELS), np.int64))
    fragments: int = 0
    fragments_nonfirst: int = 0
    ntp_trigger: int = 0
    dhcp_requests: int = 0
    per_sec: dict[int, list[int]] = field(default_factory=dict)
    src4: _Tally = field(init=False)
    dst4: _Tally = field(init=False)
    src6: _Tally6 = field(init=False)
    dst6: _Tally6 = field(init=False)
    frag_src4: _Tally = field(init=False)
    amp_src: _Tally = field(init=False)  # (reflector port index, source) pairs
    # Conversations, protocol hierarchy, anomalies: ``summary["statistics"]`` (see stats.py).
    stats: CaptureStatistics = field(init=False)

    def __post_init__(self) -> None:
        self.stats = CaptureStatistics()
        self.src4 = _Tally(self.cap, distinct=True, prefix_shift=8)
        self.dst4 = _Tally(self.cap)
        self.src6 = _Tally6(self.cap // 8, distinct=True)
        self.dst6 = _Tally6(self.cap // 8)
        self.frag_src4 = _Tally(self.cap)
        self.amp_src = _Tally(self.cap)

    def add(self, b: PacketBatch) -> None:
        n = len(b)
        if n == 0:
            return
        wl = b.wirelen
        self.packets += n
        self.nbytes += int(wl.sum())
        self.ts_min = min(self.ts_min, float(b.ts.min()))
        self.ts_max = max(self.ts_max, float(b.ts.max()))
        self.proto += np.bincount(b.proto.astype(np.int64) + 1, minlength=257)[:257]
        secs = np.floor(b.ts).astype(np.int64)
        lo = int(secs.min())
        span = int(secs.max()) - lo
        if span < 4096:
            pk = np.bincount(secs - lo, minlength=span + 1)
            by = np.bincount(secs - lo, weights=wl, minlength=span + 1)
            for i in np.flatnonzero(pk).tolist():
                slot = self.per_sec.setdefault(lo + i, [0, 0])
                slot[0] += int(pk[i])
                slot[1] += int(by[i])
        else:
            u, inv = np.unique(secs, return_inverse=True)
            pk = np.bincount(inv)
            by = np.bincount(inv, weights=wl)
            for s, p, q in zip(u.tolist(), pk.tolist(), by.tolist(), strict=True):
                slot = self.per_sec.setdefault(s, [0, 0])
                slot[0] += p
                slot[1] += int(q)
        has_ports = b.sport >= 0
        tcp = has_ports & (b.proto == 6)
        udp = has_ports & (b.proto == 17)
        if tcp.any():
            self.tcp_sport += np.bincount(b.sport[tcp], minlength=65536)
            self.tcp_dport += np.bincount(b.dport[tcp], minlength=65536)
        if udp.any():
            us = b.sport[udp]
            self.udp_sport += np.bincount(us, minlength=65536)
            self.udp_dport += np.bincount(b.dport[udp], minlength=65536)
            self.udp_sport_len += np.bincount(us, weights=b.ip_len[udp], minlength=65536)
            ai = _AMP_INDEX[us]
            amp = (ai >= 0) & (b.ip_version[udp] == 4)
            if amp.any():
                key = (ai[amp].astype(np.uint64) << np.uint64(32)) | b.src4[udp][amp].astype(np.uint64)
                self.amp_src.add(key, b.wirelen[udp][amp])
            p0 = b.udp_payload0[udp]
            ud = b.dport[udp]
            # NTP mode lives in the low 3 bits of the first byte; 6 = control, 7 = private.
            self.ntp_trigger += int(np.count_nonzero((ud == 123) & (us != 123) & np.isin(p0 & 7, (6, 7)) & (p0 >= 0)))
            self.dhcp_requests += int(np.count_nonzero((ud == 67) & (p0 == 1)))
        tf = b.tcp_flags
        if (tf >= 0).any():
            self.flags += np.bincount(tf[tf >= 0].astype(np.int64), minlength=4096)
        isip = b.ip_version > 0
        self.ttl += np.bincount(b.ttl[isip].astype(np.int64), minlength=256)[:256]
        self.sizes += np.bincount(np.searchsorted(SIZE_BINS, wl, side="right") - 1, minlength=len(SIZE_LABELS))[
            : len(SIZE_LABELS)
        ]
        self.fragments += int(np.count_nonzero(b.frag))
        self.fragments_nonfirst += int(np.count_nonzero(b.frag_nonfirst))
        is4 = b.ip_version == 4
        self.src4.add(b.src4[is4], wl[is4])
        self.dst4.add(b.dst4[is4], wl[is4])
        nf = b.frag_nonfirst & is4 & (b.proto == 17)
        if nf.any():
            self.frag_src4.add(b.src4[nf], wl[nf])
        is6 = b.ip_version == 6
        if is6.any():
            self.src6.add(b.src6[is6], wl[is6])
            self.dst6.add(b.dst6[is6], wl[is6])
        self.stats.add(b)

    def flush(self) -> None:
        """Reduces every buffered address key into its tally (before pickling or merging)."""
        for t in (self.src4, self.dst4, self.frag_src4, self.amp_src):
            t.result()

    def merge(self, other: PcapSummarizer) -> None:
        """Adds the summary state of another part of the same capture (``other`` is consumed).

        Every figure is a sum, a min/max or a tally merge, so for captures within the
        tallies' ``cap`` the merged result equals that of one summariser over both parts.
        """
        self.packets += other.packets
        self.nbytes += other.nbytes
        self.ts_min = min(self.ts_min, other.ts_min)
        self.ts_max = max(self.ts_max, other.ts_max)
        for name in _HISTOGRAMS:
            getattr(self, name).__iadd__(getattr(other, name))
        self.fragments += other.fragments
        self.fragments_nonfirst += other.fragments_nonfirst
        self.ntp_trigger += other.ntp_trigger
        self.dhcp_requests += other.dhcp_requests
        for t, (p, q) in other.per_sec.items():
            slot = self.per_sec.setdefault(t, [0, 0])
            slot[0] += p
            slot[1] += q
        for name in ("src4", "dst4", "src6", "dst6", "frag_src4", "amp_src"):
            getattr(self, name).merge(getattr(other, name))
        self.stats.merge(other.stats)

    # -------------------------------------------------------------------------------

    def result(self, *, errors: list[str] | None = None, top: int = 10) -> dict:
        duration = (self.ts_max - self.ts_min) if self.packets else 0.0
        src4, dst4, src6 = self.src4.result(), self.dst4.result(), self.src6
        top_src = _top_addrs(src4, src6, top)
        top_dst = _top_addrs(dst4, self.dst6, top)
        protocols: dict[str, int] = {}
        for p in np.flatnonzero(self.proto).tolist():
            name = "non-ip" if p == 0 else PROTO_NAMES.get(p - 1, "other")
            protocols[name] = protocols.get(name, 0) + int(self.proto[p])
        n_src = src4.distinct_keys() + src6.distinct_keys()
        counts = np.concatenate([src4.counts, np.array([v[0] for v in src6.store.values()], dtype=np.int64)])
        sources_estimated = src4.bounded or src6.bounded
        if sources_estimated:
            entropy = _entropy_estimate(counts, src4.packets + src6.packets, n_src)
        else:
            entropy = _entropy(counts)
        estimated: dict[str, dict] = {}
        if sources_estimated:
            floor = max(src4.floor, src6.floor)
            estimated["top_sources"] = {"max_error": floor}
            estimated["top_source_prefixes"] = {"max_error": src4.prefix.floor if src4.prefix else None}
            estimated["source_entropy"] = {
                "unique_sources": "HyperLogLog (≈ 0.4 % standard error)",
                "bits": "counted sources exact, the uncounted packets spread evenly over the other sources",
            }
        if dst4.bounded or self.dst6.bounded:
            estimated["top_destinations"] = {"max_error": max(dst4.floor, self.dst6.floor)}
        out = {
            "packets": self.packets,
            "bytes": self.nbytes,
            "duration_s": round(duration, 6),
            "start": None if not self.packets else self.ts_min,
            "end": None if not self.packets else self.ts_max,
            "protocols": dict(sorted(protocols.items(), key=lambda kv: (-kv[1], kv[0]))),
            "top_sources": top_src,
            "top_destinations": top_dst,
            "top_source_prefixes": _top_prefixes(src4, src6, top),
            "top_src_ports": _top_ports(self.tcp_sport, self.udp_sport, top),
            "top_dst_ports": _top_ports(self.tcp_dport, self.udp_dport, top),
            "tcp_flags": _flag_mix(self.flags),
            "per_second": [{"t": t, "packets": v[0], "bits": v[1] * 8} for t, v in sorted(self.per_sec.items())],
            "packet_sizes": {lab: int(c) for lab, c in zip(SIZE_LABELS, self.sizes.tolist(), strict=True)},
            "ttl": {str(t): int(c) for t, c in enumerate(self.ttl.tolist()) if c},
            "fragments": {"packets": self.fragments, "non_first": self.fragments_nonfirst},
            "source_entropy": {
                "unique_sources": n_src,
                "bits": round(entropy, 4),
                "normalized": round(min(entropy / math.log2(n_src), 1.0), 4) if n_src > 1 else 0.0,
                "estimated": sources_estimated,
            },
            "estimated": estimated,
            "errors": list(errors or []),
        }
        out["vectors"] = self._vectors(out, duration)
        out["statistics"] = self.stats.result(self, out["start"])
        if self.amp_src.bounded or self.frag_src4.bounded:
            estimated["vectors"] = {"reflectors": "lower bound: only the heaviest reflectors are kept"}
        return out

    def _vectors(self, s: dict, duration: float) -> list[dict]:
        n = self.packets
        if n == 0:
            return []
        dur = max(duration, 0.001)
        vec: list[dict] = []

        def rate(x: float) -> float:
            return x / dur

        def conf(share: float, pps: float) -> str:
            return "high" if share >= 0.6 and pps >= 1000 else "medium"

        def ev(count: int, share: float, pps: float, **extra) -> dict:
            d = {"packets": int(count), "share": round(share, 4), "pps": round(pps, 1)}
            d.update(extra)
            return d

        f = self.flags
        idx = np.arange(4096)
        syn = int(f[(idx & 0x17) == 0x02].sum())
        synack = int(f[(idx & 0x16) == 0x12].sum())
        ack_only = int(f[(idx & 0x17) == 0x10].sum())
        rst = int(f[(idx & 0x04) != 0].sum())
        n_src = s["source_entropy"]["unique_sources"]
        top_sources = s["top_sources"]

        if syn >= MIN_PACKETS and syn / n >= MIN_SHARE and rate(syn) >= RATE_SYN and synack < 0.2 * syn:
            dports = int(np.count_nonzero(self.tcp_dport))
            top3 = sum(t["packets"] for t in top_sources[:3])
            scan = top3 >= 0.9 * n and dports >= 50 and int(self.tcp_dport.max()) < 0.5 * syn
            if not scan:
                vec.append(
                    {
                        "name": "syn_flood",
                        "confidence": conf(syn / n, rate(syn)),
                        "evidence": ev(syn, syn / n, rate(syn), synack=synack, sources=n_src),
                    }
                )
        if (
            synack >= MIN_PACKETS
            and synack / n >= MIN_SHARE
            and rate(synack) >= RATE_SYNACK
            and syn < 0.2 * synack
            and n_src >= 10
        ):
            vec.append(
                {
                    "name": "synack_reflection",
                    "confidence": conf(synack / n, rate(synack)),
                    "evidence": ev(synack, synack / n, rate(synack), sources=n_src),
                }
            )
        elif synack >= MIN_PACKETS and synack / n >= MIN_SHARE and synack > syn and n_src >= 10:
            # Unsolicited-looking SYN-ACKs at a rate too low to call a flood (sampled or
            # low-and-slow reflection): worth a look, not worth an alarm.
            vec.append(
                {
                    "name": "synack_reflection",
                    "kind": "indicator",
                    "confidence": "low",
                    "evidence": ev(
                        synack,
                        synack / n,
                        rate(synack),
                        syn=syn,
                        sources=n_src,
                        note="SYN-ACKs outnumber SYNs but the rate is below the flood threshold",
                    ),
                }
            )
        if (
            ack_only >= MIN_PACKETS
            and ack_only / n >= 0.6
            and rate(ack_only) >= RATE_ACK
            and n_src >= 50
            and syn < 0.01 * ack_only
        ):
            vec.append(
                {
                    "name": "ack_flood",
                    "confidence": conf(ack_only / n, rate(ack_only)),
                    "evidence": ev(ack_only, ack_only / n, rate(ack_only), sources=n_src),
                }
            )
        if rst >= MIN_PACKETS and rst / n >= 0.5 and rate(rst) >= RATE_RST and n_src >= 50 and syn < 0.01 * rst:
            vec.append(
                {
                    "name": "rst_flood",
                    "confidence": conf(rst / n, rate(rst)),
                    "evidence": ev(rst, rst / n, rate(rst), sources=n_src),
                }
            )

        # Amplification: group reflected ports by service name (ISAKMP has two ports).
        amp_found = False
        frag = self.frag_src4.result()
        frag_k, frag_c, frag_b = frag.keys, frag.counts, frag.bytes
        by_service: dict[str, dict] = {}
        for port, (svc, min_len) in AMP_PORTS.items():
            c = int(self.udp_sport[port])
            if c == 0:
                continue
            d = by_service.setdefault(svc, {"packets": 0, "len": 0.0, "ports": [], "min_len": min_len})
            d["packets"] += c
            d["len"] += float(self.udp_sport_len[port])
            d["ports"].append(port)
        amp_keys = self.amp_src.result().keys
        for svc, d in by_service.items():
            c = d["packets"]
            mean_len = d["len"] / c
            # Reflectors of this service, and the port-less trailing fragments they sent.
            sel = np.isin((amp_keys >> np.uint64(32)).astype(np.int64), _AMP_INDEX[d["ports"]])
            refl = amp_keys[sel] & np.uint64(0xFFFFFFFF)
            reflectors = int(np.unique(refl).size)
            fmask = np.isin(frag_k, refl)
            total = c + int(frag_c[fmask].sum())
            vbytes = d["len"] + float(frag_b[fmask].sum())
            # An attack dominates the link in packets or in bits: amplified answers are big.
            share = max(total / n, vbytes / max(self.nbytes, 1))
            if (
                total >= MIN_PACKETS
                and share >= MIN_SHARE
                and rate(total) >= RATE_AMP
                and mean_len >= d["min_len"]
                and reflectors >= AMP_MIN_REFLECTORS
            ):
                amp_found = True
                vec.append(
                    {
                        "name": f"{svc}_amplification",
                        "confidence": conf(share, rate(total)),
                        "evidence": ev(
                            total,
                            share,
                            rate(total),
                            src_ports=d["ports"],
                            mean_ip_len=round(mean_len, 1),
                            reflectors=reflectors,
                            fragments=int(frag_c[fmask].sum()),
                        ),
                    }
                )
        udp_n = int(self.proto[18])
        if not amp_found and udp_n >= MIN_PACKETS and udp_n / n >= 0.6 and rate(udp_n) >= RATE_UDP:
            vec.append(
                {
                    "name": "udp_flood",
                    "confidence": conf(udp_n / n, rate(udp_n)),
                    "evidence": ev(udp_n, udp_n / n, rate(udp_n), sources=n_src),
                }
            )
        fr = self.fragments
        if fr >= MIN_PACKETS and fr / n >= MIN_SHARE and rate(fr) >= RATE_FRAG:
            vec.append(
                {
                    "name": "ip_fragment_flood",
                    "confidence": conf(fr / n, rate(fr)),
                    "evidence": ev(fr, fr / n, rate(fr), non_first=self.fragments_nonfirst),
                }
            )
        dh = self.dhcp_requests
        if dh >= MIN_PACKETS and rate(dh) >= RATE_DHCP:
            vec.append(
                {
                    "name": "dhcp_flood",
                    "confidence": conf(dh / n, rate(dh)),
                    "evidence": ev(dh, dh / n, rate(dh), clients=n_src),
                }
            )
        if self.ntp_trigger:
            vec.append(
                {
                    "name": "ntp_reflection_trigger",
                    "kind": "indicator",
                    "confidence": "low",
                    "evidence": ev(
                        self.ntp_trigger,
                        self.ntp_trigger / n,
                        rate(self.ntp_trigger),
                        note="NTP mode 6/7 requests (monlist-style) to port 123: the trigger packets of NTP "
                        "amplification; too few to call a flood",
                    ),
                }
            )
        floods = [v for v in vec if v.get("kind") != "indicator"]
        if floods:
            ent = s["source_entropy"]
            ttl_values = int(np.count_nonzero(self.ttl))
            if (ent["normalized"] >= 0.9 and ent["unique_sources"] >= 1000) or ttl_values >= 64:
                vec.append(
                    {
                        "name": "spoofing",
                        "kind": "indicator",
                        "confidence": "medium",
                        "evidence": {
                            "unique_sources": ent["unique_sources"],
                            "normalized_entropy": ent["normalized"],
                            "distinct_ttls": ttl_values,
                        },
                    }
                )
        for v in vec:
            v.setdefault("kind", "attack")
        return vec


def _entropy(counts: np.ndarray) -> float:
    tot = counts.sum()
    if tot <= 0:
        return 0.0
    p = counts[counts > 0] / tot
    return float(-(p * np.log2(p)).sum())


def _entropy_estimate(counts: np.ndarray, total: int, distinct: int) -> float:
    """Shannon entropy when only the heaviest sources were kept: the kept counts enter as
    they are, the packets not counted against them are spread evenly over the other
    (estimated) distinct sources. Exact for the uniform remainder of a spoofed flood; for
    a skewed remainder it overstates (evenly spread is the most entropy that mass can have)."""
    if total <= 0:
        return 0.0
    counts = counts[counts > 0]
    p = counts / total
    h = float(-(p * np.log2(p)).sum())
    rest = total - int(counts.sum())
    if rest > 0:
        others = min(max(distinct - counts.size, 1), rest)  # each source sent at least one packet
        h += rest / total * math.log2(total * others / rest)
    return h


def _row_error(tally: _Tally | _Tally6, err: int) -> dict:
    return {"max_error": int(err)} if tally.bounded else {}


# Rank of each octet's decimal text in string order: dotted quads compare as their texts do
# when compared octet by octet by these ranks ("1.x" < "10.x" < "9.x"), so the top-N can
# break ties by address text without formatting every tied address.
_OCTET_TEXT_RANK = np.argsort(np.argsort(np.array([str(i) for i in range(256)]))).astype(np.uint64)


def _text_key(addrs: np.ndarray) -> np.ndarray:
    """A uint64 per IPv4 address that sorts as the dotted-quad texts sort."""
    a = addrs.astype(np.uint64)
    r = _OCTET_TEXT_RANK
    out = r[(a >> np.uint64(24)) & np.uint64(255)] << np.uint64(24)
    out |= r[(a >> np.uint64(16)) & np.uint64(255)] << np.uint64(16)
    out |= r[(a >> np.uint64(8)) & np.uint64(255)] << np.uint64(8)
    return out | r[a & np.uint64(255)]


def _top_index(counts: np.ndarray, addrs: np.ndarray, top: int) -> np.ndarray:
    """Indices of the ``top`` largest counts, ordered by (-count, address text)."""
    n = counts.size
    if n == 0 or top <= 0:
        return np.zeros(0, np.intp)
    idx = np.arange(n)
    if n > top:
        cut = -np.partition(-counts, top - 1)[top - 1]  # the top-th largest (small kth: fast)
        above = np.flatnonzero(counts > cut)
        tied = np.flatnonzero(counts == cut)
        need = top - above.size
        if tied.size > need:
            tied = tied[np.argpartition(_text_key(addrs[tied]), need - 1)[:need]]
        idx = np.concatenate([above, tied])
    return idx[np.lexsort((_text_key(addrs[idx]), -counts[idx]))]


def _ipv4_texts(addrs: np.ndarray) -> list[str]:
    """Dotted quads for the few rows shown (no pyarrow: the summary path never imports it)."""
    return [f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}" for a in addrs.astype(np.uint64).tolist()]


def _top_addrs(t4: _Tally, t6: _Tally6, top: int) -> list[dict]:
    """Top addresses by packets, ties by address text; ``max_error`` on rows of a capped tally."""
    rows: list[tuple[int, int, str, dict]] = []
    if t4.keys.size:
        sel = _top_index(t4.counts, t4.keys, top)
        texts = _ipv4_texts(t4.keys[sel])
        errs = t4.error[sel].tolist() if t4.error is not None else [0] * sel.size
        rows += [
            (int(c), int(b), t, _row_error(t4, e))
            for c, b, t, e in zip(t4.counts[sel].tolist(), t4.bytes[sel].tolist(), texts, errs, strict=True)
        ]
    six = t6.store
    if len(six) > top:
        cut6 = sorted((v[0] for v in six.values()), reverse=True)[top - 1]
        six = {k: v for k, v in six.items() if v[0] >= cut6}
    rows += [(v[0], v[1], ipv6_string(*k), _row_error(t6, v[2])) for k, v in six.items()]
    rows.sort(key=lambda r: (-r[0], r[2]))
    return [{"ip": t, "packets": c, "bytes": b, **e} for c, b, t, e in rows[:top]]


def _top_prefixes(t4: _Tally, t6: _Tally6, top: int) -> list[dict]:
    """Top /24 (IPv4) and /48 (IPv6) source prefixes. A capped IPv4 tally has its own
    prefix tally (exact up to the cut); IPv6 prefixes of a capped tally sum the kept
    addresses only (``max_error`` None: no bound)."""
    rows: list[tuple[int, int, str, dict]] = []
    if t4.prefix is not None:
        pt = t4.prefix
        p, pc_, pb = pt.keys, pt.counts, pt.bytes
        perr = pt.error if pt.error is not None else np.zeros(p.size, np.int64)
    elif t4.keys.size:
        k = t4.keys >> np.uint64(8)
        start = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
        p, pc_, pb = k[start], np.add.reduceat(t4.counts, start), np.add.reduceat(t4.bytes, start)
        pt, perr = t4, np.zeros(p.size, np.int64)
    else:
        p = np.zeros(0, np.uint64)
    if p.size:
        order = _top_index(pc_, p << np.uint64(8), top)
        texts = _ipv4_texts(p[order] << np.uint64(8))
        rows += [
            (int(pc_[i]), int(pb[i]), t + "/24", _row_error(pt, perr[i]))
            for i, t in zip(order.tolist(), texts, strict=True)
        ]
    p48: dict[int, list[int]] = {}
    for (hi, _lo), v in t6.store.items():
        slot = p48.setdefault(hi >> 16, [0, 0])
        slot[0] += v[0]
        slot[1] += v[1]
    extra = {"max_error": None} if t6.bounded else {}
    rows += [(v[0], v[1], ipv6_string(k << 16, 0) + "/48", extra) for k, v in p48.items()]
    rows.sort(key=lambda r: (-r[0], r[2]))
    return [{"prefix": t, "packets": c, "bytes": b, **e} for c, b, t, e in rows[:top]]


def _top_ports(tcp: np.ndarray, udp: np.ndarray, top: int) -> list[dict]:
    rows = []
    for proto, arr in (("tcp", tcp), ("udp", udp)):
        nz = np.flatnonzero(arr)
        if nz.size > top:
            nz = nz[np.argsort(-arr[nz], kind="stable")[:top]]
        rows += [(int(arr[p]), proto, int(p)) for p in nz.tolist()]
    rows.sort(key=lambda r: (-r[0], r[1], r[2]))
    return [{"proto": pr, "port": p, "packets": c} for c, pr, p in rows[:top]]


def _flag_mix(flags: np.ndarray) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in np.flatnonzero(flags).tolist():
        name = flag_name(v)
        out[name] = out.get(name, 0) + int(flags[v])
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def summarize_pcap(
    path: str | os.PathLike[str],
    *,
    progress: Callable[[int, int], None] | None = None,
    top: int = 10,
    cap: int = CAP,
    split_min_bytes: int = SPLIT_MIN_BYTES,
) -> dict:
    """The ``analyze_pcap --json`` summary of one capture, in bounded memory.

    ``cap`` is the number of distinct addresses counted exactly per tally (see
    :class:`PcapSummarizer`). Raises ``PcapError`` only when the file is not a capture; a
    corrupt tail is reported in ``errors`` with everything before it summarised.

    A classic pcap of at least ``split_min_bytes`` is read by two processes, one half
    each, split at a record boundary (see :func:`_summarize_split`); the result is the
    same as one process gives (within the tallies' bounds once they are capped).
    """
    reader = PcapReader(path, progress=progress)
    if reader.format == "pcap" and reader.size >= split_min_bytes and _can_fork():
        boundary = reader.record_boundary(reader.size // 2)
        if boundary is not None and 24 < boundary < reader.size:
            reader.close()
            return _summarize_split(path, boundary, progress=progress, top=top, cap=cap)
    acc = PcapSummarizer(cap=cap)
    for batch in reader:
        acc.add(batch)
    return acc.result(errors=reader.errors, top=top)


def _can_fork() -> bool:
    return hasattr(os, "fork") and (os.cpu_count() or 1) >= 2


def _summarize_part(path: str | os.PathLike[str], *, cap: int, **span) -> tuple[PcapSummarizer, PcapReader]:
    reader = PcapReader(path, **span)
    acc = PcapSummarizer(cap=cap)
    for batch in reader:
        acc.add(batch)
    acc.flush()
    return acc, reader


def _child_summary(path: str | os.PathLike[str], start: int, cap: int, fd: int) -> None:
    """In the forked child: summarise from ``start`` to the end, pickle the state to ``fd``."""
    code = 1
    try:
        acc, reader = _summarize_part(path, cap=cap, start=start)
        data = pickle.dumps((acc, list(reader.errors)), protocol=pickle.HIGHEST_PROTOCOL)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        code = 0
    finally:
        os._exit(code)  # never back into the parent's code (its stack, atexit, buffers)


def _renumber(error: str, base: int) -> str:
    """A tail part's error names its packet from the part's start; make it file-wide."""
    m = re.match(r"packet (\d+) ", error)
    return f"packet {int(m.group(1)) + base} {error[m.end() :]}" if m else error


def _summarize_split(
    path: str | os.PathLike[str],
    boundary: int,
    *,
    progress: Callable[[int, int], None] | None,
    top: int,
    cap: int,
) -> dict:
    """Both cores on one classic pcap: a forked child summarises from ``boundary`` to the
    end while this process does the head, then the child's state (numpy arrays, pickled
    through a pipe) is merged in.

    Exactly the single-process result, or a fallback to it: if the head stops on an
    error, the tail is dropped (one reader would have stopped there too); if the head's
    last record runs past ``boundary`` (a false resync), the file is read again in one
    process; if the child fails, this process reads the tail itself.
    """
    size = os.path.getsize(path)
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        os.close(rfd)
        _child_summary(path, boundary, cap, wfd)
    os.close(wfd)
    chunks: list[bytes] = []

    def drain() -> None:
        while chunk := os.read(rfd, 1 << 20):
            chunks.append(chunk)

    # Read the pipe while the head is summarised, so the child never waits on a full pipe.
    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    reaped = False
    try:
        head_progress = None
        if progress is not None:
            # Both halves advance together: report the head's progress over the whole file.
            def head_progress(done: int, _total: int) -> None:
                progress(min(size - 24, done * (size - 24) // max(boundary - 24, 1)), size - 24)

        acc, head = _summarize_part(path, cap=cap, progress=head_progress, stop=boundary)
        if head.errors or head.overran or head.end_offset != boundary:
            # The head stopped early, or boundary is no record start on its chain: the
            # child's part is not what one reader would have read. Stop it.
            os.kill(pid, signal.SIGKILL)
        thread.join()
        status = os.waitpid(pid, 0)[1]
        reaped = True
    finally:
        if not reaped:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            thread.join()
            os.waitpid(pid, 0)
        os.close(rfd)
    if head.errors:
        return acc.result(errors=head.errors, top=top)
    if head.overran or head.end_offset != boundary:
        return summarize_pcap(path, progress=progress, top=top, cap=cap, split_min_bytes=size + 1)
    tail = None
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        with contextlib.suppress(Exception):
            tail = pickle.loads(b"".join(chunks))
    chunks.clear()
    if tail is None:  # the child failed: read its part here
        tail_acc, reader = _summarize_part(path, cap=cap, start=boundary)
        tail = (tail_acc, reader.errors)
    tail_acc, tail_errors = tail
    acc.merge(tail_acc)
    if progress is not None:
        progress(size - 24, size - 24)
    return acc.result(errors=[_renumber(e, head.packets) for e in tail_errors], top=top)
