"""Outbound HTTP for pull feeds, notification webhooks and enforcement APIs: one client.

Refuses loopback, link-local, private and other non-public addresses unless the
network is listed in OUTBOUND_ALLOWED_NETWORKS, so that a feed URL or webhook cannot
be pointed into the provider's own network (SSRF).

A host name is resolved once, every address it gives is checked, and the connection
dials one of the checked addresses: the HTTP client never resolves the name again, so a
name that answers a public address to the check and 127.0.0.1 to the connection (DNS
rebinding) reaches nothing. The Host header, TLS SNI and certificate verification still
use the name. Redirects are followed hop by hop, each hop checked and pinned the same
way, at most MAX_REDIRECTS of them. IPv6 spellings of IPv4 addresses (mapped,
compatible, NAT64, 6to4, Teredo) are judged by the IPv4 address they carry.

Environment proxies (``http_proxy``) are not used: a proxy would resolve the name itself.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from django.conf import settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_REDIRECTS = 5
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
# Sent to the first host only: a redirect to another host must not carry the API token.
CREDENTIAL_HEADERS = {"authorization", "cookie", "proxy-authorization"}

# IPv4 ranges that are not the public Internet, beyond what ``ipaddress`` flags on every
# Python version: "this network", shared address space (CGNAT), IETF protocol assignments,
# benchmarking, reserved and broadcast.
_NON_PUBLIC_V4 = [
    ipaddress.ip_network(n)
    for n in ("0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "240.0.0.0/4", "255.255.255.255/32")
]
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated (RFC 4291): no real destination uses it
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known prefix (RFC 6052): the last 32 bits are IPv4
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # local-use NAT64 (RFC 8215): inside a network
_TEREDO = ipaddress.ip_network("2001::/32")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


class OutboundRefused(Exception):
    """The destination is not allowed, or the request failed; the message says which."""


class DestinationRefused(OutboundRefused):
    """The destination (or a redirect's) is not allowed: trying again will not help."""


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n, strict=False) for n in settings.OUTBOUND_ALLOWED_NETWORKS]


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """The IPv4 addresses an IPv6 address stands for, with the name of the form."""
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.ipv4_mapped is not None:
        return [("IPv4-mapped", address.ipv4_mapped)]
    if address in _NAT64:
        return [("NAT64", low32)]
    if address.sixtofour is not None:
        return [("6to4", address.sixtofour)]
    if address.teredo is not None:
        server, client = address.teredo
        return [("Teredo server", server), ("Teredo client", client)]
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        return [("IPv4-compatible", low32)]
    return []


def address_refusal(address: Address, allowed: list | None = None) -> str | None:
    """Why an outbound connection to ``address`` is refused, or None when it may be dialled."""
    allowed = _allowed_networks() if allowed is None else allowed
    if any(address.version == network.version and address in network for network in allowed):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "interface-scoped"
        embedded = _embedded_ipv4(address)
        for form, inner in embedded:
            if reason := address_refusal(inner, allowed):
                return f"the {form} form of {inner}, {reason}"
        if address in _IPV4_COMPATIBLE and int(address) > 1:
            return "IPv4-compatible, deprecated and never a real destination"
        if address in _NAT64_LOCAL:
            return "local-use NAT64"
        if embedded and embedded[0][0] in ("IPv4-mapped", "NAT64", "6to4"):
            return None  # an allowed IPv4 address, dialled directly or through a translator or relay
        if address.teredo is not None:
            return "Teredo tunnel"
        checks = [
            (address.is_unspecified, "unspecified"),
            (address.is_loopback, "loopback"),
            (address.is_link_local, "link-local"),
            (address.is_site_local, "site-local"),
            (address in _UNIQUE_LOCAL, "unique-local"),
            (address.is_multicast, "multicast"),
            (address.is_reserved, "reserved"),
        ]
    else:
        checks = [
            (address.is_unspecified, "unspecified"),
            (address.is_loopback, "loopback"),
            (address.is_link_local, "link-local"),
            (address.is_multicast, "multicast"),
            (address.is_private, "private"),
            (any(address in network for network in _NON_PUBLIC_V4), "special-purpose"),
            (address.is_reserved, "reserved"),
        ]
    for refused, reason in checks:
        if refused:
            return reason
    if not address.is_global:
        return "not globally routable"
    return None


