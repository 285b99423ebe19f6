"""Playwright driving Debian's Chromium against pytest-django's live server.

The fixtures are registered once, in tests/conftest.py, so every folder's browser tests
share one Chromium per session (Playwright's sync API allows one instance per thread).

No browser is downloaded: Playwright is pointed at /usr/bin/chromium (Debian's package
``chromium``; ``make test`` installs it when run as root). Without it every test marked
``browser`` is skipped with that reason.

Each test gets a fresh page that records what an engineer would never want to see in the
console: JavaScript errors, failed loads, Content-Security-Policy violations and any
request that tries to leave the machine (the console must work on an isolated network).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.factories import PASSWORD

CHROMIUM = Path(os.environ.get("SHIELDWALL_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--headless",
    "--disable-gpu",
    # Without these Chromium phones home at start; the closed network refuses it, noisily.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
TIMEOUT_MS = 15_000

# Init scripts are injected through the devtools protocol, so the page's CSP does not
# apply to them. The listener reports each violation to the test through a binding.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", function (e) {
  if (window.__shieldwallCsp) {
    window.__shieldwallCsp({
      directive: e.violatedDirective,
      blocked: e.blockedURI,
      source: e.sourceFile,
      line: e.lineNumber,
      sample: e.sample
    });
  }
});
"""


def _chromium_missing_reason() -> str | None:
    if not CHROMIUM.exists():
        return f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _chromium_missing_reason()
    if reason is None:
        return
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.skip(reason=reason))


@dataclass
class PageProblems:
    """Everything that went wrong on a page, as readable strings for assertion messages."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    def all(self) -> list[str]:
        return [
            *(f"console error: {m}" for m in self.console_errors),
            *(f"page error: {m}" for m in self.page_errors),
            *(f"CSP violation: {m}" for m in self.csp_violations),
            *(f"external request: {m}" for m in self.external_requests),
            *(f"failed request: {m}" for m in self.failed_requests),
        ]

    def clear(self) -> None:
        for bucket in (
            self.console_errors,
            self.page_errors,
            self.csp_violations,
            self.external_requests,
            self.failed_requests,
        ):
            bucket.clear()

    def assert_clean(self, where: str = "") -> None:
        problems = self.all()
        assert not problems, f"{where or 'page'}:\n  " + "\n  ".join(problems)


def _carry_serialized_contents(saved: dict[str, str]) -> None:
    """Give the connections the test code sees after Playwright starts the test database's snapshot.

    Playwright's sync API leaves an asyncio loop marked as running in this thread, so
    Django's connection handler (an asgiref thread-critical Local) hands the test code
    new connection objects from then on. They reach the same test database, but lack
    the snapshot that ``serialized_rollback`` restores the seeded roles from.
    """
    from django.db import connections

    for alias, contents in saved.items():
        connection = connections[alias]
        if not hasattr(connection, "_test_serialized_contents"):
            connection._test_serialized_contents = contents


@pytest.fixture(scope="session")
def browser(django_db_setup) -> Iterator:
    reason = _chromium_missing_reason()
    if reason:
        pytest.skip(reason)
    from django.db import connections
    from playwright.sync_api import sync_playwright

    saved = {
        alias: connections[alias]._test_serialized_contents
        for alias in connections
        if hasattr(connections[alias], "_test_serialized_contents")
    }
    # Playwright gives each launch a fresh temporary profile: no state, no first-run work.
    with sync_playwright() as p:
        _carry_serialized_contents(saved)
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page_problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def page(browser, page_problems: PageProblems) -> Iterator:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-US", timezone_id="UTC")
    context.set_default_timeout(TIMEOUT_MS)

    def on_csp(_source, violation: dict) -> None:
        page_problems.csp_violations.append(
            f"{violation.get('directive')} blocked {violation.get('blocked') or '(inline)'}"
            f" at {violation.get('source')}:{violation.get('line')} {violation.get('sample') or ''}".rstrip()
        )

    context.expose_binding("__shieldwallCsp", on_csp)
    context.add_init_script(CSP_LISTENER)

    def guard(route) -> None:
        # Nothing leaves the machine: a CDN font or script would fail on an isolated network.
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("http://", "https://", "ws://", "wss://")) and host not in LOCAL_HOSTS:
            page_problems.external_requests.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", guard)
    page = context.new_page()

    def on_console(message) -> None:
        # Chromium reports CSP refusals as console errors: "Refused to ..." in older releases,
        # "... violates the following Content Security Policy directive ..." in newer ones.
        if message.type == "error":
            text = message.text
            location = message.location.get("url", "") if message.location else ""
            csp = text.startswith("Refused to") or "Content Security Policy" in text
            bucket = page_problems.csp_violations if csp else page_problems.console_errors
            bucket.append(f"{text} ({location})" if location else text)

    def on_response(response) -> None:
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            page_problems.failed_requests.append(f"{response.status} {response.request.method} {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: page_problems.page_errors.append(str(error)))
    page.on("response", on_response)
    page.on("requestfailed", lambda request: page_problems.failed_requests.append(f"{request.failure} {request.url}"))
    try:
        yield page
    finally:
        context.close()


def totp_code(user) -> str:
    """The code the user's authenticator app would show now, computed from their TOTP device in the database.

    TOTP refuses a code twice (``last_t``), so after a recent login this gives the next
    step's code, which the device still accepts (one step of tolerance).
    """
    import time

    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user).order_by("-confirmed", "id").first()
    assert device is not None, f"{user.get_username()} has no TOTP device"
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = max(time.time(), device.t0 + (device.last_t + 1) * device.step)
    return f"{totp.token():0{device.digits}d}"


def login(page, live_server, user, password: str = PASSWORD) -> None:
    """Log in through the real login form, as a person would, and land on the dashboard.

    A user whose role requires two-factor lands on /login/2fa/ next; the helper verifies
    there with the code the authenticator app would show. A user who never enrolled is
    given an authenticator app first, as an admin's enrolment link would have
    (tests/browser/test_two_factor.py walks that link itself).
    """
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from console.two_factor import DEVICE_NAME, role_requires_two_factor

    if role_requires_two_factor(user) and not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=True)
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", user.get_username())
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    if urlsplit(page.url).path == "/login/2fa/":
        page.fill("#id_code", totp_code(user))
        with page.expect_navigation():
            page.click("form:has(#id_code) button[type=submit]")
    path = urlsplit(page.url).path
    assert not path.startswith("/login/"), f"login as {user.get_username()} failed: still on {page.url}"
