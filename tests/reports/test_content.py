"""Every figure of a report equals what the seeded data says, in the customer's time zone."""

from __future__ import annotations

from datetime import date

import pytest

from reports import text
from reports.selectors import attack_report_data, period_report_data
from reports.services import _period_bounds
from tests.reports.conftest import CUSTOMER_MESSAGE, MARKER, SUMMARY

pytestmark = pytest.mark.django_db


def test_summary_states_the_incident_in_the_customers_timezone(incident):
    f = attack_report_data(incident["attack"])

    assert f["summary"][0] == SUMMARY
    assert f["summary"][1] == "It lasted 48 min and was reported in 3 alerts."
    assert f["summary"][2] == (
        "1 mitigation was applied, the first at 02:20 EST, 6 min after the attack began; it has ended."
    )
    assert f["summary"][3] == "The most frequently reported source countries were CN, BR and US."
    assert f["summary"][4] == "The most frequently reported source networks were AS64500 and AS64501."
    assert f["summary"][5] == "Our engineers handled it as SW-2026-0001 (open: New)."
    assert f["report"]["timezone"] == "America/New_York"


def test_key_figures_equal_the_data(incident):
    o = attack_report_data(incident["attack"])["overview"]

    assert o["start_local"] == "2026-03-03 02:14:00 EST"
    assert o["end_local"] == "2026-03-03 03:02:00 EST"
    assert o["duration_s"] == 48 * 60
    assert o["peaks"]["bps"]["value"] == 312e9
    assert o["peaks"]["bps"]["label"] == "312 Gbps"
    assert o["peaks"]["bps"]["at_local"] == "2026-03-03 02:31:00 EST"
    assert o["peaks"]["pps"]["value"] == 41e6
    assert o["peaks"]["pps"]["label"] == "41 Mpps"
    assert "rps" not in o["peaks"]
    assert o["alerts"] == 3
    assert o["packets"] == 10_000
    assert o["bytes"] == 10_000_000
    assert o["dropped_packets"] == 9997
    assert o["dropped_share"] == pytest.approx(0.9997)


def test_vectors_carry_their_share_of_alerts(incident):
    vectors = attack_report_data(incident["attack"])["vectors"]

    assert [(v["vector"], v["alerts"], v["share_label"]) for v in vectors] == [
        ("dns_amplification", 2, "66.66%"),
        ("ntp_amplification", 1, "33.33%"),
    ]
    assert vectors[0]["peak_bps"] == 200e9 and vectors[1]["peak_bps"] == 312e9
    assert vectors[0]["first_seen_local"] == "2026-03-03 02:14:00 EST"


def test_top_sources_are_ranked_by_alerts_naming_them(incident):
    f = attack_report_data(incident["attack"])

    assert [(s["ip"], s["alerts"]) for s in f["top_ips"]] == [
        ("198.51.100.1", 3),
        ("192.0.2.7", 1),
        ("198.51.100.2", 1),
    ]
    assert [(a["asn"], a["alerts"]) for a in f["top_asns"]] == [(64500, 2), (64501, 2)]
    assert [(c["country"], c["alerts"]) for c in f["top_countries"]] == [("CN", 3), ("BR", 1), ("US", 1)]
    assert [t["target"] for t in f["targets"]] == ["203.0.113.10"]


def test_charts_draw_the_same_numbers(incident):
    charts = attack_report_data(incident["attack"])["charts"]

    traffic = {t["name"]: t for t in charts["traffic"]["data"]}
    bps = traffic["attack bits/s (alerts)"]
    # One point a minute, 02:14 to 02:47 local: each alert holds its rate until its last repeat
    # (two minutes later); a minute no alert covers is a gap, not a zero.
    assert bps["x"][0] == "2026-03-03 02:14:00" and bps["x"][-1] == "2026-03-03 02:47:00" and len(bps["x"]) == 34
    values = dict(zip(bps["x"], bps["y"], strict=True))
    assert values["2026-03-03 02:14:00"] == values["2026-03-03 02:16:00"] == 120e9
    assert values["2026-03-03 02:20:00"] is None
    assert values["2026-03-03 02:31:00"] == 312e9 and values["2026-03-03 02:45:00"] == 200e9
    assert max(v for v in bps["y"] if v) == 312e9
    assert charts["traffic"]["layout"]["xaxis"]["range"] == ["2026-03-03 02:14:00", "2026-03-03 03:02:00"]
    assert max(v for v in traffic["attack packets/s (alerts)"]["y"] if v) == 41e6
    assert charts["traffic"]["layout"]["xaxis"]["title"]["text"] == "time (America/New_York)"
    # The mitigation is marked when it was applied, in local time.
    shapes = charts["traffic"]["layout"]["shapes"]
    assert [(s["x0"], s["x1"]) for s in shapes] == [("2026-03-03 02:20:00", "2026-03-03 02:20:00")]
    assert [a["text"] for a in charts["traffic"]["layout"]["annotations"]] == ["M1"]
    pie = charts["vectors"]["data"][0]
    assert pie["labels"] == ["DNS amplification", "NTP amplification"] and pie["values"] == [2, 1]
    countries = charts["countries"]["data"][0]
    assert countries["y"] == ["CN", "BR", "US"] and countries["x"] == [3, 1, 1]
    assert charts["asns"]["data"][0]["y"] == ["AS64500", "AS64501"]


