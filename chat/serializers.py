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
from django.urls import reverse
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from chat.models import (
    ID_MAX,
    MESSAGE_MAX_LENGTH,
    VISIBILITY_ERROR,
    ApiToken,
    Attachment,
    Bot,
    Chat,
    Membership,
    Message,
)

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
                raise serializers.ValidationError(gettext("Give user ids: whole numbers from 1.")) from None
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
    client_id = serializers.UUIDField(
        required=False,
        allow_null=True,
        help_text=(
            "Chosen by the client, so that a retried request makes one room: the same client_id "
            "from the same user returns the room it first made, with 200."
        ),
    )

    def validate_participants(self, ids: list[int]) -> list[User]:
        """The users, in the order given and once each; unknown or inactive ids are named together."""
        wanted = list(dict.fromkeys(ids))
        users = User.objects.filter(is_active=True).in_bulk(wanted)
        unknown = [str(pk) for pk in wanted if pk not in users]
        if unknown:
            raise serializers.ValidationError(
                gettext("No such users: %(ids)s.") % {"ids": ", ".join(unknown)}
            )
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


class AttachmentSerializer(serializers.ModelSerializer[Attachment]):
    url = serializers.SerializerMethodField(
        help_text=(
            "Where the file is downloaded, by members of the chat (and readers of a public room), "
            "signed in with the session or `Authorization: Token`."
        )
    )
    thumbnail_url = serializers.SerializerMethodField(
        help_text="An image's thumbnail (WebP, at most 400 by 400 pixels, no metadata); null for other files."
    )

    class Meta:
        model = Attachment
        fields = ["id", "name", "size", "content_type", "url", "thumbnail_url", "width", "height"]
        read_only_fields = fields
        extra_kwargs = {
            "name": {"help_text": "The file's name as it was sent."},
            "size": {"help_text": "In bytes."},
            "content_type": {
                "help_text": (
                    "Decided by the server: image/png, image/jpeg, image/gif or image/webp for the "
                    "images it read (shown inline), else from the name (always downloaded)."
                )
            },
            "width": {"help_text": "An image's width in pixels, upright; null for other files."},
            "height": {"help_text": "An image's height in pixels, upright; null for other files."},
        }

    def get_url(self, attachment: Attachment) -> str:
        return reverse("chat:attachment", args=[attachment.pk])

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_thumbnail_url(self, attachment: Attachment) -> str | None:
        if not attachment.thumbnail:
            return None
        return reverse("chat:attachment_thumbnail", args=[attachment.pk])


class MessageSerializer(serializers.ModelSerializer[Message]):
    user = UserSerializer(read_only=True)
    attachments = serializers.SerializerMethodField(
        help_text="The files sent with the message, in the order they were sent; empty once it is deleted."
    )
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
            "html",
            "reply_to",
            "timestamp",
            "edited_at",
            "client_id",
            "seq",
            "event",
            "deleted",
            "attachments",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "seq": {"help_text": "The message's number in its chat, one more than the one before it."},
            "html": {
                "help_text": (
                    "The text rendered from its Markdown subset by the server: safe HTML "
                    "(an allow-list of tags; only http, https and mailto links)."
                )
            },
            "event": {
                "help_text": (
                    "The chat's event that made this version of the message (its post, last edit "
                    "or deletion): `?since=` compares with it."
                )
            },
        }

    @extend_schema_field(AttachmentSerializer(many=True))
    def get_attachments(self, message: Message) -> list[dict[str, Any]]:
        # A tombstone's files are gone; the others' come prefetched where a list is shown.
        # Most messages have none: no serializer is made for them.
        files = message.attachments.all()
        if message.is_deleted or not files:
            return []
        return AttachmentSerializer(files, many=True).data  # type: ignore[return-value]


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
    reply_to = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=ID_MAX,
        help_text="The id of the message this one answers: a message of the same chat, not deleted.",
    )
    # Types only, as for the text: chat.attachments says how many files, and how large.
    files = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True, use_url=False),
        required=False,
        help_text=(
            "Files to attach, in a multipart/form-data request (each part named `files`); the "
            "text may then be empty. How many, and how large, the server's settings say "
            "(ATTACHMENTS_PER_MESSAGE, ATTACHMENT_MAX_BYTES)."
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
            raise serializers.ValidationError(gettext("Give `after` or `since`, not both."))
        return attrs


class FlatMessageQuerySerializer(MessageQuerySerializer):
    chat = serializers.IntegerField(
        required=False, min_value=1, max_value=ID_MAX, help_text="Only the messages of this chat."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if "since" in attrs and "chat" not in attrs:
            raise serializers.ValidationError({"since": [gettext("A chat's events need `chat`.")]})
        return attrs


class FlatMessageCreateSerializer(MessageCreateSerializer):
    # A number only: a chat the caller may not see is a 404, as on every route.
    chat = serializers.IntegerField(min_value=1, max_value=ID_MAX, help_text="The chat to post in.")


class MessageEditSerializer(serializers.Serializer[Any]):
    text = serializers.CharField(
        allow_blank=True, trim_whitespace=False, help_text=f"At most {MESSAGE_MAX_LENGTH} characters."
    )


# --- Tokens and bots ----------------------------------------------------------------


class CredentialsSerializer(serializers.Serializer[Any]):
    # Types only: services.token_for_credentials counts the attempt and checks the password.
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(trim_whitespace=False, max_length=4096, style={"input_type": "password"})
    name = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text='What the token is for, to tell it apart in GET /api/tokens/ ("API token" if left out).',
    )


class TokenCreateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text='What the token is for (at most 100 characters; "API token" if left out).',
    )


