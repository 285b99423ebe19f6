"""Every write of the tickets app: each change writes the ticket timeline and the audit log."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from alerts.models import Alert, Attack
from alerts.services import alerts_mark_escalated, vector_title
from console import errors
from console.audit import audit_record, snapshot
from console.context import current_system_actor
from console.models import Customer
from tickets import imap
from tickets.mail import (
    THREAD_KINDS,
    ReceivedMail,
    UnreadableMail,
    customer_email,
    parse_mail,
    reply_address,
    ticket_number_from_addresses,
)
from tickets.mail import header_value as mail_header_value
from tickets.messages import format_bps, format_pps, format_rps, render_template
from tickets.models import (
    EscalationTeam,
    InboundMail,
    SlaNotice,
    SlaPolicy,
    Ticket,
    TicketCounter,
    TicketTemplate,
    TimelineEntry,
)
from tickets.notifications import ticket_notify, ticket_notify_escalation

logger = logging.getLogger(__name__)

AUDITED = [
    "number",
    "customer_id",
    "title",
    "summary",
    "severity",
    "status",
    "status_before_wait",
    "outcome",
    "assignee_id",
    "escalation_level",
    "escalation_reason",
    "tags",
    "acknowledged_at",
    "first_update_at",
    "mitigated_at",
    "resolved_at",
    "closed_at",
]


class TicketError(errors.ServiceError):
    """A change the ticket refuses; the message is shown to the engineer as is."""


class TransitionRefused(TicketError, errors.StateConflict):
    """The ticket's status does not allow the move (or someone else moved it first): 409."""


class TicketConflict(TicketError, errors.StateConflict):
    """The ticket changed since the step the engineer acts on: 409."""


def _actor_name(user: Any) -> str:
    if user is not None and getattr(user, "is_authenticated", False):
        return user.get_username()
    return current_system_actor.get() or "system"


def _user(user: Any) -> Any:
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def timeline_add(
    *,
    ticket: Ticket,
    kind: str,
    user: Any = None,
    body: str = "",
    data: dict[str, Any] | None = None,
    visibility: str = TimelineEntry.Visibility.INTERNAL,
    delivery_status: str = "",
    at: datetime | None = None,
) -> TimelineEntry:
    return TimelineEntry.objects.create(
        ticket=ticket,
        at=at or timezone.now(),
        actor=_user(user),
        actor_name=_actor_name(user),
        kind=kind,
        visibility=visibility,
        body=body,
        data=data or {},
        delivery_status=delivery_status,
    )


def _touch(ticket: Ticket, fields: Iterable[str]) -> None:
    ticket.updated_at = timezone.now()
    ticket.save(update_fields=[*fields, "updated_at"])


# --------------------------------------------------------------------------- numbers


def ticket_next_number(*, year: int) -> str:
    """SW-2026-0042: a per-year counter row, incremented under its row lock (safe under concurrency)."""
    with transaction.atomic():
        if not TicketCounter.objects.filter(year=year).update(last=F("last") + 1):
            try:
                with transaction.atomic():
                    TicketCounter.objects.create(year=year, last=1)
                return f"SW-{year}-{1:04d}"
            except IntegrityError:
                # Another request created this year's row first: take the next number from it.
                TicketCounter.objects.filter(year=year).update(last=F("last") + 1)
        last = TicketCounter.objects.get(year=year).last
    return f"SW-{year}-{last:04d}"


# --------------------------------------------------------------------------- creation


def severity_for_urgency(urgency: int) -> str:
    if urgency >= 85:
        return Ticket.Severity.P1
    if urgency >= 65:
        return Ticket.Severity.P2
    if urgency >= 40:
        return Ticket.Severity.P3
    return Ticket.Severity.P4


def _prefill(alerts: Sequence[Alert], attacks: Sequence[Attack]) -> dict[str, Any]:
    """Title from the attack, severity from the highest urgency, a summary of vectors and peaks."""
    urgency = max([a.urgency for a in alerts] + [a.urgency for a in attacks] + [0])
    if attacks:
        main = max(attacks, key=lambda a: (a.urgency, a.alert_count))
        title = main.title or f"Attack on {main.target}"
    else:
        main = None
        first = max(alerts, key=lambda a: a.urgency)
        title = first.title
    vectors: list[str] = []
    for vector in [v for a in attacks for v in (a.vectors or [])] + [a.vector for a in alerts]:
        if vector and vector not in vectors:
            vectors.append(vector)
    peaks = {
        m: max([getattr(a, f"peak_{m}") or 0 for a in attacks] + [getattr(a, m) or 0 for a in alerts]) or None
        for m in ("bps", "pps", "rps")
    }
    targets = sorted({a.target for a in attacks} | {a.target for a in alerts if a.target})
    lines = [
        f"Vectors: {', '.join(vector_title(v) for v in vectors) or 'unknown'}",
        f"Targets: {', '.join(targets[:10]) or 'unknown'}",
        "Peak: "
        + (
            ", ".join(p for p in (format_bps(peaks["bps"]), format_pps(peaks["pps"]), format_rps(peaks["rps"])) if p)
            or "not measured"
        ),
        f"Alerts: {len(alerts)} from {len({a.feed_id for a in alerts})} feed(s); highest urgency {urgency}",
    ]
    if main is not None and main.urgency_reasons:
        lines.append(f"Urgency: {'; '.join(main.urgency_reasons)}")
    return {
        "title": title[:300],
        "severity": severity_for_urgency(urgency),
        "summary": "\n".join(lines),
        "event_at": min((a.event_time for a in alerts), default=None),
        "detected_at": min((a.first_seen for a in alerts), default=None),
    }


