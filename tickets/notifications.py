"""Telling the SOC: email to the assignee (or the SOC list) and Slack-compatible webhooks.

Notifications are enqueued after commit and sent by Celery tasks with retries; a
failure is logged and retried, and never blocks the change that caused it.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from tickets.models import Ticket

logger = logging.getLogger(__name__)


def notification_text(ticket: Ticket, event: str) -> str:
    link = f"{settings.SITE_URL.rstrip('/')}{ticket.get_absolute_url()}"
    return f"[{ticket.severity}] {ticket.number} {event} · {ticket.customer.name} · {ticket.title} · {link}"


def ticket_notify(*, ticket: Ticket, event: str) -> None:
    """Queue an email and a webhook post per configured URL, after the transaction commits."""
    text = notification_text(ticket, event)
    recipients = [ticket.assignee.email] if ticket.assignee_id and ticket.assignee.email else []
    recipients = recipients or list(getattr(settings, "SOC_NOTIFICATION_EMAILS", []))
    urls = list(getattr(settings, "NOTIFICATION_WEBHOOK_URLS", []))

    def enqueue() -> None:
        from tickets import tasks

        try:
            if recipients:
                tasks.send_notification_email.delay(f"Shieldwall: {text[:150]}", text, recipients)
            for url in urls:
                tasks.post_webhook.delay(url, {"text": text})
        except Exception:  # a notification never blocks the action
            logger.warning("could not enqueue notifications for %s", ticket.number, exc_info=True)

    transaction.on_commit(enqueue, robust=True)


def escalation_text(ticket: Ticket, level_label: str, handoff: str) -> str:
    link = f"{settings.SITE_URL.rstrip('/')}{ticket.get_absolute_url()}"
    return "\n".join(
        [
            f"{ticket.number} was escalated to {level_label}.",
            f"[{ticket.severity}] {ticket.customer.name} · {ticket.title}",
            "",
            "Handoff:",
            handoff,
            "",
            link,
        ]
    )


def ticket_notify_escalation(*, ticket: Ticket, level: str, handoff: str) -> None:
    """Tell the level escalated to: its members and team address by mail, its webhook, with the handoff.

    A level nobody has configured reaches the SOC mailbox instead, so an escalation is never silent.
    """
    from tickets.models import EscalationTeam

    team = EscalationTeam.objects.filter(level=level).first()
    label = team.get_level_display() if team else dict(Ticket.EscalationLevel.choices).get(level, level)
    text = escalation_text(ticket, label, handoff)
    recipients = team.recipients() if team else []
    recipients = recipients or list(getattr(settings, "SOC_NOTIFICATION_EMAILS", []))
    urls = list(getattr(settings, "NOTIFICATION_WEBHOOK_URLS", []))
    if team and team.webhook_url:
        urls.append(team.webhook_url)
    subject = f"Shieldwall: {ticket.number} escalated to {label} · {ticket.customer.name} · {ticket.title}"[:200]

    def enqueue() -> None:
        from tickets import tasks

        try:
            if recipients:
                tasks.send_notification_email.delay(subject, text, recipients)
            for url in urls:
                tasks.post_webhook.delay(url, {"text": text})
        except Exception:  # a notification never blocks the action
            logger.warning("could not enqueue escalation notices for %s", ticket.number, exc_info=True)

    transaction.on_commit(enqueue, robust=True)
