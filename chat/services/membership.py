"""Rooms, direct chats and who is in them."""

from __future__ import annotations

from functools import partial

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404

from chat import broadcast, limits
from chat.models import ROOM_NAME_MAX_LENGTH, TOPIC_MAX_LENGTH, VISIBILITY_ERROR, Chat, Membership, Message

# The room's name and topic as its open pages show them in their header (id="chat-title").


def latest_message_id(chat_id: int) -> int | None:
    """A newcomer starts with the chat read: its history is there to scroll, not unread."""
    return Message.objects.filter(chat_id=chat_id).order_by("-pk").values_list("pk", flat=True).first()


def get_visible_chat(*, user: User | AnonymousUser, chat_id: int) -> Chat:
    """The chat, if the user may see it; a chat the user may not see does not exist for them."""
    try:
        return Chat.objects.visible_to(user).get(pk=chat_id)
    except Chat.DoesNotExist:
        raise Http404("No such chat.") from None


def get_membership(*, user: User, chat: Chat) -> Membership:
    """The user's membership of the chat, or PermissionDenied."""
    try:
        return Membership.objects.get(user=user, chat=chat)
    except Membership.DoesNotExist:
        raise PermissionDenied("Join this chat first.") from None


def is_member(*, user: User | AnonymousUser, chat: Chat) -> bool:
    return user.is_authenticated and Membership.objects.filter(user=user, chat=chat).exists()


def require_owner(*, user: User, chat: Chat) -> None:
    if get_membership(user=user, chat=chat).role != Membership.Role.OWNER:
        raise PermissionDenied("Only the room's owner can do that.")


def require_room_owner(*, user: User, chat: Chat) -> None:
    """Only a room's owner manages it (its members and its settings); a direct chat has no owner."""
    if chat.kind != Chat.Kind.ROOM:
        raise PermissionDenied("Only a room's owner can do that.")
    require_owner(user=user, chat=chat)


def clean_room_name(name: str) -> str:
    """A room's name as it is kept, or ValidationError: the rule for creating and renaming."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the room a name."})
    if len(name) > ROOM_NAME_MAX_LENGTH:
        raise ValidationError({"name": f"A room name has at most {ROOM_NAME_MAX_LENGTH} characters."})
    return name


def clean_topic(topic: str) -> str:
    """A room's topic as it is kept: one line, so any run of spaces or line breaks is one space."""
    topic = " ".join(topic.split())
    if len(topic) > TOPIC_MAX_LENGTH:
        raise ValidationError({"topic": f"A topic has at most {TOPIC_MAX_LENGTH} characters."})
    return topic


def check_visibility(visibility: str) -> None:
    if visibility not in Chat.Visibility.values:
        raise ValidationError({"visibility": VISIBILITY_ERROR})


@transaction.atomic
def create_room(*, user: User, name: str, visibility: str) -> Chat:
    """Create a room owned by the user."""
    name = clean_room_name(name)
    check_visibility(visibility)
    limits.hit("room", user.pk, message="You are creating rooms too fast.")
    chat = Chat.objects.create(name=name, kind=Chat.Kind.ROOM, visibility=visibility, created_by=user)
    Membership.objects.create(user=user, chat=chat, role=Membership.Role.OWNER)
    transaction.on_commit(partial(broadcast.chat_added, chat.pk, user.pk), robust=True)
    return chat


@transaction.atomic
def update_room(*, chat: Chat, by: User, name: str, topic: str, visibility: str) -> Chat:
    """The room's owner renames it, sets its topic or makes it public or private; its
    members' chat lists and its open pages show the change after commit."""
    require_room_owner(user=by, chat=chat)
    # Every field's error at once, so that the form shows them together.
    errors: dict[str, list[str]] = {}
    try:
        name = clean_room_name(name)
    except ValidationError as error:
        errors.update(error.message_dict)
    try:
        topic = clean_topic(topic)
    except ValidationError as error:
        errors.update(error.message_dict)
    try:
        check_visibility(visibility)
    except ValidationError as error:
        errors.update(error.message_dict)
    if errors:
        raise ValidationError(errors)
    if (name, topic, visibility) == (chat.name, chat.topic, chat.visibility):
        return chat
    limits.hit("room", by.pk, message="You are changing rooms too fast.")
    chat.name, chat.topic, chat.visibility = name, topic, visibility
    chat.save(update_fields=["name", "topic", "visibility"])
    transaction.on_commit(partial(broadcast.chat_updated, chat), robust=True)
    return chat


