"""A seeded incident with known numbers, for report content, output and leakage tests.

Acme Corp (America/New_York, EST on 3 March 2026) is hit by a DNS + NTP amplification
attack on 203.0.113.10 from 07:14 to 08:02 UTC (02:14–03:02 EST): three alerts, the
peak 312 Gbps / 41 Mpps at 07:31 UTC (02:31 EST), 10,000 packets reported, of which a
firewall rule applied at 07:20 UTC counted 9,997 (99.97%). The ticket has an internal
note with a marker that must never leave the console, and one customer-facing message.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps

from alerts.models import Alert, Attack, Feed

T0 = datetime(2026, 3, 3, 7, 14, tzinfo=UTC)
END = datetime(2026, 3, 3, 8, 2, tzinfo=UTC)
MARKER = "INTERNAL-MARKER-7f3a9"
CUSTOMER_MESSAGE = "We identified a DNS and NTP amplification attack and are filtering it at the edge."
SUMMARY = (
    "On 3 March 2026 between 02:14 and 03:02 EST, 203.0.113.10 received a UDP amplification attack (DNS, NTP)"
    " peaking at 312 Gbps and 41 Mpps; 99.97% was dropped at the edge."
)


@pytest.fixture(autouse=True)
def _no_pdf_by_default(settings):
    """Chromium starts only in the tests about the PDF."""
    settings.REPORT_PDF = False


@pytest.fixture
def feed(db):
    feed = Feed(name="Cloudflare", slug="cloudflare", format="cloudflare")
    feed.set_secret()
    feed.save()
    return feed


def make_alert(
    feed,
    customer,
    attack,
    n,
    *,
    vector,
    at,
    bps=None,
    pps=None,
    rps=None,
    packets=None,
    ips=(),
    asns=(),
    countries=(),
    target_ip="203.0.113.10",
    target_port=None,
    severity="critical",
    layer="L4",
):
    return Alert.objects.create(
        feed=feed,
        customer=customer,
        attack=attack,
        fingerprint=f"fp-{customer.slug}-{n}",
        title=f"{vector} on {target_ip}",
        layer=layer,
        vector=vector,
        severity=severity,
        target_ip=target_ip,
        target_port=target_port,
        bps=bps,
        pps=pps,
        rps=rps,
        packets=packets,
        bytes=packets * 1000 if packets else None,
        source_ips=list(ips),
        source_asns=list(asns),
        source_countries=list(countries),
        event_time=at,
        first_seen=at,
        last_seen=at + timedelta(minutes=2),
        ended_at=END if n == 3 else None,
        resolved_at=END,
        status="resolved",
        updated_at=at,
    )


def make_attack(
    customer,
    *,
    target="203.0.113.10",
    start=T0,
    end=END,
    vectors=("dns_amplification", "ntp_amplification"),
    bps=312e9,
    pps=41e6,
    alerts=3,
):
    return Attack.objects.create(
        customer=customer,
        target=target,
        title="DNS amplification + NTP amplification on " + target,
        vectors=list(vectors),
        layer="L4",
        severity="critical",
        started_at=start,
        last_seen=end,
        ended_at=end,
        ongoing=False,
        peak_bps=bps,
        peak_pps=pps,
        peak_at=start + timedelta(minutes=17),
        alert_count=alerts,
        summarized_at=end,
    )


@pytest.fixture
def incident(db, feed, customer_a, engineer):
    attack = make_attack(customer_a)
    make_alert(
        feed,
        customer_a,
        attack,
        1,
        vector="dns_amplification",
        at=T0,
        bps=120e9,
        pps=15e6,
        packets=3000,
        ips=["198.51.100.1", "198.51.100.2"],
        asns=[64500],
        countries=["CN"],
    )
    make_alert(
        feed,
        customer_a,
        attack,
        2,
        vector="ntp_amplification",
        at=T0 + timedelta(minutes=17),
        bps=312e9,
        pps=41e6,
        packets=5000,
        ips=["198.51.100.1", "192.0.2.7"],
        asns=[64500, 64501],
        countries=["CN", "BR"],
    )
    make_alert(
        feed,
        customer_a,
        attack,
        3,
        vector="dns_amplification",
        at=T0 + timedelta(minutes=31),
        bps=200e9,
        pps=30e6,
        packets=2000,
        ips=["198.51.100.1"],
        asns=[64501],
        countries=["CN", "US"],
    )
    result = {"attack": attack, "customer": customer_a, "mitigation": None, "ticket": None}
    if apps.is_installed("mitigations"):
        from mitigations.models import Mitigation

        result["mitigation"] = Mitigation.objects.create(
            customer=customer_a,
            attack=attack,
            title="Drop DNS/NTP reflection to 203.0.113.10",
            kind="firewall_rule",
            expression="ip.dst == 203.0.113.10 and udp.srcport in {53 123}",
            action="block",
            targets=["nftables"],
            state="expired",
            author=engineer,
            applied_at=T0 + timedelta(minutes=6),
            expires_at=END + timedelta(minutes=8),
            ended_at=END + timedelta(minutes=8),
            hits={"nftables": {"packets": 9997, "bytes": 9_997_000, "at": END.isoformat()}},
        )
    if apps.is_installed("tickets"):
        from tickets.models import Ticket, TimelineEntry

        ticket = Ticket.objects.create(
            number="SW-2026-0001",
            customer=customer_a,
            title="Amplification on 203.0.113.10",
            severity="P1",
            created_at=T0 + timedelta(minutes=2),
        )
        ticket.attacks.add(attack)
        TimelineEntry.objects.create(
            ticket=ticket,
            at=T0 + timedelta(minutes=4),
            actor_name="eli",
            kind="note",
            visibility="internal",
            body=f"{MARKER}: origin is 10.9.8.7, customer forgot to firewall it",
        )
        TimelineEntry.objects.create(
            ticket=ticket,
            at=T0 + timedelta(minutes=11),
            actor_name="eli",
            kind="customer_message",
            visibility="customer",
            body=CUSTOMER_MESSAGE,
            data={"subject": "Attack identified"},
        )
        TimelineEntry.objects.create(
            ticket=ticket,
            at=T0 + timedelta(minutes=12),
            actor_name="eli",
            kind="contact_log",
            visibility="internal",
            body=f"Called the NOC. {MARKER} they were rude",
        )
        result["ticket"] = ticket
    return result


@pytest.fixture
def other_incident(db, feed, customer_b):
    """Globex's own attack, for cross-customer tests."""
    attack = make_attack(customer_b, target="globex.example", vectors=("http_flood",), bps=None, pps=None, alerts=1)
    make_alert(
        feed,
        customer_b,
        attack,
        9,
        vector="http_flood",
        at=T0,
        rps=250_000,
        target_ip=None,
        ips=["203.0.113.99"],
        countries=["GLOBEX-ONLY"],
        layer="L7",
    )
    Alert.objects.filter(attack=attack).update(target_host="globex.example")
    return {"attack": attack, "customer": customer_b}


@pytest.fixture
def build_report(engineer):
    """A report made and generated through the services, as the task would."""
    from reports import services

    def build(*, attack=None, ticket=None, customer=None, start=None, end=None, pdf=False):
        report = services.report_request(
            user=engineer, attack=attack, ticket=ticket, customer=customer, start=start, end=end, enqueue=False
        )
        return services.report_generate(report_id=report.pk, pdf=pdf)

    return build
