"""The PCAP summary in bounded memory: past ``cap`` distinct addresses the per-address
tallies keep only the heaviest keys; heavy hitters stay right and estimates are flagged."""

from __future__ import annotations

import ipaddress
import random

import numpy as np
import pytest

from tests.traffic import gen
from traffic.parsers.pcap import PcapReader
from traffic.parsers.summary import PcapSummarizer, _top_index, summarize_pcap

CAP = 1000
# Heavy hitters from the start (counted exactly however many addresses come after) and
# one that only starts once the tally is already capped.
EARLY = {f"198.51.100.{i}": 700 - 100 * i for i in range(1, 7)}
LATE = ("203.0.113.9", 250)


def _spoofed_flood_with_heavy_hitters(path, *, flood: int = 20_000) -> None:
    rng = random.Random(5)
    packets = []

    def syn(t: float, src: str) -> None:
        f = gen.eth(gen.ipv4(src, gen.VICTIM, 6, gen.tcp(rng.randint(1024, 65535), 80, gen.SYN), ttl=60))
        packets.append((t, f, len(f)))

    for i in range(flood):
        syn(gen.T0 + i / 20_000, gen.rand_ip(rng))
    span = flood / 20_000
    for ip, n in EARLY.items():
        for j in range(n):
            syn(gen.T0 + span * j / n, ip)
    ip, n = LATE
    for j in range(n):
        syn(gen.T0 + span * (0.75 + 0.25 * j / n), ip)
    gen.write_pcap(path, sorted(packets, key=lambda p: p[0]))


@pytest.fixture(scope="module")
def flood(tmp_path_factory):
    path = tmp_path_factory.mktemp("bounded") / "spoofed.pcap"
    _spoofed_flood_with_heavy_hitters(path)
    return path


def _summary(path, *, cap: int, batch: int) -> dict:
    acc = PcapSummarizer(cap=cap)
    reader = PcapReader(path, batch_packets=batch)
    for b in reader:
        acc.add(b)
    return acc.result(errors=reader.errors)


