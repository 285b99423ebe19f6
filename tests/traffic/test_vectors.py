"""Victim, direction and vectors from the per-second series, on crafted captures (issue 14).

Each capture is written with the suite's pcap writer, summarised and parsed exactly as an
upload is (``summarize_pcap`` + the columnar table), then analysed.
"""

from __future__ import annotations

import ipaddress
import random

import pytest

from tests.traffic import gen
from tests.traffic import vectors as V
from traffic.parsers.analysis import analyse_capture
from traffic.parsers.pcap import read_pcap
from traffic.parsers.summary import summarize_pcap


def analyse(tmp_path, packets, *, assets=()):
    path = tmp_path / "capture.pcap"
    gen.write_pcap(path, packets)
    summary = summarize_pcap(path)
    table = read_pcap(path).table
    return analyse_capture(table, summary, [ipaddress.ip_network(a) for a in assets]), summary


def names(result):
    return [v["name"] for v in result["vectors"]]


def vector(result, name):
    return next(v for v in result["vectors"] if v["name"] == name)


def test_syn_flood_with_syn_ack_answers_is_found_and_the_victim_is_not_its_top_source(tmp_path):
    rng = random.Random(1)
    result, summary = analyse(tmp_path, V.merge(V.normal(rng, 6), V.syn_flood_with_answers(rng)))
    # The old whole-capture test was vetoed by the 5,400 SYN-ACK answers.
    assert "syn_flood" not in [v["name"] for v in summary["vectors"]]
    assert result["victim"]["scope"] == [f"{V.VICTIM}/32"]
    assert result["victim"]["expression"] == f"ip.dst in {{{V.VICTIM}}}"
    syn = vector(result, "syn_flood")
    assert syn["evidence"]["synack_answers"] == 5400
    assert syn["evidence"]["sources"] == 6000
    assert 3900 <= syn["evidence"]["peak_pps"] <= 4100
    assert syn["summary"].startswith("SYN flood from 6,000 sources to tcp/80, answered by 5,400 SYN-ACKs")
    # Sources are counted toward the victim: it never heads the list, whatever it sent.
    assert V.VICTIM not in [s["ip"] for s in result["top_sources"]]
    assert summary["top_sources"][0]["ip"] == V.VICTIM  # the old, direction-blind list
    victim = result["victim"]["addresses"][0]
    assert victim["ip"] == V.VICTIM and victim["received_packets"] == 6000 + 120
    assert victim["sent_packets"] == 5400 + 120
    assert result["directions"]["toward"]["packets"] == 6120
    assert result["directions"]["from"]["packets"] == 5520


def test_a_flood_is_tested_on_its_peak_not_on_the_capture_average(tmp_path):
    rng = random.Random(2)
    result, summary = analyse(tmp_path, V.merge(V.normal(rng, 20), V.peaky_udp_flood(rng)))
    udp = vector(result, "udp_flood")
    average = summary["packets"] / summary["duration_s"]
    assert udp["evidence"]["peak_pps"] == 5000
    assert udp["evidence"]["peak_pps"] >= 5 * average
    assert udp["evidence"]["duration_s"] == 2
    assert udp["evidence"]["ports"] == "random"
    assert result["victim"]["scope"] == [f"{V.VICTIM}/32"]
    assert "random destination ports" in udp["summary"] and "peak 5,000 pps" in udp["summary"]
    # The victim's port-unreachables go the other way and are no ICMP flood.
    assert "icmp_flood" not in names(result)


REFLECTION = [
    (123, 468, "ntp_amplification", "NTP amplification from 60 reflectors, UDP source port 123, 496-byte packets"),
    (53, 400, "dns_amplification", "DNS amplification from 60 reflectors, UDP source port 53"),
    (53, 1400, "dns_rrsig_amplification", "DNS (DNSSEC RRSIG-sized answers) amplification"),
    (11211, 1400, "memcached_amplification", "memcached amplification from 60 reflectors"),
    (1900, 300, "ssdp_amplification", "SSDP amplification"),
    (389, 1400, "cldap_amplification", "CLDAP amplification"),
    (161, 1000, "snmp_amplification", "SNMP amplification"),
    (19, 1000, "chargen_amplification", "CharGen amplification"),
    (3702, 1000, "ws_discovery_amplification", "WS-Discovery amplification"),
]


