"""Read-side queries of the tickets app, for its pages, the API and dashboards."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import parseaddr
from typing import Any

from django.db.models import Case, Count, Q, QuerySet, When
from django.utils import timezone

from alerts import charts
from alerts.models import Alert
from console import roles
from console.models import Asset, Customer
from tickets.models import InboundMail, SlaPolicy, Ticket, TimelineEntry, clock_dict
from tickets.querysets import OPEN
from tickets.services import sla_policy_for


def ticket_list_queryset(user: Any) -> QuerySet[Ticket]:
    return Ticket.objects.visible_to(user).select_related("customer", "assignee").order_by("-created_at", "-id")


def inbound_mail_without_ticket(user: Any) -> QuerySet[InboundMail]:
    """Customer mail no ticket took (no reply address or thread of ours, or unreadable): staff only,
    since such a mail has no customer to scope it by."""
    if not roles.is_internal(user):
        return InboundMail.objects.none()
    return InboundMail.objects.exclude(status=InboundMail.Status.ATTACHED).order_by("-received_at", "-id")


def inbound_mail_sender_customers(mail: InboundMail) -> list[Customer]:
    """The customers a mail's sender belongs to: a contact with that address, else a zone of
    theirs the sender's domain is (or is under). Empty when the sender says nothing we know."""
    address = parseaddr(mail.sender)[1].strip().lower()
    if "@" not in address:
        return []
    domain = address.rsplit("@", 1)[1]
    by_contact = [
        c
        for c in Customer.objects.current().order_by("name")
        if any(isinstance(x, dict) and str(x.get("email", "")).strip().lower() == address for x in c.contacts or [])
    ]
    if by_contact:
        return by_contact
    labels = domain.split(".")
    zones = [".".join(labels[i:]) for i in range(len(labels) - 1)]  # mail.acme.example -> acme.example too
    zoned = Customer.objects.current().filter(assets__kind=Asset.Kind.ZONE, assets__value__in=zones)
    return list(zoned.distinct().order_by("name"))


def inbound_mail_ticket_choices(mail: InboundMail, user: Any, *, q: str = "") -> list[Ticket]:
    """Tickets a mail could go to: those matching the search, else the sender's customers' tickets,
    open ones first, newest first."""
    tickets = Ticket.objects.visible_to(user).select_related("customer", "assignee")
    q = q.strip()
    if q:
        tickets = tickets.filter(Q(number__icontains=q) | Q(title__icontains=q) | Q(customer__name__icontains=q))
    else:
        customers = inbound_mail_sender_customers(mail)
        if not customers:
            return []
        tickets = tickets.filter(customer__in=customers)
    open_first = Case(When(status__in=OPEN, then=0), default=1)
    return list(tickets.annotate(closed=open_first).order_by("closed", "-created_at", "-id")[:25])


def ticket_timeline(ticket: Ticket, user: Any) -> QuerySet[TimelineEntry]:
    return TimelineEntry.objects.visible_to(user).filter(ticket=ticket).select_related("actor").order_by("at", "id")


def ticket_sla(ticket: Ticket, now: Any = None) -> list[dict[str, Any]]:
    """The ticket's clocks as plain data (the page and the API show the same)."""
    now = now or timezone.now()
    clocks = ticket.sla_clocks(sla_policy_for(ticket), now)
    result = []
    for clock in clocks:
        data = clock_dict(clock)
        data["deadline"] = (now + timezone.timedelta(seconds=clock.remaining_seconds)) if clock.running else None
        result.append(data)
    return result


def ticket_attack_chart(ticket: Ticket) -> dict[str, Any]:
    alerts = list(
        Alert.objects.filter(attack__in=ticket.attacks.all()).select_related("feed").order_by("event_time")[:1000]
    )
    if not alerts:
        alerts = list(ticket.alerts.select_related("feed").order_by("event_time")[:1000])
    return charts.attack_timeline(alerts)


def sla_policies() -> dict[tuple[str, str], SlaPolicy]:
    return {(p.plan, p.severity): p for p in SlaPolicy.objects.all()}


# --------------------------------------------------------------------------- service levels


@dataclass
class ServiceLevelWeek:
    """One customer's tickets created in one week (Monday 00:00 UTC), and how fast we were."""

    customer: Any
    week: date
    tickets: int = 0
    acknowledged: int = 0
    acknowledge_seconds: float = 0.0
    resolved: int = 0
    resolve_seconds: float = 0.0
    clocks_met: int = 0
    clocks_breached: int = 0
    clocks_running: int = 0
    without_policy: int = 0

    @property
    def mtta_seconds(self) -> float | None:
        """Mean time to acknowledge, pauses waiting on the customer excluded (as the SLA counts it)."""
        return self.acknowledge_seconds / self.acknowledged if self.acknowledged else None

    @property
    def mttr_seconds(self) -> float | None:
        """Mean time from the ticket's creation to its resolution, wall clock."""
        return self.resolve_seconds / self.resolved if self.resolved else None

    @property
    def compliance(self) -> float | None:
        """Share of decided SLA clocks that were met; clocks still running are not decided yet."""
        decided = self.clocks_met + self.clocks_breached
        return self.clocks_met / decided if decided else None


