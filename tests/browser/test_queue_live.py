"""The live queue while polls run: the j/k cursor and the selection survive, and a new critical
alert lands above the medium ones already shown, with an "n new" marker."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from alerts.models import Alert, Feed
from tests.alerts.test_queue_page import alert
from tests.browser.support import PageProblems, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def feed(db):
    feed = Feed(name="Cloudflare", slug="cloudflare", format="cloudflare")
    feed.set_secret()
    feed.save()
    return feed


POLLS = "(n) => Number(document.getElementById('queue').dataset.polls || 0) >= n"


def test_cursor_and_selection_survive_three_polls_and_critical_goes_on_top(
    page,
    page_problems: PageProblems,
    live_server,
    engineer,
    feed,
    settings,
):
    settings.QUEUE_POLL_MS = 400
    Alert.objects.bulk_create([alert(feed, n, urgency=30 + n, minutes_ago=10 + n) for n in range(1, 5)])
    login(page, live_server, engineer)
    page.goto(f"{live_server.url}/alerts/")
    rows = page.locator("#queue-rows tr[data-id]:not([hidden])")
    expect(rows).to_have_count(4)
    ids_before = rows.evaluate_all("rs => rs.map(r => r.dataset.id)")

    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("x")  # select the second row
    page.keyboard.press("j")  # and leave the cursor on the third
    cursor_id = ids_before[2]
    selected_id = ids_before[1]
    assert page.locator("tr.cursor").get_attribute("data-id") == cursor_id

    start = int(page.locator("#queue").get_attribute("data-polls") or 0)
    page.wait_for_function(POLLS, arg=start + 1)
    critical = alert(feed, 99, urgency=95, severity="critical", minutes_ago=0)
    critical.save()
    # A medium alert changing (a repeat) must not move the cursor either.
    Alert.objects.filter(fingerprint="fp-4").update(count=7, updated_at=critical.updated_at)
    page.wait_for_function(POLLS, arg=start + 3)

    expect(rows).to_have_count(5)
    order = rows.evaluate_all("rs => rs.map(r => r.dataset.id)")
    assert order[0] == str(critical.pk), order
    assert order[1:] == ids_before  # the mediums keep their urgency order below it
    assert page.locator("tr.cursor").count() == 1
    assert page.locator("tr.cursor").get_attribute("data-id") == cursor_id
    assert page.locator(f"#alert-{selected_id} input[name=ids]").is_checked()
    assert page.locator("#selected-count").inner_text() == "1 selected"
    expect(page.locator("#queue-new")).to_be_visible()
    assert page.locator("#queue-new").inner_text().strip() == "1 new"

    # The cursor moves on from where it was, not from the top.
    page.keyboard.press("j")
    assert page.locator("tr.cursor").get_attribute("data-id") == ids_before[3]
    page_problems.assert_clean("live queue")
