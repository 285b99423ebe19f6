"""A big classic pcap is summarised by two processes, split at a record boundary, and the
two states merged: the result must be the one a single process gives (within the stated
bounds once the tallies are capped), and anything odd falls back to one process."""

from __future__ import annotations

import os
import pickle
import random

import numpy as np
import pytest

from tests.traffic import gen
from traffic.parsers import summary
from traffic.parsers.pcap import PcapReader
from traffic.parsers.summary import PcapSummarizer, _Tally, _Tally6, summarize_pcap

ONE = 1 << 62  # split_min_bytes that no file reaches: the single-process path


def _v6_packets(n: int, rng: random.Random) -> list:
    out = []
    for i in range(n):
        src = "2001:db8:ffff::1" if i % 7 == 0 else f"2001:db8:{rng.getrandbits(16):x}::{rng.getrandbits(8):x}"
        f = gen.eth(gen.ipv6(src, "2001:db8::2", 17, gen.udp(53, 4000 + i % 50, bytes(300))), 0x86DD)
        out.append((gen.T0 + 0.3 + i / 900, f, len(f)))
    return out


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """SYN flood, reflection, TLS, IPv6 answers and every awkward shape, over a few seconds."""
    rng = random.Random(3)
    packets = gen.merge(
        gen.syn_flood(6000, rng=rng, pps=2000),
        gen.reflection(3000, 53, 1200, rng=rng, pps=1000),
        gen.reflection(800, 123, 440, rng=rng, pps=300),
        gen.tls_session(900, rng=rng, rate=300),
        _v6_packets(1200, rng),
        gen.special_cases(),
    )
    path = tmp_path_factory.mktemp("split") / "mixed.pcap"
    gen.write_pcap(path, packets)
    return path


def _merged(path, boundary: int, *, cap: int = summary.CAP, batch: int = 1000) -> dict:
    """Head and tail summarised apart (in this process) and merged, as the split does."""
    head, tail = PcapSummarizer(cap=cap), PcapSummarizer(cap=cap)
    r1 = PcapReader(path, batch_packets=batch, stop=boundary)
    for b in r1:
        head.add(b)
    assert r1.end_offset == boundary and not r1.overran
    for b in PcapReader(path, batch_packets=batch, start=boundary):
        tail.add(b)
    tail.flush()
    head.merge(pickle.loads(pickle.dumps(tail, protocol=pickle.HIGHEST_PROTOCOL)))
    return head.result()