def ticket_create(
    *,
    customer: Customer,
    title: str,
    user: Any,
    severity: str = Ticket.Severity.P3,
    summary: str = "",
    tags: list[str] | None = None,
    assignee: Any = None,
    event_at: datetime | None = None,
    detected_at: datetime | None = None,
) -> Ticket:
    """Open a ticket by hand (no alerts): a customer's phone call, say."""
    if severity not in Ticket.Severity.values:
        raise TicketError(f"unknown severity {severity!r}")
    if not title.strip():
        raise TicketError("a ticket needs a title")
    now = timezone.now()
    with transaction.atomic():
        ticket = Ticket.objects.create(
            number=ticket_next_number(year=now.year),
            customer=customer,
            title=title.strip()[:300],
            summary=summary,
            severity=severity,
            tags=list(tags or []),
            assignee=assignee,
            created_by=_user(user),
            event_at=event_at,
            detected_at=detected_at or now,
            created_at=now,
            updated_at=now,
        )
        ticket.sla_state = _sla_state(ticket, now)
        ticket.save(update_fields=["sla_state"])
        timeline_add(
            ticket=ticket,
            kind=TimelineEntry.Kind.CREATED,
            user=user,
            body=ticket.title,
            data={"severity": severity},
            at=now,
        )
        audit_record(action="ticket.create", obj=ticket, after=snapshot(ticket, AUDITED), actor=_user(user))
        if severity == Ticket.Severity.P1:
            ticket_notify(ticket=ticket, event="opened (P1)")
    return ticket


def ticket_create_from_alerts(
    *,
    alerts: Iterable[Alert],
    user: Any,
    title: str = "",
    severity: str = "",
    summary: str = "",
    assignee: Any = None,
) -> Ticket:
    """The triage queue's "escalate": one ticket for these alerts, prefilled from them and their attacks."""
    alerts = list(alerts)
    if not alerts:
        raise TicketError("select at least one alert to open a ticket")
    customer_ids = {a.customer_id for a in alerts}
    if None in customer_ids:
        raise TicketError("some selected alerts belong to no customer; map them to a customer first")
    if len(customer_ids) > 1:
        names = ", ".join(sorted(Customer.objects.filter(pk__in=customer_ids).values_list("name", flat=True)))
        raise TicketError(f"the selected alerts belong to several customers ({names}); open one ticket per customer")
    attacks = list(Attack.objects.filter(pk__in={a.attack_id for a in alerts if a.attack_id}))
    prefill = _prefill(alerts, attacks)
    with transaction.atomic():
        ticket = ticket_create(
            customer=alerts[0].customer if alerts[0].customer else Customer.objects.get(pk=customer_ids.pop()),
            title=title or prefill["title"],
            severity=severity or prefill["severity"],
            summary=summary or prefill["summary"],
            user=user,
            assignee=assignee,
            event_at=prefill["event_at"],
            detected_at=prefill["detected_at"],
        )
        _link(ticket, alerts, attacks, user)
    return ticket


def _link(ticket: Ticket, alerts: Sequence[Alert], attacks: Sequence[Attack], user: Any, *, auto: bool = False) -> int:
    known = set(ticket.alerts.values_list("pk", flat=True))
    new_alerts = [a for a in alerts if a.pk not in known]
    known_attacks = set(ticket.attacks.values_list("pk", flat=True))
    new_attacks = [a for a in attacks if a.pk not in known_attacks]
    if new_alerts:
        ticket.alerts.add(*new_alerts)
        timeline_add(
            ticket=ticket,
            kind=TimelineEntry.Kind.ALERT_LINKED,
            user=user,
            body=(
                f"{len(new_alerts)} new alert(s) of a linked attack attached"
                if auto
                else f"{len(new_alerts)} alert(s) linked"
            ),
            data={"alerts": [a.pk for a in new_alerts], "titles": [a.title[:200] for a in new_alerts[:20]]},
        )
        alerts_mark_escalated(alerts=new_alerts, user=_user(user))
    for attack in new_attacks:
        ticket.attacks.add(attack)
        timeline_add(
            ticket=ticket,
            kind=TimelineEntry.Kind.ATTACK_LINKED,
            user=user,
            body=str(attack),
            data={"attack": attack.pk},
        )
    if new_alerts or new_attacks:
        # Detection and event times move earlier when an older alert joins.
        times = [a.event_time for a in new_alerts] + ([ticket.event_at] if ticket.event_at else [])
        detected = [a.first_seen for a in new_alerts] + ([ticket.detected_at] if ticket.detected_at else [])
        ticket.event_at = min(times) if times else ticket.event_at
        ticket.detected_at = min(detected) if detected else ticket.detected_at
        _touch(ticket, ["event_at", "detected_at"])
        audit_record(
            action="ticket.link_alerts",
            obj=ticket,
            after={"alerts": [a.pk for a in new_alerts], "attacks": [a.pk for a in new_attacks]},
            actor=_user(user),
        )
    return len(new_alerts)


def ticket_add_alerts(*, ticket: Ticket, alerts: Iterable[Alert], user: Any) -> int:
    """ "Add to existing ticket": link more alerts (and their attacks) of the same customer."""
    alerts = list(alerts)
    if not alerts:
        raise TicketError("select at least one alert to add")
    other = {a.customer_id for a in alerts} - {ticket.customer_id}
    if other:
        raise TicketError(f"some selected alerts are not {ticket.customer.name}'s; a ticket holds one customer's")
    if ticket.status == Ticket.Status.CLOSED:
        raise TransitionRefused(f"{ticket.number} is closed; open a new ticket")
    attacks = list(Attack.objects.filter(pk__in={a.attack_id for a in alerts if a.attack_id}))
    ticket_follow_actor(ticket=ticket, user=user)
    with transaction.atomic():
        return _link(ticket, alerts, attacks, user)


