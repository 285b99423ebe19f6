"""Wireshark-grade statistics (issue 14): conversations, endpoints and protocol hierarchy
equal tshark's ``-z conv,… -z endpoints,ip -z io,phs`` on captures crafted here and on
real ones; the tables stay bounded and merge across the parts; the sample page shows them."""

from __future__ import annotations

import random
import shutil
import struct

import pytest

from tests.shared import SHARED_DATA
from tests.traffic import gen, tshark_stats
from traffic.parsers.pcap import PcapReader
from traffic.parsers.stats import CaptureStatistics
from traffic.parsers.summary import PcapSummarizer, summarize_pcap

T0 = 1_700_000_000.0
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
EVERYTHING = 10**9


def _tcp_window(sport: int, dport: int, flags: int, window: int, payload: bytes = b"") -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 1, 5 << 4, flags, window, 0, 0) + payload


def crafted() -> list[gen.Packet]:
    """Two TCP sessions, DNS, IPv6 TCP/UDP, ICMP echo, one truncated frame, a zero window, an ARP."""
    rng = random.Random(3)
    out: list[gen.Packet] = []
    t = T0

    def add(frame: bytes, wire: int | None = None, cut: int | None = None) -> None:
        nonlocal t
        t += rng.uniform(0.001, 0.2)
        data = frame[:cut] if cut else frame
        out.append((t, data, wire or len(frame)))

    c, s, s2 = "192.0.2.10", "198.51.100.7", "198.51.100.8"
    for _ in range(3):
        add(gen.eth(gen.ipv4(c, s, 6, gen.tcp(40001, 443, gen.SYN))))
        add(gen.eth(gen.ipv4(s, c, 6, gen.tcp(443, 40001, gen.SYN | gen.ACK))))
        add(gen.eth(gen.ipv4(c, s, 6, gen.tcp(40001, 443, gen.PSH | gen.ACK, b"x" * rng.randint(10, 400)))))
    add(gen.eth(gen.ipv4(c, s, 6, _tcp_window(40001, 443, gen.ACK, 0))))  # zero window
    add(gen.eth(gen.ipv4(c, s2, 6, gen.tcp(40002, 80, gen.SYN))))
    add(gen.eth(gen.ipv4(s2, c, 6, gen.tcp(80, 40002, gen.RST | gen.ACK))))
    for i in range(4):
        add(gen.eth(gen.ipv4(c, "203.0.113.53", 17, gen.udp(53000 + i, 53, b"\x12\x34" + b"q" * 30))))
        add(gen.eth(gen.ipv4("203.0.113.53", c, 17, gen.udp(53, 53000 + i, b"\x12\x34" + b"a" * 90))))
    add(gen.eth(gen.ipv4(c, s, 1, gen.icmp(8, 0, b"ping" * 8))))
    add(gen.eth(gen.ipv4(s, c, 1, gen.icmp(0, 0, b"ping" * 8))))
    big = gen.eth(gen.ipv4(s2, c, 17, gen.udp(5000, 6000, b"z" * 1200)))
    add(big, cut=80)  # snaplen: 80 bytes captured of 1,242
    a6, b6 = "2001:db8::1", "2001:db8:1::20"
    add(gen.eth(gen.ipv6(a6, b6, 6, gen.tcp(50000, 443, gen.SYN)), 0x86DD))
    add(gen.eth(gen.ipv6(b6, a6, 6, gen.tcp(443, 50000, gen.SYN | gen.ACK)), 0x86DD))
    add(gen.eth(gen.ipv6(a6, b6, 17, gen.udp(5353, 5353, b"m" * 40)), 0x86DD))
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, b"\x02" * 6, bytes(4), bytes(6), bytes(4))
    add(gen.eth(arp, 0x0806))
    return out


def everything(path) -> dict:  # noqa: ANN001
    """Every row of every table (not only the stored top 100), as one reader computes them."""
    acc = PcapSummarizer()
    for batch in PcapReader(path):
        acc.add(batch)
    return acc.stats.result(acc, acc.ts_min, top=EVERYTHING)


