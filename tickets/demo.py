"""Demo tickets in every state, with live SLA clocks, built from the demo attacks. Idempotent."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from alerts import services as alert_services
from alerts.formats import ParsedAlert
from alerts.models import Alert, Attack, Feed
from console.context import acting_as
from tickets import services
from tickets.models import Ticket, TicketTemplate, TimelineEntry

ONGOING = [
    # key, target ip, zone/host, vector, layer, bps, pps, rps, minutes ago
    ("harbor-udp", "203.0.113.10", "", "udp_flood", "L4", 38e9, 4.1e6, None, 14),
    ("harbor-syn", "203.0.113.10", "", "syn_flood", "L4", 9e9, 6.3e6, None, 12),
    ("helio-http", "", "app.helio.example", "http_flood", "L7", None, None, 420_000, 25),
]


def _ongoing_attacks(now) -> dict[str, Attack]:
    """Two attacks still in progress (the simulator makes more while the console runs)."""
    feed = Feed.objects.filter(slug="cloudflare").first()
    if feed is None:
        return {}
    attacks: dict[str, Attack] = {}
    for key, ip, host, vector, layer, bps, pps, rps, ago in ONGOING:
        parsed = [
            ParsedAlert(
                fingerprint=f"demo-ticket-{key}-{i}",
                title=f"{alert_services.vector_title(vector)} against {ip or host}",
                layer=layer,
                vector=vector,
                severity="critical" if layer == "L4" else "high",
                event_time=now - timedelta(minutes=ago - 3 * i),
                target_ip=ip,
                target_port=53 if vector == "udp_flood" else 443,
                target_host=host,
                zone=host,
                bps=bps * (0.6 + 0.2 * i) if bps else None,
                pps=pps * (0.6 + 0.2 * i) if pps else None,
                rps=rps * (0.6 + 0.2 * i) if rps else None,
                source_ips=["185.220.101.47", "45.155.205.233", "91.240.118.172"][: i + 1],
            )
            for i in range(3)
        ]
        result = alert_services.alerts_upsert(
            feed=feed, delivery=None, parsed=parsed, received_at=now - timedelta(minutes=ago)
        )
        for attack_id in result.attack_ids:
            attack = alert_services.attack_summarize(attack_id=attack_id)
            if attack is not None:
                attacks[key.split("-")[0]] = attack
    return attacks


def _shift(ticket: Ticket, minutes: int) -> None:
    """Pretend the ticket was opened ``minutes`` ago: its clocks are then live and moving."""
    delta = timedelta(minutes=minutes)
    Ticket.objects.filter(pk=ticket.pk).update(created_at=ticket.created_at - delta)
    for entry in ticket.timeline.all():
        TimelineEntry.objects.filter(pk=entry.pk).update(at=entry.at - delta)
    ticket.refresh_from_db()


def _has(key: str) -> bool:
    return any(f"demo:{key}" in (t.tags or []) for t in Ticket.objects.only("tags"))


def _make(key: str, alerts: list[Alert], user: Any, minutes_ago: int) -> Ticket | None:
    if _has(key) or not alerts:
        return None
    ticket = services.ticket_create_from_alerts(alerts=alerts, user=user)
    services.ticket_update(ticket=ticket, user=user, tags=["demo", f"demo:{key}"])
    _shift(ticket, minutes_ago)
    return ticket


@transaction.atomic
def seed(stdout=None) -> dict:
    User = get_user_model()
    eli, sam = User.objects.filter(username="eli").first(), User.objects.filter(username="sam").first()
    if eli is None or sam is None:
        return {"tickets": 0}
    now = timezone.now()
    made = 0
    with acting_as("seed_demo"):
        live = _ongoing_attacks(now)
        ack = TicketTemplate.objects.filter(slug="acknowledgement").first()
        # 1. A P1 nobody has picked up yet: its acknowledge clock is close to breaching.
        if "harbor" in live and (t := _make("new-p1", list(live["harbor"].alerts.all()), eli, 13)):
            made += 1
        # 2. An L7 flood being investigated, the customer told.
        if "helio" in live and (t := _make("investigating", list(live["helio"].alerts.all()), sam, 20)):
            services.ticket_assign(ticket=t, assignee=sam, user=sam)
            services.ticket_transition(ticket=t, to=Ticket.Status.INVESTIGATING, user=sam)
            services.ticket_add_note(
                ticket=t, body="Requests come from a residential proxy pool; JA4 is uniform.", user=sam
            )
            if ack:
                services.ticket_send_customer_message(ticket=t, template=ack, user=sam)
            made += 1
        # 3-6. Past attacks at every later stage.
        history = list(Attack.objects.filter(ongoing=False, customer__isnull=False).order_by("-urgency")[:8])
        stages = [
            ("mitigating", [Ticket.Status.INVESTIGATING, Ticket.Status.MITIGATING], 45),
            ("waiting", [Ticket.Status.INVESTIGATING, Ticket.Status.WAITING], 90),
            (
                "resolved",
                [
                    Ticket.Status.INVESTIGATING,
                    Ticket.Status.MITIGATING,
                    Ticket.Status.MONITORING,
                    Ticket.Status.RESOLVED,
                ],
                300,
            ),
            (
                "closed",
                [
                    Ticket.Status.INVESTIGATING,
                    Ticket.Status.MITIGATING,
                    Ticket.Status.MONITORING,
                    Ticket.Status.RESOLVED,
                    Ticket.Status.CLOSED,
                ],
                2000,
            ),
        ]
        for (key, path, minutes), attack in zip(stages, history, strict=False):
            t = _make(key, list(attack.alerts.all()[:5]), eli, minutes)
            if t is None:
                continue
            services.ticket_assign(ticket=t, assignee=eli, user=eli)
            for status in path:
                services.ticket_transition(ticket=t, to=status, user=eli, outcome="tp_no_impact")
            if key == "mitigating":
                services.ticket_escalate(
                    ticket=t,
                    level=Ticket.EscalationLevel.ENGINEERING,
                    reason="Rate limit at the edge holds; need a WAF rule for the new cookie variant.",
                    user=eli,
                )
            if key == "waiting":
                services.ticket_log_contact(
                    ticket=t, channel="phone", summary="Asked for their origin's access logs.", user=eli
                )
            made += 1
        services.tickets_sla_check()
    if stdout is not None and made:
        stdout.write(f"tickets: {made} demo tickets\n")
    return {"tickets": made}
