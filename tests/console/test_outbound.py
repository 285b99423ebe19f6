"""Outbound requests never reach loopback, link-local or private addresses unless allowed (no SSRF)."""

import ipaddress
import shutil
import socket
import ssl
import subprocess
from http.server import ThreadingHTTPServer

import pytest

from alerts.models import Feed
from alerts.pull import feed_poll
from console import outbound
from console.outbound import DestinationRefused, OutboundRefused, address_refusal, check_destination, request
from tests.console.outbound_support import Listener, listening
from tickets.tasks import post_webhook


@pytest.fixture
def make_pull_feed(db):
    def make(url: str) -> Feed:
        return Feed.objects.create(name="Pulled", slug="pulled", format="alertmanager", mode="pull", pull_url=url)

    return make


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/admin/",
        "http://localhost/",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/",
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "http://[fd00::1]/",
        "file:///etc/passwd",
        "gopher://example.org/",
    ],
)
def test_private_and_odd_destinations_are_refused(url, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    with pytest.raises(OutboundRefused):
        check_destination(url)


def test_allowed_network_is_let_through(settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    check_destination("http://127.0.0.1:9/")


# -- IPv6 spellings of IPv4 and the other special ranges ------------------------------------

REFUSED_FORMS = {
    "[::ffff:127.0.0.1]": "IPv4-mapped form of 127.0.0.1",
    "[::ffff:169.254.169.254]": "IPv4-mapped form of 169.254.169.254",
    "[::127.0.0.1]": "IPv4-compatible form of 127.0.0.1",
    "[::8.8.8.8]": "IPv4-compatible",
    "[64:ff9b::7f00:1]": "NAT64 form of 127.0.0.1",
    "[64:ff9b::a00:5]": "NAT64 form of 10.0.0.5",
    "[64:ff9b:1::7f00:1]": "local-use NAT64",
    "[2002:7f00:1::]": "6to4 form of 127.0.0.1",
    "[2002:c0a8:101::1]": "6to4 form of 192.168.1.1",
    # Teredo: server 65.54.227.120, client 127.0.0.1 (the client is stored inverted).
    "[2001:0:4136:e378:8000:63bf:80ff:fffe]": "Teredo client form of 127.0.0.1",
    "[2001:0:4136:e378:8000:63bf:3fff:fdd2]": "Teredo",
    "[::]": "unspecified",
    "0.0.0.0": "unspecified",
    "[ff02::1]": "multicast",
    "224.0.0.251": "multicast",
    "[100::1]": "reserved",
    "[fec0::1]": "site-local",
    "[fd12:3456::1]": "unique-local",
    "[fe80::1]": "link-local",
    "100.64.0.1": "special-purpose",
    "[2001:db8::1]": "not globally routable",
}


@pytest.mark.parametrize("host", REFUSED_FORMS)
def test_ipv6_forms_of_private_and_loopback_addresses_are_refused(host, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    with pytest.raises(DestinationRefused) as refused:
        check_destination(f"http://{host}:8080/")
    assert REFUSED_FORMS[host] in str(refused.value)
    assert "non-public address" in str(refused.value)


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"]
)
def test_public_addresses_and_their_ipv6_forms_are_dialled(address):
    assert address_refusal(ipaddress.ip_address(address), []) is None


def test_an_allowed_network_also_allows_its_ipv4_mapped_form_and_nothing_beside_it():
    allowed = [ipaddress.ip_network("127.0.0.0/8")]
    assert address_refusal(ipaddress.ip_address("::ffff:127.0.0.1"), allowed) is None
    assert (
        address_refusal(ipaddress.ip_address("::ffff:10.0.0.1"), allowed) == "the IPv4-mapped form of 10.0.0.1, private"
    )


def test_a_fetch_of_the_mapped_form_of_loopback_never_reaches_the_loopback_listener(settings):
    """Linux dials ::ffff:127.0.0.1 as 127.0.0.1: the listener is really reachable by that URL."""
    with listening(Listener("127.0.0.1", body=b"internal")) as inside:
        url = f"http://[::ffff:127.0.0.1]:{inside.port}/admin"
        settings.OUTBOUND_ALLOWED_NETWORKS = []
        with pytest.raises(DestinationRefused, match="IPv4-mapped form of 127.0.0.1"):
            request(url)
        assert inside.hits == []
        settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]  # the same URL, allowed: it does arrive
        assert request(url).body == b"internal"
        assert [hit.path for hit in inside.hits] == ["/admin"]


@pytest.mark.parametrize("host", ["[64:ff9b::7f00:1]", "[2002:7f00:1::]", "[::ffff:127.0.0.1]"])
def test_a_pull_feed_on_an_ipv6_form_of_loopback_records_the_refusal(host, make_pull_feed, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    feed = make_pull_feed(f"http://{host}:8080/alerts")
    problem = feed_poll(feed=feed)
    feed.refresh_from_db()
    assert "non-public address" in problem and "127.0.0.1" in problem
    assert feed.last_error == problem and feed.error_count == 1
    assert not feed.deliveries.exists()


# -- One resolution, one address: DNS rebinding ---------------------------------------------


def test_the_connection_dials_the_checked_address_not_a_second_resolution(monkeypatch, settings):
    """A name that answers an allowed address first and loopback after (a rebinding DNS server)."""
    answers = ["127.0.0.2", "127.0.0.1", "127.0.0.1"]
    real_getaddrinfo = socket.getaddrinfo

    def rebinding(host, port, *args, **kwargs):
        if host != "feed.rebind.example":
            return real_getaddrinfo(host, port, *args, **kwargs)
        address = answers.pop(0)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32"]  # the stand-in for a public address
    with listening(Listener("127.0.0.2", body=b'{"ok": 1}')) as public:  # noqa: SIM117 - the second listens on the port the first got
        with listening(Listener("127.0.0.1", port=public.port, body=b"internal")) as inside:
            monkeypatch.setattr(socket, "getaddrinfo", rebinding)
            response = request(f"http://feed.rebind.example:{public.port}/alerts")
            with pytest.raises(DestinationRefused, match="resolves to 127.0.0.1"):
                request(f"http://feed.rebind.example:{public.port}/alerts")
    assert response.body == b'{"ok": 1}'
    assert [hit.headers["Host"] for hit in public.hits] == [f"feed.rebind.example:{public.port}"]
    assert inside.hits == []
    assert answers == ["127.0.0.1"], "the name was resolved once per request"


# -- TLS to a pinned address keeps SNI and certificate checks for the name ------------------


def _certificate(tmp_path, name: str) -> tuple[str, str]:
    cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl to make a certificate")
@pytest.mark.parametrize("certified", ["feed.tls.example", "other.tls.example"])
def test_https_to_the_pinned_address_verifies_the_certificate_for_the_host_name(
    certified, tmp_path, monkeypatch, settings
):
    cert, key = _certificate(tmp_path, certified)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    seen_sni = []
    server_context.sni_callback = lambda sock, name, ctx: seen_sni.append(name)

    class TLSServer(ThreadingHTTPServer):
        def get_request(self):
            sock, address = super().get_request()
            return server_context.wrap_socket(sock, server_side=True), address

    real_getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: (
            [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
            if host == "feed.tls.example"
            else real_getaddrinfo(host, port, *a, **k)
        ),
    )
    monkeypatch.setattr(outbound, "_tls_context", lambda: ssl.create_default_context(cafile=cert))
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    with listening(Listener("127.0.0.1", body=b"tls ok"), TLSServer) as server:
        url = f"https://feed.tls.example:{server.port}/alerts"
        if certified == "feed.tls.example":
            assert request(url).body == b"tls ok"
            assert server.hits[0].headers["Host"] == f"feed.tls.example:{server.port}"
        else:
            with pytest.raises(OutboundRefused, match="certificate verify failed"):
                request(url)
            assert server.hits == []
    assert seen_sni[:1] == ["feed.tls.example"]


# -- Redirects: every hop is checked ---------------------------------------------------------


def test_a_redirect_to_loopback_is_refused_at_the_hop(settings):
    with listening(Listener("127.0.0.1", body=b"internal")) as inside:
        moved = Listener("127.0.0.2", status=302, headers={"Location": f"http://127.0.0.1:{inside.port}/"})
        with listening(moved):
            settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32"]  # the stand-in for a public host
            with pytest.raises(DestinationRefused) as refused:
                request(f"{moved.url}/feed")
    assert f"redirect to http://127.0.0.1:{inside.port}/ refused" in str(refused.value)
    assert "loopback" in str(refused.value)
    assert len(moved.hits) == 1 and inside.hits == []


def test_a_pull_feed_redirected_to_loopback_records_the_refusal_and_stores_nothing(make_pull_feed, settings):
    with listening(Listener("127.0.0.1", body=b"internal")) as inside:
        moved = Listener("127.0.0.2", status=301, headers={"Location": f"http://127.0.0.1:{inside.port}/"})
        with listening(moved):
            settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32"]
            feed = make_pull_feed(f"{moved.url}/alerts")
            problem = feed_poll(feed=feed)
    feed.refresh_from_db()
    assert "redirect to" in feed.last_error and "non-public address (loopback)" in feed.last_error
    assert problem == feed.last_error and inside.hits == [] and not feed.deliveries.exists()


def test_an_allowed_redirect_is_followed_without_the_credentials_of_the_first_host(settings):
    with listening(Listener("127.0.0.3", body=b"moved here")) as there:
        moved = Listener("127.0.0.2", status=307, headers={"Location": f"{there.url}/v2"})
        with listening(moved):
            settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32", "127.0.0.3/32"]
            response = request(f"{moved.url}/v1", method="POST", body=b"{}", headers={"Authorization": "Bearer secret"})
    assert response.status == 200 and response.body == b"moved here"
    assert moved.hits[0].headers["Authorization"] == "Bearer secret"
    assert [(h.method, h.path) for h in there.hits] == [("POST", "/v2")]
    assert "Authorization" not in there.hits[0].headers


def test_redirects_are_bounded(settings):
    loop = Listener("127.0.0.2", status=302, headers={"Location": "/again"})
    with listening(loop):
        settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32"]
        with pytest.raises(DestinationRefused, match=f"more than {outbound.MAX_REDIRECTS} redirects"):
            request(f"{loop.url}/start")
    assert len(loop.hits) == outbound.MAX_REDIRECTS + 1


def test_a_webhook_redirected_to_loopback_is_refused_without_retry(settings):
    with listening(Listener("127.0.0.1")) as inside:
        moved = Listener("127.0.0.2", status=302, headers={"Location": f"http://127.0.0.1:{inside.port}/"})
        with listening(moved):
            settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32"]
            assert post_webhook(f"{moved.url}/hook", {"text": "P1 opened"}) == 0
    assert len(moved.hits) == 1 and inside.hits == []