def tickets_attach_new_attack_alerts() -> int:
    """Beat, every 30 s: new alerts of an attack linked to an open ticket join that ticket."""
    attached = 0
    tickets = Ticket.objects.exclude(status=Ticket.Status.CLOSED).filter(attacks__isnull=False).distinct()
    for ticket in tickets.select_related("customer"):
        fresh = list(
            Alert.objects.filter(attack__tickets=ticket, customer_id=ticket.customer_id)
            .exclude(tickets=ticket)
            .order_by("event_time")[:500]
        )
        if fresh:
            with transaction.atomic():
                attached += _link(ticket, fresh, [], None, auto=True)
    return attached


# --------------------------------------------------------------------------- workflow


def ticket_transition(
    *,
    ticket: Ticket,
    to: str,
    user: Any,
    outcome: str = "",
    comment: str = "",
    expected: str = "",
    automatic: bool = False,
) -> Ticket:
    """Move a ticket along its workflow, under a row lock.

    Nothing happens when it is already there; a move the map does not allow raises
    TransitionRefused. ``expected`` (the status the engineer saw) refuses a change made
    on a stale page instead of silently overriding someone else's.
    """
    if to not in Ticket.Status.values:
        raise TicketError(f"unknown status {to!r}")
    if outcome and outcome not in Ticket.Outcome.values:
        raise TicketError(f"unknown outcome {outcome!r}")
    with transaction.atomic():
        locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
        if locked.status == to:
            _refresh_instance(ticket, locked)
            return ticket
        if expected and locked.status != expected:
            raise TransitionRefused(
                f"{locked.number} is now {locked.get_status_display()} (changed by someone else); reload and retry"
            )
        if not locked.can_become(to):
            allowed = ", ".join(sorted(Ticket.Status(s).label for s in locked.allowed_targets())) or "nothing"
            raise TransitionRefused(
                f"{locked.number} cannot go from {locked.get_status_display()} to {Ticket.Status(to).label}; "
                f"allowed: {allowed}"
            )
        if to == Ticket.Status.RESOLVED and not (outcome or locked.outcome):
            raise TicketError("say what it was before resolving: choose an outcome")
        before = snapshot(locked, AUDITED)
        now = timezone.now()
        old = locked.status
        changed = ["status", "status_before_wait", "pauses", "paused_since"]
        if to == Ticket.Status.WAITING:
            locked.status_before_wait = old
            locked.paused_since = now
        elif old == Ticket.Status.WAITING:
            if locked.paused_since:
                locked.pauses = [*locked.pauses, [locked.paused_since.isoformat(), now.isoformat()]]
            locked.paused_since = None
            locked.status_before_wait = ""
        locked.status = to
        if locked.acknowledged_at is None and to != Ticket.Status.NEW:
            locked.acknowledged_at = now
            changed.append("acknowledged_at")
        if to == Ticket.Status.MONITORING and locked.mitigated_at is None:
            locked.mitigated_at = now
            changed.append("mitigated_at")
        if to == Ticket.Status.RESOLVED:
            locked.resolved_at = now
            changed.append("resolved_at")
            if outcome:
                locked.outcome = outcome
                changed.append("outcome")
        if to == Ticket.Status.CLOSED:
            locked.closed_at = now
            changed.append("closed_at")
        if old == Ticket.Status.RESOLVED and to == Ticket.Status.INVESTIGATING:
            locked.resolved_at = None
            changed.append("resolved_at")
        locked.sla_state = _sla_state(locked, now)
        _touch(locked, [*changed, "sla_state"])
        timeline_add(
            ticket=locked,
            kind=TimelineEntry.Kind.STATUS_CHANGE,
            user=user,
            body=comment,
            data={
                "from": old,
                "to": to,
                **({"outcome": locked.outcome} if to == Ticket.Status.RESOLVED else {}),
                **({"automatic": True} if automatic else {}),
            },
            at=now,
        )
        audit_record(
            action="ticket.transition", obj=locked, before=before, after=snapshot(locked, AUDITED), actor=_user(user)
        )
    _refresh_instance(ticket, locked)
    return ticket


def _refresh_instance(ticket: Ticket, source: Ticket) -> None:
    for field in source._meta.concrete_fields:
        setattr(ticket, field.attname, getattr(source, field.attname))


def _human(user: Any) -> bool:
    return _user(user) is not None


def ticket_follow_actor(*, ticket: Ticket, user: Any) -> Ticket:
    """The first human action on a ticket acknowledges it (New -> Investigating) and, when nobody
    has it, assigns the person acting. Each automatic step is on the timeline, marked so."""
    if not _human(user):
        return ticket
    fresh = Ticket.objects.filter(pk=ticket.pk).values("status", "assignee_id").first()
    if fresh is None:
        return ticket
    if fresh["status"] == Ticket.Status.NEW:
        ticket_transition(
            ticket=ticket,
            to=Ticket.Status.INVESTIGATING,
            user=user,
            comment="Automatic: acknowledged by the first action on the ticket",
            automatic=True,
        )
    if fresh["assignee_id"] is None and ticket.is_open:
        ticket_assign(ticket=ticket, assignee=user, user=user, automatic=True)
    return ticket


def ticket_follow_mitigation(*, ticket: Ticket, user: Any) -> Ticket:
    """An active mitigation moves the ticket to Mitigating (acknowledging it on the way)."""
    ticket.refresh_from_db()
    path = {
        Ticket.Status.NEW: [Ticket.Status.INVESTIGATING, Ticket.Status.MITIGATING],
        Ticket.Status.INVESTIGATING: [Ticket.Status.MITIGATING],
        Ticket.Status.MONITORING: [Ticket.Status.MITIGATING],
    }.get(ticket.status, [])
    for status in path:
        ticket_transition(
            ticket=ticket, to=status, user=user, comment="Automatic: a mitigation is active", automatic=True
        )
    return ticket


