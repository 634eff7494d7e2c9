"""The REST API: thin adapters from HTTP to the services.

Reads use the QuerySets of chat.models; every change of chat state goes through
chat.services, which pushes it to open browsers after commit, exactly as a message typed
in the page is pushed. The services raise Django's exceptions, and the exception handler
(chat.api.errors) maps them: ValidationError to 400 with DRF's error body, PermissionDenied to 403
(services raise it only about a chat the caller can see) and Http404 to 404 (a chat the
caller may not see does not exist for them).
"""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.db.models import QuerySet
from django.utils.decorators import method_decorator
from django.views.decorators.csp import csp_override
from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import generics, status
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chat import services
from chat.account_views import client_address
from chat.api.errors import BODY, RETRY_AFTER, errors, validated
from chat.api.pagination import Pages
from chat.models import Membership
from chat.serializers import (
    TokenSerializer,
    UserQuerySerializer,
    UserSerializer,
)

# --- Helpers ------------------------------------------------------------------------


def signed_in(request: Request) -> User:
    """The caller; every view but the token's requires authentication before it runs."""
    return cast(User, request.user)


def created_or_replayed(data: Any, created: bool) -> Response:
    return Response(data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


# --- Tokens -------------------------------------------------------------------------


class TokenView(APIView):
    def get_permissions(self) -> list[Any]:
        if self.request.method == "POST":
            return [AllowAny()]
        return list(super().get_permissions())

    @extend_schema(
        operation_id="auth_token_obtain",
        summary="Obtain your API token",
        description=(
            "Send `username` and `password`; the answer's token goes in `Authorization: Token <key>`. "
            "The same token is returned until it is revoked. Attempts are rated per account and per "
            "address, together with the login page's; past the rate the answer is 429, without "
            "checking the password."
        ),
        request=AuthTokenSerializer,
        parameters=[RETRY_AFTER],
        responses={200: TokenSerializer, **errors(*BODY, 429)},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        serializer = AuthTokenSerializer(data=request.data, context={"request": request})
        # The fields' types first (a 400), then the attempt is counted, before any password is hashed.
        credentials = serializer.to_internal_value(request.data)
        # Past the rate: RateLimited, a 429 in the login page's words (chat.api.errors).
        services.check_login_attempt(username=credentials["username"], address=client_address(request))
        serializer.is_valid(raise_exception=True)
        return Response({"token": services.issue_token(user=serializer.validated_data["user"]).key})

    @extend_schema(
        operation_id="auth_token_revoke",
        summary="Revoke your API token",
        description="The token stops working at once; POST again for a new one.",
        request=None,
        responses={204: None, **errors()},
    )
    def delete(self, request: Request) -> Response:
        services.revoke_token(user=signed_in(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Users --------------------------------------------------------------------------


@extend_schema(
    summary="List users",
    description=(
        "You and the active accounts you share a chat with, by id. With `username`, the active "
        "account of exactly that name, whether or not you share a chat: how to find someone to "
        "add to a room or to write to directly. Nobody else is listed, so that the list does "
        "not reveal who has an account."
    ),
    parameters=[UserQuerySerializer],
    responses={200: UserSerializer(many=True), **errors(400, 404)},
)
class UserList(generics.ListAPIView[User]):
    serializer_class = UserSerializer
    pagination_class = Pages

    def get_queryset(self) -> QuerySet[User]:
        users = User.objects.filter(is_active=True)
        username = validated(UserQuerySerializer, self.request.query_params).get("username")
        if username is not None:
            return users.filter(username=username).order_by("pk")
        user = signed_in(self.request)
        my_chats = Membership.objects.filter(user=user).values("chat")
        companions = Membership.objects.filter(chat__in=my_chats).values("user")
        return (users.filter(pk__in=companions) | users.filter(pk=user.pk)).order_by("pk")


class Me(APIView):
    @extend_schema(summary="Who you are", responses={200: UserSerializer, **errors()})
    def get(self, request: Request) -> Response:
        return Response(UserSerializer(signed_in(request)).data)


# --- Documentation ------------------------------------------------------------------


class SchemaView(SpectacularAPIView):
    """The OpenAPI document, JSON unless YAML is asked for (Accept or ?format=yaml)."""

    renderer_classes = [OpenApiJsonRenderer, OpenApiJsonRenderer2, OpenApiYamlRenderer, OpenApiYamlRenderer2]


class SignInFirst(APIView):
    """A documentation page sends a visitor who is not signed in to the login page."""

    def handle_exception(self, exc: Exception) -> Any:
        if isinstance(exc, NotAuthenticated | AuthenticationFailed):
            return redirect_to_login(self.request.get_full_path())
        return super().handle_exception(exc)


# The documentation page runs the docs' own inline scripts with the page's nonce; it has a
# policy of its own (config/settings.py), and every other page keeps the strict one.
@method_decorator(csp_override(settings.API_DOCS_CSP), name="dispatch")
class DocsView(SignInFirst, SpectacularSwaggerView):
    pass
