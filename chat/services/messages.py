"""Sending, editing, deleting and reading messages."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from functools import partial
from uuid import UUID

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from chat import attachments, broadcast, events, limits, markdown
from chat.errors import Conflict
from chat.models import MESSAGE_MAX_LENGTH, Chat, Membership, Message, with_extras
from chat.services.membership import get_membership
from chat.services.pins import unpin_deleted


def validate_text(text: object) -> str:
    """The message text, stripped, or ValidationError with a message for the sender."""
    if not isinstance(text, str):
        raise ValidationError({"text": gettext("The message must be text.")})
    text = text.strip()
    try:
        text.encode()
    except UnicodeEncodeError:
        # A lone surrogate (e.g. "\ud800" in JSON) is not text any database can store.
        raise ValidationError(
            {"text": gettext("The message contains characters that are not valid text.")}
        ) from None
    # Control and format characters (a BOM, zero-width spaces) and separators alone are
    # not a message: nothing would show.
    if not any(unicodedata.category(char)[0] not in "CZ" for char in text):
        raise ValidationError({"text": gettext("Write a message first.")})
    if "\x00" in text:
        raise ValidationError({"text": gettext("Null characters are not allowed.")})
    if len(text) > MESSAGE_MAX_LENGTH:
        raise ValidationError(
            {
                "text": ngettext(
                    "A message can have at most %(limit)s character (it has %(length)s).",
                    "A message can have at most %(limit)s characters (it has %(length)s).",
                    MESSAGE_MAX_LENGTH,
                )
                % {"limit": MESSAGE_MAX_LENGTH, "length": len(text)}
            }
        )
    return text


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
        raise Http404(gettext("No such message.")) from None


@transaction.atomic
def post_message(
    *,
    chat: Chat,
    user: User,
    text: str,
    client_id: UUID | None = None,
    reply_to: int | None = None,
    files: Sequence[File] = (),
) -> tuple[Message, bool]:
    """Save a message once per client_id and push it to the chat after commit.

    Returns the message and whether it was created now; a repeated client_id returns
    the first message unchanged, and nothing is pushed again (with other text, it is a
    Conflict).
    """
    get_membership(user=user, chat=chat)
    # With files, the text may be left empty.
    text = "" if files and isinstance(text, str) and not text.strip() else validate_text(text)
    answered = reply_target(chat, reply_to)
    attachments.check_files(files)
    limits.hit("message", user.pk, message=gettext("You are sending messages too fast."))
    # Read (images decoded, thumbnails made) before anything is written: a refused file
    # leaves nothing behind.
    uploads = attachments.prepare(files)
    html = markdown.render(text, mentionable(chat, text))
    try:
        # A savepoint: a repeated client_id (a retry, or the same send racing itself) fails
        # the unique constraint, undoes the numbers taken, and the first message is returned.
        with transaction.atomic():
            seq, event = events.advance(chat.pk, new_message=True)
            message = Message.objects.create(
                chat=chat,
                user=user,
                text=text,
                html=html,
                mentions_everyone=markdown.mentions(html)[1],
                reply_to=answered,
                client_id=client_id,
                seq=seq,
                event=event,
            )
            store_mentions(message)
            attachments.remember(message, attachments.store(message, uploads))
            frame = events.message_event(message, events.MESSAGE_CREATED)
    except IntegrityError:
        first = Message.objects.with_author().get(user=user, client_id=client_id)
        return replayed(first, chat, text), False
    # robust: a failed push is logged; the message is stored and clients catch up by id.
    transaction.on_commit(partial(broadcast.message_posted, message, frame), robust=True)
    return message, True


def mentionable(chat: Chat, text: str) -> dict[str, int]:
    """The chat's members whom the text may mention (username -> id)."""
    names = markdown.mention_candidates(text)
    if not names:
        return {}
    members = User.objects.filter(username__in=names, memberships__chat=chat, is_active=True)
    return dict(members.values_list("username", "pk"))


def store_mentions(message: Message) -> None:
    """Link the (saved) message to the people its HTML mentions."""
    ids, _ = markdown.mentions(message.html)
    message.mentioned_ids = sorted(ids)  # type: ignore[attr-defined]
    if ids or message.edited_at:
        message.mentions.set(ids)


def reply_target(chat: Chat, reply_to: int | None) -> Message | None:
    """The message a new one answers: one of the same chat, not deleted."""
    if reply_to is None:
        return None
    answered = Message.objects.not_deleted().with_author().filter(chat=chat, pk=reply_to).first()
    if answered is None:
        raise ValidationError(
            {"reply_to": gettext("You can only reply to a message of this chat that is not deleted.")}
        )
    return answered


def replayed(message: Message, chat: Chat, text: str) -> Message:
    """The first message sent with a client id, when the same send arrives again."""
    if message.chat_id != chat.pk:
        raise ValidationError(
            {"client_id": gettext("This client id was already used for a message in another chat.")}
        )
    if not message.is_deleted and message.text != text:
        raise Conflict(gettext("This client id was already used for a message with other text."))
    return message


def check_can_edit(*, message: Message, user: User) -> None:
    """Only the author edits a message, while a member of its chat, and not once it is deleted."""
    if message.user_id != user.pk:
        raise PermissionDenied(gettext("Only the author can edit a message."))
    if message.is_deleted:
        raise ValidationError(gettext("A deleted message can't be edited."))
    get_membership(user=user, chat=message.chat)


def check_can_delete(*, message: Message, user: User) -> None:
    """The author (while a member) or the room's owner deletes a message; so does staff
    with the permission to (the admin)."""
    if user.has_perm("chat.delete_message"):
        return
    membership = get_membership(user=user, chat=message.chat)
    if message.user_id != user.pk and membership.role != Membership.Role.OWNER:
        raise PermissionDenied(gettext("Only the author or the room's owner can delete a message."))


@transaction.atomic
def edit_message(*, message: Message, user: User, text: str) -> Message:
    """Change the text of one's own message and push the new version."""
    check_can_edit(message=message, user=user)
    message.text = validate_text(text)
    limits.hit("edit", user.pk, message=gettext("You are editing too fast."))
    message.html = markdown.render(message.text, mentionable(message.chat, message.text))
    message.mentions_everyone = markdown.mentions(message.html)[1]
    message.edited_at = timezone.now()
    _, message.event = events.advance(message.chat_id)
    message.save(update_fields=["text", "html", "mentions_everyone", "edited_at", "event"])
    store_mentions(message)
    # The new version is shown with its files, reactions (and who reacted) and pin, read
    # once for the push and the editor's own answer.
    with_extras([message])
    frame = events.message_event(message, events.MESSAGE_UPDATED)
    transaction.on_commit(partial(broadcast.message_changed, message, frame), robust=True)
    return message


@transaction.atomic
def delete_message(*, message: Message, user: User) -> None:
    """Delete a message, leaving a tombstone that is pushed."""
    check_can_delete(message=message, user=user)
    if message.is_deleted:
        return
    message.text = message.html = ""
    message.deleted_at = timezone.now()
    _, message.event = events.advance(message.chat_id)
    message.save(update_fields=["text", "html", "deleted_at", "event"])
    # Its files go with it: the rows now, the stored bytes once that is committed.
    files = attachments.stored_names(message)
    message.attachments.all().delete()
    frame = events.message_event(message, events.MESSAGE_DELETED)
    transaction.on_commit(partial(broadcast.message_changed, message, frame), robust=True)
    unpin_deleted(message=message, by=user)
    if files:
        transaction.on_commit(partial(attachments.delete_files, files), robust=True)


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
