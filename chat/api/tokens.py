"""The REST API's tokens: signing in with a password, and one's named tokens.

A key is shown once, when its token is made; lists show a token's name and prefix.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chat import services
from chat.account_views import client_address
from chat.api import examples
from chat.api.errors import BODY, LOCATION, RATE_LIMITED, errors, validated
from chat.api.pagination import Pages
from chat.api.views import created, signed_in
from chat.models import ApiToken
from chat.serializers import (
    ApiTokenSerializer,
    CredentialsSerializer,
    NewTokenSerializer,
    TokenCreateSerializer,
)


def new_token(request: Request, new: services.NewToken) -> Response:
    """201 with the token and, this once, its key (NewTokenSerializer's shape)."""
    data = ApiTokenSerializer(new.token, context={"request": request}).data
    return created(request, {"token": new.key, **data}, "token_detail", token_id=new.token.pk)


class TokenView(APIView):
    def get_permissions(self) -> list[Any]:
        if self.request.method == "POST":
            return [AllowAny()]
        return list(super().get_permissions())

    @extend_schema(
        operation_id="auth_token_obtain",
        summary="Sign in: a new API token for your username and password",
        description=(
            "Send `username` and `password` (and a `name` for the token, if you like); the "
            "answer's `token` goes in `Authorization: Token <key>`. Each call makes a new token, "
            "shown this once: keep it, and revoke the ones you no longer use (an account holds at "
            f"most {settings.API_TOKENS_PER_USER}). Attempts are rated per account and per address, "
            "together with the login page's; past the rate the answer is 429, without checking "
            "the password."
        ),
        request=CredentialsSerializer,
        parameters=[*RATE_LIMITED, LOCATION],
        responses={201: NewTokenSerializer, **errors(*BODY, 429)},
        examples=[*examples.CREDENTIALS, examples.NEW_TOKEN],
        auth=[],
    )
    def post(self, request: Request) -> Response:
        # The fields' types first (a 400); the service counts the attempt before any password is hashed.
        data = validated(CredentialsSerializer, request.data)
        new = services.token_for_credentials(
            request=request._request,
            username=data["username"],
            password=data["password"],
            address=client_address(request),
            name=data.get("name", ""),
        )
        return new_token(request, new)

    @extend_schema(
        operation_id="auth_token_revoke",
        summary="Sign out: revoke the token of this request",
        description=(
            "The token in the `Authorization` header stops working at once, and the sockets "
            "that signed in with it close. Your other tokens go on working. A request signed in "
            "with the browser session has no token to revoke: it gets a 400."
        ),
        request=None,
        responses={204: None, **errors(400)},
    )
    def delete(self, request: Request) -> Response:
        if not isinstance(request.auth, ApiToken):
            raise ValidationError(
                "This request did not sign in with a token; revoke one by its id (DELETE /api/tokens/{id}/).",
                code="no_token",
            )
        services.revoke_token(user=signed_in(request), token_id=request.auth.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenList(generics.GenericAPIView[ApiToken]):
    serializer_class = ApiTokenSerializer
    pagination_class = Pages

    @extend_schema(
        operation_id="tokens_list",
        summary="List your API tokens",
        description="Their names and prefixes, oldest first: never their keys.",
        responses={200: ApiTokenSerializer(many=True), **errors(404)},
        examples=[examples.TOKENS],
    )
    def get(self, request: Request) -> Response:
        tokens = ApiToken.objects.filter(user=signed_in(request)).order_by("created_at", "pk")
        page = self.paginate_queryset(tokens)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        operation_id="tokens_create",
        summary="Make a new API token",
        description=(
            "A token for another program or machine, so that each can be revoked on its own. "
            "The key is in this answer only: keep it."
        ),
        request=TokenCreateSerializer,
        parameters=[LOCATION],
        responses={201: NewTokenSerializer, **errors(*BODY)},
        examples=[*examples.TOKEN_NAME, examples.NEW_TOKEN],
    )
    def post(self, request: Request) -> Response:
        data = validated(TokenCreateSerializer, request.data)
        return new_token(request, services.issue_token(user=signed_in(request), name=data.get("name", "")))


class TokenDetail(generics.GenericAPIView[ApiToken]):
    serializer_class = ApiTokenSerializer

    @extend_schema(
        operation_id="tokens_retrieve",
        summary="One of your API tokens",
        responses={200: ApiTokenSerializer, **errors(404)},
        examples=[examples.ONE_TOKEN],
    )
    def get(self, request: Request, token_id: int) -> Response:
        token = services.get_token(user=signed_in(request), token_id=token_id)
        return Response(self.get_serializer(token).data)

    @extend_schema(
        operation_id="tokens_revoke",
        summary="Revoke one of your API tokens",
        description=(
            "It stops working at once, and the sockets that signed in with it close; your "
            "other tokens and sessions go on."
        ),
        request=None,
        responses={204: None, **errors(404)},
    )
    def delete(self, request: Request, token_id: int) -> Response:
        services.revoke_token(user=signed_in(request), token_id=token_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