@transaction.atomic
def join_chat(*, user: User, chat: Chat) -> Membership:
    """Join a public room; joining twice is harmless."""
    if not chat.is_public:
        raise PermissionDenied("Only public rooms can be joined.")
    membership, created = Membership.objects.get_or_create(
        user=user, chat=chat, defaults={"last_read_message_id": latest_message_id(chat.pk)}
    )
    if created:
        transaction.on_commit(partial(broadcast.chat_added, chat.pk, user.pk), robust=True)
    return membership


@transaction.atomic
def leave_chat(*, user: User, chat: Chat) -> None:
    """Leave a room. An owner who leaves hands the room to its longest-standing member."""
    if chat.kind == Chat.Kind.DIRECT:
        raise PermissionDenied("A direct chat can't be left.")
    membership = get_membership(user=user, chat=chat)
    membership.delete()
    transaction.on_commit(partial(broadcast.member_left, chat.pk, user.pk), robust=True)
    if membership.role == Membership.Role.OWNER:
        others = Membership.objects.filter(chat=chat).order_by("joined_at", "pk")
        if not others.filter(role=Membership.Role.OWNER).exists() and (heir := others.first()):
            heir.role = Membership.Role.OWNER
            heir.save(update_fields=["role"])


@transaction.atomic
def add_member(*, chat: Chat, by: User, user: User) -> Membership:
    """The room's owner adds someone to the room; adding a member again is harmless."""
    if chat.kind != Chat.Kind.ROOM:
        raise PermissionDenied("Members can only be added to rooms.")
    require_owner(user=by, chat=chat)
    membership, created = Membership.objects.get_or_create(
        user=user, chat=chat, defaults={"last_read_message_id": latest_message_id(chat.pk)}
    )
    if created:
        transaction.on_commit(partial(broadcast.chat_added, chat.pk, user.pk), robust=True)
    return membership


@transaction.atomic
def remove_member(*, chat: Chat, by: User, user: User) -> None:
    """The room's owner removes a member (owners leave by themselves instead)."""
    require_owner(user=by, chat=chat)
    if user.pk == by.pk:
        raise ValidationError("To leave the room yourself, leave it.")
    deleted, _ = Membership.objects.filter(chat=chat, user=user).delete()
    if not deleted:
        raise Http404("No such member.")
    transaction.on_commit(partial(broadcast.member_left, chat.pk, user.pk), robust=True)


@transaction.atomic
def open_direct_chat(*, user: User, other: User) -> tuple[Chat, bool]:
    """The direct chat of two people, created on first use; returns it and whether it is new."""
    if user.pk == other.pk:
        raise ValidationError("A direct chat needs someone else.")
    low, high = sorted([user, other], key=lambda person: person.pk)
    key = f"{low.pk}:{high.pk}"
    existing = Chat.objects.filter(direct_key=key).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            chat = Chat.objects.create(
                name=f"{low.username} & {high.username}",
                kind=Chat.Kind.DIRECT,
                visibility=Chat.Visibility.PRIVATE,
                direct_key=key,
                created_by=user,
            )
    except IntegrityError:
        # Both opened it at once: the other transaction's chat is the one.
        return Chat.objects.get(direct_key=key), False
    Membership.objects.bulk_create([Membership(user=low, chat=chat), Membership(user=high, chat=chat)])
    for person in (low, high):
        transaction.on_commit(partial(broadcast.chat_added, chat.pk, person.pk), robust=True)
    return chat, True