def tickets_follow_attacks() -> int:
    """Beat: a Mitigating ticket whose attacks have all ended moves to Monitoring, and a ticket's
    title follows its attack's summary until a person edits the title. Returns tickets changed."""
    changed = 0
    open_tickets = Ticket.objects.filter(status__in=Ticket.OPEN_STATES, attacks__isnull=False).distinct()
    for ticket in open_tickets.prefetch_related("attacks")[:500]:
        attacks = list(ticket.attacks.all())
        if ticket.status == Ticket.Status.MITIGATING and attacks and not any(a.ongoing for a in attacks):
            ticket_transition(
                ticket=ticket,
                to=Ticket.Status.MONITORING,
                user=None,
                comment="Automatic: the attack has ended",
                automatic=True,
            )
            changed += 1
        lead = max(attacks, key=lambda a: (a.urgency, a.started_at))
        edited = ticket.timeline.filter(kind=TimelineEntry.Kind.EDIT, actor__isnull=False, data__has_key="title")
        if lead.title and ticket.title != lead.title[:300] and not edited.exists():
            ticket_update(ticket=ticket, user=None, title=lead.title[:300], automatic=True)
            changed += 1
    return changed


def ticket_undo(*, ticket: Ticket, entry_id: int, user: Any) -> Ticket:
    """Undo one automatic step of the timeline (a status it moved to, the assignee it set, the title
    it followed), as long as nothing changed that field since. The undo is a person's step: an undone
    title is the engineer's, so the ticket stops following the attack's summary."""
    with transaction.atomic():
        locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
        entry = TimelineEntry.objects.select_for_update().filter(ticket=locked, pk=entry_id).first()
        if entry is None or not (entry.data or {}).get("automatic"):
            raise TicketError("only an automatic step of this ticket can be undone")
        if entry.data.get("undone_by"):
            raise TicketConflict("this step was already undone")
        data = entry.data
        if entry.kind == TimelineEntry.Kind.STATUS_CHANGE:
            if locked.status != data["to"]:
                raise TicketConflict(
                    f"{locked.number} has moved on since: it is {locked.get_status_display()}, not "
                    f"{Ticket.Status(data['to']).label}"
                )
            before = snapshot(locked, AUDITED)
            locked.status = data["from"]
            fields = ["status"]
            if locked.status == Ticket.Status.NEW and locked.assignee_id is None:
                locked.acknowledged_at = None  # nobody is on it after all: the acknowledge clock runs again
                fields.append("acknowledged_at")
            locked.sla_state = _sla_state(locked, timezone.now())
            _touch(locked, [*fields, "sla_state"])
            undo = timeline_add(
                ticket=locked,
                kind=TimelineEntry.Kind.STATUS_CHANGE,
                user=user,
                body="Undid an automatic step",
                data={"from": data["to"], "to": data["from"], "undoes": entry.pk},
            )
        elif entry.kind == TimelineEntry.Kind.ASSIGNMENT:
            current = locked.assignee.get_username() if locked.assignee_id else ""
            if current != data["to"]:
                raise TicketConflict(f"{locked.number} has been reassigned since: it is with {current or 'nobody'}")
            before = snapshot(locked, AUDITED)
            previous = get_user_model().objects.filter(username=data["from"]).first() if data["from"] else None
            locked.assignee = previous
            _touch(locked, ["assignee"])
            undo = timeline_add(
                ticket=locked,
                kind=TimelineEntry.Kind.ASSIGNMENT,
                user=user,
                body=f"assigned back to {data['from']}" if data["from"] else "unassigned (undid an automatic step)",
                data={"from": data["to"], "to": data["from"], "undoes": entry.pk},
            )
        elif entry.kind == TimelineEntry.Kind.EDIT and "title" in data:
            old_title, new_title = data["title"]
            if locked.title != new_title:
                raise TicketConflict(f"{locked.number}'s title has been edited since")
            before = snapshot(locked, AUDITED)
            locked.title = old_title
            _touch(locked, ["title"])
            undo = timeline_add(
                ticket=locked,
                kind=TimelineEntry.Kind.EDIT,
                user=user,
                body="title changed back (undid an automatic step)",
                data={"title": [new_title, old_title], "undoes": entry.pk},
            )
        else:
            raise TicketError("this automatic step cannot be undone")
        entry.data = {**data, "undone_by": undo.pk}
        entry.save(update_fields=["data"])
        audit_record(
            action="ticket.undo", obj=locked, before=before, after=snapshot(locked, AUDITED), actor=_user(user)
        )
    _refresh_instance(ticket, locked)
    return ticket


def ticket_assign(*, ticket: Ticket, assignee: Any, user: Any, automatic: bool = False) -> Ticket:
    """Give the ticket to an engineer (or to nobody). Taking it counts as acknowledging it."""
    with transaction.atomic():
        locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
        if locked.assignee_id == (assignee.pk if assignee else None):
            return ticket
        before = snapshot(locked, AUDITED)
        now = timezone.now()
        old = locked.assignee.get_username() if locked.assignee_id else ""
        locked.assignee = assignee
        fields = ["assignee"]
        if assignee is not None and locked.acknowledged_at is None:
            locked.acknowledged_at = now
            fields.append("acknowledged_at")
        locked.sla_state = _sla_state(locked, now)
        _touch(locked, [*fields, "sla_state"])
        new = assignee.get_username() if assignee else ""
        timeline_add(
            ticket=locked,
            kind=TimelineEntry.Kind.ASSIGNMENT,
            user=user,
            body=f"assigned to {new}" if new else "unassigned",
            data={"from": old, "to": new, **({"automatic": True} if automatic else {})},
        )
        audit_record(
            action="ticket.assign", obj=locked, before=before, after=snapshot(locked, AUDITED), actor=_user(user)
        )
    _refresh_instance(ticket, locked)
    return ticket