def directed(rows: list[dict]) -> dict:
    """{(from, to): (packets, bytes)} for both directions of every conversation."""
    out = {}
    for r in rows:
        out[(r["a"], r["b"])] = (r["packets_ab"], r["bytes_ab"])
        out[(r["b"], r["a"])] = (r["packets_ba"], r["bytes_ba"])
    return out


def tshark_directed(table: dict, ports: bool) -> dict:
    out = {}
    norm = _norm if ports else str
    for (a, b), (f_ab, b_ab, u_ab, f_ba, b_ba, u_ba) in table.items():
        out[(norm(a), norm(b))] = (f_ab, b_ab, u_ab)
        out[(norm(b), norm(a))] = (f_ba, b_ba, u_ba)
    return out


def _norm(endpoint: str) -> str:
    """tshark writes an IPv6 TCP/UDP endpoint as ``addr:port``; we write ``[addr]:port``."""
    if endpoint.count(":") > 1 and not endpoint.startswith("["):
        addr, _, port = endpoint.rpartition(":")
        return f"[{addr}]:{port}"
    return endpoint


def assert_conversations_equal(ours: dict, theirs: dict) -> None:
    assert set(ours) == set(theirs)
    for key, (packets, nbytes) in ours.items():
        f, b, unit = theirs[key]
        assert packets == f, key
        if unit == "bytes":
            assert nbytes == b, key
        else:  # tshark printed it rounded to kB/MB
            assert abs(nbytes - b) <= tshark_stats._UNITS[unit] / 2, key


def assert_agrees_with_tshark(path) -> dict:  # noqa: ANN001
    ts = tshark_stats.parse(tshark_stats.run(path))
    st = everything(path)
    conv = st["conversations"]
    for ours, theirs in (("ipv4", "IPv4"), ("ipv6", "IPv6"), ("tcp", "TCP"), ("udp", "UDP")):
        assert conv[ours]["count"] == len(ts["conv"].get(theirs, {})), ours
        assert_conversations_equal(
            directed(conv[ours]["rows"]), tshark_directed(ts["conv"].get(theirs, {}), ours in ("tcp", "udp"))
        )
    endpoints = {
        r["ip"]: (r["packets"], r["bytes"], r["tx_packets"], r["tx_bytes"], r["rx_packets"], r["rx_bytes"])
        for r in st["endpoints"]["rows"]
        if ":" not in r["ip"]  # tshark's endpoints,ip is IPv4 only
    }
    assert endpoints == ts["endpoints"]
    # The protocol hierarchy to layer 4: frames and bytes of eth, ip, ipv6, tcp, udp, icmp.
    layers = {"ip", "ipv6", "tcp", "udp", "icmp", "icmpv6"}
    theirs = {}
    parent = None
    for depth, name, frames, nbytes in ts["phs"]:
        if depth == 0:
            theirs[(name,)] = (frames, nbytes)
        elif depth == 1 and name in ("ip", "ipv6"):
            parent = name
            theirs[("eth", name)] = (frames, nbytes)
        elif depth == 2 and name in layers and parent:
            theirs[("eth", parent, name)] = (frames, nbytes)
    ours = {}
    path_of: list[str] = []
    for r in st["protocol_hierarchy"]:
        path_of = path_of[: r["depth"]] + [r["protocol"]]
        if r["depth"] == 0 or r["protocol"] in layers:
            ours[tuple(path_of)] = (r["frames"], r["bytes"])
    assert ours == theirs
    return st


@pytest.mark.peer
@needs_tshark
def test_crafted_capture_statistics_equal_tshark(tmp_path):
    path = tmp_path / "crafted.pcap"
    gen.write_pcap(path, crafted())
    st = assert_agrees_with_tshark(path)
    assert st["conversations"]["tcp"]["count"] == 3 and st["conversations"]["udp"]["count"] == 6
    assert {(r["a"], r["b"]) for r in st["conversations"]["ipv6"]["rows"]} == {("2001:db8::1", "2001:db8:1::20")}
    anomalies = " | ".join(a["summary"] for a in st["anomalies"])
    assert "1 frames cut short by the capture's snapshot length (1,162 bytes not captured)" in anomalies
    assert "1 TCP segments advertise a zero window" in anomalies
    assert "1 frames carry no IP packet" in anomalies  # the ARP
    assert "Checksums are not verified" in anomalies and "retransmissions" in anomalies


