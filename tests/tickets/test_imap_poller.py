"""Customer replies read from a real IMAP server (Debian's ``dovecot-imapd``).

Each test module starts its own Dovecot on a free loopback port, with a throw-away config,
a self-signed certificate the poller verifies (INBOUND_IMAP_CA_FILE) and a passwd-file user;
each test has its own folder. Messages are delivered with APPEND, as a mail server's local
delivery would leave them: unseen, in the folder the poller reads.
"""

from __future__ import annotations

import imaplib
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from tickets import imap, services, tasks
from tickets.mail import reply_address
from tickets.models import InboundMail, TimelineEntry

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
OPENSSL = shutil.which("openssl")
USER, PASSWORD = "soc", "imap-" + secrets.token_hex(8)
WAIT_S = 20

pytestmark = [
    pytest.mark.peer,
    pytest.mark.django_db,
    pytest.mark.skipif(
        not Path(DOVECOT).exists() or not OPENSSL,
        reason="needs Debian's dovecot-imapd and openssl (apt-get install dovecot-imapd openssl)",
    ),
]

CONFIG = """
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = required
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = yes
first_valid_uid = 1
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/home/%u
}}
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def dovecot() -> Iterator[dict[str, Any]]:
    root = Path(tempfile.mkdtemp(prefix="sw-h16m-dovecot-"))
    root.chmod(0o755)  # the mail processes run as the dovecot user
    subprocess.run(
        [OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
        + ["-addext", "subjectAltName=DNS:localhost", "-keyout", root / "key.pem", "-out", root / "cert.pem"],
        check=True,
        capture_output=True,
    )
    for sub in ("run", "state", "home"):
        (root / sub).mkdir()
    shutil.chown(root / "home", "dovecot", "dovecot")
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::{root}/home/{USER}::\n")
    port = _free_port()
    (root / "dovecot.conf").write_text(CONFIG.format(root=root, port=port))
    process = subprocess.Popen([DOVECOT, "-F", "-c", root / "dovecot.conf"], stderr=subprocess.PIPE)
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
                pytest.skip(f"dovecot did not start: {process.stderr.read().decode()[-500:]} {log[-500:]}")
            time.sleep(0.1)
    yield {"port": port, "ca": str(root / "cert.pem"), "root": root}
    process.terminate()
    process.wait(timeout=10)
    shutil.rmtree(root, ignore_errors=True)


def _client(server: dict[str, Any]) -> imaplib.IMAP4_SSL:
    context = ssl.create_default_context(cafile=server["ca"])
    conn = imaplib.IMAP4_SSL("localhost", server["port"], ssl_context=context, timeout=10)
    conn.login(USER, PASSWORD)
    return conn


@pytest.fixture
def mailbox(dovecot, settings, request) -> dict[str, Any]:
    """A fresh folder of the SOC's reply mailbox, and the console configured to read it."""
    folder = "replies-" + request.node.name[-40:].replace("[", "-").replace("]", "") + secrets.token_hex(3)
    conn = _client(dovecot)
    assert conn.create(folder)[0] == "OK"
    conn.logout()
    settings.INBOUND_IMAP_URL = f"imaps://{USER}:{PASSWORD}@localhost:{dovecot['port']}/{folder}"
    settings.INBOUND_IMAP_CA_FILE = dovecot["ca"]

    def deliver(raw: bytes) -> None:
        conn = _client(dovecot)
        typ, data = conn.append(folder, None, None, raw)
        assert typ == "OK", data
        conn.logout()

    def unseen() -> int:
        conn = _client(dovecot)
        conn.select(folder, readonly=True)
        count = len(conn.search(None, "UNSEEN")[1][0].split())
        conn.logout()
        return count

    return {"deliver": deliver, "unseen": unseen, "folder": folder, **dovecot}


