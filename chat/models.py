"""Chats, memberships and messages, with the queries that read them."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User
    from django.http import HttpRequest

MESSAGE_MAX_LENGTH = 4000
ROOM_NAME_MAX_LENGTH = 100
TOPIC_MAX_LENGTH = 200
VISIBILITY_ERROR = _("Choose public or private.")
PAGE_SIZE = 50
# Ids and event numbers are 64-bit in the database: every door refuses a larger one.
ID_MAX = 2**63 - 1


def parse_id(value: str) -> int:
    """A message id or event number written as ASCII digits, or ValueError."""
    if not (value.isascii() and value.isdigit() and len(value) <= 19 and int(value) <= ID_MAX):
        raise ValueError(value)
    return int(value)


class ChatQuerySet(models.QuerySet["Chat"]):
    def visible_to(self, user: User | AnonymousUser) -> ChatQuerySet:
        """Chats the user is a member of, and public rooms."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(
            Q(memberships__user=user) | Q(kind=Chat.Kind.ROOM, visibility=Chat.Visibility.PUBLIC)
        ).distinct()

    def of_member(self, user: User) -> ChatQuerySet:
        return self.filter(memberships__user=user)

    def joinable_by(self, user: User) -> ChatQuerySet:
        """Public rooms the user has not joined."""
        return self.filter(kind=Chat.Kind.ROOM, visibility=Chat.Visibility.PUBLIC).exclude(
            memberships__user=user
        )


class Chat(models.Model):
    class Kind(models.TextChoices):
        ROOM = "room", _("Room")
        DIRECT = "direct", _("Direct")

    class Visibility(models.TextChoices):
        PUBLIC = "public", _("Public")
        PRIVATE = "private", _("Private")

    name = models.CharField(max_length=ROOM_NAME_MAX_LENGTH)
    # One line under the room's name, set by its owner.
    topic = models.CharField(max_length=TOPIC_MAX_LENGTH, blank=True, default="")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.ROOM)
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.PUBLIC)
    # Every new account becomes a member of the rooms marked here (General, from the migrations).
    auto_join = models.BooleanField(default=False)
    # "<lower user id>:<higher user id>" for a direct chat, so that a pair has only one.
    direct_key = models.CharField(max_length=50, null=True, blank=True, unique=True, editable=False)
    # Counters of the chat's history: the last message's sequence number, and the last
    # change of any kind (a post, an edit, a deletion). Clients use them to notice a
    # push they missed and to ask for what changed since.
    last_seq = models.PositiveBigIntegerField(default=0, editable=False)
    last_event = models.PositiveBigIntegerField(default=0, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Chosen by the client that created the room, so that a retried creation makes one room.
    client_id = models.UUIDField(null=True, blank=True, editable=False)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="chats", blank=True
    )

    objects = ChatQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["created_by", "client_id"],
                condition=Q(client_id__isnull=False),
                name="one_chat_per_creator_and_client_id",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("chat:detail", args=[self.pk])

    @property
    def is_public(self) -> bool:
        return self.kind == Chat.Kind.ROOM and self.visibility == Chat.Visibility.PUBLIC


class MembershipQuerySet(models.QuerySet["Membership"]):
    def with_unread_count(self) -> MembershipQuerySet:
        """Annotate each membership with the others' messages after its last read one, and
        how many of them mention the member (or everyone)."""
        mentioning = Q(mentions=OuterRef("user")) | Q(mentions_everyone=True)
        return self.annotate(
            unread_count=count_of(unread_messages()),
            mention_count=count_of(unread_messages().filter(mentioning), distinct=True),
        )


def unread_messages() -> models.QuerySet[Message]:
    """The others' messages after the (outer) member's last read one: read by the index on
    (chat, id) from that point on, so a member's count costs what is unread, not the chat's
    whole history."""
    return Message.objects.filter(
        chat=OuterRef("chat"), pk__gt=Coalesce(OuterRef("last_read_message_id"), 0), deleted_at__isnull=True
    ).exclude(user=OuterRef("user"))


