"""API authentication: hashed personal tokens, and sessions that honour two-factor.

The API accepts two credentials. ``Authorization: Token <key>`` is a separate credential
from the password and is not subject to TOTP: a key is created by a person who already
passed two-factor in the console, is shown once, can expire and can be revoked. A browser
session, on the other hand, only counts for the API once it has passed two-factor where
the user's role requires it (otherwise a password alone could approve a mitigation
through the API).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from console.services import api_token_authenticate
from console.two_factor import needs_two_factor


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Token <key>`` against ApiToken: looked up by prefix, compared by hash."""

    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        auth = authentication.get_authorization_header(request).split()
        if not auth or auth[0].lower() != self.keyword.lower().encode():
            return None
        if len(auth) != 2:
            raise exceptions.AuthenticationFailed(_("Invalid token header."))
        try:
            key = auth[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed(_("Invalid token header.")) from exc
        token = api_token_authenticate(key=key)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class VerifiedSessionAuthentication(authentication.SessionAuthentication):
    """Django's session, but not for a user whose role requires two-factor and who has not passed it."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        result = super().authenticate(request)
        if result is not None and needs_two_factor(request._request):
            return None
        return result
