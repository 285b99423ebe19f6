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
  bytes; **I/O graph** is the summary's per-second series, empty seconds filled with 0.
* **Anomalies** are drawn from figures already kept (TCP flags, fragments, truncated
  frames, zero windows, parser errors). TCP retransmissions and checksums are not
  checked, and the list says so rather than implying a clean capture.

Bytes are frame (wire) lengths, as in tshark's ``-z conv``/``-z endpoints``/``-z io,phs``.
Only the outer IP header of a tunnelled packet is counted here (the inner packets are in
the victim analysis' tunnel section), and a VLAN tag is not a layer of its own.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import numpy as np

from .pcap import PacketBatch, ipv6_string

__all__ = ["CaptureStatistics", "CONV_CAP"]

CONV_CAP = 200_000  # conversations per table (about 70 bytes each: ≈ 14 MB per full table)
TOP = 100  # rows of each table kept in the stored summary

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
_NPROTO = 258  # proto + 1 (0 = none), 256 = an IPv6 chain we could not finish


def _mix64(x: np.ndarray) -> np.ndarray:
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class _Conversations:
    """One bounded conversation table: key → canonical endpoints, A→B and B→A packets/bytes,
    first and last packet time (file order, as Wireshark's "Rel Start" and "Duration")."""

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

    def add(self, keys: np.ndarray, rep: np.ndarray, ab: np.ndarray, nbytes: np.ndarray, ts: np.ndarray) -> None:
        if keys.size == 0:
            return
        order = np.argsort(keys, kind="stable")  # stable: a group's first/last index is file order
        ks = keys[order]
        start = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
        end = np.r_[start[1:], ks.size]
        abo = ab[order]
        bo = nbytes[order].astype(np.int64)
        pab = np.add.reduceat(abo.astype(np.int64), start)
        bab = np.add.reduceat(np.where(abo, bo, 0), start)
        cols = np.stack([pab, bab, (end - start) - pab, np.add.reduceat(bo, start) - bab], axis=1)
        self._merge(ks[start], rep[order[start]], cols, ts[order[start]], ts[order[end - 1]])

    def _merge(self, k: np.ndarray, rep: np.ndarray, cols: np.ndarray, first: np.ndarray, last: np.ndarray) -> None:
        """Adds sorted unique rows; new keys enter while there is room, the rest go to "other"."""
        if self.keys.size:
            pos = np.searchsorted(self.keys, k)
            hit = pos < self.keys.size
            hit[hit] = self.keys[pos[hit]] == k[hit]
            at = pos[hit]
            self.cols[at] += cols[hit]
            self.first[at] = np.minimum(self.first[at], first[hit])
            self.last[at] = np.maximum(self.last[at], last[hit])
            new = np.flatnonzero(~hit)
        else:
            new = np.arange(k.size)
        if new.size == 0:
            return
        room = self.cap - self.keys.size
        if new.size > room:
            # The heaviest newcomers (by packets) take the room left; the rest are "other".
            weight = cols[new, 0] + cols[new, 2]
            keep = np.sort(new[np.argsort(-weight, kind="stable")[: max(room, 0)]])
            refused = np.setdiff1d(new, keep, assume_unique=True)
            self.other += cols[refused].sum(axis=0)
            self.full = True
            new = keep
        if new.size == 0:
            return
        keys = np.concatenate([self.keys, k[new]])
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        self.rep = np.concatenate([self.rep, rep[new]])[order]
        self.cols = np.concatenate([self.cols, cols[new]])[order]
        self.first = np.concatenate([self.first, first[new]])[order]
        self.last = np.concatenate([self.last, last[new]])[order]

    def merge(self, other: _Conversations) -> None:
        if self.full or other.full:
            self.exact = False
        self.exact = self.exact and other.exact
        self.other += other.other
        self._merge(other.keys, other.rep, other.cols, other.first, other.last)

    @property
    def count(self) -> int:
        return int(self.keys.size)


class CaptureStatistics:
    """The conversation tables and the per-packet counters the summary does not keep."""

    def __init__(self, cap: int = CONV_CAP) -> None:
        self.conv = {
            "ip4": _Conversations(1, cap),  # rep: (a << 32 | b)
            "ip6": _Conversations(4, cap),  # rep: a.hi, a.lo, b.hi, b.lo
            "l4v4": _Conversations(2, cap),  # rep: (a << 32 | b), (proto << 32 | pa << 16 | pb)
            "l4v6": _Conversations(5, cap),
        }
        n = len(_LINK_NAMES) * 3 * _NPROTO
        self.layers = np.zeros((2, n), np.int64)  # packets, bytes per (link, IP version, protocol)
        self.truncated = 0
        self.truncated_bytes_lost = 0
        self.zero_window = 0
        self.links: set[int] = set()

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
        is4 = b.ip_version == 4
        if is4.any():
            self._v4(b, np.flatnonzero(is4))
        is6 = b.ip_version == 6
        if is6.any():
            self._v6(b, np.flatnonzero(is6))

    def _layers(self, b: PacketBatch) -> None:
        lt = b.linktype
        lk = np.full(lt.size, 4, np.int64)  # raw IP unless named
        for code, (_name, idx) in _LINK_CLASS.items():
            lk[lt == code] = idx
        for code in np.unique(lt).tolist():
            self.links.add(int(code))
        vk = np.where(b.ip_version == 4, 1, np.where(b.ip_version == 6, 2, 0))
        pk = np.clip(b.proto.astype(np.int64) + 1, 0, _NPROTO - 1)
        key = (lk * 3 + vk) * _NPROTO + pk
        size = self.layers.shape[1]
        self.layers[0] += np.bincount(key, minlength=size)
        self.layers[1] += np.bincount(key, weights=b.wirelen, minlength=size).astype(np.int64)

    def _v4(self, b: PacketBatch, i: np.ndarray) -> None:
        s, d = b.src4[i].astype(np.uint64), b.dst4[i].astype(np.uint64)
        wl, ts = b.wirelen[i], b.ts[i]
        ab = s <= d
        lo, hi = np.where(ab, s, d), np.where(ab, d, s)
        pair = (lo << np.uint64(32)) | hi
        self.conv["ip4"].add(pair, pair[:, None], ab, wl, ts)
        sp, dp, proto = b.sport[i], b.dport[i], b.proto[i]
        m = (sp >= 0) & ((proto == 6) | (proto == 17))
        if not m.any():
            return
        s, d, sp, dp = s[m], d[m], sp[m].astype(np.uint64), dp[m].astype(np.uint64)
        ab = (s < d) | ((s == d) & (sp <= dp))
        lo, hi = np.where(ab, s, d), np.where(ab, d, s)
        plo, phi = np.where(ab, sp, dp), np.where(ab, dp, sp)
        pair = (lo << np.uint64(32)) | hi
        ports = (proto[m].astype(np.uint64) << np.uint64(32)) | (plo << np.uint64(16)) | phi
        key = _mix64(_mix64(pair) ^ ports)
        self.conv["l4v4"].add(key, np.stack([pair, ports], axis=1), ab, wl[m], ts[m])

    def _v6(self, b: PacketBatch, i: np.ndarray) -> None:
        s, d = b.src6[i], b.dst6[i]
        wl, ts = b.wirelen[i], b.ts[i]
        ab = (s[:, 0] < d[:, 0]) | ((s[:, 0] == d[:, 0]) & (s[:, 1] <= d[:, 1]))
        lo, hi = np.where(ab[:, None], s, d), np.where(ab[:, None], d, s)
        rep = np.concatenate([lo, hi], axis=1)
        key = _mix64(_mix64(_mix64(_mix64(rep[:, 0]) ^ rep[:, 1]) ^ rep[:, 2]) ^ rep[:, 3])
        self.conv["ip6"].add(key, rep, ab, wl, ts)
        sp, dp, proto = b.sport[i], b.dport[i], b.proto[i]
        m = (sp >= 0) & ((proto == 6) | (proto == 17))
        if not m.any():
            return
        s, d, sp, dp = s[m], d[m], sp[m].astype(np.uint64), dp[m].astype(np.uint64)
        same = (s[:, 0] == d[:, 0]) & (s[:, 1] == d[:, 1])
        less = (s[:, 0] < d[:, 0]) | ((s[:, 0] == d[:, 0]) & (s[:, 1] < d[:, 1]))
        ab = less | (same & (sp <= dp))
        lo, hi = np.where(ab[:, None], s, d), np.where(ab[:, None], d, s)
        plo, phi = np.where(ab, sp, dp), np.where(ab, dp, sp)
        ports = (proto[m].astype(np.uint64) << np.uint64(32)) | (plo << np.uint64(16)) | phi
        rep = np.concatenate([lo, hi, ports[:, None]], axis=1)
        key = _mix64(_mix64(_mix64(_mix64(_mix64(rep[:, 0]) ^ rep[:, 1]) ^ rep[:, 2]) ^ rep[:, 3]) ^ ports)
        self.conv["l4v6"].add(key, rep, ab, wl[m], ts[m])

    def merge(self, other: CaptureStatistics) -> None:
        """Adds another part of the same capture (in file order after this one)."""
        for name, table in self.conv.items():
            table.merge(other.conv[name])
        self.layers += other.layers
        self.truncated += other.truncated
        self.truncated_bytes_lost += other.truncated_bytes_lost
        self.zero_window += other.zero_window
        self.links |= other.links

    # ------------------------------------------------------------------ result

    def result(self, summarizer: Any, start: float | None, top: int = TOP) -> dict:  # noqa: ANN401 - PcapSummarizer
        """The stored ``summary["statistics"]``; ``summarizer`` gives endpoints, flags, series."""
        t0 = start or 0.0
        conversations = {
            "ipv4": self._rows("ip4", t0, top, None),
            "ipv6": self._rows("ip6", t0, top, None),
            "tcp": self._l4_rows(6, t0, top),
            "udp": self._l4_rows(17, t0, top),
        }
        return {
            "conversations": conversations,
            "endpoints": _endpoints(summarizer, top),
            "protocol_hierarchy": self._hierarchy(),
            "io": _io_graph(summarizer.per_sec),
            "anomalies": self._anomalies(summarizer),
            "bytes": "frame length",
        }

    def _table_meta(self, name: str) -> dict:
        t = self.conv[name]
        return {
            "count": t.count,
            "full": t.full,
            "exact": t.exact,
            "other": None
            if not t.other.any()
            else {
                "packets_ab": int(t.other[0]),
                "bytes_ab": int(t.other[1]),
                "packets_ba": int(t.other[2]),
                "bytes_ba": int(t.other[3]),
            },
        }

    def _rows(self, name: str, t0: float, top: int, sel: np.ndarray | None) -> dict:
        t = self.conv[name]
        idx = np.arange(t.count) if sel is None else sel
        total_b = t.cols[idx, 1] + t.cols[idx, 3]
        total_p = t.cols[idx, 0] + t.cols[idx, 2]
        order = idx[np.lexsort((-total_p, -total_b))][:top]
        rows = []
        for i in order.tolist():
            r = t.rep[i]
            if name == "ip4":
                a, b = str(ipaddress.IPv4Address(int(r[0]) >> 32)), str(ipaddress.IPv4Address(int(r[0]) & 0xFFFFFFFF))
            elif name == "ip6":
                a, b = ipv6_string(int(r[0]), int(r[1])), ipv6_string(int(r[2]), int(r[3]))
            else:
                a, b = _l4_ends(name, r)
            c = t.cols[i]
            rows.append(
                {
                    "a": a,
                    "b": b,
                    "packets_ab": int(c[0]),
                    "bytes_ab": int(c[1]),
                    "packets_ba": int(c[2]),
                    "bytes_ba": int(c[3]),
                    "start": round(float(t.first[i]) - t0, 6),
                    "duration": round(float(t.last[i] - t.first[i]), 6),
                }
            )
        meta = self._table_meta(name)
        if sel is not None:
            meta["count"] = int(sel.size)
        return {**meta, "rows": rows}

    def _l4_rows(self, proto: int, t0: float, top: int) -> dict:
        out = {"rows": [], "count": 0, "full": False, "exact": True, "other": None}
        for name in ("l4v4", "l4v6"):
            t = self.conv[name]
            ports = t.rep[:, 1] if name == "l4v4" else t.rep[:, 4]
            sel = np.flatnonzero((ports >> np.uint64(32)) == np.uint64(proto))
            part = self._rows(name, t0, top, sel)
            out["rows"] += part["rows"]
            out["count"] += part["count"]
            out["full"] |= part["full"]
            out["exact"] &= part["exact"]
            if part["other"]:
                # "other" is per table (TCP and UDP share one): said once, on both.
                out["other_shared"] = part["other"]
        out["rows"].sort(key=lambda r: (-(r["bytes_ab"] + r["bytes_ba"]), -(r["packets_ab"] + r["packets_ba"])))
        out["rows"] = out["rows"][:top]
        out.pop("other")
        return out

    def _hierarchy(self) -> list[dict]:
        """Rows of (depth, protocol, frames, bytes) in tshark ``io,phs`` order (heaviest first)."""
        pk = self.layers[0].reshape(len(_LINK_NAMES), 3, _NPROTO)
        by = self.layers[1].reshape(len(_LINK_NAMES), 3, _NPROTO)
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
        add("note", "Sequence", "TCP retransmissions and out-of-order segments are not checked", 0)
        return out


def _l4_ends(name: str, r: np.ndarray) -> tuple[str, str]:
    if name == "l4v4":
        pair, ports = int(r[0]), int(r[1])
        a, b = str(ipaddress.IPv4Address(pair >> 32)), str(ipaddress.IPv4Address(pair & 0xFFFFFFFF))
        return f"{a}:{(ports >> 16) & 0xFFFF}", f"{b}:{ports & 0xFFFF}"
    ports = int(r[4])
    a, b = ipv6_string(int(r[0]), int(r[1])), ipv6_string(int(r[2]), int(r[3]))
    return f"[{a}]:{(ports >> 16) & 0xFFFF}", f"[{b}]:{ports & 0xFFFF}"


def _endpoints(s: Any, top: int) -> dict:  # noqa: ANN401 - PcapSummarizer
    """Sent (tx) and received (rx) per address, from the summary's own two tallies."""
    src, dst = s.src4.result(), s.dst4.result()
    keys = np.union1d(src.keys, dst.keys)
    cols = np.zeros((keys.size, 4), np.int64)
    if src.keys.size:
        at = np.searchsorted(keys, src.keys)
        cols[at, 0], cols[at, 1] = src.counts, src.bytes
    if dst.keys.size:
        at = np.searchsorted(keys, dst.keys)
        cols[at, 2], cols[at, 3] = dst.counts, dst.bytes
    rows = [
        (int(c[0] + c[2]), int(c[1] + c[3]), str(ipaddress.IPv4Address(int(k))), c)
        for k, c in zip(keys.tolist(), cols, strict=True)
    ]
    six: dict[tuple[int, int], list[int]] = {}
    for key, v in s.src6.store.items():
        six.setdefault(key, [0, 0, 0, 0])[0:2] = v[0], v[1]
    for key, v in s.dst6.store.items():
        six.setdefault(key, [0, 0, 0, 0])[2:4] = v[0], v[1]
    rows += [(c[0] + c[2], c[1] + c[3], ipv6_string(*key), c) for key, c in six.items()]
    rows.sort(key=lambda r: (-r[0], -r[1], r[2]))
    estimated = bool(src.bounded or dst.bounded or s.src6.bounded or s.dst6.bounded)
    return {
        "count": len(rows),
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


def _io_graph(per_sec: dict[int, list[int]], limit: int = 86_400) -> dict:
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