def count_of(messages: models.QuerySet[Message], *, distinct: bool = False) -> Coalesce:
    """A subquery counting the messages: one per membership, multiplying no rows."""
    counted = (
        messages.order_by().values("chat").annotate(count=Count("pk", distinct=distinct)).values("count")
    )
    return Coalesce(Subquery(counted), 0)


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        MEMBER = "member"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(auto_now_add=True)
    last_read_message = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The chat's event that made this membership (chat.created or member.added): a client of
    # the event stream that was away when it was added follows the chat from there.
    joined_event = models.PositiveBigIntegerField(default=0, editable=False)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "chat"], name="one_membership_per_user_and_chat")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.chat}"


class MessageQuerySet(models.QuerySet["Message"]):
    def with_author(self) -> MessageQuerySet:
        """With the author, and the answered message and its author (the reply quote)."""
        return self.select_related("user", "reply_to__user")

    def not_deleted(self) -> MessageQuerySet:
        return self.filter(deleted_at__isnull=True)

    def visible_to(self, user: User | AnonymousUser) -> MessageQuerySet:
        """Messages of the chats the user may see (Chat.objects.visible_to)."""
        return self.filter(chat__in=Chat.objects.visible_to(user).values("pk"))

    def latest_page(self, chat: Chat, *, before: int | None = None, size: int = PAGE_SIZE) -> list[Message]:
        """Up to `size` messages of the chat before id `before` (or the newest), oldest first."""
        messages = self.filter(chat=chat)
        if before is not None:
            messages = messages.filter(pk__lt=before)
        return list(reversed(messages.with_author().order_by("-pk")[:size]))

    def around(self, chat: Chat, message_id: int, *, size: int = PAGE_SIZE) -> list[Message]:
        """Up to `size` messages of the chat around one (it and those before it, then those
        after), oldest first: a permalink's page."""
        before = self.latest_page(chat, before=message_id + 1, size=size // 2)
        return before + self.after(chat, message_id, size=size - len(before))

    def after(self, chat: Chat, after: int, *, size: int = PAGE_SIZE) -> list[Message]:
        """Up to `size` messages of the chat after id `after`, oldest first."""
        return list(self.filter(chat=chat, pk__gt=after).with_author().order_by("pk")[:size])

    def last_in(self, chat_id: int) -> Message | None:
        """The chat's newest message (a tombstone too), with its author: a chat list's preview."""
        return self.filter(chat_id=chat_id).with_author().order_by("-pk").first()

    def changed_since(self, chat: Chat, *, after: int, since: int) -> MessageQuerySet:
        """Messages up to id `after` changed (edited or deleted) after the chat's event `since`."""
        return self.filter(chat=chat, pk__lte=after, event__gt=since).with_author().order_by("pk")


class Message(models.Model):
    # No index of its own: the indexes below lead with the chat. With one, PostgreSQL read a
    # chat's whole history through it to count the unread messages after an id.
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="messages", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="messages")
    text = models.TextField(max_length=MESSAGE_MAX_LENGTH)
    # The text as HTML (chat.markdown), made once per version when it is written.
    html = models.TextField(blank=True, default="", editable=False)
    # One more than the chat's previous message: a gap tells a client it missed one.
    seq = models.PositiveBigIntegerField(editable=False)
    # The chat's event that made this version (its post, its last edit or its deletion).
    event = models.PositiveBigIntegerField(editable=False)
    timestamp = models.DateTimeField(auto_now_add=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    # A deleted message stays as a tombstone without its text, so that every client learns of it.
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Chosen by the sending client, so that a retried send makes one message.
    client_id = models.UUIDField(null=True, blank=True)
    # The message this one answers (shown as a one-line quote linking to it).
    reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies", editable=False
    )
    # Who the text mentions (@username), recognised when it is written; @here is everyone in the chat.
    mentions = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="mentioned_in", editable=False
    )
    mentions_everyone = models.BooleanField(default=False, editable=False)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["pk"]
        indexes = [
            # Serves both "the latest N of a chat" (backwards) and "after id X" (forwards).
            models.Index(fields=["chat", "id"], name="message_chat_id"),
            # Serves "what changed since event N" when a client catches up.
            models.Index(fields=["chat", "event"], name="message_chat_event"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["chat", "seq"], name="one_message_per_chat_seq"),
            models.UniqueConstraint(
                fields=["user", "client_id"],
                condition=Q(client_id__isnull=False),
                name="one_message_per_user_and_client_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.text[:40]}"

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class Event(models.Model):
    """One change in a chat, as the event stream sends it (chat.events).

    Its frame's JSON is made once, when the change is stored, and kept so that a client
    that reconnects gets what it missed, in order, from the same bytes.
    """

    # No index of its own: the unique constraint below leads with the chat (as for Message).
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="events", db_index=False)
    # The chat's event number (Chat.last_event when it happened): gapless per chat.
    number = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=40)
    data = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["chat", "number"]
        constraints = [models.UniqueConstraint(fields=["chat", "number"], name="one_event_per_chat_number")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.number} in chat {self.chat_id}"


