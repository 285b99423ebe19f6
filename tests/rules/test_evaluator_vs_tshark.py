"""The simulation agrees with Wireshark: for rules over addresses, ports and TCP flags,
generated from each capture's own busiest values, the evaluator matches exactly as many
packets as tshark's equivalent display filter.

The rule language is based on Wireshark's display filters, so the translation is small:
C-like operators, and a bare flag becomes ``== 1`` (bare ``tcp.flags.syn`` in Wireshark
only tests that the field exists). ``ne`` is avoided: Wireshark 4's ``!=`` means "all
occurrences differ", a different question for packets with nested headers. ``ip.ttl``
here (and in the pcap reader and the nftables compiler) is the IPv4 TTL or the IPv6 hop
limit, so it becomes ``ip.ttl ... or ipv6.hlim ...``.
"""

import subprocess
from collections import Counter

import pytest

from mitigations.rules import evaluate, parse
from mitigations.rules.ast import Compare, FieldRef, Logical, Not, SetLit, to_text
from tests.shared import shared_file

from .peers import need

pcap = pytest.importorskip("traffic.parsers.pcap", reason="traffic/parsers/pcap.py (read_pcap) is not there yet")

CAPTURES = [
    "ddos/stopddos_pkt.TCP.synflood.spoofed.pcap",
    "ddos/esnet_ntp-monlist.pcap",
    "ddos/zeek_ntp_ntp.pcap",
    "ddos/ppa_dosattack.pcap",
    "scan/ppa_portscan.pcap",
    "ddos/stopddos_amp.TCP.syn.optionallyACK.optionallysamePort.pcapng",
    "benign/zeek_http_get.pcap",
    "benign/zeek_wikipedia.pcap",
]
OPS = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "in": "in"}


def to_tshark(node) -> str:
    if isinstance(node, Logical) and node.op == "xor":  # Wireshark 4.0 has no xor
        left = to_tshark(node.items[0]) if len(node.items) == 2 else to_tshark(Logical("xor", node.items[:-1]))
        right = to_tshark(node.items[-1])
        return f"(({left} and !{right}) or (!{left} and {right}))"
    if isinstance(node, Logical):
        return "(" + f" {node.op} ".join(to_tshark(i) for i in node.items) + ")"
    if isinstance(node, Not):
        return f"!({to_tshark(node.operand)})"
    if isinstance(node, FieldRef):
        return f"{node.name} == 1"
    assert isinstance(node, Compare) and node.op in OPS
    right = node.right
    if isinstance(right, SetLit):  # Wireshark 4 separates set members with commas
        return f"{to_text(node.left)} in {{{', '.join(to_text(i) for i in right.items)}}}"
    if node.left == FieldRef("ip.ttl"):  # our ip.ttl is IPv6's hop limit too, as in the pcap reader
        return f"(ip.ttl {OPS[node.op]} {to_text(right)} or ipv6.hlim {OPS[node.op]} {to_text(right)})"
    return f"{to_text(node.left)} {OPS[node.op]} {to_text(right)}"


def top(table, column: str, n: int = 1) -> list:
    values = [v for v in table.column(column).to_pylist() if v is not None]
    return [v for v, _ in Counter(values).most_common(n)]


def rules_for(table) -> list[str]:
    rules = ["tcp.flags.syn and not tcp.flags.ack", "tcp.flags.syn xor tcp.flags.ack", "udp.srcport lt 1024"]
    src4 = [ip for ip in top(table, "ip.src", 5) if ":" not in ip]
    dst4 = [ip for ip in top(table, "ip.dst", 5) if ":" not in ip]
    if src4:
        rules.append(f"ip.src eq {src4[0]}")
        rules.append(f"not ip.src in {{{' '.join(src4[:3])}}} and ip.proto eq 6")
    if dst4:
        net = ".".join(dst4[0].split(".")[:3]) + ".0/24"
        rules.append(f"ip.dst in {{{net}}} or tcp.srcport eq 80")
    for field in ("tcp.dstport", "udp.dstport", "tcp.srcport", "udp.srcport"):
        ports = top(table, field, 3)
        if ports:
            rules.append(f"{field} eq {ports[0]}")
            rules.append(f"{field} in {{{' '.join(map(str, ports))} 1..100}} and not ip.ttl gt 64")
    return rules


@pytest.mark.peer
@pytest.mark.parametrize("capture", CAPTURES)
def test_evaluator_agrees_with_tshark(capture):
    need("tshark")
    path = shared_file(f"pcap/{capture}")
    table = pcap.read_pcap(path).table
    mismatches = []
    for text in rules_for(table):
        rule = parse(text)
        ours = int(evaluate(rule, table).sum())
        result = subprocess.run(
            ["tshark", "-n", "-r", str(path), "-Y", to_tshark(rule.ast), "-T", "fields", "-e", "frame.number"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        theirs = len(result.stdout.split())
        if ours != theirs:
            mismatches.append((text, to_tshark(rule.ast), ours, theirs))
    assert not mismatches, mismatches