class ApiTokenSerializer(serializers.ModelSerializer[ApiToken]):
    """A token as lists show it: never its key, which only its creation returns."""

    current = serializers.SerializerMethodField(help_text="Whether this request signed in with this token.")

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "current"]
        read_only_fields = fields
        extra_kwargs = {
            "prefix": {"help_text": "The key's first characters, to tell tokens apart."},
            "last_used_at": {
                "help_text": "When the token last signed a request in (to the minute), or null."
            },
        }

    def get_current(self, token: ApiToken) -> bool:
        request = self.context.get("request")
        return request is not None and isinstance(request.auth, ApiToken) and request.auth.pk == token.pk


class NewTokenSerializer(ApiTokenSerializer):
    """A token just made, with its key: shown this once, as only its hash is stored."""

    token = serializers.CharField(
        read_only=True,
        help_text="The key, for `Authorization: Token <key>`. Keep it: it is never shown again.",
    )

    class Meta(ApiTokenSerializer.Meta):
        fields = ["token", *ApiTokenSerializer.Meta.fields]
        read_only_fields = fields


class BotCreateSerializer(serializers.Serializer[Any]):
    # Types only: services.create_bot checks the name as the sign-up form does.
    username = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=1000)
    token_name = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text='The name of the bot\'s first token ("Bot token" if left out).',
    )


class BotSerializer(serializers.ModelSerializer[Bot]):
    id = serializers.IntegerField(source="user_id", read_only=True, help_text="The bot's user id.")
    username = serializers.CharField(source="user.username", read_only=True)
    active = serializers.BooleanField(
        source="user.is_active", read_only=True, help_text="False once it has been deactivated."
    )

    class Meta:
        model = Bot
        fields = ["id", "username", "active", "created_at"]
        read_only_fields = fields


class BotCreatedSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(read_only=True, help_text="The bot's user id.")
    username = serializers.CharField(read_only=True)
    token = serializers.CharField(
        read_only=True, help_text="The bot's first API token. Keep it: it is never shown again."
    )


# --- Errors -------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer[Any]):
    """Every refusal that is not about the fields of the request."""

    detail = serializers.CharField(read_only=True, help_text="What went wrong, in words for people.")
    code = serializers.CharField(
        read_only=True,
        help_text=(
            "What went wrong, for programs: `not_authenticated`, `authentication_failed`, "
            "`permission_denied`, `not_found`, `method_not_allowed`, `unsupported_media_type`, "
            "`parse_error`, `conflict`, `throttled`, …"
        ),
    )
