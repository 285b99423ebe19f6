from __future__ import annotations

import uuid
from collections.abc import Callable
from urllib.parse import quote

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse

from console.context import current_actor, current_request_id

# Paths that answer without a session: the login page itself, the health check, the
# feed webhooks (they authenticate by token) and signed report share links.
PUBLIC_PREFIXES = ("/login/", "/healthz", "/ingest/", "/inbound/", "/share/", "/static/", "/favicon.ico")
# Pages under /api/ that a browser opens: an anonymous visitor is sent to the login like on any page
# (the API proper answers 401 itself).
API_PAGES = ("/api/docs/",)


class RequestContextMiddleware:
    """Puts the acting user and a request id where the audit helper finds them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request.headers.get("X-Request-ID", "")[:64] or uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        user = getattr(request, "user", None)
        t1 = current_actor.set(user if user is not None and user.is_authenticated else None)
        t2 = current_request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            current_actor.reset(t1)
            current_request_id.reset(t2)
        response["X-Request-ID"] = request_id
        return response


class LoginRequiredMiddleware:
    """Every page needs a login; the API answers 401/403 itself through DRF.

    Django 5.1's own LoginRequiredMiddleware would need a decorator on each public
    view of every app; a prefix list keeps the public surface in one visible place.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path
        is_api = path.startswith("/api/") and not path.startswith(API_PAGES)
        if request.user.is_authenticated or path.startswith(PUBLIC_PREFIXES) or is_api:
            return self.get_response(request)
        if request.headers.get("HX-Request"):
            # An htmx poll after the session expired: tell the page to go to the login.
            response = HttpResponse(status=401)
            response["HX-Redirect"] = f"{reverse('login')}?next={quote(request.path)}"
            return response
        if request.headers.get("Accept", "").startswith("application/json"):
            return JsonResponse({"detail": "Authentication credentials were not provided."}, status=401)
        return redirect_to_login(request.get_full_path())


# Browser features no console page uses: a script injected past the escaping still cannot reach them.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "camera",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
    )
)


class PrivateResponseMiddleware:
    """Authenticated answers stay out of caches; every answer declines the browser features we never use.

    A shared proxy or the browser's back/forward cache must not keep a customer's attack data or an
    API answer for the next person at the desk: ``Cache-Control: no-store`` on every response to a
    logged-in user (a session, or an API key: DRF sets the request's user by then). Anonymous pages
    (the login, share links) and static files keep their own caching.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and "no-store" not in response.get("Cache-Control", ""):
            response["Cache-Control"] = "no-store"
            response["Pragma"] = "no-cache"
        return response
