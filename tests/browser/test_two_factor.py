"""Two-factor in a real browser: a password alone shows no TOTP secret; an admin's link enrols once."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from console.services import two_factor_enrolment_issue
from tests.browser.support import PageProblems, totp_code
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def submit_password(page, user) -> None:
    page.fill("#id_username", user.get_username())
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")


def test_a_senior_engineer_without_two_factor_sees_no_secret_after_the_password(
    page, live_server, senior, settings, page_problems: PageProblems
):
    assert settings.TWO_FACTOR_REQUIRED  # browser tests run with two-factor on
    page.goto(f"{live_server.url}/login/")
    submit_password(page, senior)
    assert urlsplit(page.url).path == "/login/2fa/"
    assert "ask an admin for an enrolment link" in page.locator("#ask-for-enrolment-link").inner_text()
    assert page.locator("#totp-secret").count() == 0
    assert page.locator("#id_code").count() == 0, "no code to enter: nothing is enrolled"
    assert "otpauth://" not in page.content()
    assert not TOTPDevice.objects.filter(user=senior).exists(), "no device, so no secret, exists"

    page.goto(f"{live_server.url}/mitigations/")
    assert urlsplit(page.url).path == "/login/2fa/", "mitigations reachable with a password alone"
    assert page.locator("#totp-secret").count() == 0
    page_problems.clear()  # the refusal answered 403, as it should


def test_an_admin_issued_link_enrols_once_and_not_twice(
    page, live_server, senior, admin_user, settings, page_problems: PageProblems
):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # the wrong code below must not delay the right one
    link = urlsplit(two_factor_enrolment_issue(user=senior, actor=admin_user).url).path

    # The link asks for the password first, then brings the user back to enrol.
    page.goto(f"{live_server.url}{link}")
    assert urlsplit(page.url).path == "/login/"
    submit_password(page, senior)
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

    # Someone who copied the link (or the user again, in a new session) gets nothing from it.
    with page.expect_navigation():
        page.click("form[action='/logout/'] button[type=submit]")
    page.goto(f"{live_server.url}{link}")
    submit_password(page, senior)
    assert "already used" in page.locator("#enrolment-refused").inner_text()
    assert page.locator("#totp-secret").count() == 0
    assert "otpauth://" not in page.content()
    assert TOTPDevice.objects.filter(user=senior).count() == 1
    page_problems.clear()  # the refusal answered 409, as it should
