"""Customer mail that can be answered: a per-ticket Reply-To, threading headers, and reading
the replies that the mail provider's inbound-parse webhook posts back or that the IMAP
poller (tickets/imap.py) fetches as raw messages.

The reply address carries the ticket number and an HMAC of it, so a reply lands on its
ticket and a forged address (another ticket's number, guessed) lands nowhere.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from email import policy as email_policy
from email.parser import BytesParser
from email.utils import getaddresses, make_msgid
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils.html import strip_tags

from tickets.models import Ticket, TimelineEntry

THREAD_KINDS = (
    TimelineEntry.Kind.CUSTOMER_MESSAGE,
    TimelineEntry.Kind.CUSTOMER_REPLY,
    TimelineEntry.Kind.REPORT_SENT,
)
_ADDRESS = re.compile(r"^(?P<local>[^+@\s]+)\+(?P<number>[A-Za-z0-9-]+)\.(?P<sig>[0-9a-f]{12})@(?P<domain>[^@\s>]+)$")


def _signature(number: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"ticket-reply:{number}".encode(), hashlib.sha256).hexdigest()[:12]


def reply_address(ticket: Ticket) -> str:
    """soc+SW-2026-0001.1a2b3c4d5e6f@reply.example: where the customer's answer to this ticket goes."""
    local, domain = settings.TICKET_REPLY_LOCALPART, settings.TICKET_REPLY_DOMAIN
    return f"{local}+{ticket.number}.{_signature(ticket.number)}@{domain}"


def ticket_number_from_addresses(*values: str) -> str | None:
    """The ticket a reply was addressed to (To, Cc, envelope), when its signature is ours."""
    for _, address in getaddresses([v for v in values if v]):
        match = _ADDRESS.match(address.strip().lower())
        if not match or match["domain"] != settings.TICKET_REPLY_DOMAIN.lower():
            continue
        number = match["number"].upper()
        if hmac.compare_digest(match["sig"], _signature(number)):
            return number
    return None


def thread_ids(ticket: Ticket) -> list[str]:
    """The Message-IDs of the ticket's conversation so far, oldest first."""
    ids = []
    entries = ticket.timeline.filter(kind__in=THREAD_KINDS).order_by("at", "id").values_list("data", flat=True)
    for data in entries:
        mid = (data or {}).get("message_id") if isinstance(data, dict) else None
        if mid and mid not in ids:
            ids.append(mid)
    return ids[-20:]


def customer_email(ticket: Ticket, *, subject: str, body: str, recipients: list[str]) -> tuple[EmailMessage, str]:
    """A message to the customer in the ticket's thread: Reply-To, Message-ID, In-Reply-To, References."""
    message_id = make_msgid(idstring=ticket.number, domain=settings.TICKET_REPLY_DOMAIN)
    headers: dict[str, Any] = {"Message-ID": message_id}
    previous = thread_ids(ticket)
    if previous:
        headers["In-Reply-To"] = previous[-1]
        headers["References"] = " ".join(previous)
    message = EmailMessage(
        subject,
        body,
        settings.DEFAULT_FROM_EMAIL,
        recipients,
        reply_to=[reply_address(ticket)],
        headers=headers,
    )
    return message, message_id


def signature_valid(*, timestamp: str, token: str, signature: str) -> bool:
    """The inbound-parse webhook's signature: HMAC-SHA256 of timestamp + token with our secret."""
    secret = settings.INBOUND_MAIL_SECRET
    if not secret or not (timestamp and token and signature):
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.strip().lower())


def header_value(raw_headers: str, name: str) -> str:
    """One header from a raw header block (the ``headers`` field of SendGrid's inbound parse)."""
    pattern = re.compile(rf"^{re.escape(name)}:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
    match = pattern.search(raw_headers or "")
    return " ".join(match.group(1).split()) if match else ""


class UnreadableMail(ValueError):
    """A message we cannot read (broken MIME, unknown charset): kept with this error for staff."""


@dataclass(frozen=True)
class ReceivedMail:
    """What routing and the timeline need of a customer's mail, whichever way it came in."""

    recipients: list[str]
    sender: str
    subject: str
    text: str
    message_id: str
    in_reply_to: str  # In-Reply-To and References ids, space-separated

    @property
    def key(self) -> str:
        """The Message-ID, or a digest of what was received when the sender set none."""
        if self.message_id:
            return self.message_id[:300]
        content = "\x00".join([self.sender, *self.recipients, self.subject, self.text])
        return "sha256:" + hashlib.sha256(content.encode("utf-8", "replace")).hexdigest()


# Headers a delivered message names its recipient in: the visible ones and the envelope's.
_RECIPIENT_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")
# "On Mon, 2 Mar 2026 at 14:05, SOC wrote:" and everything quoted after it.
_QUOTE_INTRO = re.compile(r"^\s*(On .{0,200}wrote:|-{2,}\s*Original Message\s*-{2,})\s*$", re.IGNORECASE)


def _without_quoted_tail(text: str) -> str:
    """The customer's own words: the quoted thread below them is already on the timeline."""
    lines = text.splitlines()
    end = len(lines)
    while end and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith(">")):
        end -= 1
    if end and _QUOTE_INTRO.match(lines[end - 1]) and end < len(lines):
        end -= 1
    return "\n".join(lines[:end]).rstrip() or text.strip()


def parse_mail(raw: bytes) -> ReceivedMail:
    """A raw RFC 5322 message (as an IMAP FETCH returns it) read for routing and the timeline."""
    try:
        message = BytesParser(policy=email_policy.default).parsebytes(raw)
        recipients = [str(v) for name in _RECIPIENT_HEADERS for v in (message.get_all(name) or [])]
        in_reply_to = " ".join(str(message.get(name, "")) for name in ("In-Reply-To", "References")).split()
        body = message.get_body(preferencelist=("plain", "html"))
        if body is None:
            text = ""
        else:
            text = body.get_content()
            if body.get_content_subtype() == "html":
                text = strip_tags(text)
        return ReceivedMail(
            recipients=recipients,
            sender=" ".join(str(message.get("From", "")).split()),
            subject=" ".join(str(message.get("Subject", "")).split()),
            text=_without_quoted_tail(text),
            message_id=str(message.get("Message-ID", "")).strip(),
            in_reply_to=" ".join(in_reply_to),
        )
    except LookupError as exc:  # a charset Python does not know
        raise UnreadableMail(f"unknown character set: {exc}") from exc
    except Exception as exc:  # the stdlib parser has many ways to fail on hostile input
        raise UnreadableMail(f"cannot read the message: {type(exc).__name__}: {exc}") from exc
