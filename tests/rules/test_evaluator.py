"""The evaluator on small hand-built batches with known answers."""

import numpy as np
import pyarrow as pa
import pytest

from mitigations.rules import RuleError, evaluate, parse, simulate
from mitigations.rules.evaluator import wildcard_regex

PACKETS = {
    "ip.src": ["10.0.0.1", "10.0.1.5", "2001:db8::1", None, "192.168.1.1", "not-an-ip"],
    "ip.dst": ["192.0.2.1"] * 6,
    "ip.proto": [6, 6, 17, 6, 6, 1],
    "ip.ttl": [64, 3, 128, 64, 1, 255],
    "tcp.dstport": [80, 443, None, 22, 8080, None],
    "udp.dstport": [None, None, 53, None, None, None],
    "tcp.flags": [0x02, 0x12, None, 0x02, 0x10, None],
    "ip.src.asnum": [64500, 64501, 13335, None, 64500, 1],
}


def run(text, table=PACKETS, lists=None):
    return evaluate(parse(text), table, lists).astype(int).tolist()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tcp.dstport eq 80", [1, 0, 0, 0, 0, 0]),
        ("tcp.dstport ne 80", [0, 1, 0, 1, 1, 0]),  # absent port: every comparison is false
        ("not tcp.dstport eq 80", [0, 1, 1, 1, 1, 1]),  # ... and not of it is true
        ("tcp.dstport lt 443", [1, 0, 0, 1, 0, 0]),
        ("tcp.dstport le 443", [1, 1, 0, 1, 0, 0]),
        ("tcp.dstport gt 443", [0, 0, 0, 0, 1, 0]),
        ("tcp.dstport ge 443", [0, 1, 0, 0, 1, 0]),
        ("tcp.dstport in {22 8000..9000}", [0, 0, 0, 1, 1, 0]),
        ("ip.src in {10.0.0.0/24 2001:db8::/32}", [1, 0, 1, 0, 0, 0]),
        ("ip.src eq 10.0.0.1", [1, 0, 0, 0, 0, 0]),
        ("ip.src ne 10.0.0.1", [0, 1, 1, 0, 1, 0]),
        ("ip.src in $bad", [0, 0, 0, 0, 1, 0]),
        ("ip.src.asnum in $asns", [1, 0, 0, 0, 1, 0]),
        ('ip.proto eq "udp"', [0, 0, 1, 0, 0, 0]),
        ("ip.proto in {1 17}", [0, 0, 1, 0, 0, 1]),
        ("tcp.flags.syn", [1, 1, 0, 1, 0, 0]),
        ("tcp.flags.syn and not tcp.flags.ack", [1, 0, 0, 1, 0, 0]),
        ("tcp.flags eq 18", [0, 1, 0, 0, 0, 0]),
        ("tcp.flags.syn xor tcp.flags.ack", [1, 0, 0, 1, 1, 0]),
        ("ip.ttl lt 5 or udp.dstport eq 53", [0, 1, 1, 0, 1, 0]),
        ("ip.ttl lt 5 and tcp.dstport eq 443 or ip.proto eq 1", [0, 1, 0, 0, 0, 1]),
    ],
)
def test_packets(text, expected):
    assert run(text, lists={"bad": ["192.168.0.0/16"], "asns": ["AS64500"]}) == expected


def test_pyarrow_table_gives_the_same_answer():
    table = pa.table({k: pa.array(v) for k, v in PACKETS.items()})
    assert run("ip.src in {10.0.0.0/8} and tcp.dstport in {80 443}", table) == [1, 1, 0, 0, 0, 0]


