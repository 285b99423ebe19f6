"""Expressions from Cloudflare's Rules-language documentation: each parses, prints back to
itself, evaluates on a sample request and a sample packet, and compiles for each target or
is refused with a reason.

The expressions are in data/cloudflare_docs_expressions.jsonl with the page each comes
from. Where the documentation states an outcome (``lower(http.host) == "www.cloudflare.com"``
is true for ``WWW.cloudflare.com``; ``cidr(ip.src, 24, 24)`` of 113.10.0.2 is 113.10.0.0;
``all(len(http.request.uri.args["filter"][*])[*] in {3 4})`` is true for
``?filter=waf&filter=botm&filter=cdn``), the sample request is built so that the outcome
can be checked, and ``EXPECTED`` holds it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from mitigations.rules import (
    CompileError,
    compile_iptables,
    compile_magic_firewall,
    compile_nftables,
    compile_waf_rule,
    evaluate,
    parse,
)

from .peers import iptables_check, nft_check

CORPUS = [json.loads(line) for line in (Path(__file__).parent / "data" / "cloudflare_docs_expressions.jsonl").open()]

LISTS = {
    "office_network": ["113.10.0.0/16"],
    "endpoints": ["203.0.113.0/24"],
    "web_servers": ["203.0.113.10"],
    "internal_routers": ["198.51.100.1"],
    "cf.open_proxies": ["198.51.100.0/24"],
    "cf.malware": ["192.0.2.128/25"],
    "cf.botnetcc": ["192.0.2.0/25"],
}

# A TCP header: ports 40000 -> 443, data offset 5, flags PSH+ACK (0x18).
TCP_HEADER = bytes.fromhex("9c4001bb00000001000000005018ffff00000000")
# An IPv4 header: TTL 54 (byte 8), protocol 6.
IP_HEADER = bytes.fromhex("4500003c0000400036060000c0000201cb00710a")

# Row 0: an HTTPS request as the documentation's examples describe it. Row 1: a TCP packet.
SAMPLE = pa.table(
    {
        "ip.src": ["113.10.0.2", "192.0.2.1"],
        "ip.dst": [None, "203.0.113.10"],
        "ip.proto": [None, 6],
        "ip.len": [None, 60],
        "ip.ttl": [None, 54],
        "ip.hdr_len": [None, 5],
        "ip.flags.mf": [None, False],
        "ip.src.asnum": [13335, 64496],
        "ip.geoip.asnum": [13335, 64496],
        "ip.geoip.country": ["GB", "NL"],
        "tcp.srcport": [None, 40000],
        "tcp.dstport": [None, 443],
        "tcp.flags": [None, 0x18],
        "tcp": pa.array([None, TCP_HEADER], pa.binary()),
        "ip": pa.array([None, IP_HEADER], pa.binary()),
        "http.host": ["WWW.cloudflare.com", None],
        "http.request.method": ["POST", None],
        "http.request.uri.path": ["/welcome.html", None],
        "http.request.uri.query": ["filter=waf&filter=botm&filter=cdn", None],
        "http.request.full_uri": ["https://example.com/a/page.html", None],
        "http.request.headers": [
            {
                "Content-Type": ["application/json"],
                "Accept": ["application/json"],
                "Referer": ["https://example.com/"],
            },
            None,
        ],
        "http.request.headers.names": [["Content-Type", "Accept", "Referer"], None],
        "http.cookie": ["session=A12345; background=light", None],
        "http.referer": ["https://example.com/", None],
        "http.x_forwarded_for": ["203.0.113.1", None],
        "http.request.body.form.values": [["an%20xss%20attack"], None],
        "http.request.accepted_languages": [["en-US", "en"], None],
        "ssl": [True, None],
        "cf.threat_score": [30, None],
        "cf.waf.score": [15, None],
        "cf.bot_management.score": [5, None],
        "cf.bot_management.verified_bot": [False, None],
    }
)

# Expression -> (request, packet): outcomes the documentation states, or that follow from it.
EXPECTED = {
    'lower(http.host) == "www.cloudflare.com"': (True, False),
    'upper(http.host) == "WWW.CLOUDFLARE.COM"': (True, False),
    'ends_with(http.request.uri.path, ".html")': (True, False),
    "cidr(ip.src, 24, 24) == 113.10.0.0": (True, False),
    "cidr6(ip.src, 24) == 113.10.0.2": (True, False),
    'len(http.request.uri.args["filter"][1]) == 4': (True, False),
    'all(len(http.request.uri.args["filter"][*])[*] in {3 4})': (True, False),
    'all(not len(http.request.uri.args["filter"][*])[*] in {3 4})': (False, False),
    'len(http.request.uri.args["filter"]) >= 0': (True, False),
    'not len(http.request.uri.args["order"]) >= 0': (True, True),
    'any(http.request.headers["accept"][*] == "application/json")': (True, False),
    'any(http.request.headers["accept"][*] == "text/plain")': (False, False),
    'all(http.request.headers["content-type"][*] == "application/json")': (True, False),
    'http.request.headers.names[0] == "Content-Type"': (True, False),
    'any(lower(http.request.headers.names[*])[*] == "content-type")': (True, False),
    'any(url_decode(http.request.body.form.values[*])[*] contains "an xss attack")': (True, False),
    "ssl": (True, False),
    "not ssl": (False, True),
    "(ip.src in $office_network)": (True, False),
    'http.request.cookies["session"][0] eq "A12345"': (True, False),
    'any(http.request.cookies["app"][*] == "test")': (False, False),
    'any(http.request.uri.args["filter"][*] eq "waf")': (True, False),
    'http.request.full_uri wildcard "https://example.com/a/*"': (True, False),
    'concat(http.request.uri.path, "?", http.request.uri.query) == "/welcome.html?filter=waf&filter=botm&filter=cdn"': (
        True,
        False,
    ),
    "ip.src in {198.51.100.1 198.51.100.3..198.51.100.7 192.0.2.0/24 2001:0db8::/32}": (False, True),
    'bit_slice("tcp", 104, 112) == 0x18': (False, True),
    'bit_slice("ip", 64, 72) le 64 and ip.proto eq "tcp"': (False, True),
    "tcp.flags eq 0x18": (False, True),
    "ip.src == 192.0.2.1 && (tcp.flags.push || tcp.flags.reset)": (False, True),
    "ip.src in $cf.malware or ip.src in $cf.botnetcc": (False, True),
    "cf.bot_management.score lt 30": (True, False),
    "cf.threat_score gt 25": (True, False),
    "ip.dst in $endpoints": (False, True),
    'ip.dst in $web_servers and ip.proto eq "udp" and udp.srcport in {53 123} and udp.dstport in {1024..65535}': (
        False,
        False,
    ),
    "ip.src.asnum in {13335 209242}": (True, False),
    'http.request.accepted_languages[0] eq "en-US"': (True, False),
}

IDS = [f"{i:02d}" for i in range(len(CORPUS))]


def test_the_corpus_is_large_and_every_documented_outcome_is_in_it():
    texts = {entry["expression"] for entry in CORPUS}
    assert len(texts) == len(CORPUS) >= 60
    assert set(EXPECTED) <= texts
    assert all(entry["source"].startswith("https://developers.cloudflare.com/") for entry in CORPUS)


@pytest.mark.parametrize("entry", CORPUS, ids=IDS)
def test_documented_expression_parses_prints_back_and_evaluates(entry):
    rule = parse(entry["expression"])
    assert parse(rule.to_text()).ast == rule.ast
    matched = evaluate(rule, SAMPLE, LISTS).tolist()
    assert len(matched) == 2
    if entry["expression"] in EXPECTED:
        assert tuple(matched) == EXPECTED[entry["expression"]]


def _outcomes(rule) -> dict[str, str]:
    """Per target: the compiled text, or 'refused: <reason>'."""
    attempts = {
        "nftables": lambda: compile_nftables(rule, name="sw-1", lists=LISTS),
        "iptables": lambda: compile_iptables(rule, name="sw-1", lists=LISTS).rules,
        "cloudflare waf": lambda: compile_waf_rule(rule, zone_id="z1").body["rules"][0]["expression"],
        "cloudflare magic firewall": lambda: compile_magic_firewall(rule, account_id="a1").body["rules"][0][
            "expression"
        ],
    }
    out = {}
    for target, attempt in attempts.items():
        try:
            out[target] = attempt()
        except CompileError as exc:
            assert exc.reason and exc.clause, f"{target} refused without saying why"
            assert exc.target.startswith(target.split()[0])
            out[target] = f"refused: {exc.reason}"
    return out


@pytest.mark.parametrize("entry", CORPUS, ids=IDS)
def test_documented_expression_compiles_per_target_or_is_refused_with_a_reason(entry):
    rule = parse(entry["expression"])
    out = _outcomes(rule)
    if rule.layer == "L7":
        # Packet filters never see HTTP: they must refuse, naming the field or function.
        assert out["nftables"].startswith("refused: ")
        assert out["iptables"].startswith("refused: ")
        assert not out["cloudflare waf"].startswith("refused: ")
        assert out["cloudflare waf"] == rule.to_text()
    calls = {name for name in ("cidr", "cidr6", "bit_slice") if f"{name}(" in rule.to_text()}
    if "bit_slice" in calls:
        assert "magic" in out["cloudflare waf"].lower()
        assert not out["nftables"].startswith("refused")
        assert "bit_slice" in out["iptables"]
    if calls & {"cidr", "cidr6"}:
        assert "WAF" in out["nftables"] and "WAF" in out["iptables"]
        assert not out["cloudflare waf"].startswith("refused")
    if "$cf." in rule.to_text():
        assert "managed list" in out["nftables"]
        assert not out["cloudflare waf"].startswith("refused")


def test_every_nftables_output_of_the_corpus_is_accepted_by_nft():
    texts = []
    for entry in CORPUS:
        out = _outcomes(parse(entry["expression"]))["nftables"]
        if not out.startswith("refused"):
            texts.append(out)
    assert len(texts) >= 20
    done = nft_check("".join(texts))
    assert done.returncode == 0, done.stderr


def test_every_iptables_output_of_the_corpus_is_accepted_by_iptables_restore():
    accepted = 0
    for entry in CORPUS:
        try:
            script = compile_iptables(parse(entry["expression"]), name="sw-1", lists=LISTS)
        except CompileError:
            continue
        for tool, done in iptables_check(script):
            assert done.returncode == 0, f"{entry['expression']}: {tool}: {done.stderr}"
        accepted += 1
    assert accepted >= 15
