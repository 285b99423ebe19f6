"""Celery tasks of the tickets app: thin, idempotent, retried on transient errors only."""

from __future__ import annotations

import imaplib
import json
import logging
import smtplib
import ssl

from celery import shared_task
from django.core.mail import send_mail
from django.db import InterfaceError, OperationalError

import console.celery  # noqa: F401 - our app is the current one before a task is sent (console/__init__.py)
from console import outbound
from console.context import acting_as
from tickets import imap, services

logger = logging.getLogger(__name__)
TRANSIENT = (OperationalError, InterfaceError)


class WebhookTemporaryError(Exception):
    """The receiver is down or busy (network error, 5xx, 429): worth another try."""


@shared_task(ignore_result=True, acks_late=True, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=3)
def attach_new_attack_alerts() -> int:
    with acting_as("celery:attach_new_attack_alerts"):
        attached = services.tickets_attach_new_attack_alerts()
        # The same 30 s beat lets tickets follow their attacks (ended -> Monitoring, title).
        services.tickets_follow_attacks()
        return attached


@shared_task(
    ignore_result=True,
    acks_late=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    max_retries=3,
    soft_time_limit=100,
    time_limit=120,
)
def sla_check() -> int:
    with acting_as("celery:sla_check"):
        return services.tickets_sla_check()


@shared_task(
    ignore_result=True,
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=30,
    time_limit=60,
)
def send_notification_email(subject: str, body: str, recipients: list[str]) -> None:
    send_mail(subject, body, None, recipients)


@shared_task(
    ignore_result=True,
    autoretry_for=(WebhookTemporaryError,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=30,
    time_limit=60,
)
def post_webhook(url: str, payload: dict) -> int:
    """POST Slack-compatible JSON. A refused destination is permanent; failures and 5xx are retried."""
    body = json.dumps(payload).encode()
    try:
        response = outbound.request(
            url, method="POST", body=body, headers={"Content-Type": "application/json"}, timeout=10
        )
    except outbound.DestinationRefused as exc:  # the URL or a redirect's goes where it may not
        logger.warning("webhook %s refused: %s", url, exc)
        return 0
    except outbound.OutboundRefused as exc:
        raise WebhookTemporaryError(str(exc)) from exc
    if response.status >= 500 or response.status == 429:
        raise WebhookTemporaryError(f"{url} answered {response.status}")
    if response.status >= 400:
        logger.warning("webhook %s answered %s; not retried", url, response.status)
    return response.status


@shared_task(
    ignore_result=True,
    acks_late=True,
    autoretry_for=(*TRANSIENT, imaplib.IMAP4.abort, ConnectionError, TimeoutError),
    retry_backoff=10,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=3,
    soft_time_limit=240,
    time_limit=300,
)
def poll_inbound_mailbox() -> int:
    """Customer replies from the IMAP mailbox onto their tickets. Safe to run twice at once: each
    message is received once by its Message-ID. A refused login or a bad URL is not retried."""
    with acting_as("celery:poll_inbound_mailbox"):
        try:
            outcome = services.inbound_mailbox_poll()
        except (imap.MailboxMisconfigured, ssl.SSLCertVerificationError) as exc:
            logger.error("inbound mailbox not read: %s", exc)
            return 0
        except imaplib.IMAP4.error as exc:
            if isinstance(exc, imaplib.IMAP4.abort):
                raise
            logger.error("inbound mailbox refused us: %s", exc)  # wrong password, no such folder
            return 0
        return sum(outcome.values())
