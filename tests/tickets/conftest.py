"""Feeds, attacks and alerts to escalate, built directly (ingest is tested in tests/alerts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.models import Alert, Attack, Feed
from tickets import services

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


@pytest.fixture
def feed(db):
    feed = Feed(name="Cloudflare", slug="cloudflare", format="cloudflare")
    feed.set_secret()
    feed.save()
    return feed


@pytest.fixture
def make_attack(feed):
    """An attack of a customer with ``n`` alerts, its peaks summarised as the alerts app would."""

    def make(customer, *, target="203.0.113.10", n=3, urgency=90, vectors=("udp_flood", "syn_flood"), start=T0):
        attack = Attack.objects.create(
            customer=customer,
            target=target,
            title=f"UDP flood + SYN flood on {target}",
            vectors=list(vectors),
            layer="L4",
            severity="critical",
            started_at=start,
            last_seen=start + timedelta(minutes=10),
            ongoing=True,
            peak_bps=18.7e9,
            peak_pps=2.45e6,
            urgency=urgency,
            urgency_reasons=["critical", f"{customer.plan} plan", "ongoing"],
            alert_count=n,
        )
        for i in range(n):
            make_alert(feed, customer, attack=attack, i=i, urgency=urgency, target=target, start=start)
        return attack

    return make


def make_alert(feed, customer, *, attack=None, i=0, urgency=50, target="203.0.113.10", start=T0, vector=None):
    vector = vector or ("udp_flood" if i % 2 == 0 else "syn_flood")
    return Alert.objects.create(
        feed=feed,
        customer=customer,
        attack=attack,
        fingerprint=f"fp-{customer.slug}-{target}-{i}-{vector}",
        title=f"{vector} against {target} #{i}",
        layer="L4",
        vector=vector,
        severity="critical",
        target_ip=target,
        pps=2.45e6 - i * 1e5,
        bps=18.7e9 - i * 1e9,
        event_time=start + timedelta(minutes=i),
        first_seen=start + timedelta(minutes=i, seconds=5),
        last_seen=start + timedelta(minutes=i + 1),
        urgency=urgency,
    )


@pytest.fixture
def attack_a(make_attack, customer_a):
    return make_attack(customer_a)


@pytest.fixture
def ticket(attack_a, engineer):
    return services.ticket_create_from_alerts(alerts=list(attack_a.alerts.all()), user=engineer)


@pytest.fixture
def internal_note(ticket, engineer):
    return services.ticket_add_note(
        ticket=ticket, body="INTERNAL-ONLY: suspect the customer's own load test", user=engineer
    )
