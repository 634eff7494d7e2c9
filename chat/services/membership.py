"""Rooms, direct chats and who is in them."""

from __future__ import annotations

from functools import partial
from uuid import UUID

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils.translation import gettext, ngettext

from chat import broadcast, events, limits
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
        raise Http404(gettext("No such chat.")) from None


def get_membership(*, user: User, chat: Chat) -> Membership:
    """The user's membership of the chat, or PermissionDenied."""
    try:
        return Membership.objects.get(user=user, chat=chat)
    except Membership.DoesNotExist:
        raise PermissionDenied(gettext("Join this chat first.")) from None


def is_member(*, user: User | AnonymousUser, chat: Chat) -> bool:
    return user.is_authenticated and Membership.objects.filter(user=user, chat=chat).exists()


def require_owner(*, user: User, chat: Chat) -> None:
    if get_membership(user=user, chat=chat).role != Membership.Role.OWNER:
        raise PermissionDenied(gettext("Only the room's owner can do that."))


def require_room_owner(*, user: User, chat: Chat) -> None:
    """Only a room's owner manages it (its members and its settings); a direct chat has no owner."""
    if chat.kind != Chat.Kind.ROOM:
        raise PermissionDenied(gettext("Only a room's owner can do that."))
    require_owner(user=user, chat=chat)


def clean_room_name(name: str) -> str:
    """A room's name as it is kept, or ValidationError: the rule for creating and renaming."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": gettext("Give the room a name.")})
    if len(name) > ROOM_NAME_MAX_LENGTH:
        raise ValidationError(
            {
                "name": ngettext(
                    "A room name has at most %(limit)s character.",
                    "A room name has at most %(limit)s characters.",
                    ROOM_NAME_MAX_LENGTH,
                )
                % {"limit": ROOM_NAME_MAX_LENGTH}
            }
        )
    return name


def clean_topic(topic: str) -> str:
    """A room's topic as it is kept: one line, so any run of spaces or line breaks is one space."""
    topic = " ".join(topic.split())
    if len(topic) > TOPIC_MAX_LENGTH:
        raise ValidationError(
            {
                "topic": ngettext(
                    "A topic has at most %(limit)s character.",
                    "A topic has at most %(limit)s characters.",
                    TOPIC_MAX_LENGTH,
                )
                % {"limit": TOPIC_MAX_LENGTH}
            }
        )
    return topic


def check_visibility(visibility: str) -> None:
    if visibility not in Chat.Visibility.values:
        raise ValidationError({"visibility": VISIBILITY_ERROR})


def member_data(membership: Membership) -> dict[str, object]:
    return {"user": events.user_data(membership.user), "role": membership.role}


def chat_created(chat: Chat, members: list[Membership]) -> None:
    """Record the chat's first event, with its first members, who start from it."""
    number, frame = events.chat_event(
        chat, events.CHAT_CREATED, details=events.chat_data(chat), members=[member_data(m) for m in members]
    )
    for membership in members:
        membership.joined_event = number
    Membership.objects.bulk_create(members)
    transaction.on_commit(partial(broadcast.chat_event, chat.pk, number, frame), robust=True)
    for membership in members:
        transaction.on_commit(partial(broadcast.chat_added, chat.pk, membership.user_id), robust=True)


def member_added(membership: Membership, by: User | None) -> None:
    """Record and push that someone joined the chat or was added to it; they start from it."""
    number, frame = events.chat_event(
        membership.chat, events.MEMBER_ADDED, **member_data(membership), by=by and events.user_data(by)
    )
    membership.joined_event = number
    membership.save(update_fields=["joined_event"])
    transaction.on_commit(partial(broadcast.chat_event, membership.chat_id, number, frame), robust=True)
    transaction.on_commit(partial(broadcast.chat_added, membership.chat_id, membership.user_id), robust=True)


def member_removed(chat: Chat, user: User, by: User | None) -> None:
    """Record and push that someone left the chat or was removed from it."""
    number, frame = events.chat_event(
        chat, events.MEMBER_REMOVED, user=events.user_data(user), by=by and events.user_data(by)
    )
    transaction.on_commit(partial(broadcast.member_left, chat.pk, user.pk, number, frame), robust=True)