def ticket_escalate(*, ticket: Ticket, level: str, reason: str, user: Any) -> Ticket:
    """Hand the ticket to another level (L2, Engineering, Operations) with a handoff summary."""
    if level not in Ticket.EscalationLevel.values:
        raise TicketError(f"unknown escalation level {level!r}")
    if not reason.strip():
        raise TicketError("an escalation needs a handoff summary: what is known, what was tried, what is needed")
    ticket_follow_actor(ticket=ticket, user=user)
    with transaction.atomic():
        locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
        if not locked.is_open:
            raise TransitionRefused(f"{locked.number} is {locked.get_status_display().lower()}; reopen it to escalate")
        before = snapshot(locked, AUDITED)
        old = locked.escalation_level
        locked.escalation_level = level
        locked.escalation_reason = reason.strip()
        _touch(locked, ["escalation_level", "escalation_reason"])
        timeline_add(
            ticket=locked,
            kind=TimelineEntry.Kind.ESCALATION,
            user=user,
            body=reason.strip(),
            data={"from": old, "to": level},
        )
        audit_record(
            action="ticket.escalate", obj=locked, before=before, after=snapshot(locked, AUDITED), actor=_user(user)
        )
        ticket_notify_escalation(ticket=locked, level=level, handoff=reason.strip())
    _refresh_instance(ticket, locked)
    return ticket


def ticket_update(
    *,
    ticket: Ticket,
    user: Any,
    title: str | None = None,
    summary: str | None = None,
    severity: str | None = None,
    tags: list[str] | None = None,
    automatic: bool = False,
) -> Ticket:
    """Edit what the ticket says (title, summary, severity, tags)."""
    if severity is not None and severity not in Ticket.Severity.values:
        raise TicketError(f"unknown severity {severity!r}")
    with transaction.atomic():
        locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
        before = snapshot(locked, AUDITED)
        changes = {
            k: v
            for k, v in {"title": title, "summary": summary, "severity": severity, "tags": tags}.items()
            if v is not None and getattr(locked, k) != v
        }
        if not changes:
            return ticket
        for key, value in changes.items():
            setattr(locked, key, value)
        locked.sla_state = _sla_state(locked, timezone.now())
        _touch(locked, [*changes, "sla_state"])
        timeline_add(
            ticket=locked,
            kind=TimelineEntry.Kind.EDIT,
            user=user,
            body=", ".join(f"{k} changed" for k in changes),
            data={k: [before.get(k), v] for k, v in changes.items()} | ({"automatic": True} if automatic else {}),
        )
        audit_record(
            action="ticket.update", obj=locked, before=before, after=snapshot(locked, AUDITED), actor=_user(user)
        )
        if changes.get("severity") == Ticket.Severity.P1:
            ticket_notify(ticket=locked, event="raised to P1")
    _refresh_instance(ticket, locked)
    return ticket


# --------------------------------------------------------------------------- communication


def ticket_add_note(*, ticket: Ticket, body: str, user: Any) -> TimelineEntry:
    """An internal note: never shown to or sent to the customer."""
    if not body.strip():
        raise TicketError("the note is empty")
    ticket_follow_actor(ticket=ticket, user=user)
    with transaction.atomic():
        entry = timeline_add(ticket=ticket, kind=TimelineEntry.Kind.NOTE, user=user, body=body.strip())
        Ticket.objects.filter(pk=ticket.pk).update(updated_at=timezone.now())
        audit_record(action="ticket.note", obj=ticket, after={"timeline_entry": entry.pk}, actor=_user(user))
    return entry


def _mark_first_update(ticket: Ticket, at: datetime) -> None:
    if Ticket.objects.filter(pk=ticket.pk, first_update_at__isnull=True).update(first_update_at=at, updated_at=at):
        ticket.first_update_at = at
        ticket.sla_state = _sla_state(ticket, at)
        Ticket.objects.filter(pk=ticket.pk).update(sla_state=ticket.sla_state)


def customer_recipients(customer: Customer) -> list[str]:
    return [c["email"] for c in customer.contacts or [] if isinstance(c, dict) and c.get("email")]


def ticket_preview_message(*, ticket: Ticket, template: TicketTemplate, user: Any) -> tuple[str, str]:
    """A template filled from the ticket and its attacks, to edit before sending."""
    return render_template(template, ticket, engineer=_user(user))


def ticket_send_customer_message(
    *,
    ticket: Ticket,
    user: Any,
    template: TicketTemplate | None = None,
    subject: str = "",
    body: str = "",
    recipients: list[str] | None = None,
) -> TimelineEntry:
    """Email the customer's contacts; the message is kept on the timeline with its delivery status.

    Subject and body default to the template rendered from the ticket; an edited text
    replaces them. A failed delivery is recorded as failed, not raised.
    """
    if template is not None and not (subject and body):
        rendered_subject, rendered_body = render_template(template, ticket, engineer=_user(user))
        subject = subject or rendered_subject
        body = body or rendered_body
    subject = " ".join(subject.split())
    if not subject or not body.strip():
        raise TicketError("a customer message needs a subject and a body")
    recipients = recipients if recipients is not None else customer_recipients(ticket.customer)
    if not recipients:
        raise TicketError(f"{ticket.customer.name} has no contact with an email address")
    full_subject = subject if ticket.number in subject else f"[{ticket.number}] {subject}"
    ticket_follow_actor(ticket=ticket, user=user)
    error = ""
    message, message_id = customer_email(ticket, subject=full_subject, body=body, recipients=recipients)
    try:
        message.send()
        status = TimelineEntry.Delivery.SENT
    except Exception as exc:  # any transport failure is recorded on the ticket
        status = TimelineEntry.Delivery.FAILED
        error = str(exc)[:500]
        logger.warning("customer message for %s failed: %s", ticket.number, exc)
    now = timezone.now()
    with transaction.atomic():
        entry = timeline_add(
            ticket=ticket,
            kind=TimelineEntry.Kind.CUSTOMER_MESSAGE,
            user=user,
            body=body,
            data={
                "subject": full_subject,
                "recipients": recipients,
                "channel": "email",
                "template": template.slug if template else "",
                "message_id": message_id,
                "reply_to": reply_address(ticket),
                **({"error": error} if error else {}),
            },
            visibility=TimelineEntry.Visibility.CUSTOMER,
            delivery_status=status,
            at=now,
        )
        if status == TimelineEntry.Delivery.SENT:
            _mark_first_update(ticket, now)
        audit_record(
            action="ticket.customer_message",
            obj=ticket,
            after={"timeline_entry": entry.pk, "subject": full_subject, "recipients": recipients, "status": status},
            actor=_user(user),
        )
    return entry


