"""The REST API's bots: accounts for programs, made and looked after by a person."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from chat import services
from chat.api import examples
from chat.api.errors import BODY, LOCATION, RATE_LIMITED, errors, validated
from chat.api.pagination import Pages
from chat.api.views import created, signed_in
from chat.models import Bot
from chat.serializers import BotCreatedSerializer, BotCreateSerializer, BotSerializer


class BotList(generics.GenericAPIView[Bot]):
    serializer_class = BotSerializer
    pagination_class = Pages

    @extend_schema(
        operation_id="bots_list",
        summary="List the bots you made",
        responses={200: BotSerializer(many=True), **errors(404)},
        examples=[examples.BOTS],
    )
    def get(self, request: Request) -> Response:
        bots = (
            Bot.objects.filter(owner=signed_in(request)).select_related("user").order_by("created_at", "pk")
        )
        page = self.paginate_queryset(bots)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        operation_id="bots_create",
        summary="Make a bot: an account for a program, with its first API token",
        description=(
            "The bot has no password and signs in with its token (keep it: it is shown this once); "
            "it joins General like every account, and you add it to other rooms as you would "
            "anyone. The username follows the sign-up form's rules. Rated per person "
            f"({settings.CHAT_RATES['bot']} here); a server can switch this off (BOT_SIGNUP=false), "
            "and then answers 403. A bot can't make bots."
        ),
        request=BotCreateSerializer,
        parameters=[*RATE_LIMITED, LOCATION],
        responses={201: BotCreatedSerializer, **errors(*BODY, 429)},
        examples=[*examples.BOT_REQUEST, examples.BOT_CREATED],
    )
    def post(self, request: Request) -> Response:
        owner = signed_in(request)
        services.check_bot_signup(owner=owner)
        data = validated(BotCreateSerializer, request.data)
        bot, new = services.create_bot(
            username=data["username"], owner=owner, token_name=data.get("token_name", "")
        )
        return created(
            request, {"id": bot.pk, "username": bot.username, "token": new.key}, "bot", bot_id=bot.pk
        )


class BotDetail(generics.GenericAPIView[Bot]):
    serializer_class = BotSerializer

    @extend_schema(
        operation_id="bots_retrieve",
        summary="One of the bots you made",
        responses={200: BotSerializer, **errors(404)},
        examples=[examples.ONE_BOT],
    )
    def get(self, request: Request, bot_id: int) -> Response:
        return Response(
            self.get_serializer(services.get_own_bot(owner=signed_in(request), bot_id=bot_id)).data
        )

    @extend_schema(
        operation_id="bots_deactivate",
        summary="Deactivate one of the bots you made",
        description=(
            "The bot can no longer sign in: its tokens are revoked and its sockets close. Its "
            "messages stay, and its name stays taken."
        ),
        request=None,
        responses={204: None, **errors(404)},
    )
    def delete(self, request: Request, bot_id: int) -> Response:
        bot = services.get_own_bot(owner=signed_in(request), bot_id=bot_id)
        services.deactivate_user(user=bot.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
