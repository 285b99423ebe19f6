"""The feed edit page previews the last deliveries under unsaved settings, saves them, and replays the unmapped."""

from __future__ import annotations

import pytest
from django.test import Client
from playwright.sync_api import expect

from alerts.formats import examples
from alerts.models import Alert, Feed
from tests.browser.support import PageProblems, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_feed_edit_previews_unsaved_mapping_then_saves_and_replays(
    page, page_problems: PageProblems, live_server, senior, customer_a
):
    feed = Feed(name="Scrubber JSON", slug="scrubber", format="generic")
    token = feed.set_secret()
    feed.save()
    sender = Client()
    for ip in ("203.0.113.50", "203.0.113.51"):
        answer = sender.post(
            "/ingest/scrubber/",
            data=examples.body({"title": f"Flood on {ip}", "struck": ip, "kind": "udp_flood"}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        assert answer.status_code == 202
    assert Alert.objects.filter(customer__isnull=True).count() == 2  # "struck" is no known field or label

    login(page, live_server, senior)
    page.goto(f"{live_server.url}/feeds/scrubber/edit/")
    preview = page.locator("#feed-preview")
    expect(preview.locator(".preview-alert")).to_have_count(2)
    expect(preview.locator(".preview-alert").first).to_contain_text("customer unassigned")
    expect(preview).to_contain_text("1 alert, 1 without a customer")

    page.fill("#id_options", '{"mapping": {"target_ip": "struck", "vector": "kind"}}')
    page.locator("#id_options").dispatch_event("change")
    expect(preview.locator(".preview-alert").first).to_contain_text("customer acme")
    expect(preview).to_contain_text("target 203.0.113.5")
    expect(preview).to_contain_text("udp_flood")
    expect(preview).not_to_contain_text("without a customer")
    feed.refresh_from_db()
    assert feed.options == {}  # a preview saves nothing

    page.fill("#id_options", '{"mapping": ')
    page.click("#feed-preview-button")
    expect(preview.locator(".error")).to_contain_text("JSON")

    page.fill("#id_options", '{"mapping": {"target_ip": "struck", "vector": "kind"}}')
    with page.expect_navigation():
        page.click("#feed-form button[type=submit]")
    assert page.url.endswith("/feeds/scrubber/")
    feed.refresh_from_db()
    assert feed.options == {"mapping": {"target_ip": "struck", "vector": "kind"}}

    page.goto(f"{live_server.url}/feeds/scrubber/edit/")
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.click("#feed-replay")
    expect(page.locator("body")).to_contain_text("Replaying 0 rejected and 2 unmapped deliveries")
    assert sorted(Alert.objects.values_list("customer__slug", "target_ip", "vector")) == [
        ("acme", "203.0.113.50", "udp_flood"),
        ("acme", "203.0.113.51", "udp_flood"),
    ]
    page_problems.assert_clean("feed edit page")
