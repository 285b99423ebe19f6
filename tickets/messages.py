"""Customer messages: the values a template may use, and rendering as plain text.

Attack data is hostile (targets, titles and vectors come from feeds), so the text is
rendered with autoescape off only because it goes out as a plain-text email; every page
that shows it prints it through Django's escaping.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from typing import Any

from django.template import Context, Engine, TemplateSyntaxError

from console import units
from console.units import vector_title
from tickets.models import Ticket, TicketTemplate

# No loaders: a template cannot include or extend files from the server.
_ENGINE = Engine(autoescape=False, loaders=[], libraries={})


class MessageTemplateError(ValueError):
    """A template that cannot be rendered; the message says where."""


def format_bps(value: float | None) -> str:
    return units.rate(value, "bps") if value else ""


def format_pps(value: float | None) -> str:
    return units.rate(value, "pps") if value else ""


def format_rps(value: float | None) -> str:
    return units.rate(value, "rps") if value else ""


def peak_text(bps: float | None, pps: float | None, rps: float | None) -> str:
    parts = [p for p in (format_bps(bps), format_pps(pps), format_rps(rps)) if p]
    return ", ".join(parts) or "not measured"


def _local(moment: datetime | None, tz: zoneinfo.ZoneInfo) -> str:
    if moment is None:
        return ""
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def message_context(ticket: Ticket, *, engineer: Any = None) -> dict[str, Any]:
    """What a template may say: ticket, customer, the attacks' vectors, peak, times in the customer's zone."""
    customer = ticket.customer
    try:
        tz = zoneinfo.ZoneInfo(customer.timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz = zoneinfo.ZoneInfo("UTC")
    attacks = list(ticket.attacks.all())
    vectors: list[str] = []
    for attack in attacks:
        for vector in attack.vectors or []:
            if vector not in vectors:
                vectors.append(vector)
    if not vectors:
        for vector in ticket.alerts.values_list("vector", flat=True).distinct():
            if vector not in vectors:
                vectors.append(vector)
    peaks = {
        metric: max((getattr(a, f"peak_{metric}") or 0 for a in attacks), default=0) or None
        for metric in ("bps", "pps", "rps")
    }
    started = min((a.started_at for a in attacks), default=ticket.event_at)
    ongoing = any(a.ongoing for a in attacks)
    ended = None if ongoing else max(((a.ended_at or a.last_seen) for a in attacks), default=None)
    targets = sorted({a.target for a in attacks if a.target})
    return {
        "ticket": {
            "number": ticket.number,
            "title": ticket.title,
            "severity": ticket.severity,
            "status": ticket.get_status_display(),
            "outcome": ticket.get_outcome_display() if ticket.outcome else "",
        },
        "customer": {"name": customer.name, "timezone": str(tz)},
        # Mail greets a person: the first contact with a name, else the company.
        "contact": {"name": _contact_name(customer)},
        "attack": {
            "vectors": ", ".join(vector_title(v) for v in vectors) or "under analysis",
            "targets": ", ".join(targets) or "your protected assets",
            "peak": peak_text(peaks["bps"], peaks["pps"], peaks["rps"]),
            "peak_bps": format_bps(peaks["bps"]),
            "peak_pps": format_pps(peaks["pps"]),
            "peak_rps": format_rps(peaks["rps"]),
            "started": _local(started, tz),
            "ended": _local(ended, tz),
            "ongoing": ongoing,
        },
        "engineer": (engineer.get_full_name() or engineer.get_username()) if engineer else "Shieldwall SOC",
    }


def _contact_name(customer: Any) -> str:
    for contact in customer.contacts or []:
        if isinstance(contact, dict) and str(contact.get("name") or "").strip():
            return str(contact["name"]).strip()
    return customer.name


def render_text(text: str, context: dict[str, Any]) -> str:
    try:
        return _ENGINE.from_string(text).render(Context(context, autoescape=False))
    except TemplateSyntaxError as exc:
        raise MessageTemplateError(f"the template cannot be rendered: {exc}") from exc


def render_template(template: TicketTemplate, ticket: Ticket, *, engineer: Any = None) -> tuple[str, str]:
    """The subject and body of a template filled from the ticket, as plain text."""
    context = message_context(ticket, engineer=engineer)
    subject = " ".join(render_text(template.subject, context).split())
    return subject, render_text(template.body, context).strip() + "\n"
