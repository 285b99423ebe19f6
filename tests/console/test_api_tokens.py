"""API tokens: stored as a prefix and a hash, shown once, refused when wrong, revoked or expired."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from console.models import ApiToken, AuditEvent
from console.services import api_token_create, api_token_revoke


def test_the_database_holds_only_a_prefix_and_a_hash_never_the_key(engineer):
    issued = api_token_create(user=engineer, name="grafana")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM console_apitoken")
        rows = cursor.fetchall()
    stored = " ".join(str(value) for row in rows for value in row)
    assert issued.key not in stored
    token = ApiToken.objects.get()
    assert token.prefix == issued.key[:8]
    assert len(token.key_hash) == 64 and token.key_hash == ApiToken.hash_key(issued.key)
    assert AuditEvent.objects.filter(action="api_token.create").exists()


def test_a_valid_token_authenticates_and_records_its_use(api, engineer):
    issued = api_token_create(user=engineer)
    api.credentials(HTTP_AUTHORIZATION=f"Token {issued.key}")
    assert api.get("/api/customers/").status_code == 200
    issued.token.refresh_from_db()
    assert issued.token.last_used_at is not None


@pytest.mark.parametrize(
    "header",
    ["Token not-the-token", "Token short", "Token a b", "Token " + "0" * 40],
)
def test_a_wrong_token_is_refused_with_401(api, engineer, header):
    api_token_create(user=engineer)
    api.credentials(HTTP_AUTHORIZATION=header)
    response = api.get("/api/customers/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_token_with_the_right_prefix_but_wrong_rest_is_refused(api, engineer):
    issued = api_token_create(user=engineer)
    api.credentials(HTTP_AUTHORIZATION=f"Token {issued.key[:8]}{'f' * 32}")
    assert api.get("/api/customers/").status_code == 401


def test_a_revoked_token_is_refused(api, engineer):
    issued = api_token_create(user=engineer)
    api.credentials(HTTP_AUTHORIZATION=f"Token {issued.key}")
    assert api.get("/api/customers/").status_code == 200
    api_token_revoke(token=issued.token)
    assert api.get("/api/customers/").status_code == 401
    assert AuditEvent.objects.filter(action="api_token.revoke").exists()


def test_an_expired_token_is_refused(api, engineer):
    issued = api_token_create(user=engineer, expires_at=timezone.now() + timedelta(hours=1))
    api.credentials(HTTP_AUTHORIZATION=f"Token {issued.key}")
    assert api.get("/api/customers/").status_code == 200
    ApiToken.objects.filter(pk=issued.token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api.get("/api/customers/").status_code == 401


def test_a_deactivated_users_token_is_refused(api, engineer):
    issued = api_token_create(user=engineer)
    engineer.is_active = False
    engineer.save()
    api.credentials(HTTP_AUTHORIZATION=f"Token {issued.key}")
    assert api.get("/api/customers/").status_code == 401


def test_the_command_refuses_an_unknown_user(db):
    with pytest.raises(CommandError):
        call_command("drf_create_token", "nobody")


def test_the_token_page_shows_a_new_key_once_and_revokes_only_ones_own(client, engineer, senior):
    client.force_login(engineer)
    response = client.post(reverse("api-token-list"), {"name": "siem export", "expires_days": "30"})
    assert response.status_code == 200
    token = ApiToken.objects.get(user=engineer)
    key = response.context["issued"].key
    assert key.encode() in response.content and token.matches(key)
    assert token.expires_at is not None
    listing = client.get(reverse("api-token-list"))
    assert key.encode() not in listing.content
    assert token.prefix.encode() in listing.content

    other = api_token_create(user=senior).token
    assert client.post(reverse("api-token-revoke", args=[other.pk])).status_code == 404
    assert client.post(reverse("api-token-revoke", args=[token.pk])).status_code == 302
    assert list(ApiToken.objects.values_list("pk", flat=True)) == [other.pk]
