"""Outbound requests never reach loopback, link-local or private addresses unless allowed (no SSRF)."""

import pytest

from console.outbound import OutboundRefused, check_destination


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
