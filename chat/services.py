"""One function per action: the only code that changes chat state.

Each action writes inside a transaction and schedules its push for after the commit,
so that nobody is ever shown something the database does not hold.
"""

from __future__ import annotations

from functools import partial
from uuid import UUID

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404

from chat import broadcast
from chat.models import MESSAGE_MAX_LENGTH, Chat, Membership, Message


def get_visible_chat(*, user: User, chat_id: int) -> Chat:
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


def is_member(*, user: User, chat: Chat) -> bool:
    return user.is_authenticated and Membership.objects.filter(user=user, chat=chat).exists()


@transaction.atomic
def create_account(*, username: str, password: str) -> User:
    """Create an account that is a member of every auto-join room (General)."""
    user = User.objects.create_user(username=username, password=password)
    for chat in Chat.objects.filter(auto_join=True):
        Membership.objects.create(user=user, chat=chat)
    return user


@transaction.atomic
def create_room(*, user: User, name: str, visibility: str) -> Chat:
    """Create a room owned by the user."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the room a name."})
    if visibility not in Chat.Visibility.values:
        raise ValidationError({"visibility": "Choose public or private."})
    chat = Chat.objects.create(name=name, kind=Chat.Kind.ROOM, visibility=visibility, created_by=user)
    Membership.objects.create(user=user, chat=chat, role=Membership.Role.OWNER)
    return chat


@transaction.atomic
def join_chat(*, user: User, chat: Chat) -> Membership:
    """Join a public room; joining twice is harmless."""
    if not chat.is_public:
        raise PermissionDenied("Only public rooms can be joined.")
    membership, _ = Membership.objects.get_or_create(user=user, chat=chat)
    return membership


def validate_text(text: object) -> str:
    """The message text, stripped, or ValidationError with a message for the sender."""
    if not isinstance(text, str):
        raise ValidationError({"text": "The message must be text."})
    text = text.strip()
    if not text:
        raise ValidationError({"text": "Write a message first."})
    if len(text) > MESSAGE_MAX_LENGTH:
        raise ValidationError(
            {"text": f"A message can have at most {MESSAGE_MAX_LENGTH} characters (it has {len(text)})."}
        )
    return text


@transaction.atomic
def post_message(*, chat: Chat, user: User, text: str, client_id: UUID | None = None) -> tuple[Message, bool]:
    """Save a message once per client_id and push it to the chat after commit.

    Returns the message and whether it was created now; a repeated client_id returns
    the first message unchanged, and nothing is pushed again.
    """
    get_membership(user=user, chat=chat)
    text = validate_text(text)
    if client_id is not None:
        existing = Message.objects.filter(user=user, client_id=client_id).with_author().first()
        if existing is not None:
            return existing, False
    try:
        # A savepoint, so that a concurrent send of the same client_id leaves this
        # transaction usable for fetching the winner.
        with transaction.atomic():
            message = Message.objects.create(chat=chat, user=user, text=text, client_id=client_id)
    except IntegrityError:
        return Message.objects.with_author().get(user=user, client_id=client_id), False
    # robust: a failed push is logged; the message is stored and clients catch up by id.
    transaction.on_commit(partial(broadcast.message_posted, message), robust=True)
    return message, True


@transaction.atomic
def mark_read(*, user: User, chat: Chat) -> None:
    """Mark every message of the chat as read by the user."""
    latest = Message.objects.filter(chat=chat).order_by("-pk").values_list("pk", flat=True).first()
    if latest is not None:
        Membership.objects.filter(user=user, chat=chat).exclude(last_read_message_id__gte=latest).update(
            last_read_message_id=latest
        )
