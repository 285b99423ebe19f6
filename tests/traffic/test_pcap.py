"""The PCAP reader on hand-made captures: every link type and header shape we promise."""

from __future__ import annotations

import random
import struct

import pytest

from tests.traffic import gen
from traffic.parsers.pcap import PcapError, read_pcap


def _rows(result):
    return result.table.to_pylist()


@pytest.mark.parametrize("nanos", [False, True])
@pytest.mark.parametrize("big_endian", [False, True])
def test_classic_pcap_decodes_every_special_case(tmp_path, nanos, big_endian):
    path = tmp_path / "cases.pcap"
    gen.write_pcap(path, gen.special_cases(), nanos=nanos, big_endian=big_endian)
    res = read_pcap(path)
    assert res.errors == []
    assert res.link_types == [1]
    rows = _rows(res)
    assert len(rows) == 9
    syn, vlan, v6ext, frag1, frag2, v6frag, ping, ping6, arp = rows
    assert syn["ts"] == pytest.approx(gen.T0)
    assert (syn["ip.src"], syn["ip.proto"], syn["tcp.dstport"], syn["tcp.flags"]) == ("192.0.2.1", 6, 80, 0x02)
    assert syn["udp.srcport"] is None and syn["icmp.type"] is None and syn["ip.frag"] is False
    assert (vlan["ip.src"], vlan["tcp.flags"]) == ("192.0.2.2", 0x12)  # stacked 802.1ad + 802.1Q
    assert (v6ext["ip.version"], v6ext["ip.src"], v6ext["ip.proto"], v6ext["udp.dstport"]) == (6, "2001:db8::1", 17, 53)
    assert (frag1["ip.frag"], frag1["udp.srcport"]) == (True, 53)  # first fragment keeps its header
    assert (frag2["ip.frag"], frag2["udp.srcport"], frag2["ip.proto"]) == (True, None, 17)
    assert (v6frag["ip.frag"], v6frag["ip.proto"], v6frag["udp.srcport"]) == (True, 17, None)
    assert (ping["icmp.type"], ping6["icmp.type"], ping6["ip.proto"]) == (8, 128, 58)
    assert arp["ip.version"] is None and arp["ip.src"] is None and arp["frame.len"] == len(gen.special_cases()[-1][1])
    assert syn["ip.len"] == 40 and syn["ip.ttl"] == 64


@pytest.mark.parametrize(
    ("linktype", "wrap"),
    [
        (113, lambda ip, et: gen.sll(ip, et)),
        (276, lambda ip, et: gen.sll2(ip, et)),
        (101, lambda ip, et: ip),
        (12, lambda ip, et: ip),
        (228 + 1, lambda ip, et: ip),
    ],
)
def test_cooked_and_raw_link_types(tmp_path, linktype, wrap):
    v4 = gen.ipv4("203.0.113.5", "10.0.0.1", 17, gen.udp(123, 5000, bytes(468)))
    v6 = gen.ipv6("2001:db8::5", "2001:db8::1", 6, gen.tcp(443, 5000, gen.SYN | gen.ACK))
    pkts = [(gen.T0, wrap(v4, 0x0800), 0), (gen.T0 + 1, wrap(v6, 0x86DD), 0)]
    if linktype == 229:
        pkts = pkts[1:]
    pkts = [(t, d, len(d)) for t, d, _ in pkts]
    path = tmp_path / "x.pcap"
    gen.write_pcap(path, pkts, linktype=linktype)
    rows = _rows(read_pcap(path))
    if linktype != 229:
        assert (rows[0]["ip.src"], rows[0]["udp.srcport"], rows[0]["ip.len"]) == ("203.0.113.5", 123, 496)
    assert (rows[-1]["ip.src"], rows[-1]["tcp.flags"]) == ("2001:db8::5", 0x12)


