"""Small HTTP helpers shared by every app's views."""

import functools
import ipaddress

from django.conf import settings
from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """A request as django-htmx's middleware leaves it (for type checking; the middleware sets ``htmx``)."""

    htmx: HtmxDetails


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


def client_address(request: HttpRequest) -> str:
    """The address of the person at the other end, as far as this site can trust it.

    Behind the TLS proxy the README asks for, ``REMOTE_ADDR`` is the proxy's. When the
    peer is one of ``TRUSTED_PROXY_NETWORKS``, the client is the right-most address of
    ``TRUSTED_PROXY_HEADER`` that is not a trusted proxy itself: everything left of it was
    written by the client and can be forged. From any other peer the header is ignored,
    so a client cannot pick the address it is counted under.
    """
    peer = request.META.get("REMOTE_ADDR", "")
    trusted = _trusted_proxies(tuple(settings.TRUSTED_PROXY_NETWORKS))
    if not trusted or not _within(peer, trusted):
        return peer
    meta_key = "HTTP_" + settings.TRUSTED_PROXY_HEADER.upper().replace("-", "_")
    # Repeated headers arrive joined with commas, in the order they were sent.
    hops = [hop.strip() for hop in request.META.get(meta_key, "").split(",") if hop.strip()]
    client = peer
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # not an address a proxy writes: nothing from here leftwards can be trusted
        client = hop
        if not _within(hop, trusted):
            break
    return client


@functools.lru_cache(maxsize=8)
def _trusted_proxies(networks: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(network, strict=False) for network in networks)


def _within(address: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)
