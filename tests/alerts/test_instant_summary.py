"""An attack's summary is right the moment its first alert is committed (issue 13).

These tests never run the on-commit callbacks (the debounced ``attack_summarize``), so
what they read is what the upsert's own transaction wrote.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts import services
from alerts.formats import examples
from alerts.models import Attack
from tickets.services import ticket_create_from_alerts

pytestmark = pytest.mark.django_db


def _deliver(feed, payload):
    received = services.delivery_receive(feed=feed, body=examples.body(payload), headers={})
    return services.delivery_process(delivery_id=received.delivery.pk)


@pytest.fixture
def no_debounced_summary(monkeypatch):
    calls = []
    monkeypatch.setattr(services, "attack_schedule_summary", lambda **kw: calls.append(kw))
    monkeypatch.setattr(services, "attack_summarize", lambda **kw: pytest.fail("full summary ran"))
    return calls


def test_first_alert_gives_its_attack_urgency_peak_vector_and_title(make_feed, customer_a, no_debounced_summary):
    feed, _ = make_feed("cloudflare")
    _deliver(feed, examples.cloudflare_l4(target_ip="203.0.113.10", pps=2_450_000, correlation_id="c1"))
    attack = Attack.objects.get()
    assert attack.alert_count == 1
    assert attack.peak_pps == 2_450_000
    assert attack.peak_at is not None
    assert attack.vectors == ["udp_flood"]
    assert attack.summary["vectors"] == [{"vector": "udp_flood", "alerts": 1}]
    assert attack.title == "UDP flood on 203.0.113.10"
    assert attack.severity in ("high", "critical")
    assert attack.urgency >= 60
    assert "enterprise plan" in attack.urgency_reasons and "ongoing" in attack.urgency_reasons
    assert attack.layer == "L4"


def test_later_alerts_fold_into_the_same_attack_incrementally(make_feed, customer_a, no_debounced_summary):
    cf, _ = make_feed("cloudflare")
    am, _ = make_feed("alertmanager")
    now = timezone.now()
    _deliver(cf, examples.cloudflare_l4(target_ip="203.0.113.10", pps=2e6, correlation_id="a1", at=now))
    first = Attack.objects.get()
    _deliver(
        am,
        examples.alertmanager_notification(
            examples.alertmanager_alert(target_ip="203.0.113.10", pps=5e6, starts_at=now + timedelta(minutes=3))
        ),
    )
    # A repeat of the first alert: no new alert, so no new count, but its peak counts.
    _deliver(cf, examples.cloudflare_l4(target_ip="203.0.113.10", pps=1e6, correlation_id="a1", at=now))
    attack = Attack.objects.get()
    assert attack.pk == first.pk
    assert attack.alert_count == 2 == attack.alerts.count()
    assert attack.peak_pps == 5e6
    assert set(attack.vectors) == {"udp_flood", "syn_flood"}
    assert {v["vector"]: v["alerts"] for v in attack.summary["vectors"]} == {"udp_flood": 1, "syn_flood": 1}
    assert attack.severity == "critical"
    assert attack.title in ("SYN flood + UDP flood on 203.0.113.10", "UDP flood + SYN flood on 203.0.113.10")


def test_incremental_summary_agrees_with_the_full_recompute(make_feed, customer_a):
    feed, _ = make_feed("suricata")
    events = [
        examples.suricata_alert(src_ip=f"185.220.101.{i}", dest_ip="203.0.113.7", signature_id=2_100_000 + i % 3)
        for i in range(12)
    ]
    _deliver(feed, examples.eve_lines(*events[:6]))
    _deliver(feed, examples.eve_lines(*events[6:]))
    folded = Attack.objects.get()
    full = services.attack_summarize(attack_id=folded.pk)
    for name in ("alert_count", "peak_bps", "peak_pps", "peak_rps", "vectors", "severity", "layer", "title"):
        assert getattr(folded, name) == getattr(full, name), name
    assert folded.urgency == full.urgency
    assert folded.summary["vectors"] == full.summary["vectors"]


def test_ticket_escalated_before_the_debounced_summary_takes_the_real_title(
    make_feed, customer_a, engineer, no_debounced_summary
):
    feed, _ = make_feed("cloudflare")
    _deliver(feed, examples.cloudflare_l4(target_ip="203.0.113.10", correlation_id="t1"))
    attack = Attack.objects.get()
    ticket = ticket_create_from_alerts(alerts=list(attack.alerts.all()), user=engineer)
    assert ticket.title == "UDP flood on 203.0.113.10"
