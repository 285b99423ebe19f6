"""A mitigation proposed for an attack with capture samples and no logs is simulated on the
capture (issue 14): an L7 rule on its HTTP requests; a field the capture cannot answer is
"unknown", never "0 matched", and its collateral stays unknown (high) at the gate."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Attack
from mitigations import services
from tests.traffic import gen
from traffic.models import TrafficSample
from traffic.services import sample_parse

pytestmark = pytest.mark.django_db
VICTIM = "203.0.113.10"  # in customer_a's 203.0.113.0/24


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def requests(n: int, agent: str, first_client: int, t0: float) -> list[gen.Packet]:
    out = []
    for i in range(n):
        client = f"198.18.{(first_client + i) // 250}.{(first_client + i) % 250 + 1}"
        req = gen.http_request("GET", "/login", [("Host", "acme.example"), ("User-Agent", agent)])
        seg = gen.tcp(40000 + i, 80, gen.PSH | gen.ACK, req)
        frame = gen.eth(gen.ipv4(client, VICTIM, 6, seg))
        out.append((t0 + i * 0.01, frame, len(frame)))
    return out


def upload(customer, attack, tmp_path, name, label, packets):
    path = tmp_path / name
    gen.write_pcap(path, packets)
    sample = TrafficSample.objects.create(customer=customer, attack=attack, name=name, kind="pcap", label=label)
    with path.open("rb") as fh:
        sample.original.save(name, fh)
    return sample_parse(sample_id=sample.pk)


@pytest.fixture
def attack_with_captures(customer_a, tmp_path):
    attack = Attack.objects.create(
        customer=customer_a,
        target=VICTIM,
        title="HTTP flood",
        started_at=timezone.now() - timedelta(minutes=5),
        last_seen=timezone.now(),
    )
    bots = requests(120, "evil-bot/6.6", 0, gen.T0)
    upload(customer_a, attack, tmp_path, "attack.pcap", "attack", bots + requests(30, "Mozilla/5.0", 500, gen.T0 + 2))
    upload(customer_a, attack, tmp_path, "baseline.pcap", "baseline", requests(80, "Mozilla/5.0", 900, gen.T0 - 600))
    assert not TrafficSample.objects.filter(attack=attack).exclude(kind="pcap").exists()  # captures only
    return attack


def test_an_l7_rule_is_simulated_on_the_attacks_capture(draft, engineer, attack_with_captures):
    mitigation = draft(
        kind="waf_rule",
        targets=["export"],
        expression='http.host eq "acme.example" and http.user_agent eq "evil-bot/6.6"',
        attack=attack_with_captures,
    )
    services.mitigation_propose(mitigation=mitigation, user=engineer)
    sim = mitigation.simulation
    assert "unavailable" not in sim, sim
    # Judged on the capture's 150 HTTP requests, not on 0 log lines.
    assert (sim["attack"]["rows"], sim["attack"]["matched"]) == (150, 120)
    assert (sim["baseline"]["rows"], sim["baseline"]["matched"]) == (80, 0)
    assert sim["top_matched"]["http.user_agent"] == [["evil-bot/6.6", 120]]


def test_a_field_the_capture_cannot_answer_is_unknown_not_zero(draft, engineer, attack_with_captures):
    mitigation = draft(
        kind="waf_rule",
        targets=["export"],
        expression='http.host eq "acme.example" and cf.bot_management.score lt 10',
        attack=attack_with_captures,
    )
    services.mitigation_propose(mitigation=mitigation, user=engineer)
    sim = mitigation.simulation
    assert sim["attack"]["matched"] is None and sim["attack"]["share"] is None
    assert sim["attack"]["unknown"].startswith("unknown — ")
    assert sim["baseline"]["matched"] is None and sim["baseline"]["unknown"].startswith("unknown — ")
    assert mitigation.blast_radius == "high"
    assert any(r.startswith("collateral unknown") for r in mitigation.approval_reasons)
