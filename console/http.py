"""Small HTTP helpers shared by every app's views."""

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme


def safe_next(request: HttpRequest, default: str) -> str:
    """The `next` the form posted (or the query string carried) if it stays on this site, else `default`.

    A `next` pointing elsewhere would turn a triage button into an open redirect that a
    phishing mail could borrow, so anything off-site falls back to the default.
    """
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default
