"""An attack page opened right after its first alert already shows urgency, peak and vector."""

from __future__ import annotations

import time
import urllib.request

import pytest
from playwright.sync_api import expect

from alerts import services
from alerts.formats import examples
from alerts.models import Attack, Feed
from tests.browser.support import PageProblems, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_attack_page_within_two_seconds_of_the_first_alert_shows_urgency_peak_and_vector(
    page, page_problems: PageProblems, live_server, engineer, customer_a, monkeypatch
):
    # The debounced full summary never runs: what the page shows was written by the upsert.
    monkeypatch.setattr(services, "attack_schedule_summary", lambda **kw: None)
    feed = Feed(name="Cloudflare", slug="cf", format="cloudflare")
    token = feed.set_secret()
    feed.save()
    login(page, live_server, engineer)

    body = examples.body(examples.cloudflare_l4(target_ip="203.0.113.10", pps=2_450_000, correlation_id="i1"))
    request = urllib.request.Request(
        f"{live_server.url}/ingest/cf/",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    sent = time.monotonic()
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
    attack = Attack.objects.get()
    page.goto(f"{live_server.url}/attacks/{attack.pk}/")
    opened = time.monotonic() - sent
    assert opened < 2.0, f"the attack page took {opened:.1f}s to open after the alert"

    summary = page.locator("section.card", has=page.get_by_role("heading", name="Summary"))
    urgency = summary.locator("dt:text-is('Urgency') + dd")
    expect(urgency).to_contain_text(str(attack.urgency))
    expect(urgency).to_contain_text("enterprise plan")
    assert attack.urgency >= 60
    expect(summary.locator("dt:text-is('Peak') + dd")).to_contain_text("2.45 Mpps")
    expect(summary.locator("dt:text-is('Vectors') + dd")).to_contain_text("UDP flood (1)")
    expect(summary.locator("dt:text-is('Alerts') + dd")).to_have_text("1")
    expect(page.locator("h1")).to_contain_text("UDP flood on 203.0.113.10")
    page_problems.assert_clean("attack page")
