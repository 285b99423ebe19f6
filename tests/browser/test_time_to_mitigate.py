"""Issue 16, must-show 1: from a new critical alert to an applied mitigation and a customer update,
driven as people would in the browser, in at most 12 user actions.

A feed posts the alert (HTTP, not a user action). The engineer opens the queue, escalates the
alert, attaches a capture on the ticket; the ticket shows the comparison with the automatic
baseline, whose top signature the engineer proposes (scoped to the customer, carrying ticket
and attack) onto a configured export target. A second user approves as the blast radius asks
(a senior, or an admin when it is high), applies from the approval page and tells the customer.

Counted: clicks, form fills, file choices and key presses. Not counted: logging in (both
users), and the waits for pages to load. The approver opens the approval link from the
notification mail, counted as one click.
"""

from __future__ import annotations

import random
import re
import time
import urllib.request

import pytest
from django.core import mail
from playwright.sync_api import expect

from alerts.formats import examples
from alerts.models import Alert, Feed
from mitigations.models import EnforcementTarget, Mitigation
from tests.browser.support import TIMEOUT_MS, PageProblems, login
from tests.traffic import gen
from tests.traffic import vectors as V
from tickets.models import Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MAX_ACTIONS = 12


class Actions:
    """The user actions of the path, counted as they happen, with what each was."""

    def __init__(self) -> None:
        self.done: list[str] = []

    def __call__(self, what: str) -> None:
        self.done.append(what)

    def __len__(self) -> int:
        return len(self.done)


def test_alert_to_mitigation_and_customer_update_in_twelve_actions(
    browser,
    page,
    page_problems: PageProblems,
    live_server,
    engineer,
    senior,
    admin_user,
    customer_a,
    tmp_path,
    settings,
):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SITE_URL = live_server.url
    capture = tmp_path / "udp-flood.pcap"
    rng = random.Random(16)
    gen.write_pcap(capture, V.merge(V.normal(rng, 6), V.udp_fixed(rng, n=4000)))
    EnforcementTarget.objects.create(name="h16b-export", kind="export", description="download for the scrubbing team")
    feed = Feed(name="Cloudflare", slug="cf", format="cloudflare")
    token = feed.set_secret()
    feed.save()
    login(page, live_server, engineer)  # not counted

    actions = Actions()
    started = time.monotonic()
    body = examples.body(
        examples.cloudflare_l4(
            target_ip=V.VICTIM, target_port=27015, pps=12_000_000, mbps=3_100, correlation_id="ttm-1"
        )
    )
    request = urllib.request.Request(
        f"{live_server.url}/ingest/cf/",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # the feed, not a user
        assert response.status == 202
    alert = Alert.objects.get()
    assert alert.severity == "critical", alert.severity

    # Engineer: the queue, Escalate on the cursor row (the critical alert on top).
    actions("click Alerts in the navigation")
    with page.expect_navigation():  # until "load": queue.js has registered its keys
        page.click("nav a[href='/alerts/']")
    expect(page.locator(f"#alert-{alert.pk}")).to_be_visible()
    actions("press j (cursor on the top row)")
    page.keyboard.press("j")
    expect(page.locator("tr.cursor")).to_have_attribute("data-id", str(alert.pk))
    actions("press e (escalate the row under the cursor)")
    with page.expect_navigation():
        page.keyboard.press("e")
    ticket = Ticket.objects.get()
    assert page.url.endswith(ticket.get_absolute_url()), page.url

    # Attach the capture on the ticket; it comes back to the ticket, parsed and compared.
    attach = page.locator("#attach-traffic")
    actions("choose the capture file")
    attach.locator("input[type=file]").set_input_files(str(capture))
    actions("click Attach traffic")
    with page.expect_navigation():
        attach.get_by_role("button", name="Attach traffic").click()
    assert page.url.endswith(ticket.get_absolute_url()), page.url
    card = page.locator("#ticket-suggestions")
    expect(card).to_contain_text("this capture before the attack", timeout=30_000)  # the automatic baseline
    top = card.locator(".suggestion").first
    expect(top.locator("code")).to_contain_text("udp", timeout=TIMEOUT_MS)
    signature = top.locator("code").inner_text()
    assert signature.startswith("ip.dst in {203.0.113.0/24}"), signature

    # Propose the top signature: the form carries the scope, the ticket and the attack.
    actions("click Propose mitigation on the top signature")
    with page.expect_navigation():
        top.get_by_role("link", name="Propose mitigation").click()
    expression = page.locator("#id_expression").input_value()
    # The victim's scope from the signature, and the sources it must never block (h15a's prefill).
    assert f"({signature})" in expression and expression.startswith("not ip.src in {"), expression
    assert page.locator("#id_ticket").input_value() == ticket.number
    actions("choose the enforcement target")
    page.select_option("#id_enforcement_target", "h16b-export")
    actions("click Save, simulate and propose")
    with page.expect_navigation():
        page.click("#save-and-propose")
    mitigation = Mitigation.objects.get()
    assert mitigation.state == Mitigation.State.PROPOSED, (
        mitigation.state,
        page.locator(".error, .messages").all_inner_texts(),
    )
    assert (mitigation.ticket_id, mitigation.attack_id) == (ticket.pk, alert.attack_id)
    assert mitigation.enforcement_target.name == "h16b-export"

    # The approver the blast radius asks for is told, with the link.
    approver = admin_user if mitigation.blast_radius == "high" else senior
    link = f"{live_server.url}/mitigations/{mitigation.pk}/approve/"
    notice = [m for m in mail.outbox if approver.email in m.to and link in m.body]
    assert notice, [(m.to, m.subject) for m in mail.outbox]

    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-US", timezone_id="UTC")
    context.set_default_timeout(TIMEOUT_MS)
    second = context.new_page()
    try:
        login(second, live_server, approver)  # not counted
        actions("open the approval link from the notification")
        second.goto(link)
        actions("click Approve and apply")
        with second.expect_navigation():
            second.click("#approve-and-apply")
        expect(second.locator("#approval-state")).to_have_text("It is active.")  # applied on h16b-export
        expect(second.locator("#tell-customer")).to_be_visible()
        actions("click Tell the customer")
        with second.expect_navigation():
            second.click("#tell-customer")
        assert second.get_by_role("textbox", name="message body").input_value().strip()  # the template, filled in
        actions("click Send to customer")
        with second.expect_navigation():
            second.click("#send-message")
        expect(second.locator("#ticket-status")).to_have_text(re.compile("Mitigating"))
        expect(second.locator("#timeline .kind-customer_message").first).to_be_visible()
    finally:
        context.close()
    seconds = time.monotonic() - started

    print(
        f"\ntime to mitigate: {len(actions)} user actions, {seconds:.1f} s"
        f" (blast radius {mitigation.blast_radius}, approved by {approver.get_username()})"
    )
    for n, what in enumerate(actions.done, 1):
        print(f"  {n:2}. {what}")

    # What a user would notice: the rule is active on the target, the ticket is Mitigating,
    # and the customer's message is on its timeline.
    mitigation.refresh_from_db()
    ticket.refresh_from_db()
    assert mitigation.state == Mitigation.State.ACTIVE, (mitigation.state, mitigation.error)
    assert ticket.status == Ticket.Status.MITIGATING
    sent = ticket.timeline.filter(kind="customer_message").get()
    assert sent.data.get("recipients") == ["sre@acme.example"], sent.data
    assert any("sre@acme.example" in m.to for m in mail.outbox)
    assert len(actions) <= MAX_ACTIONS, f"{len(actions)} actions: {actions.done}"
    page_problems.assert_clean("time to mitigate")
