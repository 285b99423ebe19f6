"""Uploaded captures know their victim: the sample page, the automatic baseline, the comparison (issue 14)."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
from django.urls import reverse

from mitigations.rules import evaluate, parse
from tests.traffic import gen
from tests.traffic import vectors as V
from traffic.models import TrafficSample
from traffic.services import sample_parse

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def parsed(customer, tmp_path, packets, name="syn.pcap", label="attack", attack=None):
    path = tmp_path / name
    gen.write_pcap(path, packets)
    sample = TrafficSample.objects.create(customer=customer, name=name, kind="pcap", label=label, attack=attack)
    with path.open("rb") as fh:
        sample.original.save(name, fh)
    return sample_parse(sample_id=sample.pk)


def syn_capture():
    rng = random.Random(1)
    return V.merge(V.normal(rng, 6), V.syn_flood_with_answers(rng))


def test_sample_page_names_the_victim_and_splits_sent_and_received(client, engineer, customer_a, tmp_path):
    sample = parsed(customer_a, tmp_path, syn_capture())
    assert sample.summary["victim"]["scope"] == ["203.0.113.0/24"]
    assert sample.summary["victim"]["source"] == "customer assets"
    assert sample.summary["vectors"][0]["name"] == "syn_flood"
    client.force_login(engineer)
    html = client.get(reverse("traffic-detail", args=[sample.pk])).content.decode()
    assert "<code>203.0.113.0/24</code>" in html and "customer assets" in html
    assert "SYN flood from 6,000 sources to tcp/80, answered by 5,400 SYN-ACKs from the victim" in html
    sources = html.split('id="top-sources"')[1].split("</table>")[0]
    assert V.VICTIM not in sources  # the victim's 5,400 answers do not make it an attack source
    victim = html.split('id="victim-addresses"')[1].split("</table>")[0]
    row = re.search(
        rf"<code>{re.escape(V.VICTIM)}</code></td><td>([\d,]+)</td><td>[\d,]+</td><td>([\d,]+)</td>", victim
    )
    assert row and row.groups() == ("6,120", "5,520")  # received, sent
    # Every listed source has its country and AS looked up offline (the documentation-range
    # clients of the normal traffic are unknown, not guessed).
    from traffic import geo

    first = sample.summary["direction"]["top_sources"][0]
    assert first["ip"].startswith("192.0.2.") and first["country"] is None
    spoofed = next(r for r in sample.summary["direction"]["top_sources"] if not r["ip"].startswith("192.0.2."))
    assert spoofed["country"] == geo.lookup(spoofed["ip"])["country"] is not None
    assert f"<td>{spoofed['country']}</td>" in sources
    countries = html.split('id="source-countries"')[1].split("</table>")[0]
    assert re.search(r"<td>[A-Z]{2}</td><td>[\d,]+</td>", countries)
    assert sample.summary["direction"]["source_geo"]["estimated"] is True  # 6,000 spoofed sources, 1,000 looked up


def mirrored(table):
    """The victim's own packets as if its peers had sent them to it: addresses and ports swapped."""
    swap = {"ip.src": "ip.dst", "ip.dst": "ip.src", "ip.src.v4": "ip.dst.v4", "ip.dst.v4": "ip.src.v4"}
    swap |= {"tcp.srcport": "tcp.dstport", "tcp.dstport": "tcp.srcport"}
    swap |= {"udp.srcport": "udp.dstport", "udp.dstport": "udp.srcport"}
    return table.rename_columns([swap.get(c, c) for c in table.column_names])


def reverse_direction(sample):
    import pyarrow.compute as pc

    from traffic.services import sample_table

    table = sample_table(sample)
    return table.filter(pc.equal(table.column("ip.src"), V.VICTIM))


def ntp_capture():
    rng = random.Random(2)
    return V.merge(V.normal(rng, 4), V.reflection(rng, 123, 468))


@pytest.mark.parametrize(
    ("make", "must"),
    [(syn_capture, "tcp.flags eq 2"), (ntp_capture, "udp.srcport eq 123")],
    ids=["syn_flood", "ntp_reflection"],
)
def test_top_signature_is_scoped_to_the_victim_and_spares_its_replies(customer_a, tmp_path, make, must):
    from traffic.services import rule_simulate, samples_compare

    sample = parsed(customer_a, tmp_path, make())
    comparison = samples_compare(attack=sample)
    assert comparison["baseline"]["kind"] == "pre_attack"  # no baseline sample was uploaded
    top = comparison["signatures"][0]
    assert top["expression"].startswith("ip.dst in {203.0.113.0/24} and ")
    assert must in top["expression"]
    assert top["attack_coverage"] >= 0.95
    assert top["reverse_matched"] == 0
    assert "ip.len lt" not in top["expression"]
    reverse = reverse_direction(sample)
    assert reverse.num_rows > 0
    # Simulated on the capture's reverse direction, mirrored so that the victim's replies
    # (SYN-ACKs, pure ACKs, ICMP errors) arrive at the victim as its peers' would: no match.
    rule = parse(top["expression"])
    assert {"SYN,ACK", "ACK"} <= set(flag_names(reverse)) or "ICMP" in flag_names(reverse)
    assert int(np.asarray(evaluate(rule, mirrored(reverse))).sum()) == 0
    # And as they are (from the victim), the scope alone keeps them out.
    assert int(np.asarray(evaluate(rule, reverse)).sum()) == 0
    result = rule_simulate(expression=top["expression"], attack=sample_table_of(sample), baseline=None)
    toward = sample.summary["direction"]["directions"]["toward"]["packets"]
    assert result["attack"]["matched"] >= 0.95 * (toward - 120)  # all but the normal clients' packets


