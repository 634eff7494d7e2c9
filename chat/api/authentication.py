"""`Authorization: Token <key>` for the REST API, against the hashed, named tokens of
chat.services.accounts (DRF's own authtoken stored the keys in plain text, one per user)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.utils.translation import gettext
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from chat.models import ApiToken
from chat.services.accounts import authenticate_token


class ApiTokenAuthentication(TokenAuthentication):
    """DRF's header parsing and `WWW-Authenticate: Token`; the key is looked up by its digest.

    `request.auth` is the ApiToken, so that a view knows which of the user's tokens signed in.
    """

    model = ApiToken

    def authenticate_credentials(self, key: Any) -> tuple[User, ApiToken]:
        token = authenticate_token(str(key))
        if token is None:
            # The same words for an unknown key and a deactivated user's: nothing to probe.
            raise AuthenticationFailed(gettext("Invalid token."))
        return token.user, token
