"""The live triage queue in a real browser: alerts arrive without reload; keyboard triage; silence with preview."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from alerts import services
from alerts.formats import examples
from alerts.models import Alert, Feed, Silence
from tests.browser.support import PageProblems, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def deliver(feed: Feed, payload: dict) -> None:
    """What the webhook does, minus HTTP: store, then process (a worker would)."""
    received = services.delivery_receive(feed=feed, body=examples.body(payload), headers={})
    services.delivery_process(delivery_id=received.delivery.pk)


@pytest.fixture
def feed(customer_a):
    feed = Feed(name="Cloudflare", slug="cloudflare", format="cloudflare")
    feed.set_secret()
    feed.save()
    return feed


def test_alerts_appear_live_and_keyboard_triage_and_silence_with_preview(
    page, page_problems: PageProblems, live_server, engineer, feed
):
    deliver(feed, examples.cloudflare_l4(target_ip="203.0.113.10", correlation_id="one", pps=4e6))
    login(page, live_server, engineer)
    page.goto(f"{live_server.url}/alerts/")
    rows = page.locator("#queue-rows tr[data-id]")
    assert rows.count() == 1

    # New alerts arrive while the page is open: they appear without a reload.
    deliver(feed, examples.cloudflare_l4(target_ip="203.0.113.11", correlation_id="two", pps=2e6))
    deliver(feed, examples.cloudflare_l4(target_ip="203.0.113.12", correlation_id="three", pps=1e6))
    # expect() polls from Playwright's own world: the page's CSP (no eval) stays strict.
    expect(rows).to_have_count(3, timeout=15000)
    assert page.locator("#queue-rows tr.fresh").count() == 2
    assert "203.0.113.12" in page.locator("#queue-rows").inner_text()

    # Select two with the keyboard (j moves, x selects) and acknowledge them (a).
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("j")
    page.keyboard.press("x")
    page.keyboard.press("j")
    page.keyboard.press("x")
    assert page.locator("#selected-count").inner_text() == "2 selected"
    with page.expect_navigation():
        page.keyboard.press("a")
    assert Alert.objects.filter(status="acknowledged").count() == 2
    assert "Acknowledged 2 alert(s)." in page.locator(".messages").inner_text()

    # Silence alerts like the remaining one, with a preview before saving.
    page.locator("#queue-rows tr[data-id] input[name=ids]").first.check()
    with page.expect_navigation():
        page.keyboard.press("s")
    assert page.url.startswith(f"{live_server.url}/silences/new/")
    expect(page.locator("#preview-count")).to_have_text("1 open alert match.", timeout=10000)
    page.fill("textarea[name=comment]", "customer confirmed a load test")
    with page.expect_navigation():
        page.click("#save-silence")
    assert Silence.objects.count() == 1
    assert Alert.objects.filter(status="suppressed").count() >= 1
    page_problems.assert_clean("queue and silence pages")
