"""The REST API's reactions and pins: a message's reactions, its pin, a chat's pins.

A message's reactions are their own resource rather than a field of the message: a
message's shape (and the events that carry it) stays the same for every caller, and a
reaction does not make every client reread the message.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from chat import services
from chat.api import examples
from chat.api.errors import BODY, LOCATION, RATE_LIMITED, errors, validated
from chat.api.pagination import Pages
from chat.api.views import created_or_replayed, signed_in
from chat.models import Message, Pin
from chat.serializers import MessageSerializer, UserSerializer
from chat.services.reactions import REACTIONS_PER_MESSAGE, ReactionGroup

# --- Shapes -------------------------------------------------------------------------


class ReactionSerializer(serializers.Serializer[Any]):
    """One emoji on a message, with everyone who reacted with it."""

    emoji = serializers.CharField(read_only=True)
    count = serializers.IntegerField(read_only=True, help_text="How many reacted with this emoji.")
    users = UserSerializer(many=True, read_only=True, help_text="Who reacted, in the order they did.")
    mine = serializers.BooleanField(read_only=True, help_text="Whether you reacted with it.")


class ReactionCreateSerializer(serializers.Serializer[Any]):
    # Types only: services.clean_emoji says what a reaction may be, for every door.
    emoji = serializers.CharField(
        allow_blank=True,
        trim_whitespace=False,
        help_text=(
            "One emoji (with its skin tone, or joined into one, or a flag): no letters, digits, "
            f"spaces or markup. A message has at most {REACTIONS_PER_MESSAGE} different ones."
        ),
    )


class PinSerializer(serializers.ModelSerializer[Pin]):
    message = MessageSerializer(read_only=True)
    pinned_by = UserSerializer(
        read_only=True, allow_null=True, help_text="Who pinned it (null: a deleted account)."
    )

    class Meta:
        model = Pin
        fields = ["message", "pinned_by", "pinned_at"]
        read_only_fields = fields


# --- Examples -----------------------------------------------------------------------

THUMBS_UP = {
    "emoji": "👍",
    "count": 2,
    "users": [examples.USER, {"id": 5, "username": "grace"}],
    "mine": True,
}
PIN = {"message": {**examples.MESSAGE, "event": 17}, "pinned_by": examples.USER, "pinned_at": examples.LATER}
# A list's example is one item: the schema generator wraps it in the list.
REACTIONS = examples.response("Reactions", THUMBS_UP)
ONE_REACTION = examples.response("A reaction", THUMBS_UP)
REACTION_REQUEST = examples.request("An emoji", {"emoji": "👍"})
REACTION_ADDED = examples.response("Your reaction, added", THUMBS_UP, 201)
REACTION_ALREADY = examples.response("Your reaction, already there", THUMBS_UP, 200)
PINS = examples.response("Pins", PIN)
ONE_PIN = examples.response("A pin", PIN)
PINNED = examples.response("The message, pinned now", PIN, 201)
ALREADY_PINNED = examples.response("The message, already pinned", PIN, 200)


def reaction_data(message: Message, emoji: str, viewer: Any) -> dict[str, Any]:
    """The message's reaction with an emoji (kept as services.clean_emoji keeps it), or 404."""
    group: ReactionGroup | None = next(
        (group for group in services.reactions_of(message) if group.emoji == emoji), None
    )
    if group is None:
        raise Http404(gettext("Nobody reacted to this message with this emoji."))
    return group.as_data(viewer)


def pin_data(message: Message) -> dict[str, Any]:
    """The message's pin, or 404."""
    try:
        pin = Pin.objects.select_related("message__user", "pinned_by").get(message=message)
    except Pin.DoesNotExist:
        raise Http404(gettext("This message is not pinned.")) from None
    return dict(PinSerializer(pin).data)


# --- Reactions ----------------------------------------------------------------------


class MessageReactions(generics.GenericAPIView[Message]):
    serializer_class = ReactionSerializer

    @extend_schema(
        summary="A message's reactions",
        tags=["reactions"],
        description="Each emoji on the message, in the order they came, with who reacted with it.",
        responses={200: ReactionSerializer(many=True), **errors(404)},
        examples=[REACTIONS],
    )
    def get(self, request: Request, message_id: int) -> Response:
        user = signed_in(request)
        message = services.get_visible_message(user=user, message_id=message_id)
        return Response([group.as_data(user) for group in services.reactions_of(message)])

    @extend_schema(
        summary="React to a message",
        tags=["reactions"],
        description=(
            "Members of the message's chat react with an emoji: 201 when your reaction is added, "
            "200 when you had already reacted with it. Everyone with the chat open sees it live, "
            "and the event stream sends `reaction.added`. Reacting is rated per user, over the "
            "page and the API together."
        ),
        request=ReactionCreateSerializer,
        parameters=[*RATE_LIMITED, LOCATION],
        responses={
            201: ReactionSerializer,
            200: OpenApiResponse(ReactionSerializer, "You had already reacted with this emoji."),
            **errors(*BODY, 404, 429),
        },
        examples=[*REACTION_REQUEST, REACTION_ADDED, REACTION_ALREADY],
    )
    def post(self, request: Request, message_id: int) -> Response:
        user = signed_in(request)
        message = services.get_visible_message(user=user, message_id=message_id)
        emoji = validated(ReactionCreateSerializer, request.data)["emoji"]
        added = services.add_reaction(message=message, user=user, emoji=emoji)
        emoji = services.clean_emoji(emoji)
        return created_or_replayed(
            request,
            reaction_data(message, emoji, user),
            added,
            "reaction",
            message_id=message.pk,
            emoji=emoji,
        )