CONTACT_CHANNELS = ("phone", "chat", "email", "meeting")


def ticket_log_contact(
    *,
    ticket: Ticket,
    channel: str,
    summary: str,
    user: Any,
    contact: str = "",
    direction: str = "outbound",
    visibility: str = TimelineEntry.Visibility.INTERNAL,
) -> TimelineEntry:
    """A call or chat with the customer, written down by hand; it counts as a customer update.

    Internal unless the engineer chooses to show it to the customer (in their reports): what was
    said on a call is often written for colleagues, not for the customer to read back.
    """
    if channel not in CONTACT_CHANNELS:
        raise TicketError(f"unknown channel {channel!r}; one of {', '.join(CONTACT_CHANNELS)}")
    if direction not in ("inbound", "outbound"):
        raise TicketError("direction is inbound or outbound")
    if visibility not in TimelineEntry.Visibility.values:
        raise TicketError("visibility is internal or customer")
    if not summary.strip():
        raise TicketError("write down what was said")
    now = timezone.now()
    ticket_follow_actor(ticket=ticket, user=user)
    with transaction.atomic():
        entry = timeline_add(
            ticket=ticket,
            kind=TimelineEntry.Kind.CONTACT_LOG,
            user=user,
            body=summary.strip(),
            data={"channel": channel, "contact": contact, "direction": direction},
            visibility=visibility,
            at=now,
        )
        if direction == "outbound":
            _mark_first_update(ticket, now)
        audit_record(
            action="ticket.contact_log",
            obj=ticket,
            after={"timeline_entry": entry.pk, "channel": channel, "direction": direction, "visibility": visibility},
            actor=_user(user),
        )
    return entry


MITIGATION_KINDS = {
    "proposed": TimelineEntry.Kind.MITIGATION_PROPOSED,
    "applied": TimelineEntry.Kind.MITIGATION_APPLIED,
    "expired": TimelineEntry.Kind.MITIGATION_EXPIRED,
}


def ticket_record_mitigation(
    *, ticket: Ticket, event: str, description: str, user: Any, data: dict[str, Any] | None = None
) -> TimelineEntry:
    """For the mitigations app: a rule proposed, applied or expired for this ticket's attack.

    The ticket follows: the person's action acknowledges and assigns it, an applied rule
    moves it to Mitigating."""
    if event not in MITIGATION_KINDS:
        raise TicketError(f"unknown mitigation event {event!r}")
    ticket_follow_actor(ticket=ticket, user=user)
    now = timezone.now()
    with transaction.atomic():
        entry = timeline_add(
            ticket=ticket, kind=MITIGATION_KINDS[event], user=user, body=description, data=data or {}, at=now
        )
        if event == "applied" and ticket.mitigated_at is None:
            Ticket.objects.filter(pk=ticket.pk, mitigated_at__isnull=True).update(mitigated_at=now, updated_at=now)
            ticket.mitigated_at = now
        audit_record(
            action=f"ticket.mitigation_{event}", obj=ticket, after={"timeline_entry": entry.pk}, actor=_user(user)
        )
        if event == "applied" and ticket.is_open:
            ticket_follow_mitigation(ticket=ticket, user=user)
    return entry


# --------------------------------------------------------------------------- SLA


def sla_policy_for(ticket: Ticket, policies: dict[tuple[str, str], SlaPolicy] | None = None) -> SlaPolicy | None:
    key = (ticket.customer.plan, ticket.severity)
    if policies is not None:
        return policies.get(key)
    return SlaPolicy.objects.filter(plan=key[0], severity=key[1]).first()


def _sla_state(ticket: Ticket, now: datetime) -> str:
    return Ticket.worst_state(ticket.sla_clocks(sla_policy_for(ticket), now))


def tickets_sla_check(*, now: datetime | None = None) -> int:
    """Beat: flag each at-risk and breached clock once (timeline, audit, notification). Returns flags raised."""
    now = now or timezone.now()
    policies = {(p.plan, p.severity): p for p in SlaPolicy.objects.all()}
    raised = 0
    candidates = Ticket.objects.filter(
        status__in=[*Ticket.OPEN_STATES, Ticket.Status.WAITING, Ticket.Status.RESOLVED]
    ).select_related("customer", "assignee")
    for ticket in candidates:
        clocks = ticket.sla_clocks(sla_policy_for(ticket, policies), now)
        state = Ticket.worst_state(clocks)
        if state != ticket.sla_state:
            Ticket.objects.filter(pk=ticket.pk).update(sla_state=state)
            ticket.sla_state = state
        for clock in clocks:
            # Only running clocks are flagged: a stopped one was flagged while it ran, or is history.
            if clock.state not in ("at_risk", "breached") or clock.stopped_at is not None:
                continue
            raised += _flag(ticket, clock, now)
    return raised


