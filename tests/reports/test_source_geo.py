"""Where an attack came from: the senders' countries where they gave them, our geolocation where
they did not (and the report says so), and the countries a capture of the attack counted."""

from __future__ import annotations

import pytest

from reports.selectors import attack_report_data
from tests.reports.conftest import T0, make_alert, make_attack
from traffic.models import TrafficSample

pytestmark = pytest.mark.django_db


@pytest.fixture
def reflection(feed, customer_a):
    """A FastNetMon-style alert names its reflectors (public resolvers) but no country or ASN."""
    attack = make_attack(customer_a, vectors=("dns_amplification",), alerts=2)
    make_alert(feed, customer_a, attack, 1, vector="dns_amplification", at=T0, ips=["8.8.8.8", "9.9.9.9"])
    make_alert(feed, customer_a, attack, 2, vector="dns_amplification", at=T0, ips=["193.0.6.139"])
    return attack


def test_alerts_without_countries_are_located_from_their_sources_and_say_so(reflection):
    f = attack_report_data(reflection)

    assert [(c["country"], c["alerts"]) for c in f["top_countries"]] == [("NL", 1), ("US", 1)]
    assert {a["network"] for a in f["top_asns"]} == {
        "GOOGLE",
        "QUAD9-AS-1",
        "Reseaux IP Europeens Network Coordination Centre (RIPE NCC)",
    }
    assert f["located_alerts"] == 2
    assert "The most frequently reported source countries were NL and US." in f["summary"]


def test_a_senders_country_is_kept_and_not_relocated(feed, customer_a):
    attack = make_attack(customer_a, vectors=("syn_flood",), alerts=1)
    make_alert(feed, customer_a, attack, 1, vector="syn_flood", at=T0, ips=["8.8.8.8"], countries=["BR"], asns=[64500])

    f = attack_report_data(attack)

    assert [c["country"] for c in f["top_countries"]] == ["BR"]
    assert [(a["network"], a["asn"]) for a in f["top_asns"]] == [("AS64500", 64500)]
    assert f["located_alerts"] == 0


def test_private_and_documentation_sources_stay_unreported(feed, customer_a):
    attack = make_attack(customer_a, vectors=("syn_flood",), alerts=1)
    make_alert(feed, customer_a, attack, 1, vector="syn_flood", at=T0, ips=["10.0.0.1", "198.51.100.9"])

    f = attack_report_data(attack)

    assert f["top_countries"] == [] and f["top_asns"] == []
    assert [s["ip"] for s in f["top_ips"]] == ["10.0.0.1", "198.51.100.9"]


def test_a_captures_victim_side_countries_are_counted_as_sampled(reflection, customer_a):
    TrafficSample.objects.create(
        customer=customer_a,
        attack=reflection,
        name="attack.pcap",
        kind="pcap",
        status="ready",
        summary={
            "direction": {
                "source_geo": {
                    "countries": [{"value": "DE", "packets": 900}, {"value": "unknown", "packets": 50}],
                    "asns": [{"value": "AS3320 Deutsche Telekom AG", "packets": 900}],
                }
            }
        },
    )

    f = attack_report_data(reflection)

    sampled = {c["country"]: c["sampled"] for c in f["top_countries"]}
    assert sampled["DE"] == 900 and "UNKNOWN" not in sampled
    assert {a["network"]: a["sampled"] for a in f["top_asns"]}["AS3320 Deutsche Telekom AG"] == 900


def test_the_report_page_names_the_networks_and_the_geolocation_caveat(reflection, build_report, engineer_client):
    report = build_report(attack=reflection)

    html = engineer_client.get(f"/reports/{report.pk}/").content.decode()

    assert "<td>GOOGLE</td>" in html and "ASNone" not in html
    assert "in our offline geolocation database" in html
