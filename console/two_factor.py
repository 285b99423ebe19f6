"""TOTP two-factor authentication for the roles that can approve and apply mitigations.

After the password, a senior engineer or admin must pass a code from an authenticator
app before any page of the console answers (``TwoFactorMiddleware``). A device is enrolled
only through a single-use link an admin issued (``manage.py issue_enrolment_link``, the
user admin's action), opened after the password, or from a session that already passed a
code (a new phone): a stolen password alone never shows a secret. The enrolment page shows
the secret and the ``otpauth://`` URI as text (no QR image, no script: the CSP forbids
inline scripts) and a code confirms it.

API tokens are a separate credential and are not asked for a code; see
``console.authentication``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import django_otp
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice

from console import roles
from console.http import safe_next
from console.services import (
    TwoFactorEnrolmentRefused,
    two_factor_enrolment_claim,
    two_factor_enrolment_complete,
    two_factor_enrolment_start_verified,
    two_factor_enrolment_usable,
)

# Paths a user who still owes a code may reach: the login and 2FA pages, logout, and the
# parts of the console that never use a session (health, webhooks, share links, the API,
# whose sessions are checked by console.authentication.VerifiedSessionAuthentication).
EXEMPT_PREFIXES = ("/login/", "/logout/", "/healthz", "/ingest/", "/share/", "/static/", "/favicon.ico", "/api/")
DEVICE_NAME = "Authenticator app"
# The enrolment link this session claimed (console.models.TwoFactorEnrolment).
ENROLMENT_SESSION_KEY = "two_factor_enrolment"


def role_requires_two_factor(user: Any) -> bool:
    return bool(settings.TWO_FACTOR_REQUIRED) and roles.can_approve(user)


def needs_two_factor(request: HttpRequest) -> bool:
    """True when the request's user must still pass a TOTP code in this session."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not role_requires_two_factor(user):
        return False
    is_verified = getattr(user, "is_verified", None)
    return not (is_verified and is_verified())


class TwoFactorMiddleware:
    """Sends a user whose role requires two-factor to /login/2fa/ until the session has passed it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(EXEMPT_PREFIXES) or not needs_two_factor(request):
            return self.get_response(request)
        target = f"{reverse('two-factor')}?next={quote(request.get_full_path())}"
        if request.headers.get("HX-Request"):
            response = HttpResponse(status=401)
            response["HX-Redirect"] = target
            return response
        if request.headers.get("Accept", "").startswith("application/json"):
            return JsonResponse({"detail": "Two-factor authentication required."}, status=401)
        return HttpResponseRedirect(target)


def _next_url(request: HttpRequest) -> str:
    return safe_next(request, reverse(settings.LOGIN_REDIRECT_URL))


def _pending_device(user: Any) -> TOTPDevice:
    """The unconfirmed device being enrolled: kept across reloads so the secret shown stays the same."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("id").first()
    return device or TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)


def totp_secret(device: TOTPDevice) -> str:
    """The key in base32, as authenticator apps ask for it when typed by hand."""
    return base64.b32encode(device.bin_key).decode().rstrip("=")


@never_cache
@sensitive_post_parameters("code")
def two_factor(request: HttpRequest) -> HttpResponse:
    """Enter a TOTP code; with a claimed enrolment link (or a code already passed), enrol an authenticator app.

    A user whose role requires two-factor and who holds no device is told to ask an admin
    for an enrolment link: a password alone never shows a secret.
    """
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    next_url = _next_url(request)
    enrolment = two_factor_enrolment_usable(user=request.user, enrolment_id=request.session.get(ENROLMENT_SESSION_KEY))
    if enrolment is None and not needs_two_factor(request):
        return HttpResponseRedirect(next_url)
    enrolling = enrolment is not None
    if enrolling:
        device = _pending_device(request.user)
    else:
        device = TOTPDevice.objects.filter(user=request.user, confirmed=True).order_by("id").first()
    if device is None:
        context = {"no_device": True, "next": next_url}
        return render(request, "registration/two_factor.html", context, status=403)
    error = ""
    status = 200
    if request.method == "POST":
        code = "".join(request.POST.get("code", "").split())
        allowed, _ = device.verify_is_allowed()
        if allowed and code.isdigit() and device.verify_token(code):
            try:
                if enrolling:
                    two_factor_enrolment_complete(enrolment=enrolment, device=device)
            except TwoFactorEnrolmentRefused as exc:  # the same enrolment confirmed in another tab
                context = {"no_device": True, "link_error": str(exc), "next": next_url}
                return render(request, "registration/two_factor.html", context, status=409)
            request.session.pop(ENROLMENT_SESSION_KEY, None)
            request.session.cycle_key()
            django_otp.login(request, device)
            return HttpResponseRedirect(next_url)
        if allowed:
            error = "That code is not valid. Check your authenticator app's clock and try again."
            status = 400
        else:
            # django-otp doubles the wait after each wrong code.
            error = "Too many wrong codes. Wait a few seconds, then enter the current code."
            status = 429
    context = {
        "enrolling": enrolling,
        "secret": totp_secret(device) if enrolling else "",
        "otpauth_url": device.config_url if enrolling else "",
        "error": error,
        "next": next_url,
    }
    return render(request, "registration/two_factor.html", context, status=status)


@never_cache
def two_factor_enrol(request: HttpRequest, token: str) -> HttpResponse:
    """The admin-issued enrolment link: after the password, claim it for this session, then enrol."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    try:
        enrolment = two_factor_enrolment_claim(user=request.user, token=token)
    except TwoFactorEnrolmentRefused as exc:
        context = {"no_device": True, "link_error": str(exc), "next": _next_url(request)}
        return render(request, "registration/two_factor.html", context, status=409)
    request.session[ENROLMENT_SESSION_KEY] = enrolment.pk
    return HttpResponseRedirect(reverse("two-factor"))


@never_cache
@require_POST
def two_factor_new_device(request: HttpRequest) -> HttpResponse:
    """Enrol a new authenticator app (a new phone) from a session that already passed a code."""
    user = request.user
    if not user.is_authenticated or not (getattr(user, "is_verified", None) and user.is_verified()):
        return HttpResponseForbidden("Enter a code from your current authenticator app first.")
    enrolment = two_factor_enrolment_start_verified(user=user)
    request.session[ENROLMENT_SESSION_KEY] = enrolment.pk
    return HttpResponseRedirect(reverse("two-factor"))
