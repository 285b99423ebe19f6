"""DNS rebinding against a real resolver: a DNS server in a network namespace answers a public
address first and 127.0.0.1 after; a pull feed on that name never reaches loopback.

The namespace holds the DNS server (on the address /etc/resolv.conf names, so glibc's own
getaddrinfo queries it), a "public" web server on 93.184.215.14 and a listener on the
namespace's 127.0.0.1 that records any hit. The test thread enters the namespace with
setns(2) (network namespaces are per thread), so the real feed_poll runs there against
the test database, with the resolver, sockets and kernel routing of that namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import shutil
import socket
import struct
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator

import pytest

from alerts.formats import examples
from alerts.models import Feed
from alerts.pull import feed_poll
from tests.console.outbound_support import Listener, listening

pytestmark = [pytest.mark.root, pytest.mark.django_db]

NAMESPACE = f"sw-h21a-dns-{os.getpid()}"
PUBLIC = "93.184.215.14"  # a global address, only ever reachable inside the namespace
FEED_NAME = "feed.rebind-h21a.test"
PROBE_NAME = "probe.rebind-h21a.test"
PORT = 8080
CLONE_NEWNET = 0x40000000


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _nameservers() -> list[str]:
    """Where glibc sends queries: /etc/resolv.conf's nameservers, 127.0.0.1 when it names none."""
    found = []
    with contextlib.suppress(OSError), open("/etc/resolv.conf") as conf:
        for line in conf:
            words = line.split()
            if len(words) >= 2 and words[0] == "nameserver":
                found.append(words[1].split("%")[0])
    return found or ["127.0.0.1"]


@contextlib.contextmanager
def inside(namespace: str) -> Iterator[None]:
    """Run the block in the namespace (this thread only) and come back whatever happens."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{namespace}") as there:
        if libc.setns(there.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns into the namespace failed")
        try:
            yield
        finally:
            if libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back home failed")


class RebindingDNS:
    """Answers A queries for its names with a public address the first time, 127.0.0.1 after (TTL 0).

    AAAA and other types get an empty answer, other names NXDOMAIN. Hand-rolled RFC 1035."""

    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.asked: Counter[str] = Counter()
        self.answered: list[tuple[str, str]] = []
        self.sockets: list[socket.socket] = []

    def bind(self, address: str) -> None:
        family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind((address, 53))
        self.sockets.append(sock)
        threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        while True:
            try:
                query, client = sock.recvfrom(4096)
            except OSError:
                return
            with contextlib.suppress(Exception):
                sock.sendto(self.answer(query), client)

    def answer(self, query: bytes) -> bytes:
        ident, flags = struct.unpack("!HH", query[:4])
        labels, at = [], 12
        while query[at]:
            labels.append(query[at + 1 : at + 1 + query[at]].decode("ascii").lower())
            at += 1 + query[at]
        qtype = struct.unpack("!H", query[at + 1 : at + 3])[0]
        question = query[12 : at + 5]
        name = ".".join(labels)
        records = b""
        rcode = 0 if name in self.names else 3
        if rcode == 0 and qtype == 1:  # A
            self.asked[name] += 1
            address = PUBLIC if self.asked[name] == 1 else "127.0.0.1"
            self.answered.append((name, address))
            records = struct.pack("!HHHIH", 0xC00C, 1, 1, 0, 4) + socket.inet_aton(address)
        header = struct.pack("!HHHHHH", ident, 0x8400 | (flags & 0x0100) | 0x0080 | rcode, 1, int(bool(records)), 0, 0)
        return header + question + records

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def rebinding_namespace() -> Iterator[RebindingDNS]:
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("needs root and iproute2 to make a network namespace")
    _ip("netns", "add", NAMESPACE)
    dns = RebindingDNS({FEED_NAME, PROBE_NAME})
    try:
        _ip("-n", NAMESPACE, "link", "set", "lo", "up")
        for address in {PUBLIC, *_nameservers()}:
            if not ipaddress.ip_address(address).is_loopback:
                v6 = ipaddress.ip_address(address).version == 6
                _ip(
                    "-n",
                    NAMESPACE,
                    "addr",
                    "add",
                    f"{address}/{128 if v6 else 32}",
                    "dev",
                    "lo",
                    *(["nodad"] if v6 else []),
                )
        with inside(NAMESPACE):
            for address in _nameservers():
                dns.bind(address)
        yield dns
    finally:
        dns.close()
        subprocess.run(["ip", "netns", "delete", NAMESPACE], check=False, capture_output=True)


def test_a_pull_feed_on_a_rebinding_name_never_fetches_from_loopback(rebinding_namespace, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    dns = rebinding_namespace
    feed = Feed.objects.create(
        name="Rebinding", slug="rebinding", format="alertmanager", mode="pull", pull_url=f"http://{FEED_NAME}:{PORT}/"
    )
    public = Listener(PUBLIC, port=PORT, body=examples.body(examples.alertmanager_notification()))
    internal = Listener("127.0.0.1", port=PORT, body=b'{"secret": "internal listener"}')
    with inside(NAMESPACE), listening(public), listening(internal):
        # The server really rebinds, through glibc's resolver: two lookups, two answers.
        first = socket.getaddrinfo(PROBE_NAME, PORT, type=socket.SOCK_STREAM)[0][4][0]
        second = socket.getaddrinfo(PROBE_NAME, PORT, type=socket.SOCK_STREAM)[0][4][0]
        assert (first, second) == (PUBLIC, "127.0.0.1")

        pulled = feed_poll(feed=feed)  # the check gets the public answer: the connection dials it
        refused = feed_poll(feed=feed)  # the next lookup answers loopback: refused before connecting

    assert internal.hits == [], "something was fetched from loopback"
    assert [answer for name, answer in dns.answered if name == FEED_NAME] == [PUBLIC, "127.0.0.1"], "one lookup a pull"
    assert [hit.headers["Host"] for hit in public.hits] == [f"{FEED_NAME}:{PORT}"]
    delivery = feed.deliveries.get()
    assert pulled == f"delivery {delivery.pk}" and b"internal listener" not in bytes(delivery.body)
    feed.refresh_from_db()
    assert refused == feed.last_error
    assert f"{FEED_NAME} resolves to 127.0.0.1, a non-public address (loopback)" in feed.last_error
    assert feed.error_count == 1