REAL = [
    SHARED_DATA / "pcap" / "benign" / "zeek_wikipedia.pcap",  # IPv4 and IPv6, TCP and UDP, ARP
    SHARED_DATA / "pcap" / "ddos" / "stopddos_pkt.TCP.synflood.spoofed.pcap",  # 37,623 spoofed pairs
    SHARED_DATA / "pcap" / "ddos" / "ppa_dosattack.pcap",
]


@pytest.mark.peer
@needs_tshark
@pytest.mark.parametrize("path", REAL, ids=[p.name for p in REAL])
def test_real_capture_statistics_equal_tshark(path):
    if not path.exists():
        pytest.skip(f"{path} is not in the shared data")
    assert_agrees_with_tshark(path)


def test_stored_summary_holds_the_statistics_with_an_io_graph_at_one_second(tmp_path):
    path = tmp_path / "crafted.pcap"
    gen.write_pcap(path, crafted())
    summary = summarize_pcap(path)
    st = summary["statistics"]
    io = st["io"]
    assert io["interval_s"] == 1 and io["start"] == int(T0)
    assert sum(io["packets"]) == summary["packets"] and sum(io["bytes"]) == summary["bytes"]
    # Every second from the first to the last is there, empty ones as 0 (no line drawn across a gap).
    assert len(io["packets"]) == int(summary["end"]) - int(T0) + 1
    conv_packets = sum(r["packets_ab"] + r["packets_ba"] for r in st["conversations"]["ipv4"]["rows"])
    assert conv_packets == summary["packets"] - 3 - 1  # three IPv6 packets and the ARP are no IPv4 pair
    assert st["protocol_hierarchy"][0] == {
        "depth": 0,
        "protocol": "eth",
        "frames": summary["packets"],
        "bytes": summary["bytes"],
        "share": 1.0,
    }


def flood(n: int, seed: int = 5) -> list[gen.Packet]:
    rng = random.Random(seed)
    return [
        (
            T0 + i / 1000,
            gen.eth(gen.ipv4(gen.rand_ip(rng), "203.0.113.9", 6, gen.tcp(rng.randint(1024, 65535), 80, 2))),
            0,
        )
        for i in range(n)
    ]


def test_a_full_table_keeps_exact_rows_and_counts_the_rest_as_other(tmp_path):
    """A spoofed flood has a conversation per packet: past the cap, later ones are "other"."""
    packets = [(t, data, len(data)) for t, data, _ in flood(3000)]
    # A real session among them, seen first: it stays listed with every one of its packets.
    session = [
        (T0 + i / 1000 + 0.0005, gen.eth(gen.ipv4("192.0.2.1", "203.0.113.9", 6, gen.tcp(5555, 80, 0x18, b"g" * 60))))
        for i in range(0, 3000, 10)
    ]
    packets = sorted(packets + [(t, d, len(d)) for t, d in session])
    path = tmp_path / "flood.pcap"
    gen.write_pcap(path, packets)
    acc = PcapSummarizer()
    acc.stats = CaptureStatistics(cap=500)
    for batch in PcapReader(path):
        acc.add(batch)
    st = acc.stats.result(acc, acc.ts_min, top=EVERYTHING)
    tcp = st["conversations"]["tcp"]
    assert tcp["full"] and tcp["exact"] and tcp["count"] == 500
    listed = sum(r["packets_ab"] + r["packets_ba"] for r in tcp["rows"])
    other = tcp["other"]["packets_ab"] + tcp["other"]["packets_ba"]
    assert listed + other == len(packets)  # nothing lost: the rest is counted as "other"
    real = [r for r in tcp["rows"] if r["a"] == "192.0.2.1:5555"]
    assert real and real[0]["packets_ab"] == len(session) and real[0]["bytes_ab"] == len(session) * len(session[0][1])