def _flag(ticket: Ticket, clock: Any, now: datetime) -> int:
    try:
        with transaction.atomic():
            _, created = SlaNotice.objects.get_or_create(ticket=ticket, clock=clock.name, state=clock.state)
            if not created:
                return 0
            breached = clock.state == "breached"
            minutes = clock.target_seconds // 60
            body = (
                f"{clock.label} SLA breached: {minutes} min target passed"
                if breached
                else f"{clock.label} SLA at risk: {clock.percent}% of {minutes} min used"
            )
            timeline_add(
                ticket=ticket,
                kind=TimelineEntry.Kind.SLA_BREACH if breached else TimelineEntry.Kind.SLA_WARNING,
                user=None,
                body=body,
                data={"clock": clock.name, "state": clock.state, "elapsed_seconds": int(clock.elapsed_seconds)},
                at=now,
            )
            audit_record(
                action="ticket.sla_breach" if breached else "ticket.sla_warning",
                obj=ticket,
                after={"clock": clock.name, "state": clock.state},
            )
            ticket_notify(ticket=ticket, event=body)
            if breached:
                _escalate_on_breach(ticket, body)
    except IntegrityError:
        return 0  # another checker flagged it first
    return 1


def _escalate_on_breach(ticket: Ticket, breach: str) -> None:
    """A breached clock hands the ticket one level up, with the handoff so far and why."""
    level = EscalationTeam.next_level(ticket.escalation_level)
    if level is None or not ticket.is_open:
        return
    handoff = ticket.escalation_reason or ticket.summary or ticket.title
    ticket_escalate(ticket=ticket, level=level, reason=f"Automatic escalation: {breach}.\n\n{handoff}", user=None)


# --------------------------------------------------------------------------- two-way mail


def ticket_receive_customer_reply(
    *,
    recipients: Sequence[str],
    sender: str,
    subject: str,
    text: str,
    message_id: str = "",
    in_reply_to: str = "",
) -> TimelineEntry | None:
    """A customer's answer, posted by the inbound-parse webhook: on its ticket's timeline.

    See ``inbound_mail_receive``: the same routing for the webhook and the IMAP mailbox.
    """
    received = ReceivedMail(
        recipients=list(recipients),
        sender=sender,
        subject=subject,
        text=text,
        message_id=message_id.strip(),
        in_reply_to=in_reply_to,
    )
    return inbound_mail_receive(mail=received, channel=InboundMail.Channel.WEBHOOK).timeline_entry


def _ticket_replied_to(mail: ReceivedMail) -> Ticket | None:
    """The ticket the signed reply address names, else the one whose thread the
    In-Reply-To/References ids belong to."""
    number = ticket_number_from_addresses(*mail.recipients)
    ticket = Ticket.objects.filter(number=number).first() if number else None
    if ticket is not None:
        return ticket
    for mid in mail.in_reply_to.split():
        entry = (
            TimelineEntry.objects.filter(kind__in=THREAD_KINDS, data__message_id=mid.strip())
            .select_related("ticket")
            .first()
        )
        if entry:
            return entry.ticket
    return None


def inbound_mail_receive(*, mail: ReceivedMail, channel: str) -> InboundMail:
    """A customer's mail, from the webhook or the IMAP mailbox: onto its ticket's timeline.

    Each message is received once (by Message-ID, else a digest): a redelivery, or a mailbox
    re-read after a crash between this commit and marking the message seen, returns the row
    already there. A mail that names no ticket is kept as unmatched, for staff to see.
    """
    existing = InboundMail.objects.filter(message_key=mail.key).select_related("timeline_entry").first()
    if existing is not None:
        return existing
    ticket = _ticket_replied_to(mail)
    if ticket is not None and mail.message_id:
        earlier = ticket.timeline.filter(kind=TimelineEntry.Kind.CUSTOMER_REPLY, data__message_id=mail.message_id)
        if earlier.exists():  # received before each mail had its row
            row, _ = InboundMail.objects.get_or_create(
                message_key=mail.key,
                defaults={
                    "channel": channel,
                    "status": InboundMail.Status.ATTACHED,
                    "ticket": ticket,
                    "timeline_entry": earlier.first(),
                    "message_id": mail.message_id[:300],
                },
            )
            return row
    row = InboundMail(
        message_key=mail.key,
        message_id=mail.message_id[:300],
        channel=channel,
        sender=mail.sender[:300],
        recipients=", ".join(r for r in mail.recipients if r)[:1000],
        subject=mail.subject[:300],
        body=mail.text[:20000],
        ticket=ticket,
        status=InboundMail.Status.ATTACHED if ticket else InboundMail.Status.UNMATCHED,
    )
    try:
        with transaction.atomic():
            row.save()
            if ticket is None:
                logger.info("inbound mail %s from %s names no ticket", mail.key, mail.sender)
                return row
            row.timeline_entry = TimelineEntry.objects.create(
                ticket=ticket,
                at=timezone.now(),
                actor_name=mail.sender[:150] or "customer",
                kind=TimelineEntry.Kind.CUSTOMER_REPLY,
                body=mail.text[:20000],
                data={
                    "subject": mail.subject[:300],
                    "from": mail.sender[:300],
                    "message_id": mail.message_id[:300],
                    "channel": "email",
                },
            )
            row.save(update_fields=["timeline_entry"])
            _touch(ticket, [])
            audit_record(
                action="ticket.customer_reply",
                obj=ticket,
                after={"timeline_entry": row.timeline_entry.pk, "from": mail.sender, "channel": channel},
            )
            ticket_notify(ticket=ticket, event=f"customer replied: {' '.join(mail.subject.split())[:120]}")
    except IntegrityError:  # another poll or delivery of the same message got there first
        return InboundMail.objects.select_related("timeline_entry").get(message_key=mail.key)
    return row


