"""Login with throttling that pauses an attacker, not the account's owner.

Failures are counted in the cache over ``LOGIN_FAILURE_WINDOW`` seconds under three keys:
one user name from one client address (``LOGIN_FAILURE_LIMIT``), one address over every
name (``LOGIN_ADDRESS_FAILURE_LIMIT``, password spraying) and one name over every address
(``LOGIN_USER_FAILURE_LIMIT``, a distributed guess). The last one does not pause an address
the user logged in from before, so five wrong passwords typed anywhere else never lock the
owner out of their usual desk. The client address comes from ``console.http.client_address``
(the trusted proxy's header), and IPv6 clients are counted per /64, the block one host owns.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from console.http import client_address

# How long an address the user logged in from stays "theirs" for the per-name limit.
KNOWN_ADDRESS_SECONDS = 30 * 86400


@dataclass(frozen=True)
class _Keys:
    pair: str
    address: str
    user: str
    known: str


def _counted_address(request: HttpRequest) -> str:
    address = client_address(request)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if isinstance(ip, ipaddress.IPv6Address) and not ip.ipv4_mapped:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else ip)


def _keys(request: HttpRequest, username: str) -> _Keys:
    user = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:24]
    address = _counted_address(request)
    return _Keys(
        pair=f"login-fail:pair:{user}:{address}",
        address=f"login-fail:addr:{address}",
        user=f"login-fail:user:{user}",
        known=f"login-known:{user}:{address}",
    )


def login_blocked(request: HttpRequest, username: str) -> bool:
    """True when this name may not try a password from this client address right now."""
    keys = _keys(request, username)
    counts = cache.get_many([keys.pair, keys.address, keys.user, keys.known])
    if counts.get(keys.pair, 0) >= settings.LOGIN_FAILURE_LIMIT:
        return True
    if counts.get(keys.address, 0) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT:
        return True
    return counts.get(keys.user, 0) >= settings.LOGIN_USER_FAILURE_LIMIT and not counts.get(keys.known)


def record_login_failure(request: HttpRequest, username: str) -> None:
    keys = _keys(request, username)
    for key in (keys.pair, keys.address, keys.user):
        if cache.add(key, 1, settings.LOGIN_FAILURE_WINDOW):
            continue
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, settings.LOGIN_FAILURE_WINDOW)


def record_login_success(request: HttpRequest, username: str) -> None:
    """The owner got in from here: their own earlier typos from this address are forgiven, and
    the address stays usable for them while someone elsewhere guesses their password."""
    keys = _keys(request, username)
    cache.delete(keys.pair)
    cache.set(keys.known, 1, KNOWN_ADDRESS_SECONDS)


class ThrottledLoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        username = request.POST.get("username", "")
        if login_blocked(request, username):
            form = self.get_form()
            minutes = max(1, settings.LOGIN_FAILURE_WINDOW // 60)
            form.errors.clear()
            form.add_error(None, f"Too many failed logins. Try again in {minutes} minutes.")
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        record_login_failure(self.request, self.request.POST.get("username", ""))
        return super().form_invalid(form)

    def form_valid(self, form):
        record_login_success(self.request, form.get_user().get_username())
        return super().form_valid(form)