REQUESTS = {
    "http.host": ["example.com", "API.example.com", None, "evil.test"],
    "http.user_agent": ["curl/8.0", "Mozilla/5.0", None, "python-requests/2"],
    "http.request.uri.path": ["/wp-login.php", "/api/v1/users", "/", "/.env"],
    "http.request.method": ["POST", "GET", "GET", "GET"],
    "http.request.headers.names": [["Host", "User-Agent"], ["host", "accept-language", "accept"], [], None],
    "http.request.headers": [
        [{"name": "Host", "value": "example.com"}, {"name": "User-Agent", "value": "curl/8.0"}],
        {"accept": ["text/html", "*/*"], "accept-language": "en"},
        '{"x-forwarded-for": ["1.2.3.4"]}',
        None,
    ],
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('http.host eq "example.com"', [1, 0, 0, 0]),
        ('http.host wildcard "*.EXAMPLE.com"', [0, 1, 0, 0]),
        ('http.host strict wildcard "*.EXAMPLE.com"', [0, 0, 0, 0]),
        ('http.host wildcard "*example.com"', [1, 1, 0, 0]),
        ('lower(http.host) eq "api.example.com"', [0, 1, 0, 0]),
        ('http.user_agent contains "/"', [1, 1, 0, 1]),
        ('http.user_agent matches "^(curl|python-requests)/"', [1, 0, 0, 1]),
        ('http.user_agent matches r"(?i)^MOZ"', [0, 1, 0, 0]),
        ('http.request.method in {"POST" "PUT"}', [1, 0, 0, 0]),
        ('starts_with(http.request.uri.path, "/api/")', [0, 1, 0, 0]),
        ('ends_with(http.request.uri.path, ".php")', [1, 0, 0, 0]),
        ("len(http.request.uri.path) gt 5", [1, 1, 0, 0]),
        ('any(http.request.headers.names[*] eq "accept-language")', [0, 1, 0, 0]),
        ('not any(http.request.headers.names[*] eq "accept-language")', [1, 0, 1, 1]),
        ('any(lower(http.request.headers.names[*])[*] eq "user-agent")', [1, 0, 0, 0]),
        ('all(http.request.headers.names[*] contains "a")', [0, 0, 1, 0]),  # all() of nothing is true
        ('any(starts_with(http.request.headers.names[*], "accept"))', [0, 1, 0, 0]),
        ("len(http.request.headers.names) lt 3", [1, 0, 1, 0]),
        ('http.request.headers["user-agent"][0] eq "curl/8.0"', [1, 0, 0, 0]),
        ('http.request.headers["accept"][1] eq "*/*"', [0, 1, 0, 0]),
        ('any(http.request.headers["x-forwarded-for"][*] eq "1.2.3.4")', [0, 0, 1, 0]),
        ('http.request.uri.path eq "/.env" and not http.user_agent contains "Mozilla"', [0, 0, 0, 1]),
    ],
)
def test_requests(text, expected):
    assert run(text, REQUESTS) == expected


def test_headers_from_list_of_structs_in_arrow():
    headers = pa.array(
        [[{"name": "Accept", "value": "a"}], None],
        type=pa.list_(pa.struct([("name", pa.string()), ("value", pa.string())])),
    )
    table = pa.table({"http.request.headers": headers})
    assert run('http.request.headers["accept"][0] eq "a"', table) == [1, 0]
    assert run('any(http.request.headers.names[*] eq "Accept")', table) == [1, 0]  # names derived, case kept


def test_missing_column_is_absent_everywhere():
    table = {"tcp.dstport": [80, 81]}
    assert run('http.host eq "x"', table) == [0, 0]
    assert run('not http.host eq "x"', table) == [1, 1]


def test_flag_columns_win_over_the_bitmask():
    assert run("tcp.flags.syn", {"tcp.flags.syn": [True, None, False]}) == [1, 0, 0]


def test_unknown_list_is_an_error():
    with pytest.raises(RuleError, match=r"unknown list \$nope"):
        evaluate(parse("ip.src in $nope"), PACKETS)


def test_simulate_is_a_share():
    assert simulate("tcp.dstport eq 80", PACKETS) == pytest.approx(1 / 6)


def test_wildcard_escapes():
    assert wildcard_regex("a*b") == "^a(?s:.*)b$"
    assert run('http.host wildcard "a\\\\*b"', {"http.host": ["a*b", "axxb"]}) == [1, 0]


def test_large_batch_is_vectorised():
    n = 200_000
    rng = np.random.default_rng(7)
    octets = rng.integers(0, 256, (n, 4))
    table = pa.table(
        {
            "ip.src": pa.array([f"{a}.{b}.{c}.{d}" for a, b, c, d in octets]),
            "tcp.dstport": pa.array(rng.integers(0, 65536, n)),
        }
    )
    matched = evaluate(parse("ip.src in {10.0.0.0/8} and tcp.dstport lt 1024"), table)
    expected = (octets[:, 0] == 10) & (table["tcp.dstport"].to_numpy() < 1024)
    assert np.array_equal(matched, expected)
