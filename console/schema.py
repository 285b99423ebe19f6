"""drf-spectacular descriptions of the console's own authentication classes."""

import threading
from typing import ClassVar

from django.http import HttpResponse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.views import SpectacularAPIView


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "console.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'Personal API key, shown once when created: "Token <key>".',
        }


class VerifiedSessionScheme(OpenApiAuthenticationExtension):
    target_class = "console.authentication.VerifiedSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict:
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}


# The error answers every endpoint can give, documented so clients (and schemathesis) know them:
# DRF's error bodies are {"detail": "..."} or {"field": ["..."]} (or a list of messages).
ERROR_RESPONSES = {
    "400": "The request is invalid (field errors, a value the service refuses).",
    "401": "No credentials, or an invalid or expired API key.",
    "403": "The user's role may not do this.",
    "404": "No such object, one outside the user's scope, or no such page of results.",
    "409": "The object's state does not allow it (for example approving a mitigation that is not proposed).",
}
_ERROR_SCHEMA = {
    "oneOf": [
        {"type": "object", "additionalProperties": True},
        {"type": "array", "items": {"type": "string"}},
    ]
}


def add_error_responses(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: add the 4xx answers to every operation."""
    for path, operations in result.get("paths", {}).items():
        has_object = "{" in path
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            codes = ["401", "403"]
            if method in ("post", "put", "patch", "delete") or any(
                p.get("in") == "query" for p in operation.get("parameters", [])
            ):
                codes.append("400")
            # An object outside the user's scope, or a page/cursor past the end (DRF pagination: 404).
            if has_object or any(
                p.get("in") == "query" and p.get("name") in ("page", "cursor") for p in operation.get("parameters", [])
            ):
                codes.append("404")
            if has_object and method in ("post", "put", "patch", "delete"):
                codes.append("409")  # console.errors.StateConflict
            for code, response in operation["responses"].items():
                if code in ERROR_RESPONSES and "content" not in response:  # declared in extend_schema, no body
                    response["content"] = {"application/json": {"schema": _ERROR_SCHEMA}}
            for code in codes:
                operation["responses"].setdefault(
                    code,
                    {
                        "description": ERROR_RESPONSES[code],
                        "content": {"application/json": {"schema": _ERROR_SCHEMA}},
                    },
                )
    return result


class CachedSchemaView(SpectacularAPIView):
    """The OpenAPI schema, generated once per process and kept rendered: the URLconf and the
    serializers do not change while it runs, and building it took seconds per request
    (Swagger UI waited 6.5 s); rendering it as YAML took another tenth of a second.

    The schema is public (drf-spectacular's SERVE_PUBLIC): the same for every user, so one copy
    per process is right. A view that filters it by the user's permissions (serve_public off)
    is built per request and never shared.
    """

    _cache: ClassVar[dict[str | None, dict]] = {}  # version -> schema
    _rendered: ClassVar[dict[tuple, bytes]] = {}  # (version, renderer, media type) -> body
    _lock = threading.Lock()

    @classmethod
    def forget(cls) -> None:
        """Drop the kept schema (tests that change the URLconf or the settings)."""
        with cls._lock:
            cls._cache.clear()
            cls._rendered.clear()

    def _get_schema_response(self, request):  # drf-spectacular's hook
        if not self.serve_public:
            return super()._get_schema_response(request)
        version = self.api_version or request.version or self._get_version_parameter(request)
        renderer, media_type = request.accepted_renderer, request.accepted_media_type
        key = (version, type(renderer), media_type)
        body = self._rendered.get(key)
        if body is None:
            with self._lock:
                body = self._rendered.get(key)
                if body is None:
                    schema = self._cache.get(version)
                    if schema is None:
                        generator = self.generator_class(
                            urlconf=self.urlconf, api_version=version, patterns=self.patterns
                        )
                        schema = self._cache[version] = generator.get_schema(request=request, public=True)
                    body = renderer.render(schema, media_type, self.get_renderer_context())
                    self._rendered[key] = body
        # As DRF's Response sets it: the renderer's media type, with its charset if it has one.
        content_type = f"{renderer.media_type}; charset={renderer.charset}" if renderer.charset else renderer.media_type
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = f'inline; filename="{self._get_filename(request, version)}"'
        return response