def flag_names(table):
    from traffic.parsers.summary import flag_name

    names = [flag_name(f) for f in table.column("tcp.flags").to_pylist() if f is not None]
    return names + ["ICMP"] * sum(p == 1 for p in table.column("ip.proto").to_pylist())


def sample_table_of(sample):
    from traffic.services import sample_table

    return sample_table(sample)


def test_a_udp_rule_against_a_baseline_without_udp_has_unknown_collateral(customer_a, tmp_path):
    from traffic.services import rule_simulate, samples_compare

    sample = parsed(customer_a, tmp_path, ntp_capture())
    comparison = samples_compare(attack=sample)
    top = comparison["signatures"][0]
    assert top["baseline_collateral"] is None
    assert top["collateral_unknown"] == "unknown — the baseline has no UDP"
    baseline = reverse_direction(sample).slice(0, 0)
    tcp_only = sample_table_of(sample).filter(
        __import__("pyarrow.compute", fromlist=["equal"]).equal(sample_table_of(sample).column("ip.proto"), 6)
    )
    result = rule_simulate(expression="udp.srcport eq 123", attack=None, baseline=tcp_only)
    assert result["baseline"]["share"] is None and result["baseline"]["unknown"] == "unknown — the baseline has no UDP"
    assert rule_simulate(expression="udp.srcport eq 123", attack=None, baseline=baseline)["baseline"]["share"] is None


def test_rolling_baseline_is_the_customers_newest_baseline_samples(customer_a, tmp_path):
    from traffic.services import samples_compare

    rng = random.Random(3)
    old = parsed(customer_a, tmp_path, list(V.normal(rng, 2)), name="old.pcap", label="baseline")
    new = parsed(customer_a, tmp_path, list(V.normal(rng, 3)), name="new.pcap", label="baseline")
    sample = parsed(customer_a, tmp_path, syn_capture())
    comparison = samples_compare(attack=sample)
    assert comparison["baseline"]["kind"] == "rolling"
    assert comparison["baseline"]["samples"] == [new.pk, old.pk]
    assert comparison["baseline_rows"] == 100  # toward the victim in both: half of (2 s + 3 s) at 40 pps
    assert comparison["signatures"][0]["baseline_collateral"] == 0.0


def test_an_l7_rule_on_a_capture_says_it_cannot_answer_instead_of_zero(customer_a, tmp_path, client, engineer):
    from traffic.services import sample_simulate

    sample = parsed(customer_a, tmp_path, syn_capture())
    result = sample_simulate(expression='http.user_agent contains "curl"', attack=sample, baseline=None)
    assert result["attack"]["matched"] is None and result["attack"]["share"] is None
    assert (
        result["attack"]["unknown"]
        == "unknown — this capture has no HTTP requests: http.user_agent cannot be evaluated"
    )
    client.force_login(engineer)
    page = client.get(
        reverse("traffic-simulate"), {"expression": 'http.user_agent contains "curl"', "attack": sample.pk}
    )
    assert "unknown — this capture has no HTTP requests: http.user_agent cannot be evaluated" in page.content.decode()


def test_capture_comparison_mines_the_bots_ja3_set_from_the_handshakes(customer_a, tmp_path):
    from tests.traffic.test_l7_mining import BOTS, BROWSERS, hellos
    from traffic.services import samples_compare

    rng = random.Random(5)
    parsed(customer_a, tmp_path, hellos(BROWSERS, 300, rng, net="81.2"), name="base.pcap", label="baseline")
    sample = parsed(customer_a, tmp_path, hellos(BOTS, 300, rng, net="45.9"), name="bots.pcap")
    l7 = samples_compare(attack=sample)["l7"]
    best = l7["signatures"][0]
    assert (
        best["expression"].startswith("ip.dst in {10.10.10.10")
        and "cf.bot_management.ja3_hash in {" in best["expression"]
    )
    assert (best["attack_coverage"], best["baseline_collateral"], best["size"]) == (1.0, 0.0, 3)
    assert l7["attack_rows"] == 300  # the ClientHellos, not the 600 packets
