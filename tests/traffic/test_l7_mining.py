"""Signature mining on captures (issue 14): set-valued predicates over the top values, the
OR of two vectors, the victim scope, ranked by coverage minus collateral with the size shown."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from mitigations.rules import evaluate, parse
from tests.traffic import gen
from tests.traffic.gen import ACK, PSH, SYN, T0, VICTIM, eth, ipv4, tcp, udp, write_pcap
from traffic.parsers.compare import compare
from traffic.parsers.l7 import capture_rows
from traffic.parsers.pcap import read_pcap
from traffic.services import rule_simulate

SCOPE = f"ip.dst in {{{VICTIM}}}"
# Three bot toolkits (each its own cipher offer) and four browsers of the real users.
BOTS = [[0x1301, 0x1302], [0xC02F, 0x009C, 0x002F], [0x1303, 0xC030]]
BROWSERS = [gen.CHROME_CIPHERS, gen.CHROME_CIPHERS[:11], [0x1301, 0x1303, 0x1302, 0xC02B], [0xC02C, 0xC030, 0x1301]]


def hellos(offers: list[list[int]], n: int, rng: random.Random, *, net: str, t0: float = T0) -> list:
    packets = []
    for i in range(n):
        hello = gen.client_hello(offers[i % len(offers)], [0x0000, 0x000A, 0x000B, 0x000D, 0x002B], sni="shop.example")
        src = f"{net}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        syn = eth(ipv4(src, VICTIM, 6, tcp(30000 + i, 443, SYN, seq=0)))
        data = eth(ipv4(src, VICTIM, 6, tcp(30000 + i, 443, ACK | PSH, hello, seq=1)))
        packets += [(t0 + i / 100, syn, len(syn)), (t0 + i / 100 + 0.001, data, len(data))]
    return packets


def l7_table(path) -> pa.Table:
    t = read_pcap(path).table
    mask, _ = capture_rows(t, ("cf.bot_management.ja3_hash",))
    return t.filter(pa.array(mask))


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("mine")
    rng = random.Random(3)
    write_pcap(d / "attack.pcap", hellos(BOTS, 600, rng, net="45.9"))
    write_pcap(d / "baseline.pcap", hellos(BROWSERS, 400, rng, net="81.2"))
    return d / "attack.pcap", d / "baseline.pcap"


def test_three_bot_ja3_hashes_make_one_set_rule_ranked_first(tls_pair):
    attack, baseline = (l7_table(p) for p in tls_pair)
    result = compare(attack, baseline, scope=SCOPE, l7=True)
    best = result["signatures"][0]
    bot_hashes = set(attack.column("cf.bot_management.ja3_hash").to_pylist())
    assert len(bot_hashes) == 3
    assert best["expression"].startswith(SCOPE + " and cf.bot_management.ja3_hash in {")
    assert all(h in best["expression"] for h in bot_hashes)
    assert (best["attack_coverage"], best["baseline_collateral"]) == (1.0, 0.0)
    assert best["size"] == 3 and best["predicates"] == 2
    # Each single hash catches a third: it is a candidate, but ranked below the set.
    singles = [s for s in result["signatures"] if s["vectors"] == 1 and " eq " in s["expression"]]
    assert all(s["attack_coverage"] < 0.4 for s in singles)
    # What we show is what the rule language measures on the same rows.
    rule = parse(best["expression"])
    assert evaluate(rule, attack).mean() == 1.0 and evaluate(rule, baseline).mean() == 0.0


def test_simulating_the_ja3_rule_on_captures_counts_handshakes(tls_pair):
    attack, baseline = (read_pcap(p).table for p in tls_pair)
    bots = sorted(set(l7_table(tls_pair[0]).column("cf.bot_management.ja3_hash").to_pylist()))
    expr = "cf.bot_management.ja3_hash in {" + " ".join(f'"{h}"' for h in bots) + "}"
    result = rule_simulate(expression=expr, attack=attack, baseline=baseline)
    assert result["attack"]["records"] == 600 and result["attack"]["matched"] == 600
    assert result["attack"]["counted"] == "TLS ClientHellos"
    assert result["baseline"]["matched"] == 0 and result["baseline"]["share"] == 0.0


def test_a_rule_the_capture_cannot_answer_says_so(tls_pair):
    attack = read_pcap(tls_pair[0]).table
    result = rule_simulate(expression='http.user_agent contains "bot"', attack=attack, baseline=None)
    assert result["attack"]["matched"] is None
    assert result["attack"]["unknown"] == (
        "unknown — this capture has no HTTP requests: http.user_agent cannot be evaluated"
    )
    mixed = rule_simulate(
        expression='http.user_agent contains "bot" and cf.bot_management.ja4 eq "x"', attack=attack, baseline=None
    )
    assert "cannot be evaluated" in mixed["attack"]["unknown"]


def test_two_vectors_at_once_give_an_or_of_both(tmp_path):
    rng = random.Random(9)
    attack = []
    for i in range(1500):
        src = f"{rng.randint(11, 190)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        if i % 2:
            f = eth(ipv4(src, VICTIM, 6, tcp(rng.randint(1024, 65535), 80, SYN)))
        else:
            f = eth(ipv4(f"198.51.{i % 40}.7", VICTIM, 17, udp(123, rng.randint(1024, 65535), b"\x17" + bytes(439))))
        attack.append((T0 + i / 500, f, len(f)))
    base = []
    for i in range(800):
        src = f"81.2.{i % 50}.{1 + i % 200}"
        if i % 2:
            f = eth(ipv4(src, VICTIM, 6, tcp(40000 + i % 300, 443, ACK | PSH, bytes(200))))
        else:
            f = eth(ipv4(src, VICTIM, 17, udp(40000 + i % 300, 53, bytes(60))))
        base.append((T0 + i / 100, f, len(f)))
    write_pcap(tmp_path / "a.pcap", attack)
    write_pcap(tmp_path / "b.pcap", base)
    at, bt = read_pcap(tmp_path / "a.pcap").table, read_pcap(tmp_path / "b.pcap").table
    best = compare(at, bt, scope=SCOPE)["signatures"][0]
    assert best["vectors"] == 2 and " or " in best["expression"]
    assert best["attack_coverage"] == 1.0 and best["baseline_collateral"] == 0.0
    rule = parse(best["expression"])
    assert evaluate(rule, at).mean() == 1.0 and evaluate(rule, bt).mean() == 0.0


def test_each_l7_value_carries_its_counts_and_a_rule_with_the_victim_scope(tls_pair):
    attack, baseline = (l7_table(p) for p in tls_pair)
    result = compare(attack, baseline, scope=SCOPE, l7=True)
    ja3 = next(a for a in result["attributes"] if a["attribute"] == "cf.bot_management.ja3_hash")
    top = ja3["values"][0]
    assert top["attack_rows"] == 200 and top["baseline_rows"] == 0  # one of three bot toolkits, 600 hellos
    assert top["rule"] == f'{SCOPE} and cf.bot_management.ja3_hash eq "{top["value"]}"'
    # The rule from a value matches exactly the rows the value counts.
    rule = parse(top["rule"])
    assert int(evaluate(rule, attack).sum()) == top["attack_rows"]
    assert int(evaluate(rule, baseline).sum()) == top["baseline_rows"]
    # ClientHellos carry no HTTP headers: no header order or cookie attribute is invented for them.
    assert not {"header order", "cookie present"} & {a["attribute"] for a in result["attributes"]}
