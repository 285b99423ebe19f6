"""The queue's detail pane in Chromium: j/k and a click move its content, it survives live polls
(and follows a change to its alert), and an attacker-written title is text, not markup."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from alerts.models import Alert, Feed
from tests.alerts.test_queue_page import alert
from tests.browser.support import PageProblems, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOSTILE = "<img src=x onerror=\"document.title='pwned'\">Hostile <b>flood</b>"
POLLS = "(n) => Number(document.getElementById('queue').dataset.polls || 0) >= n"


@pytest.fixture
def feed(db):
    feed = Feed(name="FastNetMon", slug="fastnetmon", format="fastnetmon")
    feed.set_secret()
    feed.save()
    return feed


def test_j_k_and_a_click_move_the_pane_which_survives_live_polls(
    page, page_problems: PageProblems, live_server, engineer, feed, settings
):
    settings.QUEUE_POLL_MS = 400
    first, second, third = (alert(feed, n, urgency=90 - n, minutes_ago=n) for n in (1, 2, 3))
    second.title = HOSTILE
    second.source_ips = ["198.51.100.7", "198.51.100.8"]
    second.direction_rule = "destination is a customer asset"
    second.raw = {"note": "<script>document.title='raw'</script>"}
    Alert.objects.bulk_create([first, second, third])
    login(page, live_server, engineer)
    page.goto(f"{live_server.url}/alerts/")
    pane = page.locator("#queue-pane")
    expect(page.locator("#queue-rows tr[data-id]")).to_have_count(3)
    expect(pane).to_contain_text("Select an alert")

    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("j")
    expect(pane.locator(".pane-title")).to_have_text("medium alert 1")
    page.keyboard.press("j")
    expect(pane.locator(".pane-title")).to_contain_text("Hostile <b>flood</b>")  # the title as text
    expect(pane).to_contain_text("2 IPs")
    expect(pane).to_contain_text("destination is a customer asset")
    assert pane.locator("img, b, script").count() == 0
    pane.locator(".pane-raw summary").click()
    expect(pane.locator(".pane-raw pre")).to_contain_text("<script>document.title='raw'</script>")
    page.keyboard.press("k")
    expect(pane.locator(".pane-title")).to_have_text("medium alert 1")
    page.locator(f"#alert-{third.pk} td:nth-child(5)").click()  # a click on the row, not its link
    expect(pane.locator(".pane-title")).to_have_text("medium alert 3")
    assert page.locator("tr.cursor").get_attribute("data-id") == str(third.pk)

    start = int(page.locator("#queue").get_attribute("data-polls") or 0)
    page.wait_for_function(POLLS, arg=start + 2)
    expect(pane.locator(".pane-title")).to_have_text("medium alert 3")  # untouched by the polls
    # Its alert repeats: the next poll brings the row, and the pane shows the new count.
    Alert.objects.filter(pk=third.pk).update(count=42, updated_at=timezone.now())
    page.wait_for_function(POLLS, arg=start + 4)
    expect(pane).to_contain_text("(42×)")
    assert page.locator("tr.cursor").get_attribute("data-id") == str(third.pk)

    assert page.title() not in ("pwned", "raw")
    page_problems.assert_clean("queue pane")