def inbound_mail_receive_raw(*, raw: bytes, channel: str) -> InboundMail:
    """A raw message from the mailbox; one that cannot be read is kept, with why, for staff."""
    try:
        received = parse_mail(raw)
    except UnreadableMail as exc:
        key = "sha256:" + hashlib.sha256(raw).hexdigest()
        head = raw[:4000].decode("utf-8", "replace")
        row, _ = InboundMail.objects.get_or_create(
            message_key=key,
            defaults={
                "channel": channel,
                "status": InboundMail.Status.UNREADABLE,
                "error": str(exc)[:500],
                "body": head,
                "subject": mail_header_value(head, "Subject")[:300],
                "sender": mail_header_value(head, "From")[:300],
            },
        )
        logger.warning("inbound mail %s unreadable: %s", key, exc)
        return row
    return inbound_mail_receive(mail=received, channel=channel)


def inbound_mail_attach(*, mail: InboundMail, ticket: Ticket, user: Any) -> InboundMail:
    """Staff put a customer mail that reached no ticket onto the ticket it belongs to.

    The message lands on the timeline as the customer's message (at the time it arrived, by
    its sender), and the row records the ticket and the entry. Attaching again to the same
    ticket changes nothing; a mail already on another ticket is refused rather than copied.
    """
    if not _human(user):
        raise TicketError("attaching mail is a person's decision")
    with transaction.atomic():
        row = InboundMail.objects.select_for_update().filter(pk=mail.pk).first()
        if row is None:
            raise TicketError("this mail no longer exists")
        if row.status == InboundMail.Status.ATTACHED:
            if row.ticket_id == ticket.pk:
                return row
            where = row.ticket.number if row.ticket_id else "another ticket"
            raise TicketConflict(f"this mail is already on {where}")
        before = {"status": row.status, "ticket": None}
        entry = TimelineEntry.objects.create(
            ticket=ticket,
            at=row.received_at,
            actor_name=row.sender[:150] or "customer",
            kind=TimelineEntry.Kind.CUSTOMER_REPLY,
            body=row.body,
            data={
                "subject": row.subject,
                "from": row.sender,
                "message_id": row.message_id,
                "channel": "email",
                "inbound_mail": row.pk,
                "attached_by": user.get_username(),
            },
        )
        row.status, row.ticket, row.timeline_entry = InboundMail.Status.ATTACHED, ticket, entry
        row.save(update_fields=["status", "ticket", "timeline_entry"])
        _touch(ticket, [])
        audit_record(
            action="ticket.inbound_attach",
            obj=ticket,
            before=before,
            after={"status": row.status, "ticket": ticket.number, "inbound_mail": row.pk, "timeline_entry": entry.pk},
            actor=_user(user),
        )
    mail.status, mail.ticket, mail.timeline_entry = row.status, row.ticket, row.timeline_entry
    ticket_follow_actor(ticket=ticket, user=user)
    return row


def inbound_mail_open_ticket(
    *, mail: InboundMail, customer: Customer, user: Any, severity: str = Ticket.Severity.P3, title: str = ""
) -> Ticket:
    """A new ticket for a customer mail that names none (a first message, not a reply), with the mail on it."""
    if mail.status == InboundMail.Status.ATTACHED and mail.ticket_id:
        raise TicketConflict(f"this mail is already on {mail.ticket.number}")
    subject = " ".join((title or mail.subject).split())
    with transaction.atomic():
        ticket = ticket_create(
            customer=customer,
            title=subject or f"Mail from {mail.sender or 'unknown sender'}",
            user=user,
            severity=severity,
            event_at=mail.received_at,
        )
        inbound_mail_attach(mail=mail, ticket=ticket, user=user)
    return ticket


def inbound_mailbox_poll() -> dict[str, int]:
    """The customer-reply mailbox (INBOUND_IMAP_URL) read once: each unseen message onto its ticket,
    or kept as unmatched or unreadable; marked seen only once that is committed."""
    if not settings.INBOUND_IMAP_URL:
        return {}
    mailbox = imap.mailbox_from_url(settings.INBOUND_IMAP_URL, ca_file=settings.INBOUND_IMAP_CA_FILE)
    return dict(
        imap.mailbox_poll(
            mailbox, receive=lambda raw: inbound_mail_receive_raw(raw=raw, channel=InboundMail.Channel.IMAP).status
        )
    )


def ticket_record_report_sent(
    *, ticket: Ticket, report_title: str, report_id: int, recipients: list[str], message_id: str, user: Any
) -> TimelineEntry:
    """A report mailed to the customer is part of the conversation: on the timeline, customer-facing."""
    now = timezone.now()
    with transaction.atomic():
        entry = timeline_add(
            ticket=ticket,
            kind=TimelineEntry.Kind.REPORT_SENT,
            user=user,
            body=f"Report “{report_title}” sent to {', '.join(recipients)}",
            data={"report": report_id, "recipients": recipients, "message_id": message_id, "subject": report_title},
            visibility=TimelineEntry.Visibility.CUSTOMER,
            delivery_status=TimelineEntry.Delivery.SENT,
            at=now,
        )
        _mark_first_update(ticket, now)
        audit_record(action="ticket.report_sent", obj=ticket, after={"report": report_id}, actor=_user(user))
    return entry


def ticket_timeline_add(
    *, ticket: Ticket, kind: str, text: str, user: Any, data: dict[str, Any] | None = None
) -> TimelineEntry:
    """For other apps (mitigations): one internal line on the ticket's timeline, audited.

    ``kind`` is a mitigation event (``mitigation_proposed``/``_applied``/``_expired``, or
    ``proposed``/``applied``/``expired``); a bare ``mitigation`` is read from the text.
    """
    event = kind.removeprefix("mitigation_").removeprefix("mitigation")
    if not event:
        lowered = text.lower()
        event = next(
            (
                e
                for e, words in (("expired", ("expired", "rolled back", "removed")), ("applied", ("applied", "active")))
                if any(w in lowered for w in words)
            ),
            "proposed",
        )
    return ticket_record_mitigation(ticket=ticket, event=event, description=text, user=user, data=data)
