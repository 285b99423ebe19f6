"""HTTP requests and TLS fingerprints read from captures (issue 14, must-show 2): equal to
tshark's per flow and packet on a capture made by real clients and on the real captures in
../shared/data, and FoxIO's published JA4 for Chrome's ClientHello."""

from __future__ import annotations

import functools
import hashlib
import shutil
import subprocess
from collections import defaultdict

import pyarrow.compute as pc
import pytest

from tests.shared import SHARED_DATA
from tests.traffic import gen
from tests.traffic.gen import ACK, PSH, T0, eth, ipv4, tcp, write_pcap
from traffic.parsers import l7
from traffic.parsers.pcap import read_pcap

GREASE = 0x0A0A
CHROME = dict(
    sni="victim.example",
    alpn=[b"h2", b"http/1.1"],
    sig_algs=gen.CHROME_SIGALGS,
    versions=[0x3A3A, 0x0304, 0x0303],
)
PCAP_DIR = SHARED_DATA / "pcap"
# The real captures holding HTTP requests or ClientHellos (tshark -Y 'http.request or tls.handshake.type==1').
L7_REAL = [
    "benign/chrissanders_http_espn.pcapng",
    "benign/chrissanders_http_google.pcapng",
    "benign/ppa_http.cap",
    "benign/zeek_http_bro.org.pcap",
    "benign/zeek_http_get.pcap",
    "benign/zeek_web.pcap",
    "benign/zeek_wikipedia.pcap",
    "benign/zeek_workshop_2011_browse.pcap",
    "ddos/stopddos_amp.dns.RRSIG.fragmented.pcap",
    "scan/chrissanders_tcp_ports.pcapng",
    "scan/esnet_nmap_80_w_service_detection.pcap",
    "webattack/chrissanders_http_dvwa_directorytraversal.pcapng",
    "webattack/chrissanders_http_dvwa_sqlinjection.pcapng",
]


def l7_rows(path) -> list[dict]:
    t = read_pcap(path).table
    t = t.filter(pc.or_(pc.is_valid(t["http.request.method"]), pc.is_valid(t["tls.handshake.ja3_full"])))
    return t.to_pylist()


def test_chrome_client_hello_has_foxios_published_ja4():
    hello = gen.client_hello([GREASE, *gen.CHROME_CIPHERS], [0x1A1A, *gen.CHROME_EXTENSIONS], **CHROME)
    h = l7.parse_client_hello(hello)
    assert l7.ja4(h) == "t13d1516h2_8daaf6152771_e5627efa2ab1"
    # GREASE is left out of JA3 as tshark leaves it out.
    assert l7.ja3(h).split(",")[1] == "-".join(str(c) for c in gen.CHROME_CIPHERS)


def _segments(payload: bytes, cut: int, *, drop_second: bool = False) -> list:
    frames = [
        eth(ipv4("192.0.2.7", gen.VICTIM, 6, tcp(40001, 443, ACK | PSH, payload[:cut], seq=1000))),
        eth(ipv4("192.0.2.99", gen.VICTIM, 6, tcp(40001, 443, ACK | PSH, b"other flow", seq=1000 + cut))),
    ]
    if not drop_second:
        frames.append(eth(ipv4("192.0.2.7", gen.VICTIM, 6, tcp(40001, 443, ACK | PSH, payload[cut:], seq=1000 + cut))))
    return [(T0 + i / 10, f, len(f)) for i, f in enumerate(frames)]


def test_client_hello_cut_over_two_segments_is_joined_and_a_lost_half_is_unknown(tmp_path):
    hello = gen.client_hello([GREASE, *gen.CHROME_CIPHERS], [0x1A1A, *gen.CHROME_EXTENSIONS], **CHROME)
    write_pcap(tmp_path / "two.pcap", _segments(hello, 100))
    (row,) = l7_rows(tmp_path / "two.pcap")
    assert row["frame.number"] == 1
    assert row["cf.bot_management.ja4"] == "t13d1516h2_8daaf6152771_e5627efa2ab1"
    assert row["tls.handshake.extensions_server_name"] == "victim.example"
    write_pcap(tmp_path / "half.pcap", _segments(hello, 100, drop_second=True))
    # Cut short: no fingerprint at all (unknown), never a hash of half a ClientHello.
    assert l7_rows(tmp_path / "half.pcap") == []


def test_http_request_headers_spanning_two_segments(tmp_path):
    req = gen.http_request("GET", "/login?next=%2F", [("Host", "shop.example"), ("User-Agent", "bot/" + "x" * 300)])
    write_pcap(tmp_path / "http.pcap", _segments(req, 40))
    (row,) = l7_rows(tmp_path / "http.pcap")
    assert (row["http.request.method"], row["http.host"]) == ("GET", "shop.example")
    assert row["http.request.uri.path"] == "/login"
    assert row["http.request.uri.query"] == "next=%2F"
    assert row["http.user_agent"] == "bot/" + "x" * 300


# ---------------------------------------------------------------------------------------
# agreement with tshark

_FIELDS = [
    "frame.number",
    "ip.src",
    "ipv6.src",
    "tcp.srcport",
    "tcp.dstport",
    "http.request.method",
    "http.user_agent",
    "http.host",
    "tls.handshake.ja3",
    "tls.handshake.ja3_full",
    "tls.handshake.version",
    "tls.handshake.ciphersuite",
    "tls.handshake.extension.type",
    "tls.handshake.extensions.supported_version",
    "tls.handshake.extensions_server_name",
    "tls.handshake.extensions_alpn_str",
    "tls.handshake.sig_hash_alg",
]


@functools.cache
def _tshark_has(field: str) -> bool:
    out = subprocess.run(["tshark", "-G", "fields"], capture_output=True, text=True).stdout
    return f"\t{field}\t" in out


