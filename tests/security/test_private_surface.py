"""What a logged-out visitor or a phishing link can reach: the schema and docs, redirects, caches.

* ``/api/schema/`` and ``/api/docs/`` need a login (session or API key);
* a ``next=`` pointing off this site is never followed, on any page that reads it (generated from
  the URL conf, after POST and GET), nor on login, two-factor and logout;
* answers to a logged-in user carry ``Cache-Control: no-store`` and every answer a
  ``Permissions-Policy`` that turns off the browser features no page uses.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.db import transaction
from django.test import Client
from django.urls import get_resolver, reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from console.services import api_token_create
from tests.console.test_two_factor import code_for
from tests.factories import PASSWORD
from tests.security.test_isolation_matrix import BUILDERS, EXEMPT, EXEMPT_NAMESPACES, _walk
from tests.shared import report_figures

pytestmark = pytest.mark.django_db

OFF_SITE = ("https://evil.example/phish", "//evil.example/phish", "/\\evil.example", "https:evil.example")


def _off_site(location: str) -> bool:
    """Browsers read ``\\`` as ``/`` and ``https:host`` as ``https://host``: any scheme or host but ours is off."""
    parts = urlsplit(location.strip().replace("\\", "/"))
    return bool(parts.scheme or parts.netloc) and parts.netloc != "testserver"


# ------------------------------------------------------------------ schema and docs


def test_schema_and_docs_need_a_login(client, api, engineer):
    assert api.get("/api/schema/?format=json").status_code == 401
    docs = client.get("/api/docs/")
    assert docs.status_code == 302 and docs["Location"].startswith(f"{reverse('login')}?next=/api/docs/")

    issued = api_token_create(user=engineer, name="codegen")
    api.credentials(HTTP_AUTHORIZATION=f"Token {issued.key}")
    schema = api.get("/api/schema/?format=json")
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "Shieldwall API"

    client.force_login(engineer)
    assert client.get("/api/schema/?format=json").status_code == 200
    page = client.get("/api/docs/")
    assert page.status_code == 200 and b"swagger-ui" in page.content


# ------------------------------------------------------------------ next=


def _page_urls(world) -> dict[str, str]:
    """name -> URL of every page of the URL conf (not the API, not the admin), with B's objects."""
    urls = {}
    for name, _route, args in _walk(get_resolver().url_patterns):
        if not name or ":" in name or name in EXEMPT or name.split(":")[0] in EXEMPT_NAMESPACES:
            continue
        args -= {"format"}
        if args and name not in BUILDERS:
            continue  # the isolation matrix fails for such a URL already
        urls.setdefault(name, reverse(name, kwargs=BUILDERS[name](world) if args else None))
    return urls


NOT_HERE = {
    "logout": "tested below: it ends the session the other requests use",
}


def test_no_page_follows_an_off_site_next(worlds, senior):
    """Every page, GET and POST, with each off-site form of ``next``: no redirect leaves the site."""
    from reports.services import report_figures as figures_of

    _, b = worlds
    b.report.figures = figures_of(b.report)  # what a generated report holds: download and send read it
    b.report.save(update_fields=["figures"])
    client = Client()
    client.force_login(senior)
    urls = _page_urls(b)
    failures, requests = [], 0
    for name, url in sorted(urls.items()):
        if name in NOT_HERE:
            continue
        for target in OFF_SITE:
            for method in ("get", "post"):
                with transaction.atomic():
                    if method == "get":
                        response = client.get(url, {"next": target})
                    else:
                        response = client.post(url, {"next": target})
                    transaction.set_rollback(True)  # a POST that acted is undone for the next one
                requests += 1
                for header in ("Location", "HX-Redirect"):
                    if _off_site(response.get(header, "")):
                        failures.append(f"{method.upper()} {url} ({name}) next={target} -> {header} {response[header]}")
    report_figures("open redirects", f"next= off site: {requests} requests over {len(urls)} pages, none left the site")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("target", OFF_SITE)
def test_login_and_logout_stay_on_the_site(client, engineer, target):
    page = client.get(reverse("login"), {"next": target})
    assert target.encode() not in page.content  # the form does not carry it on
    response = client.post(f"{reverse('login')}?next={target}", {"username": "eli", "password": PASSWORD})
    assert response.status_code == 302 and not _off_site(response["Location"])
    response = client.post(reverse("login"), {"username": "eli", "password": PASSWORD, "next": target})
    assert response.status_code == 302 and not _off_site(response["Location"])
    response = client.post(reverse("logout"), {"next": target})
    assert response.status_code == 302 and not _off_site(response["Location"])


@pytest.mark.parametrize("target", OFF_SITE)
def test_two_factor_stays_on_the_site(client, senior, settings, target):
    settings.TWO_FACTOR_REQUIRED = True
    device = TOTPDevice.objects.create(user=senior, name="phone", confirmed=True)
    client.post(reverse("login"), {"username": senior.get_username(), "password": PASSWORD})
    page = client.get(reverse("two-factor"), {"next": target})
    assert page.status_code == 200 and target.encode() not in page.content
    response = client.post(reverse("two-factor"), {"code": code_for(device), "next": target})
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")


def test_a_next_on_this_site_is_still_followed(engineer_client, worlds):
    _, b = worlds
    back = reverse("attack-detail", args=[b.attack.pk])
    response = engineer_client.post(reverse("alert-bulk"), {"action": "acknowledge", "ids": b.alert.pk, "next": back})
    assert response.status_code == 302 and response["Location"] == back


# ------------------------------------------------------------------ caches and browser features


def test_authenticated_answers_are_not_stored(client, api, engineer, customer_a):
    client.force_login(engineer)
    for path in ("/", "/customers/", f"/customers/{customer_a.slug}/", "/api/customers/", "/api/docs/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "no-store" in response["Cache-Control"], path
        assert response["Pragma"] == "no-cache", path
        assert "camera=()" in response["Permissions-Policy"] and "microphone=()" in response["Permissions-Policy"]
        assert "geolocation=()" in response["Permissions-Policy"]
    issued = api_token_create(user=engineer, name="script")
    api.credentials(HTTP_AUTHORIZATION=f"Token {issued.key}")
    response = api.get("/api/customers/")
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]


def test_anonymous_pages_keep_their_caching_but_decline_browser_features(client):
    login = client.get(reverse("login"))
    assert "camera=()" in login["Permissions-Policy"]
    health = client.get(reverse("healthz"))
    assert "Pragma" not in health