class MessageReaction(generics.GenericAPIView[Message]):
    serializer_class = ReactionSerializer
    http_method_names = ["get", "delete", "options"]

    @extend_schema(
        summary="A message's reaction with one emoji",
        tags=["reactions"],
        description="The emoji goes in the path, percent-encoded as UTF-8 (👍 is `%F0%9F%91%8D`).",
        responses={200: ReactionSerializer, **errors(400, 404)},
        examples=[ONE_REACTION],
    )
    def get(self, request: Request, message_id: int, emoji: str) -> Response:
        user = signed_in(request)
        message = services.get_visible_message(user=user, message_id=message_id)
        return Response(reaction_data(message, services.clean_emoji(emoji), user))

    @extend_schema(
        summary="Take back your reaction",
        tags=["reactions"],
        description=(
            "204 whether or not you had reacted with it; when you had, everyone with the chat open "
            "sees it go, and the event stream sends `reaction.removed`."
        ),
        request=None,
        parameters=RATE_LIMITED,
        responses={204: None, **errors(400, 404, 429)},
    )
    def delete(self, request: Request, message_id: int, emoji: str) -> Response:
        user = signed_in(request)
        message = services.get_visible_message(user=user, message_id=message_id)
        services.remove_reaction(message=message, user=user, emoji=emoji)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Pins ---------------------------------------------------------------------------


class MessagePin(generics.GenericAPIView[Pin]):
    serializer_class = PinSerializer
    http_method_names = ["get", "post", "delete", "options"]

    @extend_schema(
        summary="A message's pin",
        tags=["pins"],
        description="404 when the message is not pinned.",
        responses={200: PinSerializer, **errors(404)},
        examples=[ONE_PIN],
    )
    def get(self, request: Request, message_id: int) -> Response:
        message = services.get_visible_message(user=signed_in(request), message_id=message_id)
        return Response(pin_data(message))

    @extend_schema(
        summary="Pin a message",
        tags=["pins"],
        description=(
            "Members pin a message in its chat's Pinned panel: 201 when it is pinned now, 200 when "
            "it already was. Everyone with the chat open sees it live, and the event stream sends "
            "`message.pinned`. Deleting a message unpins it."
        ),
        request=None,
        parameters=[*RATE_LIMITED, LOCATION],
        responses={
            201: PinSerializer,
            200: OpenApiResponse(PinSerializer, "The message was already pinned."),
            **errors(400, 404, 429),
        },
        examples=[PINNED, ALREADY_PINNED],
    )
    def post(self, request: Request, message_id: int) -> Response:
        user = signed_in(request)
        message = services.get_visible_message(user=user, message_id=message_id)
        pinned = services.pin_message(message=message, user=user)
        return created_or_replayed(request, pin_data(message), pinned, "pin", message_id=message.pk)

    @extend_schema(
        summary="Unpin a message",
        tags=["pins"],
        description=(
            "204 whether or not it was pinned; when it was, everyone with the chat open sees it, "
            "and the event stream sends `message.unpinned`."
        ),
        request=None,
        parameters=RATE_LIMITED,
        responses={204: None, **errors(404, 429)},
    )
    def delete(self, request: Request, message_id: int) -> Response:
        user = signed_in(request)
        message = services.get_visible_message(user=user, message_id=message_id)
        services.unpin_message(message=message, user=user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChatPins(generics.GenericAPIView[Pin]):
    serializer_class = PinSerializer
    pagination_class = Pages

    @extend_schema(
        summary="A chat's pinned messages",
        tags=["pins"],
        description="The latest pinned first, each with its message as `/api/messages/{id}/` shows it.",
        responses={200: PinSerializer(many=True), **errors(404)},
        examples=[PINS],
    )
    def get(self, request: Request, chat_id: int) -> Response:
        chat = services.get_visible_chat(user=signed_in(request), chat_id=chat_id)
        pins = (
            Pin.objects.filter(chat=chat)
            .select_related("message__user", "pinned_by")
            .order_by("-pinned_at", "-pk")
        )
        page = self.paginate_queryset(pins)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)