def _week_of(moment: datetime) -> date:
    day = moment.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def service_levels(
    user: Any, *, weeks: int = 8, customer: str = "", now: datetime | None = None
) -> list[ServiceLevelWeek]:
    """MTTA, MTTR and SLA compliance per customer and week, newest week first, for the tickets
    the user may see. A week without a ticket for a customer has no row: no figure is invented."""
    now = now or timezone.now()
    since = datetime.combine(_week_of(now) - timedelta(weeks=max(1, weeks) - 1), datetime.min.time(), tzinfo=UTC)
    tickets = Ticket.objects.visible_to(user).filter(created_at__gte=since).select_related("customer")
    if customer:
        tickets = tickets.filter(customer__slug=customer)
    policies = sla_policies()
    rows: dict[tuple[int, date], ServiceLevelWeek] = {}
    for ticket in tickets.order_by("created_at", "id"):
        week = _week_of(ticket.created_at)
        row = rows.setdefault((ticket.customer_id, week), ServiceLevelWeek(customer=ticket.customer, week=week))
        row.tickets += 1
        if ticket.acknowledged_at:
            row.acknowledged += 1
            row.acknowledge_seconds += max(
                0.0,
                (ticket.acknowledged_at - ticket.created_at).total_seconds()
                - ticket.paused_seconds(ticket.acknowledged_at, now),
            )
        if ticket.resolved_at:
            row.resolved += 1
            row.resolve_seconds += max(0.0, (ticket.resolved_at - ticket.created_at).total_seconds())
        policy = sla_policy_for(ticket, policies)
        if policy is None:
            row.without_policy += 1
            continue
        for clock in ticket.sla_clocks(policy, now):
            if clock.state == "breached":
                row.clocks_breached += 1
            elif clock.state == "met":
                row.clocks_met += 1
            else:
                row.clocks_running += 1
    return sorted(rows.values(), key=lambda r: (-r.week.toordinal(), r.customer.name))


# --------------------------------------------------------------------------- for reports and dashboards


def ticket_by_number(number: str, *, customer: Any = None, user: Any = None) -> Ticket | None:
    """The ticket with this number, of ``customer`` or visible to ``user`` when given; None otherwise."""
    qs = Ticket.objects.visible_to(user) if user is not None else Ticket.objects.all()
    if customer is not None:
        qs = qs.filter(customer=customer)
    return qs.filter(number=number).first()


def tickets_for_attacks(attack_ids: Sequence[int], *, customer: Any = None, limit: int = 20) -> list[Ticket]:
    """The tickets tracking any of these attacks, oldest first."""
    if not attack_ids:
        return []
    qs = Ticket.objects.filter(attacks__in=attack_ids)
    if customer is not None:
        qs = qs.filter(customer=customer)
    return list(qs.distinct().order_by("created_at", "id")[:limit])


def tickets_for_period(
    customer: Any, *, attack_ids: Sequence[int], start: datetime, end: datetime, limit: int = 50
) -> list[Ticket]:
    """The customer's tickets about these attacks or opened in [start, end), oldest first."""
    return list(
        Ticket.objects.filter(customer=customer)
        .filter(Q(attacks__in=list(attack_ids)) | Q(created_at__gte=start, created_at__lt=end))
        .distinct()
        .order_by("created_at", "id")[:limit]
    )


def recent_tickets(user: Any, *, customer: Any = None, limit: int = 50) -> list[Ticket]:
    """The newest tickets the user may see (of ``customer`` when given), for a report's subject picker."""
    qs = Ticket.objects.visible_to(user).select_related("customer").order_by("-created_at", "-id")
    if customer is not None:
        qs = qs.filter(customer=customer)
    return list(qs[:limit])


def customer_timeline(tickets: Sequence[Ticket], *, limit: int = 300) -> list[dict[str, Any]]:
    """The customer-facing entries of these tickets' timelines, oldest first; internal entries are never read.

    Each is ``at``, ``ticket`` (its number), ``what`` (the entry's kind, with a message's subject) and ``body``.
    """
    if not tickets:
        return []
    entries = (
        TimelineEntry.objects.filter(
            ticket_id__in=[t.pk for t in tickets], visibility=TimelineEntry.Visibility.CUSTOMER
        )
        .select_related("ticket")
        .order_by("at", "id")[:limit]
    )
    out = []
    for e in entries:
        subject = (e.data or {}).get("subject") if isinstance(e.data, dict) else None
        out.append(
            {
                "at": e.at,
                "ticket": e.ticket.number,
                "what": e.get_kind_display() + (f": {subject}" if subject else ""),
                "body": e.body,
            }
        )
    return out


def open_ticket_counts() -> dict[str, Any]:
    """Open tickets by status (``statuses``: value, label, count; none with zero) and by SLA clock state."""
    open_states = [s for s in Ticket.Status.values if s not in (Ticket.Status.RESOLVED, Ticket.Status.CLOSED)]
    by_status = dict(
        Ticket.objects.filter(status__in=open_states).values_list("status").annotate(n=Count("id")).order_by()
    )
    sla = dict(
        Ticket.objects.filter(status__in=open_states, sla_state__in=["at_risk", "breached"])
        .values_list("sla_state")
        .annotate(n=Count("id"))
        .order_by()
    )
    labels = dict(Ticket.Status.choices)
    return {
        "statuses": [(s, labels[s], by_status[s]) for s in open_states if by_status.get(s)],
        "open": sum(by_status.values()),
        "at_risk": sla.get("at_risk", 0),
        "breached": sla.get("breached", 0),
    }


def customer_tickets(customer: Any, *, limit: int = 10) -> list[Ticket]:
    """The customer's newest tickets."""
    return list(Ticket.objects.filter(customer=customer).order_by("-created_at", "-id")[:limit])