def test_pcapng_interfaces_with_own_link_type_and_resolution(tmp_path):
    f_eth = gen.eth(gen.ipv4("192.0.2.10", "10.0.0.1", 6, gen.tcp(1, 2, gen.RST)))
    f_raw = gen.ipv4("192.0.2.11", "10.0.0.1", 17, gen.udp(53, 9, b"x"))
    f_sll2 = gen.sll2(gen.ipv4("192.0.2.12", "10.0.0.1", 1, gen.icmp(3)))
    data = gen.pcapng_bytes(
        [(1, None), (101, 9), (276, 0x80 | 20)],
        [
            (0, gen.T0, f_eth, len(f_eth), "epb"),
            (1, gen.T0 + 0.5, f_raw, len(f_raw), "epb"),
            (2, gen.T0 + 1.25, f_sll2, len(f_sll2), "opb"),
            (0, 0.0, f_eth, len(f_eth) + 100, "spb"),
        ],
    )
    big = gen.pcapng_bytes([(1, 9)], [(0, gen.T0 + 2, f_eth, len(f_eth), "epb")], big_endian=True)
    path = tmp_path / "multi.pcapng"
    path.write_bytes(data + big)
    res = read_pcap(path)
    assert res.errors == []
    assert res.format == "pcapng"
    assert sorted(res.link_types) == [1, 101, 276]
    rows = _rows(res)
    assert [r["ip.src"] for r in rows] == ["192.0.2.10", "192.0.2.11", "192.0.2.12", "192.0.2.10", "192.0.2.10"]
    assert [r["ts"] for r in rows] == pytest.approx([gen.T0, gen.T0 + 0.5, gen.T0 + 1.25, gen.T0 + 1.25, gen.T0 + 2])
    assert rows[3]["frame.len"] == len(f_eth) + 100  # simple packet block keeps the wire length
    assert rows[0]["tcp.flags"] == 0x04 and rows[2]["icmp.type"] == 3


def test_truncated_capture_keeps_snaplen_packets(tmp_path):
    full = gen.eth(gen.ipv4("192.0.2.1", "10.0.0.1", 17, gen.udp(53, 1, bytes(1000))))
    path = tmp_path / "snap.pcap"
    gen.write_pcap(path, [(gen.T0, full[:40], len(full)), (gen.T0, full[:20], len(full))], snaplen=40)
    rows = _rows(read_pcap(path))
    assert rows[0]["frame.len"] == len(full) and rows[0]["frame.cap_len"] == 40
    assert rows[0]["udp.srcport"] == 53 and rows[0]["ip.len"] == 1028
    assert rows[1]["ip.src"] is None  # 20 bytes do not hold an IPv4 header after Ethernet


def test_corrupt_record_reports_packet_and_offset_and_keeps_the_rest(tmp_path):
    pkts = list(gen.syn_flood(50, rng=random.Random(1)))
    path = tmp_path / "corrupt.pcap"
    gen.write_pcap(path, pkts)
    raw = bytearray(path.read_bytes())
    rec = 16 + len(pkts[0][1])
    off = 24 + 30 * rec
    raw[off + 8 : off + 12] = struct.pack("<I", 0xFFFFFFFF)
    path.write_bytes(raw)
    res = read_pcap(path)
    assert res.table.num_rows == 30
    assert res.errors == [f"packet 31 at byte offset {off}: record length 4294967295 exceeds snaplen 262144"]


def test_truncated_tail_reports_the_cut_record(tmp_path):
    path = tmp_path / "cut.pcap"
    gen.write_pcap(path, gen.syn_flood(10, rng=random.Random(2)))
    raw = path.read_bytes()
    path.write_bytes(raw[:-7])
    res = read_pcap(path)
    assert res.table.num_rows == 9
    assert res.errors and res.errors[0].startswith("packet 10 at byte offset ")
    assert "truncated" in res.errors[0]


def test_corrupt_pcapng_block_keeps_earlier_packets(tmp_path):
    f = gen.eth(gen.ipv4("192.0.2.1", "10.0.0.1", 6, gen.tcp(1, 2, gen.SYN)))
    data = bytearray(gen.pcapng_bytes([(1, None)], [(0, gen.T0 + i, f, len(f), "epb") for i in range(5)]))
    epbs, off = [], 0
    while off < len(data):
        btype, blen = struct.unpack_from("<II", data, off)
        if btype == 6:
            epbs.append(off)
        off += blen
    third = epbs[2]
    data[third + 4 : third + 8] = struct.pack("<I", 7)
    path = tmp_path / "bad.pcapng"
    path.write_bytes(bytes(data))
    res = read_pcap(path)
    assert res.table.num_rows == 2
    assert res.errors[0].startswith(f"packet 3 at byte offset {third}: block length 7")


@pytest.mark.parametrize("content", [b"", b"hello world, not a capture", b"\xd4\xc3\xb2\xa1\x02\x00"])
def test_not_a_capture_raises_pcap_error(tmp_path, content):
    path = tmp_path / "x.pcap"
    path.write_bytes(content)
    with pytest.raises(PcapError):
        read_pcap(path)


def test_small_batches_give_the_same_table(tmp_path):
    path = tmp_path / "m.pcap"
    rng = random.Random(3)
    gen.write_pcap(path, gen.merge(gen.syn_flood(300, rng=rng), gen.reflection(200, 53, 600, rng=rng)))
    assert read_pcap(path, batch_packets=7).table.equals(read_pcap(path).table)