def test_two_halves_merge_to_the_single_pass_and_flag_lower_bounds_when_full(tmp_path):
    path = tmp_path / "mixed.pcap"
    gen.write_pcap(path, sorted(crafted() + [(t, d, len(d)) for t, d, _ in flood(400)]))
    batches = list(PcapReader(path, batch_packets=64))
    single = PcapSummarizer()
    for b in batches:
        single.add(b)
    half = len(batches) // 2 or 1
    head, tail = PcapSummarizer(), PcapSummarizer()
    for b in batches[:half]:
        head.add(b)
    for b in batches[half:]:
        tail.add(b)
    head.merge(tail)
    assert head.stats.result(head, head.ts_min, top=EVERYTHING) == single.stats.result(
        single, single.ts_min, top=EVERYTHING
    )
    # With a cap the halves fill: the merged rows are marked as lower bounds.
    a, b = CaptureStatistics(cap=50), CaptureStatistics(cap=50)
    for x in batches[:half]:
        a.add(x)
    for x in batches[half:]:
        b.add(x)
    a.merge(b)
    assert a.conv["v4"].count == 50 and not a.conv["v4"].exact


@pytest.mark.django_db
def test_sample_page_shows_the_statistics_and_the_io_graph(client, engineer, customer_a, tmp_path, settings):
    from django.urls import reverse

    from traffic.models import TrafficSample
    from traffic.services import sample_parse

    settings.MEDIA_ROOT = tmp_path / "media"
    path = tmp_path / "crafted.pcap"
    gen.write_pcap(path, crafted())
    sample = TrafficSample.objects.create(customer=customer_a, name="crafted.pcap", kind="pcap", label="attack")
    with path.open("rb") as fh:
        sample.original.save("crafted.pcap", fh)
    sample = sample_parse(sample_id=sample.pk)
    client.force_login(engineer)
    html = client.get(reverse("traffic-detail", args=[sample.pk])).content.decode()
    stats = html.split('id="statistics"')[1].split("</section>")[0]
    assert "1 TCP segments advertise a zero window" in stats
    assert "frames cut short by the capture&#x27;s snapshot length" in stats
    tcp = stats.split('id="stats-conv-tcp"')[1].split("</table>")[0]
    # The first session: 3 SYNs + 3 requests + the zero-window ACK from the client, 3 SYN-ACKs back.
    assert "<code>192.0.2.10:40001</code></td><td><code>198.51.100.7:443</code></td><td>7</td>" in tcp
    assert "<td>3</td>" in tcp
    hierarchy = stats.split('id="stats-hierarchy"')[1].split("</table>")[0]
    assert 'data-depth="2">tcp</td><td>12</td>' in hierarchy
    endpoints = stats.split('id="stats-endpoints"')[1].split("</table>")[0]
    assert "<code>192.0.2.10</code>" in endpoints
    assert 'id="chart-io"' in html and "I/O graph (1 s intervals)" in html


def test_a_long_capture_stores_the_first_three_hours_of_its_io_graph_and_says_so(tmp_path, settings):
    from traffic.charts import io_graph

    frame = gen.eth(gen.ipv4("192.0.2.1", "203.0.113.9", 17, gen.udp(1000, 2000, b"x")))
    path = tmp_path / "long.pcap"
    gen.write_pcap(path, [(T0, frame, len(frame)), (T0 + 4 * 3600, frame, len(frame))])
    io = summarize_pcap(path)["statistics"]["io"]
    assert io["truncated"] and len(io["packets"]) == 3 * 3600 and sum(io["packets"]) == 1
    assert io_graph(io)["layout"]["title"]["text"] == "I/O graph (1 s intervals), the first 10,800 s of the capture"


