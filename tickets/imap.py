"""Customer replies read from an IMAP mailbox: the option for a provider without an inbound-parse webhook.

The mailbox is the one INBOUND_IMAP_URL names and nothing else: its host comes from the
operator's configuration only, never from a message (the HTTP outbound guard,
``console/outbound.py``, has nothing to check here). The password travels over TLS: ``imaps://``,
or ``imap://`` with STARTTLS; plain text only to a loopback address.

A message is fetched without setting ``\\Seen`` (``BODY.PEEK[]``) and marked seen only after
``receive`` returned, that is after its row was committed. A crash between the two leaves the
message unseen: the next poll reads it again and ``receive`` recognises it by its Message-ID.
"""

from __future__ import annotations

import contextlib
import imaplib
import ipaddress
import logging
import re
import ssl
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

logger = logging.getLogger(__name__)

# Messages read per poll: a backlog drains over a few polls instead of one task past its time limit.
BATCH = 200
TIMEOUT_SECONDS = 30
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})*$")


class MailboxMisconfigured(ValueError):
    """INBOUND_IMAP_URL cannot be used as it is: permanent, not worth a retry."""


@dataclass(frozen=True)
class Mailbox:
    """Where customer replies are read: host, port and account from configuration."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    folder: str = "INBOX"
    implicit_tls: bool = True
    ca_file: str = ""

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        return f"{'imaps' if self.implicit_tls else 'imap'}://{self.user}@{self.host}:{self.port}/{self.folder}"


def mailbox_from_url(url: str, *, ca_file: str = "") -> Mailbox:
    """``imaps://user:password@host:993/INBOX`` (user and password percent-encoded) as a Mailbox."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("imap", "imaps"):
        raise MailboxMisconfigured("INBOUND_IMAP_URL must start with imaps:// (or imap:// with STARTTLS)")
    host = parts.hostname or ""
    if not host or not (_HOSTNAME.match(host) or _is_ip(host)):
        raise MailboxMisconfigured("INBOUND_IMAP_URL names no valid host")
    try:
        port = parts.port or (993 if parts.scheme == "imaps" else 143)
    except ValueError as exc:
        raise MailboxMisconfigured("INBOUND_IMAP_URL has an invalid port") from exc
    if not parts.username or parts.password is None:
        raise MailboxMisconfigured("INBOUND_IMAP_URL names no user and password")
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    return Mailbox(
        host=host,
        port=port,
        user=unquote(parts.username),
        password=unquote(parts.password),
        folder=folder,
        implicit_tls=parts.scheme == "imaps",
        ca_file=ca_file,
    )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _connect(mailbox: Mailbox) -> imaplib.IMAP4:
    context = ssl.create_default_context(cafile=mailbox.ca_file or None)
    if mailbox.implicit_tls:
        return imaplib.IMAP4_SSL(mailbox.host, mailbox.port, ssl_context=context, timeout=TIMEOUT_SECONDS)
    conn = imaplib.IMAP4(mailbox.host, mailbox.port, timeout=TIMEOUT_SECONDS)
    if "STARTTLS" in conn.capabilities:
        conn.starttls(ssl_context=context)
    elif not mailbox.loopback:
        conn.shutdown()
        raise MailboxMisconfigured(f"{mailbox.host} offers no STARTTLS: the password would travel in clear text")
    return conn


def _raw_message(data: list) -> bytes | None:
    for part in data or []:
        if isinstance(part, tuple) and len(part) == 2 and isinstance(part[1], bytes):
            return part[1]
    return None


def mailbox_poll(mailbox: Mailbox, *, receive: Callable[[bytes], str], batch: int = BATCH) -> Counter[str]:
    """Read the unseen messages, hand each to ``receive`` (which commits it and says what it
    became), then mark it seen. Returns how many became what ("attached", "unmatched", ...)."""
    outcome: Counter[str] = Counter()
    conn = _connect(mailbox)
    try:
        conn.login(mailbox.user, mailbox.password)
        typ, data = conn.select(_quoted(mailbox.folder))
        if typ != "OK":
            raise MailboxMisconfigured(f"no folder {mailbox.folder!r} on {mailbox.host}")
        typ, data = conn.uid("SEARCH", None, "UNSEEN")
        uids = (data[0] or b"").split()[:batch] if typ == "OK" and data else []
        for uid in uids:
            typ, data = conn.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = _raw_message(data) if typ == "OK" else None
            if raw is None:  # expunged by someone else meanwhile
                continue
            outcome[receive(raw)] += 1
            conn.uid("STORE", uid, "+FLAGS.SILENT", "(\\Seen)")
        conn.close()
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            conn.logout()
    logger.info("mailbox %s: %s", mailbox, dict(outcome) or "nothing new")
    return outcome
