"""Buttons only for the roles that may use them, and an OpenAPI schema built once per process."""

from __future__ import annotations

import re
from unittest import mock

import pytest
from drf_spectacular.generators import SchemaGenerator

from console.schema import CachedSchemaView

pytestmark = pytest.mark.django_db


def _pages(incident):
    return ["/alerts/", f"/attacks/{incident['attack'].pk}/", "/customers/acme/dashboard/"]


def _action_links(html: str) -> list[str]:
    links = re.findall(r'href="(/reports/new/[^"]*)"', html)
    buttons = re.findall(r'<button[^>]*name="action"[^>]*value="(\w+)"', html)
    return links + buttons


def test_a_viewer_sees_no_button_that_would_refuse_them(client, viewer, incident):
    client.force_login(viewer)
    for path in _pages(incident):
        html = client.get(path).content.decode()
        assert _action_links(html) == [], path
    # ... and the page behind such a button does refuse them.
    assert client.get(f"/reports/new/?attack={incident['attack'].pk}").status_code in (403, 404)


def test_an_engineer_sees_the_buttons(client, engineer, incident):
    client.force_login(engineer)
    seen = [link for path in _pages(incident) for link in _action_links(client.get(path).content.decode())]
    assert f"/reports/new/?attack={incident['attack'].pk}" in seen
    assert "acknowledge" in seen


def test_openapi_schema_is_generated_once_per_process(engineer_client):
    CachedSchemaView._cache.clear()
    with mock.patch.object(SchemaGenerator, "get_schema", autospec=True, side_effect=SchemaGenerator.get_schema) as spy:
        first = engineer_client.get("/api/schema/?format=json")
        second = engineer_client.get("/api/schema/?format=json")
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert spy.call_count == 1
    assert first.json()["info"]["title"] == "Shieldwall API"