def retransmitting() -> list[gen.Packet]:
    """A connection whose SYN, one data segment (twice) and FIN are sent again, 1-byte
    keep-alives (not retransmissions to tshark), and a second connection without any."""
    c, s = "192.0.2.10", "198.51.100.7"
    out: list[gen.Packet] = []
    t = T0

    def add(src: str, dst: str, seg: bytes) -> None:
        nonlocal t
        t += 0.01
        out.append((t, gen.eth(gen.ipv4(src, dst, 6, seg)), 0))

    add(c, s, gen.tcp(40001, 443, gen.SYN, seq=1000))
    add(c, s, gen.tcp(40001, 443, gen.SYN, seq=1000))  # retransmission 1
    add(s, c, gen.tcp(443, 40001, gen.SYN | gen.ACK, seq=5000))
    seq = 1001
    for i in range(6):
        add(c, s, gen.tcp(40001, 443, gen.PSH | gen.ACK, b"d" * 100, seq=seq))
        if i == 2:
            add(c, s, gen.tcp(40001, 443, gen.PSH | gen.ACK, b"d" * 100, seq=seq))  # 2
            add(c, s, gen.tcp(40001, 443, gen.PSH | gen.ACK, b"d" * 100, seq=seq))  # 3
        seq += 100
        add(s, c, gen.tcp(443, 40001, gen.ACK, seq=5001))
    for _ in range(2):
        add(c, s, gen.tcp(40001, 443, gen.ACK, b"\x00", seq=seq - 1))  # keep-alive
    add(c, s, gen.tcp(40001, 443, gen.FIN | gen.ACK, seq=seq))
    add(c, s, gen.tcp(40001, 443, gen.FIN | gen.ACK, seq=seq))  # 4
    add(c, "198.51.100.8", gen.tcp(40002, 80, gen.SYN, seq=77))
    add("198.51.100.8", c, gen.tcp(80, 40002, gen.SYN | gen.ACK, seq=9))
    add(c, "198.51.100.8", gen.tcp(40002, 80, gen.PSH | gen.ACK, b"GET / HTTP/1.1\r\n\r\n", seq=78))
    return [(ts, frame, len(frame)) for ts, frame, _ in out]


def tshark_retransmissions(path) -> list[int]:  # noqa: ANN001
    import subprocess

    out = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-Y", "tcp.analysis.retransmission", "-T", "fields", "-e", "frame.number"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [int(x) for x in out.split()]


@pytest.mark.peer
@needs_tshark
def test_tcp_retransmissions_equal_tshark_and_name_their_flow(tmp_path):
    path = tmp_path / "retx.pcap"
    gen.write_pcap(path, retransmitting())
    theirs = tshark_retransmissions(path)
    st = everything(path)
    assert len(theirs) == 4
    assert st["retransmissions"]["count"] == len(theirs) and st["retransmissions"]["exact"]
    assert st["retransmissions"]["flows"] == [
        {"from": "192.0.2.10:40001", "to": "198.51.100.7:443", "retransmissions": 4}
    ]
    anomalies = " | ".join(a["summary"] for a in st["anomalies"])
    assert "4 TCP retransmissions" in anomalies and "192.0.2.10:40001 → 198.51.100.7:443 (4)" in anomalies
    assert "retransmissions and out-of-order segments are not checked" not in anomalies


@pytest.mark.peer
@needs_tshark
def test_tcp_retransmissions_on_real_captures_equal_tshark():
    exact = [
        SHARED_DATA / "pcap" / "ddos" / "stopddos_amp.TCP.syn.optionallyACK.optionallysamePort.pcapng",
        SHARED_DATA / "pcap" / "ddos" / "stopddos_pkt.TCP.synflood.spoofed.pcap",
        SHARED_DATA / "pcap" / "scan" / "chrissanders_synscan.pcapng",
    ]
    for path in exact:
        if not path.exists():
            pytest.skip(f"{path} is not in the shared data")
        assert everything(path)["retransmissions"]["count"] == len(tshark_retransmissions(path)) > 0, path.name
    # Here tshark also flags segments that start below the highest sequence number seen
    # without repeating a start (its other rule, not reproduced): ours is a close lower bound.
    rrsig = SHARED_DATA / "pcap" / "ddos" / "stopddos_amp.dns.RRSIG.fragmented.pcap"
    if rrsig.exists():
        ours, theirs = everything(rrsig)["retransmissions"]["count"], len(tshark_retransmissions(rrsig))
        assert 0.8 * theirs <= ours <= theirs


