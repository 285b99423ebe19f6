"""In a real browser: from an attack to its report, charts drawn, PDF downloaded, shared without login."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.browser.support import CSP_LISTENER, LOCAL_HOSTS, TIMEOUT_MS, PageProblems, login
from tests.reports.conftest import SUMMARY

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def watched_page(browser, problems: PageProblems):
    """A second, cookie-less context on the shared browser, watched as the ``page`` fixture watches its page."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-US", timezone_id="UTC")
    context.set_default_timeout(TIMEOUT_MS)
    context.expose_binding(
        "__shieldwallCsp",
        lambda _source, v: problems.csp_violations.append(f"{v.get('directive')} blocked {v.get('blocked')}"),
    )
    context.add_init_script(CSP_LISTENER)

    def guard(route) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("http://", "https://", "ws://", "wss://")) and host not in LOCAL_HOSTS:
            problems.external_requests.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", guard)
    page = context.new_page()
    page.on(
        "console",
        lambda m: (
            problems.console_errors.append(m.text)
            if m.type == "error" and not (m.location or {}).get("url", "").endswith("/favicon.ico")
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.page_errors.append(str(e)))
    page.on(
        "response",
        lambda r: (
            problems.failed_requests.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    return context, page


def test_engineer_reports_an_attack_downloads_the_pdf_and_shares_it(
    page, page_problems: PageProblems, browser, live_server, engineer, incident, settings, tmp_path
):
    settings.REPORT_PDF = True
    settings.MEDIA_ROOT = tmp_path / "media"
    attack = incident["attack"]
    login(page, live_server, engineer)

    # The attack page, then the report link another page gives for it.
    page.goto(f"{live_server.url}/attacks/{attack.pk}/")
    assert "203.0.113.10" in page.locator("h1").inner_text()
    page.goto(f"{live_server.url}/reports/new/?attack={attack.pk}")
    assert page.locator("#id_attack").input_value() == str(attack.pk)
    with page.expect_navigation():
        page.click("#generate-report")

    # Generation ran (eagerly, as a worker would) and the page shows the report with its charts.
    page.locator(".report-summary").wait_for()
    assert SUMMARY in page.locator(".report-summary").inner_text()
    for chart in ("traffic", "vectors", "countries", "asns"):
        page.locator(f'[data-chart$="-{chart}"] .main-svg').first.wait_for()
    assert page.locator('[data-chart$="-traffic"] .scatterlayer .trace').count() >= 2
    page_problems.assert_clean("report page")

    with page.expect_download() as download_info:
        page.click("#download-pdf")
    download = download_info.value
    assert download.suggested_filename.endswith(".pdf")
    assert Path(download.path()).read_bytes()[:5] == b"%PDF-"
    # Chromium reports a navigation that became a download as an aborted request: expected here.
    page_problems.failed_requests[:] = [r for r in page_problems.failed_requests if "/download/pdf/" not in r]

    page.click("#create-share")
    share_url = page.locator("#share-url").inner_text().strip()
    assert "/share/" in share_url
    page_problems.assert_clean("after sharing")

    # A fresh browser context: no session, no cookies.
    anonymous_problems = PageProblems()
    context, anonymous = watched_page(browser, anonymous_problems)
    try:
        response = anonymous.goto(share_url)
        assert response is not None and response.status == 200
        assert "/login/" not in anonymous.url
        assert SUMMARY in anonymous.locator(".report-summary").inner_text()
        anonymous.locator('[data-chart$="-traffic"] .main-svg').first.wait_for()
        assert anonymous.locator("header.topbar").count() == 0
        anonymous_problems.assert_clean("shared report")
    finally:
        context.close()
