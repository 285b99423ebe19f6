"""Two-factor in a real browser: a senior engineer enrols TOTP before reaching mitigations."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.browser.support import PageProblems, totp_code
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_senior_engineer_enrols_totp_before_reaching_mitigations(
    page, live_server, senior, settings, page_problems: PageProblems
):
    assert settings.TWO_FACTOR_REQUIRED  # browser tests run with two-factor on
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # the wrong code below must not delay the right one

    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", senior.get_username())
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert urlsplit(page.url).path == "/login/2fa/"
    secret = page.locator("#totp-secret").inner_text()
    assert len(secret) >= 16
    assert page.locator("#totp-uri").inner_text().startswith("otpauth://totp/")
    page_problems.assert_clean("enrolment page")

    page.goto(f"{live_server.url}/mitigations/")
    assert urlsplit(page.url).path == "/login/2fa/", "mitigations reachable before two-factor"
    assert page.locator("#totp-secret").inner_text() == secret

    right = totp_code(senior)
    page.fill("#id_code", "000000" if right != "000000" else "111111")
    with page.expect_navigation():
        page.click("form:has(#id_code) button[type=submit]")
    assert urlsplit(page.url).path == "/login/2fa/"
    assert "not valid" in page.get_by_role("alert").inner_text()
    assert not TOTPDevice.objects.get(user=senior).confirmed
    page_problems.clear()  # the refusal answered 400, as it should

    page.fill("#id_code", totp_code(senior))
    with page.expect_navigation():
        page.click("form:has(#id_code) button[type=submit]")
    assert urlsplit(page.url).path == "/mitigations/"
    assert TOTPDevice.objects.get(user=senior).confirmed
    page.wait_for_load_state("networkidle")
    page_problems.assert_clean("mitigations after two-factor")
