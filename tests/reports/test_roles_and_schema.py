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
    CachedSchemaView.forget()
    with mock.patch.object(SchemaGenerator, "get_schema", autospec=True, side_effect=SchemaGenerator.get_schema) as spy:
        first = engineer_client.get("/api/schema/?format=json")
        second = engineer_client.get("/api/schema/?format=json")
        yaml = engineer_client.get("/api/schema/")  # what Swagger UI fetches: same schema, other rendering
    assert first.status_code == second.status_code == yaml.status_code == 200
    assert first.content == second.content
    assert spy.call_count == 1
    assert first.json()["info"]["title"] == "Shieldwall API"
    assert first["Content-Type"].startswith("application/vnd.oai.openapi+json")
    assert yaml["Content-Type"] == "application/vnd.oai.openapi; charset=utf-8"
    assert yaml.content.startswith(b"openapi: 3.0.3") and b"title: Shieldwall API" in yaml.content
    assert first["Content-Disposition"] == 'inline; filename="Shieldwall API.json"'


def test_a_schema_filtered_per_user_is_not_shared_between_users(rf, engineer, viewer):
    """Off SERVE_PUBLIC the schema depends on who asks: then it is built for each request."""
    CachedSchemaView.forget()
    view = CachedSchemaView.as_view(serve_public=False)
    with mock.patch.object(SchemaGenerator, "get_schema", autospec=True, side_effect=SchemaGenerator.get_schema) as spy:
        for user in (engineer, viewer):
            request = rf.get("/api/schema/?format=json")
            request.user = user
            response = view(request)
            response.render()
            assert response.status_code == 200
    assert spy.call_count == 2
    assert [call.kwargs["public"] for call in spy.call_args_list] == [False, False]
    assert not CachedSchemaView._rendered