def _reply(*, to: str, subject: str, body: str, in_reply_to: str = "", sender: str = "Dana Ops <dana@acme.example>"):
    """A customer's answer as Thunderbird writes it: quoted thread below, threading headers."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(timezone.now())
    message["Message-ID"] = f"<{secrets.token_hex(8)}@mail.acme.example>"
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(f"{body}\n\nOn Mon, 2 Mar 2026 at 14:05, Shieldwall SOC wrote:\n> We are on it.\n> -- SOC\n")
    return message


def test_a_reply_to_the_ticket_address_lands_on_the_timeline_once_even_when_polled_twice(
    mailbox, ticket, engineer, client
):
    sent = services.ticket_send_customer_message(ticket=ticket, subject="Hi", body="We are on it.", user=engineer)
    reply = _reply(
        to=f"Acme SOC <{reply_address(ticket)}>",
        subject=f"Re: [{ticket.number}] Hi <img src=x onerror=alert(1)>",
        body="Thanks, the origin is 203.0.113.10 only. <script>alert(1)</script>",
        in_reply_to=sent.data["message_id"],
    )
    # Answered from another client to the SOC's plain address: only the thread ids name the ticket.
    by_thread = _reply(
        to="soc@shieldwall.invalid", subject="Re: Hi", body="Also: port 443 only.", in_reply_to=sent.data["message_id"]
    )
    mailbox["deliver"](bytes(reply))
    mailbox["deliver"](bytes(by_thread))

    first = tasks.poll_inbound_mailbox()
    mailbox["deliver"](bytes(reply))  # the same message delivered twice (a retrying relay)
    second = tasks.poll_inbound_mailbox()

    assert (first, second) == (2, 1)
    replies = list(ticket.timeline.filter(kind=TimelineEntry.Kind.CUSTOMER_REPLY).order_by("id"))
    assert [r.body for r in replies] == [
        "Thanks, the origin is 203.0.113.10 only. <script>alert(1)</script>",
        "Also: port 443 only.",
    ]  # the quoted thread below the answer is not repeated
    assert replies[0].data["message_id"] == reply["Message-ID"]
    assert mailbox["unseen"]() == 0
    client.force_login(engineer)
    page = client.get(ticket.get_absolute_url()).content.decode()
    assert "the origin is 203.0.113.10 only" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page


def test_a_crash_between_the_commit_and_marking_seen_neither_loses_nor_duplicates_the_reply(mailbox, ticket, settings):
    mailbox["deliver"](bytes(_reply(to=reply_address(ticket), subject="Re: status", body="Still down here.")))
    mailbox_config = imap.mailbox_from_url(settings.INBOUND_IMAP_URL, ca_file=mailbox["ca"])

    def receive_then_die(raw: bytes) -> str:
        services.inbound_mail_receive_raw(raw=raw, channel="imap")  # committed ...
        raise ConnectionResetError("worker lost before STORE \\Seen")  # ... and never marked seen

    with pytest.raises(ConnectionResetError):
        imap.mailbox_poll(mailbox_config, receive=receive_then_die)
    assert mailbox["unseen"]() == 1

    assert tasks.poll_inbound_mailbox() == 1  # read again: recognised, marked seen
    assert ticket.timeline.filter(kind=TimelineEntry.Kind.CUSTOMER_REPLY, body="Still down here.").count() == 1
    assert mailbox["unseen"]() == 0


def test_a_mail_without_a_ticket_is_kept_and_listed_for_staff(mailbox, ticket, engineer, client):
    hostile = "Urgent <script>alert('subject')</script>"
    mailbox["deliver"](
        bytes(_reply(to="soc@shieldwall.invalid", subject=hostile, body="We are under attack <b>now</b>, call us."))
    )

    assert tasks.poll_inbound_mailbox() == 1

    kept = InboundMail.objects.get()
    assert kept.status == InboundMail.Status.UNMATCHED and kept.ticket is None
    assert "call us" in kept.body and kept.sender == "Dana Ops <dana@acme.example>"
    assert not ticket.timeline.filter(kind=TimelineEntry.Kind.CUSTOMER_REPLY).exists()
    client.force_login(engineer)
    tickets_page = client.get("/tickets/").content.decode()
    assert "1 customer mail without a ticket" in tickets_page
    page = client.get("/tickets/inbound/").content.decode()
    assert "We are under attack &lt;b&gt;now&lt;/b&gt;, call us." in page
    assert "<script>alert('subject')</script>" not in page and "&lt;script&gt;" in page


def test_a_malformed_message_gets_a_clear_error_and_does_not_block_the_others(mailbox, ticket, engineer, client):
    broken = (
        b"From: someone@acme.example\r\nTo: " + reply_address(ticket).encode() + b"\r\n"
        b"Subject: Re: [" + ticket.number.encode() + b"] broken\r\nMessage-ID: <broken-1@acme.example>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=x-klingon\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n\xff\xfe qapla'\r\n"
    )
    mailbox["deliver"](broken)
    mailbox["deliver"](bytes(_reply(to=reply_address(ticket), subject="Re: ok", body="This one is fine.")))

    assert tasks.poll_inbound_mailbox() == 2

    unreadable = InboundMail.objects.get(status=InboundMail.Status.UNREADABLE)
    assert unreadable.error == "unknown character set: unknown encoding: x-klingon"
    assert "someone@acme.example" in unreadable.sender
    assert ticket.timeline.filter(kind=TimelineEntry.Kind.CUSTOMER_REPLY, body="This one is fine.").count() == 1
    assert mailbox["unseen"]() == 0
    assert tasks.poll_inbound_mailbox() == 0  # nothing left to trip over
    client.force_login(engineer)
    page = client.get("/tickets/inbound/").content.decode()
    assert "unknown character set: unknown encoding: x-klingon" in page


def test_a_refused_login_is_logged_not_retried(mailbox, settings, caplog):
    settings.INBOUND_IMAP_URL = settings.INBOUND_IMAP_URL.replace(PASSWORD, "wrong")
    mailbox["deliver"](bytes(_reply(to="soc@shieldwall.invalid", subject="x", body="y")))

    assert tasks.poll_inbound_mailbox() == 0

    assert "inbound mailbox refused us" in caplog.text
    assert mailbox["unseen"]() == 1 and not InboundMail.objects.exists()
