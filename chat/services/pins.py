"""Pins: messages a chat's members keep at hand in its Pinned panel."""

from __future__ import annotations

from functools import partial

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext, ngettext

from chat import broadcast, events, limits
from chat.models import Chat, Message, Pin
from chat.services.membership import get_membership

# How many messages one chat may have pinned at once: the panel lists them all.
PINS_PER_CHAT = 100


def pinned_messages(chat: Chat) -> list[Pin]:
    """The chat's pins, the latest first, each with its message and its author: one query."""
    return list(
        Pin.objects.filter(chat=chat)
        .select_related("message__user", "pinned_by")
        .order_by("-pinned_at", "-pk")[:PINS_PER_CHAT]
    )


def check_can_pin(*, message: Message, user: User) -> None:
    """Members of its chat pin and unpin a message; a deleted one is no longer pinned."""
    get_membership(user=user, chat=message.chat)
    if message.is_deleted:
        raise ValidationError(gettext("A deleted message can't be pinned."))


def count_attempt(user: User) -> None:
    limits.hit("edit", user.pk, message=gettext("You are pinning too fast."))


@transaction.atomic
def pin_message(*, message: Message, user: User) -> bool:
    """Pin a message in its chat and push the change; whether it was pinned now (False: it
    already was, and nothing changes)."""
    check_can_pin(message=message, user=user)
    count_attempt(user)
    if Pin.objects.filter(message=message).exists():
        return False
    if Pin.objects.filter(chat_id=message.chat_id).count() >= PINS_PER_CHAT:
        raise ValidationError(
            ngettext(
                "A chat can have at most %(limit)s pinned message: unpin one first.",
                "A chat can have at most %(limit)s pinned messages: unpin one first.",
                PINS_PER_CHAT,
            )
            % {"limit": PINS_PER_CHAT}
        )
    try:
        # A savepoint: a pin racing another of the same message fails the one-to-one
        # constraint, and the event number taken with it is given back.
        with transaction.atomic():
            pin = Pin.objects.create(chat_id=message.chat_id, message=message, pinned_by=user)
            record(
                message,
                events.MESSAGE_PINNED,
                by=user,
                pinned_at=pin.pinned_at.isoformat().replace("+00:00", "Z"),
            )
    except IntegrityError:
        return False
    return True


@transaction.atomic
def unpin_message(*, message: Message, user: User) -> bool:
    """Unpin a message and push the change; whether it was pinned."""
    check_can_pin(message=message, user=user)
    count_attempt(user)
    removed, _ = Pin.objects.filter(message=message).delete()
    if not removed:
        return False
    record(message, events.MESSAGE_UNPINNED, by=user)
    return True


def record(message: Message, kind: str, *, by: User, **payload: object) -> None:
    """Take the chat's next event for a pin or an unpin and push it after commit.

    The message's `event` moves to it: the page's copy of the message (with its pin
    marker) is a new version, which a page that missed the push catches up like an edit.
    """
    number, frame = events.chat_event(
        message.chat, kind, message_id=message.pk, by=events.user_data(by), **payload
    )
    Message.objects.filter(pk=message.pk).update(event=number)
    message.event = number
    transaction.on_commit(partial(broadcast.message_redrawn, message.pk, number, frame), robust=True)
    transaction.on_commit(partial(broadcast.pins_changed, message.chat_id), robust=True)


def unpin_deleted(*, message: Message, by: User) -> None:
    """A message being deleted leaves the pins (inside delete_message's transaction): the
    event streams hear of it, and the chat's open pages get the new pin count."""
    removed, _ = Pin.objects.filter(message=message).delete()
    if not removed:
        return
    number, frame = events.chat_event(
        message.chat, events.MESSAGE_UNPINNED, message_id=message.pk, by=events.user_data(by)
    )
    transaction.on_commit(partial(broadcast.pins_changed, message.chat_id, number, frame), robust=True)
