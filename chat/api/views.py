"""The REST API: thin adapters from HTTP to the services.

Reads use the QuerySets of chat.models; every change of chat state goes through
chat.services, which pushes it to open browsers after commit, exactly as a message typed
in the page is pushed. The services raise Django's exceptions, and the exception handler
(chat.api.errors) maps them: ValidationError to 400 with DRF's error body, PermissionDenied to 403
(services raise it only about a chat the caller can see) and Http404 to 404 (a chat the
caller may not see does not exist for them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.db.models import QuerySet
from django.http import HttpResponse
from django.urls import reverse
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
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated, NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chat.api import examples
from chat.api.errors import errors, validated
from chat.api.pagination import Pages
from chat.models import Membership
from chat.serializers import UserQuerySerializer, UserSerializer

ASYNCAPI_DOCUMENT = Path(__file__).with_name("asyncapi.yaml")

# --- Helpers ------------------------------------------------------------------------


def signed_in(request: Request) -> User:
    """The caller; every view but the token's requires authentication before it runs."""
    return cast(User, request.user)


def created(request: Request, data: Any, url_name: str, **kwargs: Any) -> Response:
    """201 Created, with the address of what was made in Location."""
    location = request.build_absolute_uri(reverse(f"api:{url_name}", kwargs=kwargs))
    return Response(data, status=status.HTTP_201_CREATED, headers={"Location": location})


def created_or_replayed(request: Request, data: Any, is_new: bool, url_name: str, **kwargs: Any) -> Response:
    """201 with Location when the request made something; 200 when it returns what an earlier
    request (or the same one, retried) made."""
    if is_new:
        return created(request, data, url_name, **kwargs)
    return Response(data, status=status.HTTP_200_OK)


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
    examples=[examples.USERS],
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
    @extend_schema(summary="Who you are", responses={200: UserSerializer, **errors()}, examples=[examples.ME])
    def get(self, request: Request) -> Response:
        return Response(UserSerializer(signed_in(request)).data)


# --- Documentation ------------------------------------------------------------------


class SchemaView(SpectacularAPIView):
    """The OpenAPI document, JSON unless YAML is asked for (Accept or ?format=yaml)."""

    renderer_classes = [OpenApiJsonRenderer, OpenApiJsonRenderer2, OpenApiYamlRenderer, OpenApiYamlRenderer2]


class AsyncApiView(APIView):
    """The AsyncAPI document of the WebSockets (/ws/events/ and the others), beside the
    OpenAPI schema and with the same permissions."""

    @extend_schema(exclude=True)
    def get(self, request: Request) -> HttpResponse:
        try:
            document = ASYNCAPI_DOCUMENT.read_bytes()
        except FileNotFoundError:
            raise NotFound("The AsyncAPI document is missing from this installation.") from None
        return HttpResponse(document, content_type="application/yaml; charset=utf-8")


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