class Reaction(models.Model):
    """Someone's emoji on a message; each person reacts with each emoji once."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reactions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reactions")
    emoji = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "user", "emoji"], name="one_reaction_per_user_and_emoji"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.emoji} on {self.message_id}"


class Pin(models.Model):
    """A message a member pinned in its chat, kept at hand in the chat's Pinned panel."""

    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="pins")
    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="pin")
    pinned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    pinned_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-pinned_at", "-pk"]

    def __str__(self) -> str:
        return f"pin of {self.message_id} in {self.chat_id}"


def with_extras(messages: list[Message]) -> list[Message]:
    """Load what shown messages carry besides their text: their files, their reactions (with
    who reacted) and their pins. Three queries, however many messages there are."""
    models.prefetch_related_objects(
        messages,
        "attachments",
        models.Prefetch(
            "reactions", queryset=Reaction.objects.select_related("user").order_by("created_at", "pk")
        ),
        "pin",
    )
    return messages


def page_context(chat: Chat, messages: list[Message], request: HttpRequest | None) -> dict[str, Any]:
    """A page of messages, each with its HTML for the page of `request` (or as pushed, for
    None: chat.fragments), with the ids to link to the pages before and after it."""
    from chat import fragments  # which reads these models

    chat_messages = Message.objects.filter(chat=chat)
    fragments.attach(messages, request)
    # Asked by the chat's own numbers (seq), which only the (chat, seq) index serves: asked by
    # id, PostgreSQL may read the ids after the page's through every chat's messages.
    older = messages and chat_messages.filter(seq__lt=messages[0].seq).exists()
    newer = messages and chat_messages.filter(seq__gt=messages[-1].seq).exists()
    return {
        "page_messages": messages,
        # Counted only if the template shows it (the chat page's Pinned link).
        "pin_count": Pin.objects.filter(chat=chat).count,
        "older_before": messages[0].pk if older else None,
        "newer_after": messages[-1].pk if newer else None,
    }