def test_mitigations_are_listed_with_time_and_effect(incident):
    (m,) = attack_report_data(incident["attack"])["mitigations"]

    assert m["label"] == "M1"
    assert m["applied_local"] == "2026-03-03 02:20:00 EST"
    assert m["until_local"] == "2026-03-03 03:10:00 EST"
    assert m["matched_packets"] == 9997
    assert m["what"] == "Network firewall rule: block"
    # Detector rates: 120 Gbps in the 10 minutes before (02:14), 312 Gbps after (02:31 is 11 min after: none).
    assert m["before_bps"] == 120e9 and m["after_bps"] is None
    assert "9,997 packets matched" in m["effect"]


def test_timeline_holds_alerts_mitigations_and_only_customer_facing_ticket_entries(incident):
    timeline = attack_report_data(incident["attack"])["timeline"]

    whats = [(e["at_local"][11:16], e["what"]) for e in timeline]
    assert whats == [
        ("02:14", "DNS amplification detected"),
        ("02:20", "M1 applied"),
        ("02:25", "Customer message: Attack identified"),
        ("02:31", "NTP amplification detected"),
        ("02:31", "Peak of 312 Gbps"),
        ("02:31", "Peak of 41 Mpps"),
        ("03:02", "Attack on 203.0.113.10 ended"),
        ("03:10", "M1 ended"),
    ]
    assert any(e["detail"] == CUSTOMER_MESSAGE for e in timeline)
    assert MARKER not in repr(timeline)


def test_recommendations_follow_the_vectors_seen(incident):
    recs = attack_report_data(incident["attack"])["recommendations"]

    assert [r["topic"] for r in recs] == ["Magic Firewall"]
    assert "UDP source port 53, 123" in recs[0]["text"]
    assert "203.0.113.10" in recs[0]["text"]


def test_rule_table_maps_vectors_to_advice():
    targets = [{"target": "203.0.113.10:22", "host": "203.0.113.10", "port": 22}]
    recs = text.recommendations(["http_flood", "syn_flood", "udp_flood"], targets, hot_paths=["/login"])
    topics = [r["topic"] for r in recs]

    assert topics == ["Rate limiting", "SYN protection", "UDP filtering", "Spectrum"]
    assert "/login" in recs[0]["text"]
    assert "203.0.113.10:22" in recs[-1]["text"]
    # A port the customer already runs behind Spectrum is not suggested again.
    assert "Spectrum" not in [r["topic"] for r in text.recommendations(["syn_flood"], targets, spectrum_ports=[22])]


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (312e9, "bps", "312 Gbps"),
        (41e6, "pps", "41 Mpps"),
        (2.45e6, "pps", "2.45 Mpps"),
        (18.7e9, "bps", "18.7 Gbps"),
        (999.7e9, "bps", "1 Tbps"),
        (512, "rps", "512 rps"),
    ],
)
def test_rates_read_as_engineers_write_them(value, unit, expected):
    assert text.si(value, unit) == expected


def test_percent_never_rounds_up_to_a_full_hundred():
    assert text.percent(0.99997) == "99.99"
    assert text.percent(1.0) == "100"


def test_period_report_counts_attacks_of_the_customers_local_days(incident, other_incident):
    customer = incident["customer"]
    f = period_report_data(customer, *_period_bounds(customer, date(2026, 3, 1), date(2026, 3, 31)))

    assert f["overview"]["attacks"] == 1
    assert f["report"]["period_start_local"] == "2026-03-01 00:00:00 EST"
    assert f["summary"][0] == (
        "Between 1 March 2026 and 31 March 2026 (EST), Acme Corp received 1 attack on 1 target,"
        " lasting 48 min in total."
    )
    assert f["summary"][1] == (
        "The largest, a UDP amplification attack (DNS, NTP) on 203.0.113.10 on 3 March 2026 at 02:14 EST,"
        " peaked at 312 Gbps and 41 Mpps."
    )
    assert "globex" not in repr(f).lower() and "GLOBEX-ONLY" not in repr(f)


def test_period_without_attacks_says_so(customer_a):
    f = period_report_data(customer_a, *_period_bounds(customer_a, date(2026, 1, 1), date(2026, 1, 31)))
    assert f["summary"] == [
        "Between 1 January 2026 and 31 January 2026 (EST), no attacks against Acme Corp were detected."
    ]
