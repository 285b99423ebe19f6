"""Settings by environment, the health check, the schema, login throttling, the demo seed."""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import call_command

from console.demo import seed_demo
from console.models import Customer
from tests.shared import REPO


def _python(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY")}
    clean.update(env)
    clean["SHIELDWALL_TESTING"] = clean.get("SHIELDWALL_TESTING", "1")
    clean["DJANGO_SETTINGS_MODULE"] = "console.settings"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=clean, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_settings_follow_the_environment(tmp_path):
    code = (
        "import django, json; django.setup(); from django.conf import settings as s;"
        "print(json.dumps([s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.CACHES['default']['BACKEND']]))"
    )
    engine, broker, cache = json.loads(
        _python(code, SHIELDWALL_VAR_DIR=str(tmp_path), SHIELDWALL_TESTING="0", DEBUG="1")
    )
    assert engine == "django.db.backends.sqlite3"
    assert broker == "filesystem://"
    assert cache.endswith("FileBasedCache")
    engine, broker, cache = json.loads(
        _python(
            code,
            SHIELDWALL_VAR_DIR=str(tmp_path),
            DATABASE_URL="postgres://postgres@127.0.0.1:5432/shieldwall",
            REDIS_URL="redis://127.0.0.1:6379/3",
        )
    )
    assert engine == "django.db.backends.postgresql"
    assert broker == "redis://127.0.0.1:6379/3"
    assert cache.endswith("RedisCache")


def test_production_settings_refuse_to_start_without_a_secret_key(tmp_path):
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    clean.update(SHIELDWALL_TESTING="0", SHIELDWALL_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="console.settings")
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], cwd=REPO, env=clean, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update(
        SHIELDWALL_TESTING="0",
        DEBUG="0",
        SECRET_KEY="x7Rk2pQv9LmN4sT8wY1zA5bC3dE6fG0hJ-uI_oP~aS!dF@gH#jK$",
        ALLOWED_HOSTS="example.org",
        SHIELDWALL_VAR_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_healthz_answers_without_login_with_database_and_broker(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is True


def test_healthz_reports_503_when_the_database_is_down(client, db, monkeypatch):
    from console import health

    monkeypatch.setattr(health, "database_status", lambda: {"ok": False, "error": "connection refused"})
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"]["error"] == "connection refused"


def test_schema_builds_without_warnings():
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--fail-on-warn", "--validate", "--file", os.devnull],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "SHIELDWALL_TESTING": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_schema_gives_each_status_field_its_own_enum():
    """Two fields named delivery_status once shared one enum: the schema refused a sent message."""
    from drf_spectacular.generators import SchemaGenerator

    schemas = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    assert schemas["DeliveryStatusEnum"]["enum"] == ["pending", "processed", "rejected"]
    assert schemas["TimelineDeliveryStatusEnum"]["enum"] == ["sent", "failed"]
    timeline = schemas["TimelineEntry"]["properties"]["delivery_status"]
    assert "TimelineDeliveryStatusEnum" in str(timeline)


def test_swagger_ui_is_served_offline_without_inline_script(engineer_client):
    page = engineer_client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn" not in html.lower()
    assert "<script>" not in html.replace(" ", "")


def test_login_is_throttled_after_repeated_failures(client, engineer):
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        assert client.post("/login/", {"username": "eli", "password": "wrong"}).status_code == 200
    blocked = client.post("/login/", {"username": "eli", "password": "correct horse battery"})
    assert blocked.status_code == 429
    assert b"Too many failed logins" in blocked.content


def test_successful_login_reaches_the_dashboard(client, engineer):
    response = client.post("/login/", {"username": "eli", "password": "correct horse battery"}, follow=True)
    assert response.redirect_chain[-1][0] == "/"
    assert b"SOC overview" in response.content


def test_security_headers_and_csp_forbid_inline_scripts(client, db):
    response = client.get("/login/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_seed_demo_is_idempotent(db, monkeypatch):
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "demo-password-123")
    first = seed_demo()
    counts = (Customer.objects.count(), Customer.objects.get(slug="first-harbor-bank").assets.count())
    second = seed_demo()
    assert (Customer.objects.count(), Customer.objects.get(slug="first-harbor-bank").assets.count()) == counts
    assert first["customers"] == second["customers"] == 4
    plans = set(Customer.objects.values_list("plan", flat=True))
    assert plans == {"free", "pro", "business", "enterprise"}
    from django.contrib.auth import authenticate

    assert authenticate(username="admin", password="demo-password-123") is not None


def test_drf_create_token_command_works(engineer, capsys):
    from console.models import ApiToken

    call_command("drf_create_token", "eli")
    out = capsys.readouterr().out
    assert "Generated token" in out
    key = out.split("Generated token ", 1)[1].split()[0]
    token = ApiToken.objects.get(user=engineer)
    assert token.prefix == key[:8] and token.key_hash != key and token.matches(key)


@pytest.mark.django_db
def test_static_plotly_and_htmx_are_served_locally(client):
    from django.contrib.staticfiles import finders

    assert finders.find("plotly/plotly.min.js")
    assert finders.find("vendor/htmx.min.js")
