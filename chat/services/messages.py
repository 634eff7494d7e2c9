"""Sending, editing, deleting and reading messages."""

from __future__ import annotations

import unicodedata
from functools import partial
from uuid import UUID

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.http import Http404
from django.utils import timezone

from chat import broadcast, limits
from chat.models import MESSAGE_MAX_LENGTH, Chat, Membership, Message
from chat.services.membership import get_membership


def validate_text(text: object) -> str:
    """The message text, stripped, or ValidationError with a message for the sender."""
    if not isinstance(text, str):
        raise ValidationError({"text": "The message must be text."})
    text = text.strip()
    try:
        text.encode()
    except UnicodeEncodeError:
        # A lone surrogate (e.g. "\ud800" in JSON) is not text any database can store.
        raise ValidationError({"text": "The message contains characters that are not valid text."}) from None
    # Control and format characters (a BOM, zero-width spaces) and separators alone are
    # not a message: nothing would show.
    if not any(unicodedata.category(char)[0] not in "CZ" for char in text):
        raise ValidationError({"text": "Write a message first."})
    if "\x00" in text:
        raise ValidationError({"text": "Null characters are not allowed."})
    if len(text) > MESSAGE_MAX_LENGTH:
        raise ValidationError(
            {"text": f"A message can have at most {MESSAGE_MAX_LENGTH} characters (it has {len(text)})."}
        )
    return text


def advance(chat_id: int, *, new_message: bool) -> tuple[int, int]:
    """Take the chat's next event number (and, for a new message, its next sequence number).

    The UPDATE holds the chat's row until commit, so numbers are handed out in commit
    order and a rolled-back transaction leaves no gap. One statement, with RETURNING
    (PostgreSQL, and SQLite since 3.35).
    """
    table = Chat._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET last_event = last_event + 1, last_seq = last_seq + %s "  # noqa: S608
            "WHERE id = %s RETURNING last_seq, last_event",
            [1 if new_message else 0, chat_id],
        )
        seq, event = cursor.fetchone()
    return int(seq), int(event)


def get_visible_message(*, user: User, message_id: int) -> Message:
    """A message of a chat the user may see; a deleted one, or one in a chat they may not see, is a 404."""
    try:
        return (
            Message.objects.not_deleted()
            .with_author()
            .select_related("chat")
            .get(pk=message_id, chat__in=Chat.objects.visible_to(user))
        )
    except Message.DoesNotExist:
        raise Http404("No such message.") from None


@transaction.atomic
def post_message(*, chat: Chat, user: User, text: str, client_id: UUID | None = None) -> tuple[Message, bool]:
    """Save a message once per client_id and push it to the chat after commit.

    Returns the message and whether it was created now; a repeated client_id returns
    the first message unchanged, and nothing is pushed again.
    """
    get_membership(user=user, chat=chat)
    text = validate_text(text)
    limits.hit("message", user.pk, message="You are sending messages too fast.")
    try:
        # A savepoint: a repeated client_id (a retry, or the same send racing itself) fails
        # the unique constraint, undoes the numbers taken, and the first message is returned.
        with transaction.atomic():
            seq, event = advance(chat.pk, new_message=True)
            message = Message.objects.create(
                chat=chat, user=user, text=text, client_id=client_id, seq=seq, event=event
            )
    except IntegrityError:
        return replayed(Message.objects.with_author().get(user=user, client_id=client_id), chat), False
    # robust: a failed push is logged; the message is stored and clients catch up by id.
    transaction.on_commit(partial(broadcast.message_posted, message), robust=True)
    return message, True


def replayed(message: Message, chat: Chat) -> Message:
    """The first message sent with a client id, when the same send arrives again."""
    if message.chat_id != chat.pk:
        raise ValidationError({"client_id": "This client id was already used for a message in another chat."})
    return message


def check_can_edit(*, message: Message, user: User) -> None:
    """Only the author edits a message, while a member of its chat, and not once it is deleted."""
    if message.user_id != user.pk:
        raise PermissionDenied("Only the author can edit a message.")
    if message.is_deleted:
        raise ValidationError("A deleted message can't be edited.")
    get_membership(user=user, chat=message.chat)


def check_can_delete(*, message: Message, user: User) -> None:
    """The author (while a member) or the room's owner deletes a message; so does staff
    with the permission to (the admin)."""
    if user.has_perm("chat.delete_message"):
        return
    membership = get_membership(user=user, chat=message.chat)
    if message.user_id != user.pk and membership.role != Membership.Role.OWNER:
        raise PermissionDenied("Only the author or the room's owner can delete a message.")


@transaction.atomic
def edit_message(*, message: Message, user: User, text: str) -> Message:
    """Change the text of one's own message and push the new version."""
    check_can_edit(message=message, user=user)
    message.text = validate_text(text)
    limits.hit("edit", user.pk, message="You are editing too fast.")
    message.edited_at = timezone.now()
    _, message.event = advance(message.chat_id, new_message=False)
    message.save(update_fields=["text", "edited_at", "event"])
    transaction.on_commit(partial(broadcast.message_changed, message), robust=True)
    return message


@transaction.atomic
def delete_message(*, message: Message, user: User) -> None:
    """Delete a message, leaving a tombstone that is pushed."""
    check_can_delete(message=message, user=user)
    if message.is_deleted:
        return
    message.text = ""
    message.deleted_at = timezone.now()
    _, message.event = advance(message.chat_id, new_message=False)
    message.save(update_fields=["text", "deleted_at", "event"])
    transaction.on_commit(partial(broadcast.message_changed, message), robust=True)


@transaction.atomic
def mark_read(*, user: User, chat: Chat, up_to: int | None = None) -> None:
    """Mark the messages of the chat (all, or those up to id `up_to`) as read by the user."""
    messages = Message.objects.filter(chat=chat)
    if up_to is not None:
        messages = messages.filter(pk__lte=up_to)
    latest = messages.order_by("-pk").values_list("pk", flat=True).first()
    if latest is not None:
        Membership.objects.filter(user=user, chat=chat).exclude(last_read_message_id__gte=latest).update(
            last_read_message_id=latest
        )
