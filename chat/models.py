"""Chats, memberships and messages, with the queries that read them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models
from django.db.models import Count, F, Q
from django.db.models.functions import Coalesce

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

MESSAGE_MAX_LENGTH = 4000
ROOM_NAME_MAX_LENGTH = 100
TOPIC_MAX_LENGTH = 200
VISIBILITY_ERROR = "Choose public or private."
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
        ROOM = "room"
        DIRECT = "direct"

    class Visibility(models.TextChoices):
        PUBLIC = "public"
        PRIVATE = "private"

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
        """Annotate each membership with the others' messages after its last read one."""
        unread = (
            Q(chat__messages__id__gt=Coalesce(F("last_read_message_id"), 0))
            & Q(chat__messages__deleted_at__isnull=True)
            & ~Q(chat__messages__user=F("user"))
        )
        return self.annotate(unread_count=Count("chat__messages", filter=unread))


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
        return self.select_related("user")

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
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="messages")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="messages")
    text = models.TextField(max_length=MESSAGE_MAX_LENGTH)
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

    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="events")
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


def page_context(chat: Chat, messages: list[Message]) -> dict[str, Any]:
    """A page of messages, with the ids to link to the pages before and after it."""
    first, last = (messages[0].pk, messages[-1].pk) if messages else (None, None)
    chat_messages = Message.objects.filter(chat=chat)
    return {
        "page_messages": messages,
        "older_before": first if first and chat_messages.filter(pk__lt=first).exists() else None,
        "newer_after": last if last and chat_messages.filter(pk__gt=last).exists() else None,
    }


def sidebar(user: User) -> dict[str, list[Membership]]:
    """The user's chats for the sidebar, most recent activity first, rooms and direct chats
    apart: each membership with its `unread_count` and its chat's `last_message` (or None).

    Three queries, whatever the number of chats.
    """
    memberships = list(
        Membership.objects.filter(user=user)
        .select_related("chat")
        .with_unread_count()
        .order_by("chat__name", "chat__pk")
    )
    latest = (
        Message.objects.filter(chat__memberships__user=user)
        .values("chat")
        .annotate(last=models.Max("pk"))
        .values_list("last", flat=True)
    )
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
