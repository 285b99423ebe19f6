"""Outbound HTTP for pull feeds, notification webhooks and enforcement APIs.

Refuses loopback, link-local, private and other non-public addresses unless the
network is listed in OUTBOUND_ALLOWED_NETWORKS, so that a feed URL or webhook cannot
be pointed into the provider's own network (SSRF).
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings


class OutboundRefused(Exception):
    """The destination is not allowed, or the request failed; the message says which."""


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n, strict=False) for n in settings.OUTBOUND_ALLOWED_NETWORKS]


def check_destination(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundRefused(f"only http(s) URLs with a host are allowed: {url!r}")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except socket.gaierror as exc:
        raise OutboundRefused(f"cannot resolve {parts.hostname}: {exc}") from exc
    allowed = _allowed_networks()
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if any(address in network for network in allowed):
            continue
        if not address.is_global or address.is_multicast:
            raise OutboundRefused(
                f"{parts.hostname} resolves to {address}, a non-public address; "
                "allow its network in OUTBOUND_ALLOWED_NETWORKS if this is intended"
            )


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str]


def request(
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    max_bytes: int = 20 * 1024 * 1024,
) -> Response:
    """One HTTP request to an allowed destination; HTTP error statuses are returned, not raised."""
    check_destination(url)
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(req, timeout=timeout) as resp:
            return Response(resp.status, resp.read(max_bytes + 1)[: max_bytes + 1], dict(resp.headers))
    except urllib.error.HTTPError as exc:
        return Response(exc.code, exc.read(65536), dict(exc.headers or {}))
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise OutboundRefused(f"request to {url} failed: {exc}") from exc


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could lead to a refused address: follow none."""

    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        return None
