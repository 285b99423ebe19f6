"""What a refusal is, said once: services raise these, the API and the pages map them to a status.

A service refuses for one of four reasons, and the client deserves to know which:

* ``RoleRefused`` (403): the user is who they say, sees the object, but their role may not do this
  ("only a senior engineer or an admin may approve");
* ``OutOfScope`` (404): the object is not the user's to see; answered exactly like a missing one;
* ``StateConflict`` (409): the object is not in a state that allows it (proposed, not active; a
  ticket someone else moved; a replayed delivery);
* anything else a service raises as ``ServiceError`` is a plain bad request (400).

The app errors (``MitigationError``, ``TicketError``, ``ReportError``) stay ``ValueError``s so the
existing ``except`` clauses keep working; their refusing subclasses also inherit one of the classes
here, and ``api_exception_handler`` (DRF) and ``ServiceErrorMiddleware`` (pages) map them.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ServiceError(ValueError):
    """A service cannot do what was asked; the message says why, in an engineer's words."""

    status_code: int = status.HTTP_400_BAD_REQUEST


class RoleRefused(ServiceError, PermissionDenied):
    """The user's role may not do this: 403."""

    status_code = status.HTTP_403_FORBIDDEN


class OutOfScope(ServiceError):
    """The object is outside the user's customer scope: 404, like a missing object."""

    status_code = status.HTTP_404_NOT_FOUND


class StateConflict(ServiceError):
    """The object's current state does not allow it: 409."""

    status_code = status.HTTP_409_CONFLICT


REFUSALS = (RoleRefused, OutOfScope, StateConflict)


def status_of(exc: BaseException) -> int:
    """The HTTP status a service error answers with (400 for any other ValueError)."""
    for cls in REFUSALS:
        if isinstance(exc, cls):
            return cls.status_code
    return status.HTTP_400_BAD_REQUEST


def reraise_refusal(exc: BaseException) -> None:
    """In a view's ``except ValueError`` that turns errors into 400: let refusals through.

    The exception handler then answers 403/404/409 instead of the 400 of a bad request.
    """
    if isinstance(exc, REFUSALS):
        raise exc


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus service errors: 403 role, 404 scope, 409 state conflict, 400 otherwise."""
    if isinstance(exc, OutOfScope):
        exc = Http404(str(exc))  # DRF answers its standard 404 body
    elif isinstance(exc, ServiceError):
        return Response({"detail": str(exc)}, status=status_of(exc))
    return drf_exception_handler(exc, context)


class ServiceErrorMiddleware:
    """The pages' equivalent: a refusal that escapes a form view answers its status, not a 500.

    Form views still catch plain ``ServiceError``s to show them beside the form; role refusals
    become Django's 403 page (``RoleRefused`` is a ``PermissionDenied``), out-of-scope a 404 and a
    state conflict a 409 with the message (escaped: it may quote attacker-written names).
    """

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if isinstance(exc, OutOfScope):
            raise Http404(str(exc)) from exc
        if isinstance(exc, StateConflict):
            if request.headers.get("Accept", "").startswith("application/json"):
                return JsonResponse({"detail": str(exc)}, status=409)
            from django.utils.html import escape

            return HttpResponse(
                f"<!doctype html><title>Conflict</title><h1>Conflict</h1><p>{escape(str(exc))}</p>",
                status=409,
            )
        return None  # RoleRefused is a PermissionDenied: Django's 403 handler answers it