def test_split_summary_equals_single_process(mixed, monkeypatch):
    single = summarize_pcap(mixed, split_min_bytes=ONE)
    calls = []
    real = summary._summarize_split
    monkeypatch.setattr(summary, "_summarize_split", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    split = summarize_pcap(mixed, split_min_bytes=0)
    assert calls, "the split path did not run"
    assert split == single
    assert single["vectors"] and single["per_second"] and single["top_sources"]
    assert any(":" in r["ip"] for r in single["top_sources"])  # IPv6 sources take part


def test_merge_equals_single_process_at_many_boundaries(mixed):
    single = summarize_pcap(mixed, split_min_bytes=ONE)
    size = os.path.getsize(mixed)
    reader = PcapReader(mixed)
    for frac in (0.05, 0.3, 0.5, 0.77, 0.98):
        boundary = reader.record_boundary(int(size * frac))
        assert boundary is not None
        assert _merged(mixed, boundary) == single
    reader.close()


def test_record_boundary_finds_a_record_start(mixed):
    starts = set()
    off = 24
    data = mixed.read_bytes()
    while off < len(data):
        starts.add(off)
        off += 16 + int.from_bytes(data[off + 8 : off + 12], "little")
    reader = PcapReader(mixed)
    for near in range(24, len(data), len(data) // 37):
        b = reader.record_boundary(near)
        after = [s for s in starts if s >= near]
        assert b == min(after) if after else b is None
    assert reader.record_boundary(len(data) - 3) is None
    reader.close()


def test_capped_tallies_merge_within_their_bounds(tmp_path):
    rng = random.Random(5)
    heavy = {f"198.51.100.{i}": 400 - 50 * i for i in range(1, 6)}
    packets = list(gen.syn_flood(12_000, rng=rng, pps=20_000))
    for ip, n in heavy.items():
        for j in range(n):
            f = gen.eth(gen.ipv4(ip, gen.VICTIM, 6, gen.tcp(1000 + j, 80, gen.SYN)))
            packets.append((gen.T0 + 0.6 * j / n, f, len(f)))
    path = tmp_path / "flood.pcap"
    gen.write_pcap(path, sorted(packets, key=lambda p: p[0]))
    exact = summarize_pcap(path, split_min_bytes=ONE)
    true = {r["ip"]: r["packets"] for r in exact["top_sources"]}
    reader = PcapReader(path)
    cap = 1000
    for frac in (0.2, 0.5, 0.9):
        est = _merged(path, reader.record_boundary(int(reader.size * frac)), cap=cap)
        floor = est["estimated"]["top_sources"]["max_error"]
        assert 0 < floor <= exact["packets"] / (cap // 2 + 1)  # the Misra–Gries bound survives the merge
        assert [r["ip"] for r in est["top_sources"][:5]] == list(heavy)
        for row in est["top_sources"][:5]:
            assert row["packets"] <= true[row["ip"]] <= row["packets"] + row["max_error"]
        assert est["source_entropy"]["unique_sources"] == pytest.approx(
            exact["source_entropy"]["unique_sources"], rel=0.03
        )
        for key in ("packets", "bytes", "protocols", "tcp_flags", "top_destinations", "per_second", "ttl"):
            assert est[key] == exact[key]
    reader.close()
    # The forked path on the same capped case: same guarantees.
    split = summarize_pcap(path, cap=cap, split_min_bytes=0)
    assert [r["ip"] for r in split["top_sources"][:5]] == list(heavy)
    assert split["packets"] == exact["packets"] and split["per_second"] == exact["per_second"]


def test_tally_merge_exact_and_bounded():
    rng = np.random.default_rng(2)
    keys = rng.integers(0, 5000, 40_000).astype(np.uint64)
    keys[::3] = 7  # one heavy key
    nbytes = rng.integers(40, 1500, keys.size)
    one = _Tally(1 << 20, distinct=True, prefix_shift=8)
    one.add(keys, nbytes)
    one.result()
    a, b = _Tally(1 << 20, distinct=True, prefix_shift=8), _Tally(1 << 20, distinct=True, prefix_shift=8)
    a.add(keys[:12_345], nbytes[:12_345])
    b.add(keys[12_345:], nbytes[12_345:])
    a.merge(b)
    assert np.array_equal(a.keys, one.keys) and np.array_equal(a.counts, one.counts)
    assert np.array_equal(a.bytes, one.bytes) and a.packets == one.packets and not a.bounded

    cap = 600
    true = np.bincount(keys.astype(np.int64), minlength=5000)
    for cut in (0, 1000, 20_000, 39_999):
        a, b = _Tally(cap, distinct=True, prefix_shift=8), _Tally(cap, distinct=True, prefix_shift=8)
        for (start, stop), t in (((0, cut), a), ((cut, keys.size), b)):
            for lo in range(start, stop, 3000):
                hi = min(lo + 3000, stop)
                t.add(keys[lo:hi], nbytes[lo:hi])
        a.merge(b)
        assert a.bounded and a.keys.size <= cap and a.packets == keys.size
        assert a.floor <= keys.size / (cap // 2 + 1)
        got = true[a.keys.astype(np.int64)]
        assert np.all(a.counts <= got) and np.all(got <= a.counts + a.error)
        missing = np.setdiff1d(np.flatnonzero(true), a.keys.astype(np.int64))
        assert np.all(true[missing] <= a.floor)
        assert 7 in a.keys.tolist()
        assert a.distinct_keys() == pytest.approx(np.count_nonzero(true), rel=0.03)
        assert a.prefix is not None and a.prefix.packets == keys.size


def test_tally6_merge_and_pickle():
    rng = random.Random(4)
    addrs = np.array([[0x20010DB8 << 32, rng.randrange(300)] for _ in range(5000)], np.uint64)
    nbytes = np.array([rng.randrange(60, 1500) for _ in range(5000)], np.int64)
    one = _Tally6(1000, distinct=True)
    one.add(addrs, nbytes)
    a, b = _Tally6(1000, distinct=True), _Tally6(1000, distinct=True)
    a.add(addrs[:2000], nbytes[:2000])
    b.add(addrs[2000:], nbytes[2000:])
    a.merge(pickle.loads(pickle.dumps(b)))
    assert a.store == one.store and a.packets == one.packets

    a, b = _Tally6(100, distinct=True), _Tally6(100, distinct=True)
    for t, start, stop in ((a, 0, 2500), (b, 2500, 5000)):
        for lo in range(start, stop, 500):
            t.add(addrs[lo : lo + 500], nbytes[lo : lo + 500])
    a.merge(pickle.loads(pickle.dumps(b)))
    true = {k: v[0] for k, v in one.store.items()}
    assert a.bounded and len(a.store) <= 100 and a.floor <= 5000 / 51
    for k, (p, _b, err) in a.store.items():
        assert p <= true[k] <= p + err
    assert all(n <= a.floor for k, n in true.items() if k not in a.store)


def _truncate(src, dst, nbytes: int) -> None:
    dst.write_bytes(src.read_bytes()[:-nbytes])


def test_split_errors_name_packets_as_one_reader_does(mixed, tmp_path):
    # A tail record cut short: the error is in the child's part, numbered file-wide.
    cut = tmp_path / "cut.pcap"
    _truncate(mixed, cut, 100)
    single = summarize_pcap(cut, split_min_bytes=ONE)
    assert single["errors"]
    assert summarize_pcap(cut, split_min_bytes=0) == single

    # A corrupt record in the head: one reader stops there, so the tail must not count.
    bad = tmp_path / "bad.pcap"
    data = bytearray(mixed.read_bytes())
    off, n = 24, 0
    while off < len(data) // 4:
        off += 16 + int.from_bytes(data[off + 8 : off + 12], "little")
        n += 1
    data[off + 8 : off + 12] = (10**7).to_bytes(4, "little")
    bad.write_bytes(bytes(data))
    single = summarize_pcap(bad, split_min_bytes=ONE)
    assert single["errors"][0].startswith(f"packet {n + 1} at byte offset {off}:")
    assert summarize_pcap(bad, split_min_bytes=0) == single


def test_false_boundary_and_failed_child_fall_back(mixed, monkeypatch):
    single = summarize_pcap(mixed, split_min_bytes=ONE)
    reader = PcapReader(mixed)
    boundary = reader.record_boundary(reader.size // 2)
    reader.close()
    # Not a record start: the head overruns it, the file is read again by one process.
    got = summary._summarize_split(mixed, boundary + 5, progress=None, top=10, cap=summary.CAP)
    assert got == single
    # A child that dies without a word: this process reads the tail itself.
    monkeypatch.setattr(summary, "_child_summary", lambda *a: os._exit(3))
    seen = []
    got = summary._summarize_split(mixed, boundary, progress=lambda d, t: seen.append((d, t)), top=10, cap=summary.CAP)
    assert got == single
    assert seen and seen[-1][0] == seen[-1][1] == os.path.getsize(mixed) - 24