def test_retransmissions_stay_bounded_and_merge_across_parts(tmp_path):
    path = tmp_path / "retx.pcap"
    gen.write_pcap(path, retransmitting())
    batches = list(PcapReader(path, batch_packets=7))
    whole, first, second = PcapSummarizer(), PcapSummarizer(), PcapSummarizer()
    for b in batches:
        whole.add(b)
    for b in batches[: len(batches) // 2]:
        first.add(b)
    for b in batches[len(batches) // 2 :]:
        second.add(b)
    first.merge(second)
    assert first.stats.retx.result(10) == whole.stats.retx.result(10)
    assert whole.stats.retx.count == 4
    # A table of 3 keys (fed one packet at a time) forgets the later segment starts: only
    # the SYN's repeat is found, and the count says it is a lower bound.
    from traffic.parsers import stats

    small = stats._Retransmissions(cap=3)
    for b in PcapReader(path, batch_packets=1):
        small.add(b)
    assert small.seen.size == 3 and small.full
    assert small.count == 1 and small.result(10)["exact"] is False


def applications() -> list[gen.Packet]:
    """DNS (one query too short for a header), HTTP request and response, a TLS ClientHello
    and application data, NTP, SSDP and memcached, beside plain TCP and UDP."""
    c, s = "192.0.2.10", "198.51.100.7"
    out: list[gen.Packet] = []
    t = T0

    def add(src: str, dst: str, proto: int, seg: bytes) -> None:
        nonlocal t
        t += 0.01
        frame = gen.eth(gen.ipv4(src, dst, proto, seg))
        out.append((t, frame, len(frame)))

    dns_header = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    for i in range(3):
        add(c, s, 17, gen.udp(53000 + i, 53, dns_header + b"\x07example\x03com\x00\x00\x01\x00\x01"))
        add(s, c, 17, gen.udp(53, 53000 + i, dns_header + b"\x07example\x03com\x00\x00\x01\x00\x01" + b"a" * 16))
    add(c, s, 6, gen.tcp(40001, 80, gen.SYN, seq=100))
    add(s, c, 6, gen.tcp(80, 40001, gen.SYN | gen.ACK, seq=900))
    add(c, s, 6, gen.tcp(40001, 80, gen.PSH | gen.ACK, gen.http_request("GET", "/", [("Host", "x.test")]), seq=101))
    body = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"
    add(s, c, 6, gen.tcp(80, 40001, gen.PSH | gen.ACK, body, seq=901))
    add(c, s, 6, gen.tcp(40002, 443, gen.SYN, seq=100))
    add(s, c, 6, gen.tcp(443, 40002, gen.SYN | gen.ACK, seq=900))
    hello = gen.client_hello([0x1301, 0xC02F], [0, 10, 13], sni="x.test")
    add(c, s, 6, gen.tcp(40002, 443, gen.PSH | gen.ACK, hello, seq=101))
    add(c, s, 6, gen.tcp(40003, 22, gen.PSH | gen.ACK, b"SSH-2.0-OpenSSH_9.6\r\n", seq=5))
    add(c, s, 17, gen.udp(40123, 123, b"\x23" + bytes(47)))
    ssdp = b'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\n'
    ssdp += b"MX: 1\r\nST: ssdp:all\r\n\r\n"
    add(c, "239.255.255.250", 17, gen.udp(40900, 1900, ssdp))
    add(c, s, 17, gen.udp(41000, 11211, b"\x00\x01\x00\x00\x00\x01\x00\x00stats\r\n"))
    add(c, s, 17, gen.udp(41001, 9999, b"plain"))
    return out


@pytest.mark.peer
@needs_tshark
def test_protocol_hierarchy_above_layer_4_equals_tshark(tmp_path):
    path = tmp_path / "apps.pcap"
    gen.write_pcap(path, applications())
    theirs = {}
    l4 = None
    for depth, name, frames, nbytes in tshark_stats.parse(tshark_stats.run(path))["phs"]:
        if depth == 2:
            l4 = name
        elif depth == 3 and name in {"dns", "http", "tls", "ntp", "ssdp", "memcache"}:
            theirs[(l4, name)] = (frames, nbytes)
    st = everything(path)
    ours, l4 = {}, None
    for r in st["protocol_hierarchy"]:
        if r["depth"] == 2:
            l4 = r["protocol"]
        elif r["depth"] == 3:
            ours[(l4, r["protocol"])] = (r["frames"], r["bytes"])
    assert set(theirs) == {
        ("udp", "dns"),
        ("tcp", "http"),
        ("tcp", "tls"),
        ("udp", "ntp"),
        ("udp", "ssdp"),
        ("udp", "memcache"),
    }
    assert ours == theirs
    assert ours[("udp", "dns")][0] == 6 and ours[("tcp", "http")][0] == 2
