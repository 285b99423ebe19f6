"""What a packet rule matches for sure, by its logic: the approval gate's "matches every packet"."""

from __future__ import annotations

import ipaddress
import random

import pyarrow as pa
import pytest

from mitigations.rules import evaluate
from mitigations.rules.coverage import coverage

ACME = [ipaddress.ip_network("203.0.113.0/24")]
SCOPE = "ip.dst in {203.0.113.0/24} and "


@pytest.mark.parametrize(
    ("text", "because"),
    [
        ("ip.ttl ge 0", "ip.ttl is always ≥ 0 (it is 0 to 255)"),
        ("ip.len gt 0", "ip.len is always > 0 (it is 20 to 1500)"),
        ("ip.ttl lt 100 or ip.ttl ge 100", ""),
        ("tcp.flags.syn or not tcp.flags.syn", ""),
        ("not (ip.ttl in {0..255} and ip.len lt 20)", ""),
    ],
)
def test_tautologies_match_every_packet(text, because):
    found = coverage(SCOPE + text, victims=ACME)
    assert found.all_traffic and found.shares == {"TCP": 1.0, "UDP": 1.0, "ICMP": 1.0}
    assert found.describe("to Acme").startswith("it matches every packet to Acme")
    assert because in found.describe("to Acme")


def test_all_sources_but_one_is_practically_every_packet():
    found = coverage(SCOPE + "not ip.src eq 1.2.3.4", victims=ACME)
    assert found.all_traffic and all(share < 1 for share in found.shares.values())
    assert found.describe("to Acme") == (
        "it matches practically every packet to Acme: "
        "`not ip.src eq 1.2.3.4` holds for all but a tiny fraction of ip.src addresses"
    )


def test_a_port_test_that_always_holds_matches_every_packet_of_its_protocol_only():
    found = coverage(SCOPE + "tcp.dstport le 65535", victims=ACME)
    assert found.every == ["TCP"] and not found.all_traffic
    assert found.describe("to Acme") == (
        "it matches every TCP packet to Acme: tcp.dstport is always ≤ 65535 (it is 0 to 65535)"
    )
    assert coverage(SCOPE + "ip.proto eq 17", victims=ACME).every == ["UDP"]


@pytest.mark.parametrize(
    "text",
    [
        "udp.srcport eq 123",
        "ip.src in {198.18.0.0/15} and udp.dstport eq 53",
        "not tcp.dstport in {80 443}",  # ports are not spread evenly: not "all TCP"
        "tcp.flags.syn and not tcp.flags.ack",
        "ip.len gt 100",
        "ip.ttl ge 2",
        'ip.src.country ne "XX"',  # unknown to the logic: the simulation decides
    ],
)
def test_rules_that_single_something_out_do_not_match_everything(text):
    found = coverage(SCOPE + text, victims=ACME)
    assert not found.all_traffic
    if text.startswith("not tcp"):
        assert found.shares["TCP"] == 0.0
    else:
        assert not found.every and found.describe() == ""


def test_the_victim_scope_is_what_everything_is_measured_against():
    assert coverage(SCOPE + "ip.ttl ge 0", victims=ACME).all_traffic
    # Over the whole Internet the same rule is a /24's traffic: nothing like everything.
    assert coverage(SCOPE + "ip.ttl ge 0").every == []
    assert coverage("ip.ttl ge 0").all_traffic


def test_lists_are_weighed_by_their_values_and_an_unknown_list_is_left_to_the_simulation():
    allow = {"allow": ["192.0.2.0/24", "2001:db8::/32"]}
    assert coverage(SCOPE + "not ip.src in $allow", victims=ACME, lists=allow).all_traffic
    assert not coverage(SCOPE + "ip.src in $allow", victims=ACME, lists=allow).every
    assert coverage(SCOPE + "ip.src in $allow", victims=ACME) is None
    assert coverage('http.user_agent contains "curl"') is None


def _random_packets(n: int, seed: int = 3) -> pa.Table:
    """Packets toward Acme, every protocol, every field drawn from its whole range."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        proto = rng.choice([1, 6, 17])
        rows.append(
            {
                "ip.src": str(ipaddress.IPv4Address(rng.getrandbits(32))),
                "ip.dst": f"203.0.113.{rng.randrange(256)}",
                "ip.proto": proto,
                "ip.ttl": rng.randrange(256),
                "ip.len": rng.randrange(20, 1501),
                "tcp.dstport": rng.randrange(65536) if proto == 6 else None,
                "tcp.flags": rng.randrange(256) if proto == 6 else None,
                "udp.srcport": rng.randrange(65536) if proto == 17 else None,
                "icmp.type": rng.randrange(256) if proto == 1 else None,
            }
        )
    return pa.Table.from_pylist(rows)


@pytest.mark.parametrize(
    "text",
    [
        "ip.ttl ge 0",
        "tcp.dstport le 65535",
        "tcp.flags.syn or not tcp.flags.syn or ip.ttl gt 3",
        "not (tcp.dstport eq 80) xor ip.proto eq 6",
        "icmp.type ge 0 or udp.srcport ge 0",
        "ip.len le 1500 and not ip.src in {0.0.0.0/1}",
    ],
)
def test_what_the_logic_says_for_sure_holds_on_random_traffic(text):
    """Every protocol the logic says is matched in full is matched on every random packet of it."""
    packets = _random_packets(3000)
    found = coverage(SCOPE + text, victims=ACME)
    matched = evaluate(SCOPE + text, packets)
    protos = packets["ip.proto"].to_pylist()
    for name, number in (("TCP", 6), ("UDP", 17), ("ICMP", 1)):
        hits = [m for m, p in zip(matched, protos, strict=True) if p == number]
        if found.shares[name] >= 1.0:
            assert all(hits), (name, text)


def test_a_rule_the_logic_does_not_call_everything_misses_real_packets():
    packets = _random_packets(3000)
    text = SCOPE + "ip.ttl lt 10 or ip.len gt 900"
    assert coverage(text, victims=ACME).shares == {"TCP": 0.0, "UDP": 0.0, "ICMP": 0.0}
    assert not evaluate(text, packets).all()
