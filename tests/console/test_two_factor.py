"""TOTP two-factor for the roles that approve and apply mitigations; sessions that expire."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.conf import settings as django_settings
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from console.models import AuditEvent, TwoFactorEnrolment
from console.services import api_token_create, two_factor_enrolment_issue
from tests.factories import PASSWORD


def code_for(device: TOTPDevice, offset_steps: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = totp.time + offset_steps * device.step
    return f"{totp.token():06d}"


def password_login(client, user) -> None:
    response = client.post(reverse("login"), {"username": user.get_username(), "password": PASSWORD})
    assert response.status_code == 302


def test_settings_require_two_factor_unless_the_environment_turns_it_off():
    env = {k: v for k, v in os.environ.items() if k not in ("TWO_FACTOR_REQUIRED", "DEBUG")}
    env.update(SHIELDWALL_TESTING="1", DJANGO_SETTINGS_MODULE="console.settings")
    code = "import django; django.setup(); from django.conf import settings; print(settings.TWO_FACTOR_REQUIRED)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=django_settings.BASE_DIR
    )
    assert out.stdout.strip() == "True"
    # The local demo console (DEBUG=1, `make run`) logs straight in.
    env["DEBUG"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=django_settings.BASE_DIR
    )
    assert out.stdout.strip() == "False"


def enrolment_link(user, actor=None) -> str:
    return urlsplit(two_factor_enrolment_issue(user=user, actor=actor).url).path


def test_a_password_alone_never_shows_a_secret_to_a_senior_engineer(client, senior, settings):
    settings.TWO_FACTOR_REQUIRED = True
    password_login(client, senior)
    response = client.get("/mitigations/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/2fa/?next=/mitigations/")

    page = client.get(response["Location"])
    assert page.status_code == 403
    assert b"ask an admin for an enrolment link" in page.content
    assert b"otpauth" not in page.content and b"totp-secret" not in page.content
    assert not TOTPDevice.objects.filter(user=senior).exists(), "no device (and so no secret) was made"
    assert client.post("/login/2fa/", {"code": "123456"}).status_code == 403
    assert client.get("/mitigations/").status_code == 302
    assert client.get("/api/customers/").status_code in (401, 403)


def test_an_admin_issued_link_enrols_once_after_the_password(client, senior, admin_user, settings):
    settings.TWO_FACTOR_REQUIRED = True
    link = enrolment_link(senior, actor=admin_user)
    # Opened before logging in: the password comes first, then the link is claimed.
    response = client.get(link)
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")
    password_login(client, senior)
    response = client.get(link)
    assert response.status_code == 302 and response["Location"] == "/login/2fa/"

    page = client.get("/login/2fa/")
    assert page.status_code == 200 and page.context["enrolling"]
    device = TOTPDevice.objects.get(user=senior, confirmed=False)
    assert page.context["otpauth_url"].startswith("otpauth://totp/")
    assert page.context["secret"].encode() in page.content
    # A reload shows the same secret rather than a new device.
    assert client.get("/login/2fa/").context["secret"] == page.context["secret"]
    assert TOTPDevice.objects.filter(user=senior).count() == 1

    refused = client.post("/login/2fa/", {"code": "000000" if code_for(device) != "000000" else "111111"})
    assert refused.status_code == 400
    assert client.get("/mitigations/").status_code == 302

    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    done = client.post("/login/2fa/", {"code": code_for(device), "next": "/mitigations/"})
    assert done.status_code == 302 and done["Location"] == "/mitigations/"
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/mitigations/").status_code == 200
    actions = set(AuditEvent.objects.filter(object_repr="sam").values_list("action", flat=True))
    assert {"two_factor.enrolment_issue", "two_factor.enrolment_claim", "two_factor.enrol"} <= actions
    assert AuditEvent.objects.filter(action="two_factor.enrol", actor_name="sam").exists()

    # The link does not work twice, even for its own user in a new session.
    client.logout()
    password_login(client, senior)
    again = client.get(link)
    assert again.status_code == 409 and b"already used" in again.content
    assert AuditEvent.objects.filter(action="two_factor.enrolment_refused", object_repr="sam").exists()
    assert b"otpauth" not in client.get("/login/2fa/").content


def test_a_link_works_only_for_its_own_user_and_not_after_it_expired(client, senior, senior2, settings):
    settings.TWO_FACTOR_REQUIRED = True
    settings.TWO_FACTOR_ENROLMENT_HOURS = 1
    link = enrolment_link(senior)
    password_login(client, senior2)
    assert client.get(link).status_code == 409, "another user's link"
    client.logout()
    password_login(client, senior)
    with time_machine.travel(timedelta(hours=settings.TWO_FACTOR_ENROLMENT_HOURS, minutes=1)):
        expired = client.get(link)
    assert expired.status_code == 409 and b"expired" in expired.content
    assert not TOTPDevice.objects.filter(user=senior).exists()


def test_a_new_link_replaces_the_unclaimed_one_and_a_lost_phone(client, senior, settings):
    settings.TWO_FACTOR_REQUIRED = True
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    lost = TOTPDevice.objects.create(user=senior, name="lost phone", confirmed=True)
    first, second = enrolment_link(senior), enrolment_link(senior)
    password_login(client, senior)
    assert client.get(first).status_code == 409
    assert client.get(second).status_code == 302
    assert client.get("/login/2fa/").context["enrolling"]
    device = TOTPDevice.objects.get(user=senior, confirmed=False)
    assert client.post("/login/2fa/", {"code": code_for(device)}).status_code == 302
    assert list(TOTPDevice.objects.filter(user=senior)) == [device], "the lost phone no longer works"
    assert not TOTPDevice.objects.filter(pk=lost.pk).exists()


def test_only_an_admin_issues_links(senior, senior2):
    with pytest.raises(PermissionDenied):
        two_factor_enrolment_issue(user=senior2, actor=senior)


def test_a_session_that_passed_a_code_may_enrol_a_new_phone(client, senior, settings):
    settings.TWO_FACTOR_REQUIRED = True
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    old = TOTPDevice.objects.create(user=senior, name="old phone", confirmed=True)
    password_login(client, senior)
    assert client.post("/login/2fa/new-device/").status_code == 403, "not before a code"
    assert client.post("/login/2fa/", {"code": code_for(old)}).status_code == 302
    assert client.post("/login/2fa/new-device/").status_code == 302
    page = client.get("/login/2fa/")
    assert page.status_code == 200 and page.context["enrolling"]
    new = TOTPDevice.objects.get(user=senior, confirmed=False)
    assert client.post("/login/2fa/", {"code": code_for(new)}).status_code == 302
    assert list(TOTPDevice.objects.filter(user=senior)) == [new]


def test_the_management_command_prints_a_link_that_enrols(client, senior, settings):
    settings.TWO_FACTOR_REQUIRED = True
    out = io.StringIO()
    call_command("issue_enrolment_link", "sam", stdout=out)
    link = urlsplit(out.getvalue().strip().splitlines()[-1]).path
    assert link.startswith("/login/2fa/enrol/")
    password_login(client, senior)
    assert client.get(link).status_code == 302
    assert client.get("/login/2fa/").context["enrolling"]


def test_an_engineer_is_not_offered_enrolment_by_password(client, engineer, settings):
    settings.TWO_FACTOR_REQUIRED = True
    password_login(client, engineer)
    response = client.get("/login/2fa/")
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=engineer).exists()


def test_an_enrolled_senior_is_asked_for_a_code_on_the_next_login(client, senior, settings):
    settings.TWO_FACTOR_REQUIRED = True
    device = TOTPDevice.objects.create(user=senior, name="phone", confirmed=True)
    password_login(client, senior)
    page = client.get("/login/2fa/")
    assert not page.context["enrolling"] and b"otpauth" not in page.content
    assert client.post("/login/2fa/", {"code": code_for(device)}).status_code == 302
    assert client.get("/").status_code == 200


def test_wrong_codes_are_throttled(client, senior, settings):
    settings.TWO_FACTOR_REQUIRED = True
    settings.OTP_TOTP_THROTTLE_FACTOR = 60
    device = TOTPDevice.objects.create(user=senior, name="phone", confirmed=True)
    password_login(client, senior)
    wrong = "123456" if code_for(device) != "123456" else "654321"
    assert client.post("/login/2fa/", {"code": wrong}).status_code == 400
    assert client.post("/login/2fa/", {"code": code_for(device)}).status_code == 429
    assert client.get("/").status_code == 302


def test_engineers_and_viewers_need_no_second_factor(client, engineer, settings):
    settings.TWO_FACTOR_REQUIRED = True
    password_login(client, engineer)
    assert client.get("/").status_code == 200


def test_public_paths_and_logout_stay_reachable_before_the_code(client, senior, settings):
    settings.TWO_FACTOR_REQUIRED = True
    password_login(client, senior)
    assert client.get("/healthz").status_code in (200, 503)
    assert client.post(reverse("logout")).status_code == 302
    assert client.get("/").status_code == 302


def test_htmx_requests_are_told_to_go_to_the_code_page(client, senior, settings):
    settings.TWO_FACTOR_REQUIRED = True
    password_login(client, senior)
    response = client.get("/", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response["HX-Redirect"].startswith("/login/2fa/")


def test_the_api_refuses_a_session_that_has_not_passed_two_factor(client, senior, settings):
    settings.TWO_FACTOR_REQUIRED = True
    password_login(client, senior)
    assert client.get("/api/customers/").status_code in (401, 403)


def test_api_tokens_are_separate_credentials_and_need_no_code(api, senior, settings):
    settings.TWO_FACTOR_REQUIRED = True
    issued = api_token_create(user=senior)
    api.credentials(HTTP_AUTHORIZATION=f"Token {issued.key}")
    assert api.get("/api/customers/").status_code == 200


def test_an_old_session_is_refused(client, engineer, settings):
    password_login(client, engineer)
    assert client.get("/").status_code == 200
    with time_machine.travel(timedelta(seconds=settings.SESSION_COOKIE_AGE + 60)):
        response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_user_admin_action_shows_a_link_once(client, senior, admin_user, settings):
    settings.TWO_FACTOR_REQUIRED = False  # the admin's own code is another test's subject
    client.force_login(admin_user)
    response = client.post(
        "/admin/auth/user/", {"action": "issue_enrolment_link", "_selected_action": [senior.pk]}, follow=True
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert len(shown) == 1 and "/login/2fa/enrol/" in shown[0]
    enrolment = TwoFactorEnrolment.objects.get(user=senior)
    assert enrolment.issued_by == admin_user
    assert AuditEvent.objects.filter(action="two_factor.enrolment_issue", actor_name=admin_user.get_username()).exists()
    # Shown once: the list afterwards does not carry it, and the database holds only a hash.
    assert b"/login/2fa/enrol/" not in client.get("/admin/auth/user/").content
    token = shown[0].split("/login/2fa/enrol/")[1].split("/")[0]
    assert enrolment.token_hash == TwoFactorEnrolment.hash_token(token) != token