def sidebar(user: User) -> dict[str, list[Membership]]:
    """The user's chats for the sidebar, most recent activity first, rooms and direct chats
    apart: each membership with its `unread_count` and its chat's `last_message` (or None).

    Two queries, whatever the number of chats; each chat's last message is read from the
    end of the index on (chat, id), so a long history costs nothing.
    """
    memberships = list(
        Membership.objects.filter(user=user)
        .select_related("chat")
        .with_unread_count()
        .annotate(
            latest_id=Subquery(Message.objects.filter(chat=OuterRef("chat")).order_by("-pk").values("pk")[:1])
        )
        .order_by("chat__name", "chat__pk")
    )
    latest = [membership.latest_id for membership in memberships if membership.latest_id]
    last_messages = {
        message.chat_id: message for message in Message.objects.filter(pk__in=latest).with_author()
    }
    for membership in memberships:
        membership.chat.last_message = last_messages.get(membership.chat_id)  # type: ignore[attr-defined]
    memberships.sort(key=lambda m: getattr(m.chat.last_message, "pk", 0) or 0, reverse=True)  # type: ignore[attr-defined]
    return {
        "rooms": [m for m in memberships if m.chat.kind == Chat.Kind.ROOM],
        "direct": [m for m in memberships if m.chat.kind == Chat.Kind.DIRECT],
    }


def sidebar_entry(*, user_id: int, chat_id: int) -> Membership | None:
    """One chat of the user's chat list, as `sidebar` gives each, or None if not a member."""
    membership = (
        Membership.objects.filter(user_id=user_id, chat_id=chat_id)
        .select_related("chat")
        .with_unread_count()
        .first()
    )
    if membership is not None:
        membership.chat.last_message = Message.objects.last_in(chat_id)  # type: ignore[attr-defined]
    return membership


class ApiToken(models.Model):
    """One of a user's named API tokens. Only the SHA-256 digest of its key is stored: the
    key is shown once, when the token is made (chat.services.accounts.issue_token)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    # hashlib.sha256(key).hexdigest(): a key has 256 random bits, so a plain hash is enough.
    digest = models.CharField(max_length=64, unique=True, editable=False)
    # The key's first characters, to tell tokens apart in a list; too short to guess the rest.
    prefix = models.CharField(max_length=8, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class Bot(models.Model):
    """An account for a program: no password, signs in with API tokens only."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="bot"
    )
    # The person who made it (None: made by an administrator, or its owner's account is gone).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="bots"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"bot {self.user_id}"


def attachment_path(attachment: Attachment, filename: str) -> str:
    """Where a file is stored: a folder per chat and a random name, never the sender's
    name for it (which is kept in `Attachment.name`, for showing and downloading)."""
    return f"attachments/{attachment.chat_id}/{secrets.token_urlsafe(18)}"


def thumbnail_path(attachment: Attachment, filename: str) -> str:
    return f"attachments/{attachment.chat_id}/{secrets.token_urlsafe(18)}.webp"


class Attachment(models.Model):
    """A file sent with a message, stored through Django's storage API (chat.attachments)
    and served only to those who may see its chat (chat.attachment_views)."""

    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="attachments")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    file = models.FileField(upload_to=attachment_path, max_length=255)
    # The name the sender's file had: shown, and offered when it is downloaded.
    name = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    # Decided by the server from the bytes (images) or the name, never taken from the client.
    content_type = models.CharField(max_length=100)
    # Images only: a small copy without metadata, and the image's own size, upright.
    thumbnail = models.FileField(upload_to=thumbnail_path, max_length=255, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.name} on {self.message_id}"

    @property
    def size_text(self) -> str:
        """The size in digits and SI symbols, the same in every language (chat.js writes it
        in the page's language)."""
        size = float(self.size)
        for unit in ("B", "kB", "MB"):
            # 999.5 and more would be shown as "1000": the next unit says it better.
            if size < 999.5:
                return f"{size:.0f} {unit}" if unit == "B" or size >= 99.95 else f"{size:.1f} {unit}"
            size /= 1000
        return f"{size:.1f} GB"

    @property
    def thumbnail_size(self) -> tuple[int, int]:
        """The thumbnail's width and height (chat.attachments.THUMBNAIL_BOX), for the page's
        layout before it loads."""
        from chat.attachments import THUMBNAIL_BOX

        width, height = self.width or 1, self.height or 1
        scale = min(1.0, THUMBNAIL_BOX[0] / width, THUMBNAIL_BOX[1] / height)
        return max(1, round(width * scale)), max(1, round(height * scale))