def test_cap_engages_and_heavy_hitters_stay_correct(flood):
    exact = summarize_pcap(flood)
    est = _summary(flood, cap=CAP, batch=1000)  # small batches: many flushes, many cuts
    assert exact["estimated"] == {} and exact["source_entropy"]["estimated"] is False
    assert "max_error" not in exact["top_sources"][0]

    # The cap engaged: figures drawn from the source tallies are flagged, with their bound.
    assert est["source_entropy"]["estimated"] is True
    assert {"top_sources", "top_source_prefixes", "source_entropy"} <= set(est["estimated"])
    floor = est["estimated"]["top_sources"]["max_error"]
    assert 0 < floor <= exact["packets"] / (CAP // 2 + 1)  # the Misra–Gries guarantee

    # Every real heavy hitter is listed in the right order; early ones exactly.
    true = {r["ip"]: r["packets"] for r in exact["top_sources"]}
    heavy = len(EARLY) + 1
    assert [r["ip"] for r in est["top_sources"][:heavy]] == [r["ip"] for r in exact["top_sources"][:heavy]]
    for row in est["top_sources"][:heavy]:
        assert row["packets"] <= true[row["ip"]] <= row["packets"] + row["max_error"]
        if row["ip"] in EARLY:
            assert (row["packets"], row["max_error"]) == (EARLY[row["ip"]], 0)
            assert row["bytes"] == next(r["bytes"] for r in exact["top_sources"] if r["ip"] == row["ip"])
    late = next(r for r in est["top_sources"] if r["ip"] == LATE[0])
    assert 0 < late["max_error"] <= floor  # it entered the table after the first cut
    assert est["top_source_prefixes"][0] == {**exact["top_source_prefixes"][0], "max_error": 0}

    # unique sources from the HyperLogLog, entropy from the kept counts plus the spread rest.
    assert est["source_entropy"]["unique_sources"] == pytest.approx(exact["source_entropy"]["unique_sources"], rel=0.03)
    assert est["source_entropy"]["normalized"] == pytest.approx(exact["source_entropy"]["normalized"], abs=0.02)
    assert exact["source_entropy"]["normalized"] >= 0.9

    # Vector detection is unchanged: still a spoofed SYN flood (entropy, not TTLs: one TTL here).
    assert [v["name"] for v in est["vectors"]] == [v["name"] for v in exact["vectors"]] == ["syn_flood", "spoofing"]
    assert est["vectors"][1]["evidence"]["distinct_ttls"] == 1
    # Everything not drawn from the source tallies is still exact.
    for key in ("packets", "bytes", "protocols", "tcp_flags", "top_destinations", "per_second", "top_dst_ports"):
        assert est[key] == exact[key]


def test_capped_tallies_hold_at_most_cap_keys_in_any_batching(flood):
    for batch in (997, 32_768):
        acc = PcapSummarizer(cap=CAP)
        for b in PcapReader(flood, batch_packets=batch):
            acc.add(b)
            assert acc.src4.keys.size <= CAP and acc.src4.raw_n < 4 * CAP
        s = acc.result()
        assert acc.src4.bounded and acc.src4.prefix is not None and acc.src4.prefix.keys.size <= CAP
        assert not acc.dst4.bounded  # one victim: exact
        assert [r["ip"] for r in s["top_sources"][:3]] == ["198.51.100.1", "198.51.100.2", "198.51.100.3"]


def test_ipv6_sources_are_capped_too(tmp_path):
    rng = random.Random(9)
    packets = []
    for i in range(3000):
        src = "2001:db8:ffff::1" if i % 10 == 0 else f"2001:db8:{rng.getrandbits(16):x}::{rng.getrandbits(16):x}"
        f = gen.eth(gen.ipv6(src, "2001:db8::2", 17, gen.udp(4000, 53, bytes(40))), 0x86DD)
        packets.append((gen.T0 + i / 1000, f, len(f)))
    path = tmp_path / "v6.pcap"
    gen.write_pcap(path, packets)
    exact = summarize_pcap(path)
    est = summarize_pcap(path, cap=800)  # IPv6 dicts hold an eighth: 100 addresses
    assert exact["estimated"] == {} and "top_sources" in est["estimated"]
    assert est["top_sources"][0] == {**exact["top_sources"][0], "max_error": 0}
    assert est["top_sources"][0]["packets"] == 300
    assert est["source_entropy"]["unique_sources"] == pytest.approx(exact["source_entropy"]["unique_sources"], rel=0.03)


def test_top_rows_break_ties_by_address_text_without_formatting_all():
    rng = np.random.default_rng(1)
    octets = np.array([0, 1, 2, 9, 10, 19, 25, 100, 250, 255], np.uint64)
    for _ in range(200):
        quads = rng.choice(octets, (int(rng.integers(1, 2000)), 4))
        addrs = np.unique(quads @ np.array([1 << 24, 1 << 16, 1 << 8, 1], np.uint64))
        counts = rng.integers(1, 4, addrs.size)
        top = int(rng.integers(1, 15))
        rows = [(int(c), str(ipaddress.IPv4Address(int(a)))) for c, a in zip(counts, addrs, strict=True)]
        got = [rows[i] for i in _top_index(counts, addrs, top)]
        assert got == sorted(rows, key=lambda r: (-r[0], r[1]))[:top]


def test_analyze_pcap_says_which_figures_are_estimates(flood, monkeypatch):
    import functools
    from io import StringIO

    from django.core.management import call_command

    from traffic.management.commands import analyze_pcap

    monkeypatch.setattr(analyze_pcap, "summarize_pcap", functools.partial(summarize_pcap, cap=CAP))
    out = StringIO()
    call_command("analyze_pcap", str(flood), stdout=out)
    text = out.getvalue()
    assert "estimated: top_sources: {'max_error':" in text
    assert "estimated: source_entropy:" in text
    assert "198.51.100.1 " in text  # the heaviest early source, counted exactly
    exact = StringIO()
    monkeypatch.undo()
    call_command("analyze_pcap", str(flood), stdout=exact)
    assert "estimated" not in exact.getvalue()
