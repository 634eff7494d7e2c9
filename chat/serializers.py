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

from chat.models import ID_MAX, MESSAGE_MAX_LENGTH, VISIBILITY_ERROR, Chat, Membership, Message

# A room created with its members in one request has at most this many besides its owner.
PARTICIPANTS_MAX = 200

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
        fields = ["id", "name", "kind", "visibility", "topic", "created_at", "role", "last_event"]
        read_only_fields = fields
        extra_kwargs = {
            "last_event": {
                "help_text": (
                    "The chat's latest event (a message posted, edited or deleted): where "
                    "`GET .../messages/?since=` starts to follow its changes."
                )
            }
        }

    @extend_schema_field(serializers.ChoiceField(choices=Membership.Role.choices, allow_null=True))
    def get_role(self, chat: Chat) -> str | None:
        if hasattr(chat, VIEWER_ROLE):
            return getattr(chat, VIEWER_ROLE)
        user = self.context["request"].user
        return Membership.objects.filter(chat=chat, user=user).values_list("role", flat=True).first()


class UserQuerySerializer(serializers.Serializer[Any]):
    username = serializers.CharField(required=False, help_text="Only the user with this username.")


class UserIdsField(serializers.ListField):
    """A list of user ids; a wrong item is named in one flat message, as every field error is a
    list of strings (ListField would answer a nested object keyed by position)."""

    child = serializers.IntegerField(min_value=1, max_value=ID_MAX)

    def to_internal_value(self, data: Any) -> list[int]:
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as error:
            if isinstance(error.detail, dict):
                raise serializers.ValidationError("Give user ids: whole numbers from 1.") from None
            raise


class RoomCreateSerializer(serializers.Serializer[Any]):
    # Types only: services.create_room checks the name (and the visibility), for every door.
    name = serializers.CharField(allow_blank=True, trim_whitespace=False)
    visibility = serializers.ChoiceField(
        choices=Chat.Visibility.choices,
        default=Chat.Visibility.PUBLIC,
        error_messages={"invalid_choice": VISIBILITY_ERROR},
    )
    participants = UserIdsField(
        required=False,
        default=list,
        max_length=PARTICIPANTS_MAX,
        help_text=(
            "Ids of active users who become members of the room at once, as the owner adding "
            f"them would (at most {PARTICIPANTS_MAX}); you are its owner either way."
        ),
    )

    def validate_participants(self, ids: list[int]) -> list[User]:
        """The users, in the order given and once each; unknown or inactive ids are named together."""
        wanted = list(dict.fromkeys(ids))
        users = User.objects.filter(is_active=True).in_bulk(wanted)
        unknown = [str(pk) for pk in wanted if pk not in users]
        if unknown:
            raise serializers.ValidationError(f"No such users: {', '.join(unknown)}.")
        return [users[pk] for pk in wanted]


class RoomCreatedSerializer(ChatSerializer):
    """A room as its creation returns it: with its members' ids, as the original API gave them."""

    participants = serializers.SerializerMethodField(help_text="The ids of the room's members, you included.")

    class Meta(ChatSerializer.Meta):
        fields = [*ChatSerializer.Meta.fields, "participants"]
        read_only_fields = fields

    def get_participants(self, chat: Chat) -> list[int]:
        return list(
            Membership.objects.filter(chat=chat).order_by("user_id").values_list("user_id", flat=True)
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
    deleted = serializers.BooleanField(
        source="is_deleted",
        read_only=True,
        help_text="A deleted message stays as a tombstone: `deleted` is true and its `text` is empty.",
    )

    class Meta:
        model = Message
        fields = [
            "id",
            "chat",
            "user",
            "text",
            "timestamp",
            "edited_at",
            "client_id",
            "seq",
            "event",
            "deleted",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "seq": {"help_text": "The message's number in its chat, one more than the one before it."},
            "event": {
                "help_text": (
                    "The chat's event that made this version of the message (its post, last edit "
                    "or deletion): `?since=` compares with it."
                )
            },
        }


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
        max_value=ID_MAX,
        help_text="Only messages after this id, oldest first (for clients that poll).",
    )
    since = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=ID_MAX,
        help_text=(
            "Every message posted, edited or deleted after this chat event (a chat's `last_event`, "
            "or a message's `event`), oldest event first, deleted ones as tombstones: the change feed. "
            "`next` continues while there are more."
        ),
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "after" in attrs and "since" in attrs:
            raise serializers.ValidationError("Give `after` or `since`, not both.")
        return attrs


class FlatMessageQuerySerializer(MessageQuerySerializer):
    chat = serializers.IntegerField(
        required=False, min_value=1, max_value=ID_MAX, help_text="Only the messages of this chat."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if "since" in attrs and "chat" not in attrs:
            raise serializers.ValidationError({"since": ["A chat's events need `chat`."]})
        return attrs


class FlatMessageCreateSerializer(MessageCreateSerializer):
    # A number only: a chat the caller may not see is a 404, as on every route.
    chat = serializers.IntegerField(min_value=1, max_value=ID_MAX, help_text="The chat to post in.")


class MessageEditSerializer(serializers.Serializer[Any]):
    text = serializers.CharField(
        allow_blank=True, trim_whitespace=False, help_text=f"At most {MESSAGE_MAX_LENGTH} characters."
    )


class TokenSerializer(serializers.Serializer[Any]):
    token = serializers.CharField(read_only=True)


class ErrorSerializer(serializers.Serializer[Any]):
    """Every refusal that is not about the fields of the request."""

    detail = serializers.CharField(read_only=True)