@dataclass(frozen=True)
class Destination:
    """A URL whose host was resolved once and whose every address was checked."""

    scheme: str
    host: str
    port: int
    target: str  # path and query, as sent in the request line
    addresses: tuple[Address, ...]

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port


def check_destination(url: str) -> Destination:
    """Resolve the URL's host once and check every address; the request dials only these."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationRefused(f"only http(s) URLs with a host are allowed: {url!r}")
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused(f"credentials in the URL are not sent: {parts.hostname}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise DestinationRefused(f"bad port in {url!r}: {exc}") from exc
    try:
        host = parts.hostname.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise DestinationRefused(f"bad host name {parts.hostname!r}: {exc}") from exc
    try:
        addresses: list[Address] = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise OutboundRefused(f"cannot resolve {host}: {exc}") from exc
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise OutboundRefused(f"{host} has no address")
    allowed = _allowed_networks()
    for address in addresses:
        if reason := address_refusal(address, allowed):
            shown = f"{address} is" if str(address) == host else f"{host} resolves to {address},"
            raise DestinationRefused(
                f"refused: {shown} a non-public address ({reason}); "
                "allow its network in OUTBOUND_ALLOWED_NETWORKS if this is intended"
            )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(parts.scheme, host, port, target, tuple(addresses))


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Dials the checked address instead of resolving ``host`` again; ``host`` stays the Host header."""

    pinned_address = ""

    def connect(self) -> None:
        if not self.pinned_address:
            raise DestinationRefused(f"{self.host}: no checked address to connect to")
        self.sock = socket.create_connection((self.pinned_address, self.port), self.timeout, self.source_address)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection, _PinnedHTTPConnection):
    """HTTPSConnection.connect() calls the pinned connect, then wraps the socket with
    ``server_hostname=host``: SNI and certificate verification are for the name, not the IP."""


def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str]


def _send(
    destination: Destination, method: str, body: bytes | None, headers: dict[str, str], timeout: float, max_bytes: int
) -> Response:
    problems = []
    for address in destination.addresses:
        if destination.scheme == "https":
            conn: _PinnedHTTPConnection = _PinnedHTTPSConnection(
                destination.host, destination.port, timeout=timeout, context=_tls_context()
            )
        else:
            conn = _PinnedHTTPConnection(destination.host, destination.port, timeout=timeout)
        conn.pinned_address = str(address)
        try:
            try:
                conn.connect()
            except OSError as exc:  # this address does not answer: the next checked one may
                problems.append(f"{address}: {exc}")
                continue
            try:
                conn.request(method, destination.target, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read(max_bytes + 1)
                return Response(resp.status, data, dict(resp.headers))
            except (OSError, http.client.HTTPException) as exc:
                raise OutboundRefused(f"request to {destination.host} ({address}) failed: {exc}") from exc
        finally:
            conn.close()
    raise OutboundRefused(f"cannot connect to {destination.host}: {'; '.join(problems)}")


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name), None)


def request(
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    max_bytes: int = 20 * 1024 * 1024,
    max_redirects: int = MAX_REDIRECTS,
) -> Response:
    """One HTTP request to an allowed destination, following redirects that are allowed too.

    HTTP error statuses are returned, not raised. Raises DestinationRefused when the URL or
    a redirect's goes where it may not, OutboundRefused when the request fails.
    """
    sent_headers = {"User-Agent": "Shieldwall", **(headers or {})}
    first: Destination | None = None
    for hop in range(max_redirects + 1):
        try:
            destination = check_destination(url)
        except DestinationRefused as exc:
            if first is None:
                raise
            raise DestinationRefused(f"redirect to {url} {exc}") from exc
        first = first or destination
        if destination.origin != first.origin:
            sent_headers = {k: v for k, v in sent_headers.items() if k.lower() not in CREDENTIAL_HEADERS}
        response = _send(destination, method, body, sent_headers, timeout, max_bytes)
        location = _header(response.headers, "location")
        if response.status not in REDIRECT_STATUSES or not location:
            return response
        if hop == max_redirects:
            break
        if response.status == 303 or (response.status in (301, 302) and method == "POST"):
            method, body = "GET", None
            sent_headers = {k: v for k, v in sent_headers.items() if k.lower() != "content-type"}
        url = urljoin(url, location)
    raise DestinationRefused(f"more than {max_redirects} redirects, the last to {url}")