@pytest.mark.parametrize(("port", "size", "name", "words"), REFLECTION, ids=[r[2] for r in REFLECTION])
def test_reflection_vectors(tmp_path, port, size, name, words):
    rng = random.Random(port)
    result, _ = analyse(tmp_path, V.merge(V.normal(rng, 3), V.reflection(rng, port, size)))
    assert result["victim"]["scope"] == [f"{V.VICTIM}/32"]
    found = vector(result, name)
    assert words in found["summary"]
    assert found["evidence"]["reflectors"] == 60
    assert 1900 <= found["evidence"]["peak_pps"] <= 2100
    assert f"peak {found['evidence']['peak_pps']:,.0f} pps" in found["summary"]


FLOODS = [
    ("ack_flood", lambda rng: V.flags_flood(rng, V.ACK), "ACK flood from 5,000 sources"),
    ("rst_flood", lambda rng: V.flags_flood(rng, V.RST), "RST flood from 5,000 sources"),
    ("udp_flood", V.udp_fixed, "UDP flood from 5,000 sources to fixed port udp/27015"),
    ("icmp_flood", V.icmp_flood, "ICMP flood from 5,000 sources"),
    ("ip_fragment_flood", V.fragment_flood, "IP fragment flood from 3,000 sources"),
    ("gre_flood", V.gre_flood, "GRE flood from 3,000 sources"),
    ("dns_query_flood", V.dns_query_flood, "DNS query flood from 4,000 sources to UDP port 53"),
    # The normal HTTPS clients' TLS records to 443 are no countable requests.
    ("http_flood", V.http_flood, "HTTP flood from 40 sources to tcp/80, peak 500 requests per second"),
]


@pytest.mark.parametrize(("name", "make", "words"), FLOODS, ids=[f[0] for f in FLOODS])
def test_floods(tmp_path, name, make, words):
    rng = random.Random(7)
    result, _ = analyse(tmp_path, V.merge(V.normal(rng, 3), make(rng)))
    assert result["victim"]["scope"] == [f"{V.VICTIM}/32"]
    assert names(result)[0] == name, result["vectors"]
    assert vector(result, name)["summary"].startswith(words)
    # A fragment flood carries no UDP ports: it is not also called a UDP flood.
    if name == "ip_fragment_flood":
        assert "udp_flood" not in names(result)


def test_vertical_and_horizontal_scans(tmp_path):
    rng = random.Random(3)
    result, _ = analyse(tmp_path, V.merge(V.normal(rng, 3), V.vertical_scan(rng)), assets=[V.PREFIX])
    scan = vector(result, "vertical_scan")
    assert scan["evidence"]["ports"] == 1000 and scan["evidence"]["source"] == "198.51.100.66"
    assert "syn_flood" not in names(result)
    (tmp_path / "h").mkdir()
    result, _ = analyse(tmp_path / "h", V.merge(V.normal(rng, 3), V.horizontal_scan(rng)), assets=[V.PREFIX])
    scan = vector(result, "horizontal_scan")
    assert scan["evidence"]["addresses"] == 254
    assert scan["summary"] == "Horizontal scan from 198.51.100.77: port 22 probed on 254 addresses"


def test_carpet_bombing_across_the_customer_prefix(tmp_path):
    rng = random.Random(4)
    result, _ = analyse(tmp_path, V.carpet_syn(rng), assets=[V.PREFIX, "198.51.100.0/24"])
    assert result["victim"]["source"] == "customer assets"
    assert result["victim"]["scope"] == [V.PREFIX]  # the customer's other prefix is not in the capture
    assert result["victim"]["address_count"] == 200
    assert names(result) == ["syn_flood", "carpet_bombing"]
    assert "spread over 200 addresses" in vector(result, "carpet_bombing")["summary"]


def test_without_assets_a_spread_flood_names_its_slash24(tmp_path):
    rng = random.Random(5)
    result, _ = analyse(tmp_path, V.carpet_syn(rng))
    assert result["victim"]["scope"] == ["203.0.113.0/24"]
    assert result["victim"]["source"] == "top destinations (one /24)"
