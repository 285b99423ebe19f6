"""The PCAP summary an engineer reads first: what hit the customer, from where, how hard.

``summarize_pcap(path)`` streams the capture in small batches and keeps only aggregates
(per-port and per-flag counters, sorted per-address tallies), so a 4 GB capture needs a
few hundred MB of RAM. Its dict is exactly what ``manage.py analyze_pcap FILE --json``
prints.

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
  entropy ≥ 0.9 over ≥ 1,000 distinct sources, or TTLs spread over ≥ 64 values.

Confidence is "high" when the share is ≥ 60 % and the rate ≥ 1,000 pps, else "medium".
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .pcap import PacketBatch, PcapReader, ipv4_strings, ipv6_string

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
_FLUSH = 2_000_000  # raw address keys held before they are reduced to (key, count, bytes)
_TCP_FLAG_NAMES = [(0x02, "SYN"), (0x10, "ACK"), (0x04, "RST"), (0x01, "FIN"), (0x08, "PSH"), (0x20, "URG")]
_TCP_FLAG_EXTRA = [(0x40, "ECE"), (0x80, "CWR"), (0x100, "NS")]


def flag_name(flags: int) -> str:
    """'SYN', 'SYN,ACK', ... the way an engineer says it (ECE/CWR/NS appended)."""
    names = [n for bit, n in _TCP_FLAG_NAMES + _TCP_FLAG_EXTRA if flags & bit]
    return ",".join(names) if names else "NONE"


class _Tally:
    """Exact per-key packet and byte counts over a stream, in bounded, mergeable pieces."""

    def __init__(self) -> None:
        self.raw: list[np.ndarray] = []
        self.raw_n = 0
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, keys: np.ndarray, nbytes: np.ndarray) -> None:
        if keys.size == 0:
            return
        # Key in the high 40 bits, length in the low 24: one radix-friendly sort reduces both.
        packed = (keys.astype(np.uint64) << np.uint64(24)) | np.minimum(nbytes, 0xFFFFFF).astype(np.uint64)
        self.raw.append(packed)
        self.raw_n += packed.size
        if self.raw_n >= _FLUSH:
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
        self.parts.append((keys[start], counts, nbytes))
        if sum(p[0].size for p in self.parts) > 4 * _FLUSH or len(self.parts) > 8:
            self.parts = [self._merge(self.parts)]

    @staticmethod
    def _merge(parts):
        if len(parts) == 1:
            return parts[0]
        k = np.concatenate([p[0] for p in parts])
        c = np.concatenate([p[1] for p in parts])
        b = np.concatenate([p[2] for p in parts])
        order = np.argsort(k, kind="stable")
        k, c, b = k[order], c[order], b[order]
        start = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
        return k[start], np.add.reduceat(c, start), np.add.reduceat(b, start)

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._flush()
        if not self.parts:
            z = np.zeros(0, dtype=np.int64)
            return z.astype(np.uint64), z, z
        self.parts = [self._merge(self.parts)]
        return self.parts[0]


@dataclass
class PcapSummarizer:
    """Aggregates batches from :class:`PcapReader`; ``result()`` gives the summary dict."""

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
    src4: _Tally = field(default_factory=_Tally)
    dst4: _Tally = field(default_factory=_Tally)
    src6: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    dst6: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    frag_src4: _Tally = field(default_factory=_Tally)
    amp_src: _Tally = field(default_factory=_Tally)  # (reflector port index, source) pairs

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
            for store, arr in ((self.src6, b.src6), (self.dst6, b.dst6)):
                for (hi, lo6), w in zip(map(tuple, arr[is6].tolist()), wl[is6].tolist(), strict=True):
                    slot = store.setdefault((hi, lo6), [0, 0])
                    slot[0] += 1
                    slot[1] += w

    # -------------------------------------------------------------------------------

    def result(self, *, errors: list[str] | None = None, top: int = 10) -> dict:
        duration = (self.ts_max - self.ts_min) if self.packets else 0.0
        s4k, s4c, s4b = self.src4.result()
        d4k, d4c, d4b = self.dst4.result()
        top_src = _top_addrs(s4k, s4c, s4b, self.src6, top)
        top_dst = _top_addrs(d4k, d4c, d4b, self.dst6, top)
        protocols: dict[str, int] = {}
        for p in np.flatnonzero(self.proto).tolist():
            name = "non-ip" if p == 0 else PROTO_NAMES.get(p - 1, "other")
            protocols[name] = protocols.get(name, 0) + int(self.proto[p])
        n_src = int(s4k.size) + len(self.src6)
        counts = np.concatenate([s4c, np.array([v[0] for v in self.src6.values()], dtype=np.int64)])
        entropy = _entropy(counts)
        out = {
            "packets": self.packets,
            "bytes": self.nbytes,
            "duration_s": round(duration, 6),
            "start": None if not self.packets else self.ts_min,
            "end": None if not self.packets else self.ts_max,
            "protocols": dict(sorted(protocols.items(), key=lambda kv: (-kv[1], kv[0]))),
            "top_sources": top_src,
            "top_destinations": top_dst,
            "top_source_prefixes": _top_prefixes(s4k, s4c, s4b, self.src6, top),
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
                "normalized": round(entropy / math.log2(n_src), 4) if n_src > 1 else 0.0,
            },
            "errors": list(errors or []),
        }
        out["vectors"] = self._vectors(out, duration, s4k)
        return out

    def _vectors(self, s: dict, duration: float, s4k: np.ndarray) -> list[dict]:
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
        frag_k, frag_c, frag_b = self.frag_src4.result()
        by_service: dict[str, dict] = {}
        for port, (svc, min_len) in AMP_PORTS.items():
            c = int(self.udp_sport[port])
            if c == 0:
                continue
            d = by_service.setdefault(svc, {"packets": 0, "len": 0.0, "ports": [], "min_len": min_len})
            d["packets"] += c
            d["len"] += float(self.udp_sport_len[port])
            d["ports"].append(port)
        amp_keys = self.amp_src.result()[0]
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


def _top_addrs(k4, c4, b4, six: dict, top: int) -> list[dict]:
    rows: list[tuple[int, int, str]] = []
    if k4.size:
        # Take a few more than needed so that ties at the cut are ordered by ip text.
        m = min(k4.size, top * 4)
        sel = np.argpartition(-c4, m - 1)[:m] if k4.size > m else np.arange(k4.size)
        cut = np.sort(c4[sel])[::-1][min(top, sel.size) - 1]
        sel = np.flatnonzero(c4 >= cut)
        texts = ipv4_strings(k4[sel].astype(np.uint32)).to_pylist()
        rows += [(int(c), int(b), t) for c, b, t in zip(c4[sel].tolist(), b4[sel].tolist(), texts, strict=True)]
    rows += [(v[0], v[1], ipv6_string(*k)) for k, v in six.items()]
    rows.sort(key=lambda r: (-r[0], r[2]))
    return [{"ip": t, "packets": c, "bytes": b} for c, b, t in rows[:top]]


def _top_prefixes(k4, c4, b4, six: dict, top: int) -> list[dict]:
    rows = []
    if k4.size:
        p = k4 >> np.uint64(8)
        start = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
        pc_ = np.add.reduceat(c4, start)
        pb = np.add.reduceat(b4, start)
        order = np.argsort(-pc_, kind="stable")[: top * 2]
        texts = ipv4_strings((p[start][order] << np.uint64(8)).astype(np.uint32)).to_pylist()
        rows += [(int(pc_[i]), int(pb[i]), t + "/24") for i, t in zip(order.tolist(), texts, strict=True)]
    p48: dict[int, list[int]] = {}
    for (hi, _lo), v in six.items():
        slot = p48.setdefault(hi >> 16, [0, 0])
        slot[0] += v[0]
        slot[1] += v[1]
    rows += [(v[0], v[1], ipv6_string(k << 16, 0) + "/48") for k, v in p48.items()]
    rows.sort(key=lambda r: (-r[0], r[2]))
    return [{"prefix": t, "packets": c, "bytes": b} for c, b, t in rows[:top]]


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
) -> dict:
    """The ``analyze_pcap --json`` summary of one capture, in bounded memory.

    Raises ``PcapError`` only when the file is not a capture; a corrupt tail is reported
    in ``errors`` with everything before it summarised.
    """
    reader = PcapReader(path, progress=progress)
    acc = PcapSummarizer()
    for batch in reader:
        acc.add(batch)
    return acc.result(errors=reader.errors, top=top)
