"""Login throttling pauses the attacker's address, not the owner, and counts the real client behind the proxy."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from console.http import client_address
from tests.factories import PASSWORD

ATTACKER = "203.0.113.66"
OWNER = "198.51.100.20"
PROXY = "10.0.0.5"


def attempt(client, password: str, address: str, **headers: str) -> int:
    response = client.post("/login/", {"username": "eli", "password": password}, REMOTE_ADDR=address, **headers)
    client.logout()
    return response.status_code


def fail(client, address: str, times: int, **headers: str) -> None:
    for _ in range(times):
        assert attempt(client, "wrong password", address, **headers) == 200


def test_five_failures_from_one_address_do_not_lock_the_owner_elsewhere(client, engineer, settings):
    fail(client, ATTACKER, settings.LOGIN_FAILURE_LIMIT)
    assert attempt(client, PASSWORD, ATTACKER) == 429, "the attacker's address is paused for this user"
    assert attempt(client, PASSWORD, OWNER) == 302, "the owner logs in from their own address"


def test_a_successful_login_forgives_the_owners_own_typos_from_that_address(client, engineer, settings):
    fail(client, OWNER, settings.LOGIN_FAILURE_LIMIT - 1)
    assert attempt(client, PASSWORD, OWNER) == 302
    fail(client, OWNER, settings.LOGIN_FAILURE_LIMIT - 1)
    assert attempt(client, PASSWORD, OWNER) == 302


def test_one_name_failing_from_many_addresses_is_paused_except_where_the_owner_logged_in_before(
    client, engineer, settings
):
    settings.LOGIN_USER_FAILURE_LIMIT = 8
    assert attempt(client, PASSWORD, OWNER) == 302  # the owner's usual address
    for n in range(settings.LOGIN_USER_FAILURE_LIMIT):
        assert attempt(client, "guess", f"192.0.2.{n + 1}") == 200
    assert attempt(client, PASSWORD, "192.0.2.200") == 429, "a new address is paused for this name"
    assert attempt(client, PASSWORD, OWNER) == 302, "the owner's usual address is not"


def test_one_address_spraying_many_names_is_paused(client, engineer, settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 6
    for n in range(settings.LOGIN_ADDRESS_FAILURE_LIMIT):
        response = client.post("/login/", {"username": f"user{n}", "password": "x"}, REMOTE_ADDR=ATTACKER)
        assert response.status_code == 200
    assert attempt(client, PASSWORD, ATTACKER) == 429
    assert attempt(client, PASSWORD, OWNER) == 302


def test_ipv6_clients_are_counted_per_64(client, engineer, settings):
    for n in range(settings.LOGIN_FAILURE_LIMIT):
        assert attempt(client, "wrong", f"2001:db8:1:2::{n + 1:x}") == 200
    assert attempt(client, PASSWORD, "2001:db8:1:2::ffff") == 429, "another address of the same /64"
    assert attempt(client, PASSWORD, "2001:db8:1:3::1") == 302


def test_behind_the_trusted_proxy_the_forwarded_client_is_counted(client, engineer, settings):
    settings.TRUSTED_PROXY_NETWORKS = ["10.0.0.0/24"]
    forwarded = {"HTTP_X_FORWARDED_FOR": ATTACKER}
    fail(client, PROXY, settings.LOGIN_FAILURE_LIMIT, **forwarded)
    assert attempt(client, PASSWORD, PROXY, **forwarded) == 429
    assert attempt(client, PASSWORD, PROXY, HTTP_X_FORWARDED_FOR=OWNER) == 302, "not every client of the proxy"


def test_a_forged_header_from_a_peer_that_is_not_a_proxy_is_ignored(client, engineer, settings):
    settings.TRUSTED_PROXY_NETWORKS = ["10.0.0.0/24"]
    for n in range(settings.LOGIN_FAILURE_LIMIT):
        # The attacker names a new "client" each time to dodge the limit.
        assert attempt(client, "wrong", ATTACKER, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}") == 200
    assert attempt(client, PASSWORD, ATTACKER, HTTP_X_FORWARDED_FOR="192.0.2.99") == 429


@pytest.mark.parametrize(
    ("peer", "header", "expected"),
    [
        (PROXY, f"{OWNER}", OWNER),
        # The client wrote the left part; the proxy appended what it saw.
        (PROXY, f"6.6.6.6, {OWNER}", OWNER),
        # Two proxies of ours: the right-most address that is not one of them.
        (PROXY, f"6.6.6.6, {OWNER}, 10.0.0.9", OWNER),
        (PROXY, "not-an-address, 10.0.0.9", "10.0.0.9"),
        (PROXY, "", PROXY),
        (ATTACKER, OWNER, ATTACKER),
        ("::ffff:10.0.0.5", OWNER, OWNER),
    ],
)
def test_client_address_is_the_right_most_untrusted_hop(settings, peer: str, header: str, expected: str):
    settings.TRUSTED_PROXY_NETWORKS = ["10.0.0.0/24"]
    request = RequestFactory().get("/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=header)
    assert client_address(request) == expected


def test_the_proxy_header_is_configurable(settings):
    settings.TRUSTED_PROXY_NETWORKS = ["10.0.0.0/24"]
    settings.TRUSTED_PROXY_HEADER = "X-Real-IP"
    request = RequestFactory().get("/", REMOTE_ADDR=PROXY, HTTP_X_REAL_IP=OWNER, HTTP_X_FORWARDED_FOR="6.6.6.6")
    assert client_address(request) == OWNER


def test_without_trusted_proxies_the_header_means_nothing(settings):
    settings.TRUSTED_PROXY_NETWORKS = []
    request = RequestFactory().get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=OWNER)
    assert client_address(request) == PROXY
