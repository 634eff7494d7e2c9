"""The REST API's chats: rooms, direct chats and their members (thin adapters over the services)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chat import services
from chat.api import examples
from chat.api.errors import BODY, LOCATION, RATE_LIMITED, errors, validated
from chat.api.pagination import Pages
from chat.api.views import created_or_replayed, signed_in
from chat.models import Chat, Membership
from chat.serializers import (
    VIEWER_ROLE,
    ChatSerializer,
    MemberSerializer,
    RoomCreatedSerializer,
    RoomCreateSerializer,
    RoomUpdateSerializer,
    UserChoiceSerializer,
)

# --- Chats --------------------------------------------------------------------------


class ChatList(generics.GenericAPIView[Chat]):
    serializer_class = ChatSerializer
    pagination_class = Pages

    def get_queryset(self) -> QuerySet[Chat]:
        user = signed_in(self.request)
        role = Membership.objects.filter(chat=OuterRef("pk"), user=user).values("role")[:1]
        return Chat.objects.visible_to(user).annotate(**{VIEWER_ROLE: Subquery(role)}).order_by("name", "pk")

    @extend_schema(
        summary="List your chats and the public rooms",
        responses={200: ChatSerializer(many=True), **errors(404)},
        examples=[examples.CHATS],
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        summary="Create a room that you own",
        description=(
            "With `participants`, those users become members at once, as if you added each; "
            "an id that is not an active user's is a 400 and nothing is created. With a "
            "`client_id`, a retried request makes one room: a client_id you used before returns "
            "the room it made, with 200. Creating rooms is rated per user."
        ),
        request=RoomCreateSerializer,
        parameters=[*RATE_LIMITED, LOCATION],
        responses={
            201: RoomCreatedSerializer,
            200: OpenApiResponse(RoomCreatedSerializer, "A replay: the room first made with this client_id."),
            **errors(*BODY, 429),
        },
        examples=[*examples.ROOM_REQUEST, examples.ROOM_CREATED, examples.ROOM_REPLAYED],
    )
    def post(self, request: Request) -> Response:
        user = signed_in(request)
        data = validated(RoomCreateSerializer, request.data)
        client_id = data.get("client_id")
        # One transaction: the room exists with all of its members or not at all, and
        # every push (the room in each member's chat list) goes after the commit.
        with transaction.atomic():
            replay = (
                client_id is not None and Chat.objects.filter(created_by=user, client_id=client_id).exists()
            )
            chat = services.create_room(
                user=user, name=data["name"], visibility=data["visibility"], client_id=client_id
            )
            if not replay:
                for participant in data["participants"]:
                    services.add_member(chat=chat, by=user, user=participant)
        body = RoomCreatedSerializer(chat, context=self.get_serializer_context()).data
        return created_or_replayed(request, body, not replay, "chat", chat_id=chat.pk)


class ChatDetail(generics.GenericAPIView[Chat]):
    serializer_class = ChatSerializer

    @extend_schema(
        summary="A chat", responses={200: ChatSerializer, **errors(404)}, examples=[examples.ONE_CHAT]
    )
    def get(self, request: Request, chat_id: int) -> Response:
        chat = services.get_visible_chat(user=signed_in(request), chat_id=chat_id)
        return Response(self.get_serializer(chat).data)

    @extend_schema(
        summary="Change a room's name, topic or visibility (its owner)",
        description="Fields left out stay as they are. Members' pages and chat lists show the change live.",
        request=RoomUpdateSerializer,
        parameters=RATE_LIMITED,
        responses={200: ChatSerializer, **errors(*BODY, 404, 429)},
        examples=[*examples.ROOM_UPDATE, examples.ONE_CHAT],
    )
    def patch(self, request: Request, chat_id: int) -> Response:
        user = signed_in(request)
        chat = services.get_visible_chat(user=user, chat_id=chat_id)
        data = validated(RoomUpdateSerializer, request.data)
        chat = services.update_room(
            chat=chat,
            by=user,
            name=data.get("name", chat.name),
            topic=data.get("topic", chat.topic),
            visibility=data.get("visibility", chat.visibility),
        )
        return Response(self.get_serializer(chat).data)


class ChatJoin(generics.GenericAPIView[Chat]):
    serializer_class = ChatSerializer

    @extend_schema(
        summary="Join a public room",
        description="Joining a room twice is harmless. Private rooms and direct chats can't be joined.",
        request=None,
        responses={200: ChatSerializer, **errors(404)},
        examples=[examples.JOINED],
    )
    def post(self, request: Request, chat_id: int) -> Response:
        user = signed_in(request)
        chat = services.get_visible_chat(user=user, chat_id=chat_id)
        services.join_chat(user=user, chat=chat)
        return Response(self.get_serializer(chat).data)


class ChatLeave(APIView):
    @extend_schema(
        summary="Leave a room",
        description=(
            "An owner who leaves hands the room to its longest-standing member. A direct chat can't be left."
        ),
        request=None,
        responses={204: None, **errors(404)},
    )
    def post(self, request: Request, chat_id: int) -> Response:
        user = signed_in(request)
        services.leave_chat(user=user, chat=services.get_visible_chat(user=user, chat_id=chat_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChatMembers(generics.GenericAPIView[Membership]):
    serializer_class = MemberSerializer
    pagination_class = Pages

    @extend_schema(
        summary="List a chat's members",
        responses={200: MemberSerializer(many=True), **errors(404)},
        examples=[examples.MEMBERS],
    )
    def get(self, request: Request, chat_id: int) -> Response:
        chat = services.get_visible_chat(user=signed_in(request), chat_id=chat_id)
        members = Membership.objects.filter(chat=chat).select_related("user").order_by("joined_at", "pk")
        page = self.paginate_queryset(members)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        summary="Add someone to a room (its owner)",
        description="201 when the user joins now, 200 when they were already a member.",
        request=UserChoiceSerializer,
        parameters=[LOCATION],
        responses={201: MemberSerializer, 200: MemberSerializer, **errors(*BODY, 404)},
        examples=[*examples.ANOTHER_USER, examples.MEMBER_ADDED, examples.ALREADY_MEMBER],
    )
    def post(self, request: Request, chat_id: int) -> Response:
        user = signed_in(request)
        chat = services.get_visible_chat(user=user, chat_id=chat_id)
        other = validated(UserChoiceSerializer, request.data)["user"]
        already = services.is_member(user=other, chat=chat)
        membership = services.add_member(chat=chat, by=user, user=other)
        return created_or_replayed(
            request,
            self.get_serializer(membership).data,
            not already,
            "member",
            chat_id=chat.pk,
            user_id=other.pk,
        )


class ChatMember(generics.GenericAPIView[Membership]):
    serializer_class = MemberSerializer

    @extend_schema(
        summary="A member of a chat",
        responses={200: MemberSerializer, **errors(404)},
        examples=[examples.ONE_MEMBER],
    )
    def get(self, request: Request, chat_id: int, user_id: int) -> Response:
        chat = services.get_visible_chat(user=signed_in(request), chat_id=chat_id)
        # user__pk, not user_id: an id past the range of ids matches nothing instead of overflowing.
        membership = Membership.objects.filter(chat=chat, user__pk=user_id).select_related("user").first()
        if membership is None:
            raise Http404("No such member.")
        return Response(self.get_serializer(membership).data)

    @extend_schema(
        summary="Remove someone from a room (its owner)",
        description="The owner leaves by themselves instead (POST .../leave/).",
        request=None,
        responses={204: None, **errors(400, 404)},
    )
    def delete(self, request: Request, chat_id: int, user_id: int) -> Response:
        user = signed_in(request)
        chat = services.get_visible_chat(user=user, chat_id=chat_id)
        member = User.objects.filter(pk=user_id).first()
        if member is None:
            raise Http404(gettext("No such member."))
        services.remove_member(chat=chat, by=user, user=member)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DirectChat(generics.GenericAPIView[Chat]):
    serializer_class = ChatSerializer

    @extend_schema(
        summary="Open your direct chat with someone",
        description="201 when the chat is created now, 200 when it already existed.",
        request=UserChoiceSerializer,
        parameters=[LOCATION],
        responses={201: ChatSerializer, 200: ChatSerializer, **errors(*BODY)},
        examples=[*examples.ANOTHER_USER, examples.DIRECT_CREATED, examples.DIRECT_EXISTING],
    )
    def post(self, request: Request) -> Response:
        other = validated(UserChoiceSerializer, request.data)["user"]
        chat, is_new = services.open_direct_chat(user=signed_in(request), other=other)
        return created_or_replayed(request, self.get_serializer(chat).data, is_new, "chat", chat_id=chat.pk)
