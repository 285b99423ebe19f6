"""Redis stopped: people still log in and the API still answers their session.

Redis is the cache (login throttle, API rate limit) on both brokers of the suite; sessions
live in PostgreSQL. With the Redis process killed by its id, a password login through the
real form on gunicorn and an API call with that session cookie must succeed, or answer 503
with a message saying what is wrong; never 500.
"""

from __future__ import annotations

import http.client
import re
import signal
import subprocess
import sys
import time
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest

from bench.harness import REPO

from .conftest import Stack

pytestmark = [pytest.mark.chaos, pytest.mark.root]

USERNAME = "chaos-engineer"
PASSWORD = "chaos correct horse battery"


class Browser:
    """Just enough of a browser: keeps cookies (also the Secure ones, over plain loopback HTTP)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: str = "", **headers: str) -> tuple[int, str, dict[str, str]]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            text = response.read().decode(errors="replace")
            for header in response.msg.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(header).items():
                    self.cookies[name] = morsel.value
            return response.status, text, dict(response.getheaders())
        finally:
            connection.close()


def _create_engineer(stack: Stack) -> None:
    code = (
        "import django; django.setup()\n"
        "from django.contrib.auth.models import Group, User\n"
        f"user, _ = User.objects.get_or_create(username={USERNAME!r})\n"
        f"user.set_password({PASSWORD!r}); user.save()\n"
        "user.groups.set([Group.objects.get(name='Engineer')])\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=stack.env, check=True, capture_output=True)


def _not_a_500(stack: Stack, status: int, text: str, what: str) -> None:
    assert status != 500, f"{what} answered 500 with Redis stopped; the web server's log:\n{stack.web.tail(60)}"
    if status == 503:
        assert re.search(r"unavailable|try again", text, re.I), f"{what}: 503 without saying why:\n{text[:500]}"


def test_a_login_and_an_api_call_by_session_work_with_redis_stopped(stack: Stack):
    _create_engineer(stack)
    stack.paused = True  # a worker that exits on its lost Redis broker is restarted after the outage
    stack.redis.kill(signal.SIGKILL)
    try:
        browser = Browser(stack.port)
        status, page, _ = browser.request("GET", "/login/")
        _not_a_500(stack, status, page, "the login page")
        assert status == 200, page[:500]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = urlencode({"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": token})
        started = time.monotonic()
        status, text, _ = browser.request("POST", "/login/", form)
        login_seconds = time.monotonic() - started
        _not_a_500(stack, status, text, "the login")
        assert status == 302, f"login answered {status}:\n{text[:1000]}"
        assert "sessionid" in browser.cookies
        assert login_seconds < 10, f"the login took {login_seconds:.1f} s"

        status, text, _ = browser.request("GET", "/api/customers/", Accept="application/json")
        _not_a_500(stack, status, text, "the API call by session")
        assert status == 200, f"/api/customers/ answered {status}:\n{text[:1000]}"
        assert '"results"' in text

        # A wrong password is refused as ever (and counted in the web process's memory).
        stranger = Browser(stack.port)
        _, page, _ = stranger.request("GET", "/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = urlencode({"username": USERNAME, "password": "wrong", "csrfmiddlewaretoken": token})
        status, text, _ = stranger.request("POST", "/login/", form)
        _not_a_500(stack, status, text, "a wrong login")
        assert status == 200 and "sessionid" not in stranger.cookies
    finally:
        stack.start_redis()
        stack.paused = False
