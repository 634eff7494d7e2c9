"""The shapes of the REST API.

Output shapes stay compatible with the seed's serializers (a chat has `id` and `name`; a
message has `id`, `user {id, username}`, `text` and `timestamp`) and add to them. Every
field the server decides is read-only, so a client that sends `user`, `chat`, `id` or
`timestamp` has them ignored. Input serializers only check the types of a request; the
rules live in the services.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from chat.models import MESSAGE_MAX_LENGTH, VISIBILITY_ERROR, Chat, Membership, Message

# `Chat.viewer_role` is annotated onto listed chats so that a page costs one query.
VIEWER_ROLE = "viewer_role"


class UserSerializer(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = ["id", "username"]
        read_only_fields = fields


class ChatSerializer(serializers.ModelSerializer[Chat]):
    role = serializers.SerializerMethodField(
        help_text="Your role in the chat: `owner`, `member`, or null when you have not joined it."
    )

    class Meta:
        model = Chat
        fields = ["id", "name", "kind", "visibility", "topic", "created_at", "role"]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=Membership.Role.choices, allow_null=True))
    def get_role(self, chat: Chat) -> str | None:
        if hasattr(chat, VIEWER_ROLE):
            return getattr(chat, VIEWER_ROLE)
        user = self.context["request"].user
        return Membership.objects.filter(chat=chat, user=user).values_list("role", flat=True).first()


class UserQuerySerializer(serializers.Serializer[Any]):
    username = serializers.CharField(required=False, help_text="Only the user with this username.")


class RoomCreateSerializer(serializers.Serializer[Any]):
    # Types only: services.create_room checks the name (and the visibility), for every door.
    name = serializers.CharField(allow_blank=True, trim_whitespace=False)
    visibility = serializers.ChoiceField(
        choices=Chat.Visibility.choices,
        default=Chat.Visibility.PUBLIC,
        error_messages={"invalid_choice": VISIBILITY_ERROR},
    )


class RoomUpdateSerializer(serializers.Serializer[Any]):
    """A room's settings, each optional: what is left out stays as it is."""

    name = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    topic = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    visibility = serializers.ChoiceField(
        choices=Chat.Visibility.choices, required=False, error_messages={"invalid_choice": VISIBILITY_ERROR}
    )


class UserChoiceSerializer(serializers.Serializer[Any]):
    """A request naming another user by id."""

    user = serializers.PrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True))


class MemberSerializer(serializers.ModelSerializer[Membership]):
    user = UserSerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["user", "role", "joined_at"]
        read_only_fields = fields


class MessageSerializer(serializers.ModelSerializer[Message]):
    user = UserSerializer(read_only=True)

    class Meta:
        model = Message
        fields = ["id", "chat", "user", "text", "timestamp", "edited_at", "client_id"]
        read_only_fields = fields


class MessageCreateSerializer(serializers.Serializer[Any]):
    # Types only: services.validate_text says what a message may hold, for every door.
    text = serializers.CharField(
        allow_blank=True, trim_whitespace=False, help_text=f"At most {MESSAGE_MAX_LENGTH} characters."
    )
    client_id = serializers.UUIDField(
        required=False,
        allow_null=True,
        help_text=(
            "Chosen by the client, so that a retried send makes one message: the same client_id "
            "from the same user returns the first message with 200."
        ),
    )


class MessageQuerySerializer(serializers.Serializer[Any]):
    after = serializers.IntegerField(
        required=False,
        min_value=0,
        help_text="Only messages after this id, oldest first (for clients that poll).",
    )


class MessageEditSerializer(serializers.Serializer[Any]):
    text = serializers.CharField(
        allow_blank=True, trim_whitespace=False, help_text=f"At most {MESSAGE_MAX_LENGTH} characters."
    )


class TokenSerializer(serializers.Serializer[Any]):
    token = serializers.CharField(read_only=True)


class ErrorSerializer(serializers.Serializer[Any]):
    """Every refusal that is not about the fields of the request."""

    detail = serializers.CharField(read_only=True)