@transaction.atomic
def create_room(*, user: User, name: str, visibility: str, client_id: UUID | None = None) -> Chat:
    """Create a room owned by the user, once per client_id: a repeated client_id returns
    the room it first created."""
    name = clean_room_name(name)
    check_visibility(visibility)
    if client_id is not None and (first := Chat.objects.filter(created_by=user, client_id=client_id).first()):
        return first
    limits.hit("room", user.pk, message=gettext("You are creating rooms too fast."))
    try:
        with transaction.atomic():
            chat = Chat.objects.create(
                name=name, kind=Chat.Kind.ROOM, visibility=visibility, created_by=user, client_id=client_id
            )
    except IntegrityError:
        # The same creation racing itself: the other one made the room.
        return Chat.objects.get(created_by=user, client_id=client_id)
    chat_created(chat, [Membership(user=user, chat=chat, role=Membership.Role.OWNER)])
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
    limits.hit("room", by.pk, message=gettext("You are changing rooms too fast."))
    chat.name, chat.topic, chat.visibility = name, topic, visibility
    chat.save(update_fields=["name", "topic", "visibility"])
    _, frame = events.chat_event(
        chat, events.CHAT_UPDATED, details=events.chat_data(chat), by=events.user_data(by)
    )
    transaction.on_commit(partial(broadcast.chat_updated, chat, frame), robust=True)
    return chat


@transaction.atomic
def join_chat(*, user: User, chat: Chat) -> Membership:
    """Join a public room; joining twice is harmless."""
    if not chat.is_public:
        raise PermissionDenied(gettext("Only public rooms can be joined."))
    membership, created = Membership.objects.get_or_create(
        user=user, chat=chat, defaults={"last_read_message_id": latest_message_id(chat.pk)}
    )
    if created:
        member_added(membership, by=None)
    return membership


@transaction.atomic
def leave_chat(*, user: User, chat: Chat) -> None:
    """Leave a room. An owner who leaves hands the room to its longest-standing member."""
    if chat.kind == Chat.Kind.DIRECT:
        raise PermissionDenied(gettext("A direct chat can't be left."))
    membership = get_membership(user=user, chat=chat)
    membership.delete()
    member_removed(chat, user, by=None)
    if membership.role == Membership.Role.OWNER:
        others = Membership.objects.filter(chat=chat).order_by("joined_at", "pk")
        if not others.filter(role=Membership.Role.OWNER).exists() and (heir := others.first()):
            heir.role = Membership.Role.OWNER
            heir.save(update_fields=["role"])


@transaction.atomic
def add_member(*, chat: Chat, by: User, user: User) -> Membership:
    """The room's owner adds someone to the room; adding a member again is harmless."""
    if chat.kind != Chat.Kind.ROOM:
        raise PermissionDenied(gettext("Members can only be added to rooms."))
    require_owner(user=by, chat=chat)
    membership, created = Membership.objects.get_or_create(
        user=user, chat=chat, defaults={"last_read_message_id": latest_message_id(chat.pk)}
    )
    if created:
        member_added(membership, by=by)
    return membership


@transaction.atomic
def remove_member(*, chat: Chat, by: User, user: User) -> None:
    """The room's owner removes a member (owners leave by themselves instead)."""
    require_owner(user=by, chat=chat)
    if user.pk == by.pk:
        raise ValidationError(gettext("To leave the room yourself, leave it."))
    deleted, _ = Membership.objects.filter(chat=chat, user=user).delete()
    if not deleted:
        raise Http404(gettext("No such member."))
    member_removed(chat, user, by=by)


@transaction.atomic
def open_direct_chat(*, user: User, other: User) -> tuple[Chat, bool]:
    """The direct chat of two people, created on first use; returns it and whether it is new."""
    if user.pk == other.pk:
        raise ValidationError(gettext("A direct chat needs someone else."))
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
    chat_created(chat, [Membership(user=low, chat=chat), Membership(user=high, chat=chat)])
    return chat, True
