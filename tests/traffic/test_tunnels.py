"""Tunnelled packets (GRE, IPIP, 6in4, VXLAN, GENEVE): inner packets decoded and tallied,
outer endpoints apart, and agreeing with tshark frame by frame (issue 14)."""

from __future__ import annotations

import random
import shutil
import struct
import subprocess
from collections import Counter

import pytest

from tests.traffic.gen import SYN, T0, eth, ipv4, ipv6, tcp, udp, write_pcap
from traffic.parsers.analysis import CaptureAnalyser
from traffic.parsers.pcap import TUNNEL_KINDS, PcapReader
from traffic.parsers.summary import summarize_pcap

OUTER = [("192.0.2.1", "198.51.100.1"), ("192.0.2.2", "198.51.100.1")]


def tunnelled(rng: random.Random, n: int = 400) -> list:
    frames = []
    for i in range(n):
        src = f"{rng.randint(11, 190)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        dst = f"203.0.113.{1 + i % 20}"
        inner4 = ipv4(src, dst, 6, tcp(rng.randint(1024, 65535), 80, SYN))
        inner_eth = eth(ipv4(src, dst, 17, udp(rng.randint(1024, 65535), 53, b"q" * 20)))
        o_src, o_dst = OUTER[i % 2]
        kind = i % 6
        if kind == 0:
            f = ipv4(o_src, o_dst, 4, inner4)
        elif kind == 1:
            f = ipv4(o_src, o_dst, 41, ipv6("2001:db8::1", f"2001:db8::{i % 7 + 2:x}", 17, udp(5000, 53, b"x")))
        elif kind == 2:
            f = ipv4(o_src, o_dst, 47, struct.pack("!HHI", 0x2000, 0x0800, 7) + inner4)  # keyed GRE
        elif kind == 3:
            f = ipv4(o_src, o_dst, 47, struct.pack("!HH", 0, 0x6558) + inner_eth)
        elif kind == 4:
            f = ipv4(o_src, o_dst, 17, udp(40000 + i, 4789, struct.pack("!II", 0x08000000, 42 << 8) + inner_eth))
        else:
            f = ipv4(o_src, o_dst, 17, udp(40000 + i, 6081, struct.pack("!BBHI", 0, 0, 0x6558, 9 << 8) + inner_eth))
        frames.append(eth(f))
    frames.append(eth(ipv4("192.0.2.9", "198.51.100.1", 6, tcp(1, 2, SYN))))  # not tunnelled
    return [(T0 + i / 100, f, len(f)) for i, f in enumerate(frames)]


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    path = tmp_path_factory.mktemp("tun") / "tunnels.pcap"
    write_pcap(path, tunnelled(random.Random(5)))
    return path


def ours(path) -> dict[int, tuple]:
    out = {}
    for b in PcapReader(path):
        if b.inner is None:
            continue
        i = b.inner
        for j, row in enumerate(b.tunnel_index.tolist()):
            src = ".".join(str(int(i.src4[j]) >> s & 255) for s in (24, 16, 8, 0)) if i.ip_version[j] == 4 else "v6"
            ports = (int(i.sport[j]), int(i.dport[j])) if i.sport[j] >= 0 else None
            out[int(b.number[row])] = (TUNNEL_KINDS[int(b.tunnel_kind[j])], src, int(i.proto[j]), ports)
    return out


def test_inner_packets_are_tallied_with_outer_endpoints_apart(capture):
    analyser = CaptureAnalyser(summarize_pcap(capture), [])
    for b in PcapReader(capture):
        analyser.add_packets(b)
    t = analyser.result()["tunnels"]
    assert t["packets"] == 400
    # 400 = 6 × 66 + 4: the first four kinds get 67 each (GRE twice: keyed IPv4 and Ethernet).
    assert t["kinds"] == {"gre": 134, "ipip": 67, "6in4": 67, "vxlan": 66, "geneve": 66}
    assert t["inner_protocols"] == {"udp": 266, "tcp": 134}
    assert {(r["src"], r["dst"]) for r in t["outer_endpoints"]} == set(OUTER)
    assert all(r["ip"].startswith("203.0.113.") for r in t["inner_top_destinations"])
    per_dst = Counter(f"203.0.113.{1 + i % 20}" for i in range(400) if i % 6 != 1)  # 6in4 carries IPv6
    expected = sorted(per_dst.items(), key=lambda kv: (-kv[1], int(kv[0].rsplit(".", 1)[1])))[:10]
    assert [(r["ip"], r["packets"]) for r in t["inner_top_destinations"]] == expected


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_inner_packets_agree_with_tshark(capture):
    fields = [
        "frame.number",
        "ip.src",
        "ip.proto",
        "ipv6.nxt",
        "tcp.srcport",
        "tcp.dstport",
        "udp.srcport",
        "udp.dstport",
    ]
    cmd = ["tshark", "-n", "-r", str(capture), "-T", "fields", "-E", "occurrence=a", "-E", "separator=|"]
    for f in fields:
        cmd += ["-e", f]
    lines = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()
    mine = ours(capture)
    assert len(mine) == 400
    checked = 0
    for line in lines:
        num, src, proto, nxt, tsp, tdp, usp, udp_ = line.split("|")
        n = int(num)
        if n not in mine:
            assert "," not in src  # tshark sees no inner IPv4 header either
            continue
        kind, inner_src, inner_proto, ports = mine[n]
        if inner_src == "v6":
            assert kind == "6in4" and int(nxt) == inner_proto
        else:
            assert src.split(",")[-1] == inner_src  # the innermost IPv4 source
            assert int(proto.split(",")[-1]) == inner_proto
        sp, dp = (tsp, tdp) if inner_proto == 6 else (usp, udp_)
        assert (int(sp.split(",")[-1]), int(dp.split(",")[-1])) == ports
        checked += 1
    assert checked == 400
