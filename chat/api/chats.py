"""The REST API's chats: rooms, direct chats and their members (thin adapters over the services)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chat import services
from chat.api.errors import BODY, RETRY_AFTER, errors, validated
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
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        summary="Create a room that you own",
        description=(
            "With `participants`, those users become members at once, as if you added each; "
            "an id that is not an active user's is a 400 and nothing is created."
        ),
        request=RoomCreateSerializer,
        responses={201: RoomCreatedSerializer, **errors(*BODY)},
    )
    def post(self, request: Request) -> Response:
        user = signed_in(request)
        data = validated(RoomCreateSerializer, request.data)
        # One transaction: the room exists with all of its members or not at all, and
        # every push (the room in each member's chat list) goes after the commit.
        with transaction.atomic():
            chat = services.create_room(user=user, name=data["name"], visibility=data["visibility"])
            for participant in data["participants"]:
                services.add_member(chat=chat, by=user, user=participant)
        return Response(
            RoomCreatedSerializer(chat, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )


class ChatDetail(generics.GenericAPIView[Chat]):
    serializer_class = ChatSerializer

    @extend_schema(summary="A chat", responses={200: ChatSerializer, **errors(404)})
    def get(self, request: Request, chat_id: int) -> Response:
        chat = services.get_visible_chat(user=signed_in(request), chat_id=chat_id)
        return Response(self.get_serializer(chat).data)

    @extend_schema(
        summary="Change a room's name, topic or visibility (its owner)",
        description="Fields left out stay as they are. Members' pages and chat lists show the change live.",
        request=RoomUpdateSerializer,
        parameters=[RETRY_AFTER],
        responses={200: ChatSerializer, **errors(*BODY, 404, 429)},
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
        responses={201: MemberSerializer, 200: MemberSerializer, **errors(*BODY, 404)},
    )
    def post(self, request: Request, chat_id: int) -> Response:
        user = signed_in(request)
        chat = services.get_visible_chat(user=user, chat_id=chat_id)
        other = validated(UserChoiceSerializer, request.data)["user"]
        already = services.is_member(user=other, chat=chat)
        membership = services.add_member(chat=chat, by=user, user=other)
        return created_or_replayed(self.get_serializer(membership).data, created=not already)


class ChatMember(APIView):
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
            raise Http404("No such member.")
        services.remove_member(chat=chat, by=user, user=member)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DirectChat(generics.GenericAPIView[Chat]):
    serializer_class = ChatSerializer

    @extend_schema(
        summary="Open your direct chat with someone",
        description="201 when the chat is created now, 200 when it already existed.",
        request=UserChoiceSerializer,
        responses={201: ChatSerializer, 200: ChatSerializer, **errors(*BODY)},
    )
    def post(self, request: Request) -> Response:
        other = validated(UserChoiceSerializer, request.data)["user"]
        chat, created = services.open_direct_chat(user=signed_in(request), other=other)
        return created_or_replayed(self.get_serializer(chat).data, created)
