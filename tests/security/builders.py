"""One object of every customer-owned kind for a customer: the raw material of the security tests.

``build_world(customer, engineer)`` returns a ``World`` holding a feed, a delivery, an alert import,
an attack with alerts, a ticket, a mitigation, a mitigation list with an item, a traffic sample, a
ready report with a share link, an unmatched customer mail, a silence, an asset, a customer viewer,
an audit event and an API token. The isolation matrix builds one world per customer; schemathesis
uses them so ids exist.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

from alerts.models import Alert, AlertImport, Attack, Delivery, Feed, Silence
from console import roles
from console.models import Asset, AuditEvent, Customer
from console.services import api_token_create
from mitigations import services as mitigation_services
from mitigations.models import ListItem, MitigationList
from reports import services as report_services
from reports.models import Report
from tests.factories import UserFactory
from tickets import services as ticket_services
from tickets.models import InboundMail
from traffic.models import TrafficSample

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


@dataclass
class World:
    customer: Customer
    objects: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["objects"][name]
        except KeyError as exc:
            raise AttributeError(name) from exc


def build_world(customer: Customer, engineer: Any, *, title_prefix: str = "") -> World:
    slug = customer.slug
    key = slug.replace("-", "_")
    o: dict[str, Any] = {}

    feed = Feed(name=f"{title_prefix}Feed {slug}", slug=f"feed-{slug}", format="generic", customer=customer)
    feed.set_secret()
    feed.save()
    o["feed"] = feed
    body = b'{"title": "x"}'
    o["delivery"] = Delivery.objects.create(feed=feed, body=body, body_sha256=hashlib.sha256(body).hexdigest())
    o["alert_import"] = AlertImport.objects.create(feed=feed, path=f"imports/{slug}.jsonl", filename=f"{slug}.jsonl")

    # The customer's own attacked address (a mitigation is limited to it): one of its prefixes, else its own.
    prefix = Asset.objects.filter(customer=customer, kind=Asset.Kind.PREFIX).first()
    target = str(next(prefix.network().hosts())) if prefix else f"192.0.2.{100 + customer.pk % 100}"
    attack = Attack.objects.create(
        customer=customer,
        target=target,
        title=f"{title_prefix}UDP flood on {target}",
        vectors=["udp_flood"],
        layer="L4",
        severity="critical",
        started_at=T0,
        last_seen=T0 + timedelta(minutes=10),
        ongoing=True,
        peak_bps=18.7e9,
        peak_pps=2.45e6,
        urgency=90,
        urgency_reasons=["critical"],
        alert_count=2,
    )
    o["attack"] = attack
    alerts = [
        Alert.objects.create(
            feed=feed,
            customer=customer,
            attack=attack,
            fingerprint=f"fp-{slug}-{i}",
            title=f"{title_prefix}udp_flood against {target} #{i}",
            layer="L4",
            vector="udp_flood",
            severity="critical",
            target_ip=target,
            pps=2.45e6,
            bps=18.7e9,
            packets=1000,
            source_ips=[f"{title_prefix}198.18.0.{i + 1}" if title_prefix else f"198.18.0.{i + 1}"],
            event_time=T0 + timedelta(minutes=i),
            first_seen=T0 + timedelta(minutes=i),
            last_seen=T0 + timedelta(minutes=i + 1),
            urgency=90,
        )
        for i in range(2)
    ]
    o["alert"] = alerts[0]
    o["ticket"] = ticket_services.ticket_create_from_alerts(alerts=alerts, user=engineer)
    # Mail that named no ticket has no customer (staff only): one per world, its text attacker-written.
    o["inbound_mail"] = InboundMail.objects.create(
        message_key=f"<world-{slug}@mail.{slug}.example>",
        channel=InboundMail.Channel.WEBHOOK,
        status=InboundMail.Status.UNMATCHED,
        sender=f"{title_prefix}ops@{slug}.example",
        subject=f"{title_prefix}Mail {slug}",
        body=f"{title_prefix}we are under attack",
    )

    o["mitigation_list"] = mitigation_list = MitigationList.objects.create(customer=customer, name=f"list_{key}")
    o["list_item"] = ListItem.objects.create(mitigation_list=mitigation_list, value="198.18.0.0/24")
    o["mitigation"] = mitigation_services.mitigation_create(
        customer=customer,
        kind="firewall_rule",
        user=engineer,
        targets=["export"],
        expression=f"ip.dst eq {target} and ip.src in {{198.18.0.0/24}} and udp.dstport eq 53",
        action="block",
        ttl_seconds=600,
        attack=attack,
    )
    o["traffic_sample"] = TrafficSample.objects.create(
        customer=customer,
        attack=attack,
        name=f"{slug}.pcap",
        kind=TrafficSample.Kind.PCAP,
        original=f"traffic/originals/{slug}.pcap",
        status=TrafficSample.Status.FAILED,
        errors=["not a capture"],
    )
    report = Report.objects.create(
        customer=customer,
        kind=Report.Kind.PERIOD,
        title=f"{title_prefix}Report {slug}",
        status=Report.Status.DONE,
        period_start=T0,
        period_end=T0 + timedelta(days=1),
        generated_at=timezone.now(),
        html="<p>report</p>",
        figures={},
    )
    o["report"] = report
    o["share_link"], o["share_token"] = report_services.share_link_create(report=report, user=engineer)
    o["silence"] = Silence.objects.create(
        matchers=[{"field": "customer", "op": "=", "value": slug}],
        ends_at=timezone.now() + timedelta(hours=1),
        created_by=engineer,
        comment=f"maintenance of {slug}",
    )
    o["asset"] = Asset.objects.create(customer=customer, kind=Asset.Kind.ZONE, value=f"www.{slug}.example")
    o["viewer"] = viewer = UserFactory(username=f"{slug}-cv", role=roles.CUSTOMER_VIEWER, customer=customer)
    o["api_token"] = api_token_create(user=viewer, name=f"{slug} script").token
    o["audit_event"] = AuditEvent.objects.filter(customer=customer).order_by("-id").first()
    assert o["audit_event"] is not None, "creating the objects above writes audit events of the customer"
    return World(customer=customer, objects=o)
