"""The whole path in a real browser: queue → escalate → note → acknowledgement email → resolve → close."""

from __future__ import annotations

import pytest
from django.core import mail

from tests.browser.support import login
from tests.tickets.conftest import make_alert
from tickets.models import Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_escalate_three_alerts_note_acknowledge_resolve_close(
    page, page_problems, live_server, engineer, customer_a, customer_b, make_attack, feed
):
    attack = make_attack(customer_a, n=3)
    ids = list(attack.alerts.values_list("pk", flat=True))
    other = make_alert(feed, customer_b, i=5, target="198.51.100.7", urgency=95)
    mail.outbox.clear()

    login(page, live_server, engineer)
    page.goto(f"{live_server.url}/alerts/")
    for pk in ids:
        page.check(f'#alert-{pk} input[name="ids"]')
    assert page.locator("#selected-count").inner_text() == "3 selected"
    assert not page.is_checked(f'#alert-{other.pk} input[name="ids"]')
    with page.expect_navigation():
        page.click('button[data-action="escalate"]')

    ticket = Ticket.objects.get()
    assert page.url.endswith(ticket.get_absolute_url())
    assert page.locator("#ticket-number").inner_text() == ticket.number
    assert page.locator("#ticket-title").inner_text() == attack.title
    assert "Acme Corp" in page.locator("#ticket-customer").inner_text()
    assert sorted(
        int(x)
        for x in page.locator("#ticket-alerts tr[data-alert]").evaluate_all("rows => rows.map(r => r.dataset.alert)")
    ) == sorted(ids)
    assert page.locator("[data-sla-remaining]").count() >= 1

    page.fill('textarea[name="body"][aria-label="internal note"]', "INTERNAL-ONLY: customer runs a load test?")
    with page.expect_navigation():
        page.click("#add-note")
    note = page.locator("#timeline .timeline-entry.internal.kind-note")
    assert "INTERNAL-ONLY" in note.inner_text()
    # The first action on the ticket acknowledged it and gave it to the engineer who acted.
    assert page.locator("#ticket-status").get_attribute("data-status") == "investigating"
    ticket.refresh_from_db()
    assert ticket.assignee == engineer and ticket.acknowledged_at is not None

    page.select_option('select[name="template"]', "acknowledgement")
    with page.expect_navigation():
        page.click("#load-template")
    body = page.input_value('textarea[aria-label="message body"]')
    assert "18.7 Gbps" in body and "INTERNAL-ONLY" not in body
    with page.expect_navigation():
        page.click("#send-message")
    assert page.locator("#timeline .timeline-entry.customer-facing.kind-customer_message").count() == 1

    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["sre@acme.example"] and ticket.number in sent.subject
    assert "18.7 Gbps" in sent.body and "2.45 Mpps" in sent.body and "UDP flood" in sent.body
    assert "INTERNAL-ONLY" not in sent.body

    for status in ("mitigating", "monitoring"):
        with page.expect_navigation():
            page.click(f'button[data-transition="{status}"]')
        assert page.locator("#ticket-status").get_attribute("data-status") == status
    page.select_option('select[name="outcome"]', "tp_impact")
    with page.expect_navigation():
        page.click('button[data-transition="resolved"]')
    with page.expect_navigation():
        page.click('button[data-transition="closed"]')
    assert page.locator("#ticket-status").get_attribute("data-status") == "closed"

    ticket.refresh_from_db()
    assert ticket.status == "closed" and ticket.outcome == "tp_impact"
    assert set(ticket.alerts.values_list("pk", flat=True)) == set(ids)
    page_problems.assert_clean("ticket path")
