"""INBOUND_IMAP_URL is read strictly: the mailbox is the configured host, over TLS, or nothing."""

from __future__ import annotations

import pytest

from tickets import services, tasks
from tickets.imap import MailboxMisconfigured, mailbox_from_url


def test_an_imaps_url_names_host_account_and_folder():
    mailbox = mailbox_from_url("imaps://soc%40acme.example:p%2Fss@imap.example.net/Customer%20replies")

    assert (mailbox.host, mailbox.port, mailbox.user, mailbox.password) == (
        "imap.example.net",
        993,
        "soc@acme.example",
        "p/ss",
    )
    assert mailbox.folder == "Customer replies" and mailbox.implicit_tls
    assert "p/ss" not in repr(mailbox) and "p/ss" not in str(mailbox)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://soc:pw@imap.example.net/INBOX", "must start with imaps://"),
        ("imaps://soc:pw@/INBOX", "names no valid host"),
        ("imaps://soc:pw@bad_host!/INBOX", "names no valid host"),
        ("imaps://imap.example.net/INBOX", "names no user and password"),
        ("imaps://soc:pw@imap.example.net:99999/INBOX", "invalid port"),
    ],
)
def test_a_url_that_cannot_be_used_is_refused_with_the_reason(url, why):
    with pytest.raises(MailboxMisconfigured, match=why):
        mailbox_from_url(url)


def test_no_mailbox_configured_means_nothing_is_read(settings, db):
    settings.INBOUND_IMAP_URL = ""

    assert services.inbound_mailbox_poll() == {}
    assert tasks.poll_inbound_mailbox() == 0


def test_a_misconfigured_mailbox_is_logged_not_retried(settings, db, caplog):
    settings.INBOUND_IMAP_URL = "imap.example.net"

    assert tasks.poll_inbound_mailbox() == 0
    assert "inbound mailbox not read" in caplog.text
