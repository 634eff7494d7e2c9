"""The REST API's messages: a chat's messages and change feed, the flat /api/messages/, one message."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from chat import services
from chat.api import examples
from chat.api.errors import BODY, LOCATION, RATE_LIMITED, errors, validated
from chat.api.pagination import MessagePages
from chat.api.views import created_or_replayed, signed_in
from chat.models import Chat, Message
from chat.serializers import (
    FlatMessageCreateSerializer,
    FlatMessageQuerySerializer,
    MessageCreateSerializer,
    MessageEditSerializer,
    MessageQuerySerializer,
    MessageSerializer,
)

# Posting takes files too, as multipart/form-data (chat.attachments).
WITH_FILES = [*generics.GenericAPIView.parser_classes, MultiPartParser]


def chat_messages(chat: Chat, query: dict[str, Any]) -> QuerySet[Message]:
    """A chat's messages to page through: the change feed (`since`) keeps the tombstones."""
    messages = Message.objects.filter(chat=chat).with_author().prefetch_related("attachments")
    return messages if "since" in query else messages.not_deleted()


def post_to(request: Request, chat: Chat, data: dict[str, Any]) -> Response:
    """Post a message of the caller's: 201, or 200 with the first message for a replayed client_id."""
    message, is_new = services.post_message(
        chat=chat,
        user=signed_in(request),
        text=data["text"],
        client_id=data.get("client_id"),
        reply_to=data.get("reply_to"),
        files=data.get("files", ()),
    )
    return created_or_replayed(
        request, MessageSerializer(message).data, is_new, "message", message_id=message.pk
    )


POST_MESSAGE_RESPONSES = {
    201: MessageSerializer,
    200: OpenApiResponse(
        MessageSerializer,
        "A replay: the message first sent with this client_id (a tombstone if it was deleted since).",
    ),
    **errors(*BODY, 404, 409, 429),
}


# --- Messages -----------------------------------------------------------------------


class ChatMessages(generics.GenericAPIView[Message]):
    parser_classes = WITH_FILES
    serializer_class = MessageSerializer
    pagination_class = MessagePages

    @extend_schema(
        summary="Read a chat's messages",
        tags=["messages"],
        description=(
            "Newest first, a page at a time: follow `next` for older messages. With `after`, the "
            "messages after that id instead, oldest first; `next` continues while there are more. "
            "Deleted messages are left out of both. With `since`, the change feed: every message "
            "posted, edited or deleted after that chat event, by event, deleted ones as tombstones "
            "(`deleted` true, empty `text`); start from the chat's `last_event` and keep the last "
            "`event` you saw."
        ),
        parameters=[MessageQuerySerializer],
        responses={200: MessageSerializer(many=True), **errors(400, 404)},
        examples=[examples.MESSAGES],
    )
    def get(self, request: Request, chat_id: int) -> Response:
        chat = services.get_visible_chat(user=signed_in(request), chat_id=chat_id)
        query = validated(MessageQuerySerializer, request.query_params)
        page = self.paginate_queryset(chat_messages(chat, query))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        summary="Post a message",
        tags=["messages"],
        description=(
            "The message reaches every open browser in the chat. Posting is rated per user, over "
            "the page, the socket and the API together; "
            "a replay of a `client_id` you used before returns the first message with 200, and "
            "the same `client_id` with other text is a 409."
        ),
        request=MessageCreateSerializer,
        parameters=[*RATE_LIMITED, LOCATION],
        responses=POST_MESSAGE_RESPONSES,
        examples=[*examples.MESSAGE_REQUEST, examples.MESSAGE_POSTED, examples.MESSAGE_REPLAYED],
    )
    def post(self, request: Request, chat_id: int) -> Response:
        chat = services.get_visible_chat(user=signed_in(request), chat_id=chat_id)
        return post_to(request, chat, validated(MessageCreateSerializer, request.data))


class FlatMessages(generics.GenericAPIView[Message]):
    """The original API's flat route: messages of every chat the caller may see."""

    parser_classes = WITH_FILES
    serializer_class = MessageSerializer
    pagination_class = MessagePages

    @extend_schema(
        summary="Read the messages of all your chats and the public rooms",
        tags=["messages"],
        description=(
            "Newest first, a page at a time, as a chat's messages are; `chat` keeps to one chat "
            "(404 if you may not see it), and `after` and (with `chat`) `since` work as there."
        ),
        parameters=[FlatMessageQuerySerializer],
        responses={200: MessageSerializer(many=True), **errors(400, 404)},
        examples=[examples.MESSAGES],
    )
    def get(self, request: Request) -> Response:
        user = signed_in(request)
        query = validated(FlatMessageQuerySerializer, request.query_params)
        if "chat" in query:
            messages = chat_messages(services.get_visible_chat(user=user, chat_id=query["chat"]), query)
        else:
            messages = Message.objects.visible_to(user).not_deleted().with_author()
            messages = messages.prefetch_related("attachments")
        page = self.paginate_queryset(messages)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        summary="Post a message to a chat named in the body",
        tags=["messages"],
        description="The same as posting to `/api/chats/{chat_id}/messages/`, with the chat's id as `chat`.",
        request=FlatMessageCreateSerializer,
        parameters=[*RATE_LIMITED, LOCATION],
        responses=POST_MESSAGE_RESPONSES,
        examples=[*examples.FLAT_MESSAGE_REQUEST, examples.MESSAGE_POSTED, examples.MESSAGE_REPLAYED],
    )
    def post(self, request: Request) -> Response:
        data = validated(FlatMessageCreateSerializer, request.data)
        chat = services.get_visible_chat(user=signed_in(request), chat_id=data["chat"])
        return post_to(request, chat, data)


class MessageDetail(generics.GenericAPIView[Message]):
    serializer_class = MessageSerializer
    http_method_names = ["get", "patch", "delete", "options"]

    @extend_schema(
        summary="A message",
        responses={200: MessageSerializer, **errors(404)},
        examples=[examples.ONE_MESSAGE],
    )
    def get(self, request: Request, message_id: int) -> Response:
        message = services.get_visible_message(user=signed_in(request), message_id=message_id)
        return Response(self.get_serializer(message).data)

    @extend_schema(
        summary="Edit your message",
        description="Editing is rated per user, over the page, the socket and the API together.",
        request=MessageEditSerializer,
        parameters=RATE_LIMITED,
        responses={200: MessageSerializer, **errors(*BODY, 404, 429)},
        examples=[*examples.EDIT_REQUEST, examples.EDITED],
    )
    def patch(self, request: Request, message_id: int) -> Response:
        user = signed_in(request)
        message = services.get_visible_message(user=user, message_id=message_id)
        text = validated(MessageEditSerializer, request.data)["text"]
        return Response(
            self.get_serializer(services.edit_message(message=message, user=user, text=text)).data
        )

    @extend_schema(
        summary="Delete a message (its author or the room's owner)",
        request=None,
        responses={204: None, **errors(404)},
    )
    def delete(self, request: Request, message_id: int) -> Response:
        user = signed_in(request)
        services.delete_message(
            message=services.get_visible_message(user=user, message_id=message_id), user=user
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