def _ints(text: str) -> list[int]:
    return [int(x, 0) for x in text.split(",") if x]


def _ja4_from_tshark(f: dict) -> str:
    """JA4 composed by FoxIO's rules from the fields tshark dissected (tshark 4.0 has no
    ``tls.handshake.ja4``; a newer tshark's own field is used when it has one)."""
    h = l7._Hello()
    h.version = int(f["tls.handshake.version"].split(",")[0], 0)
    h.ciphers = _ints(f["tls.handshake.ciphersuite"])
    h.extensions = _ints(f["tls.handshake.extension.type"])
    h.supported_versions = _ints(f["tls.handshake.extensions.supported_version"])
    h.sig_algs = _ints(f["tls.handshake.sig_hash_alg"])
    h.alpn = [a.encode() for a in f["tls.handshake.extensions_alpn_str"].split(",") if a]
    return l7.ja4(h)


def tshark_l7(path, decode: dict[int, str]) -> dict[int, tuple]:
    """Per frame: (method, user agent, host, JA3 hash, JA3 string, JA4, source, ports) as
    tshark sees them, told how to decode the server ports we found L7 on (tshark picks a
    protocol by port, we by the payload's first bytes)."""
    fields = _FIELDS + (["tls.handshake.ja4"] if _tshark_has("tls.handshake.ja4") else [])
    argv = ["tshark", "-n", "-r", str(path), "-Y", "tcp and (http.request or tls.handshake.type == 1)"]
    for port, proto in sorted(decode.items()):
        argv += ["-d", f"tcp.port=={port},{proto}"]
    argv += ["-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for name in fields:
        argv += ["-e", name]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120).stdout
    rows = {}
    for line in out.split("\n")[:-1]:
        f = dict(zip(fields, line.split("\t"), strict=True))
        tls = bool(f["tls.handshake.ja3"])
        ja4 = (f.get("tls.handshake.ja4") or _ja4_from_tshark(f)) if tls else None
        rows[int(f["frame.number"])] = (
            f["http.request.method"] or None,
            f["http.user_agent"] or None,
            f["http.host"] or None,
            f["tls.handshake.ja3"] or None,
            f["tls.handshake.ja3_full"] or None,
            ja4,
            f["ip.src"] or f["ipv6.src"],
            int(f["tcp.srcport"]),
            int(f["tcp.dstport"]),
        )
    return rows


def _retransmissions(path) -> set[int]:
    argv = ["tshark", "-n", "-r", str(path), "-Y", "tcp.analysis.retransmission", "-T", "fields", "-e", "frame.number"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120).stdout
    return {int(x) for x in out.split()}


def ours_l7(path) -> dict[int, tuple]:
    return {
        r["frame.number"]: (
            r["http.request.method"],
            r["http.user_agent"],
            r["http.host"],
            r["cf.bot_management.ja3_hash"],
            r["tls.handshake.ja3_full"],
            r["cf.bot_management.ja4"],
            r["ip.src"],
            r["tcp.srcport"],
            r["tcp.dstport"],
        )
        for r in l7_rows(path)
    }


def _decode_as(ours: dict[int, tuple]) -> dict[int, str]:
    return {row[8]: "http" if row[0] else "tls" for row in ours.values()}


def _per_flow(rows: dict[int, tuple]) -> dict[tuple, list[tuple]]:
    """Each flow's messages in frame order: tshark names a request split over segments on
    its last segment, we on its first, so flows (not frames) are what must agree there."""
    flows: dict[tuple, list[tuple]] = defaultdict(list)
    for _frame, row in sorted(rows.items()):
        flows[row[6:]].append(row[:6])
    return dict(flows)


needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")


@pytest.fixture(scope="module")
def real_capture(tmp_path_factory):
    from tests.traffic.l7capture import make_capture

    return make_capture(tmp_path_factory.mktemp("l7") / "tls_http.pcapng")


@pytest.mark.peer
@pytest.mark.root
@needs_tshark
def test_capture_of_real_clients_equals_tshark_frame_by_frame(real_capture):
    from tests.traffic.l7capture import USER_AGENTS

    ours = ours_l7(real_capture)
    theirs = tshark_l7(real_capture, _decode_as(ours))
    assert ours == theirs
    agents = [row[1] for row in ours.values() if row[0]]
    assert set(USER_AGENTS) <= set(agents) and "Python-urllib" in " ".join(agents)
    fingerprints = {row[3] for row in ours.values() if row[3]}
    assert len(fingerprints) == 4  # default, TLS 1.2 with two ciphers, other groups + ALPN + SNI, curl
    assert all(row[5].startswith(("t13", "t12")) for row in ours.values() if row[3])
    assert any(row[5].startswith("t13d") and "h2_" in row[5] for row in ours.values() if row[3])
    for row in ours.values():
        if row[3]:
            assert row[3] == hashlib.md5(row[4].encode()).hexdigest()


@pytest.mark.peer
@needs_tshark
@pytest.mark.parametrize("name", L7_REAL)
def test_real_captures_user_agents_and_ja3_equal_tshark_per_flow(name):
    path = PCAP_DIR / name
    if not path.exists():
        pytest.skip(f"{name} is not in {PCAP_DIR}")
    ours = ours_l7(path)
    theirs = tshark_l7(path, _decode_as(ours))
    assert ours, "every capture listed here holds HTTP requests or ClientHellos"
    # tshark does not dissect a segment it marks as a retransmission (in RRSIG: a request
    # whose first copy was before the capture started); we read what is on the wire.
    for frame in _retransmissions(path):
        ours.pop(frame, None)
    assert _per_flow(ours) == _per_flow(theirs)
