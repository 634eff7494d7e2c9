"""The chats' events, as programs follow them (the event stream at /ws/events/).

Every change in a chat takes the chat's next event number (gapless, in commit order) and
is stored as an Event whose JSON is made here once, in the transaction that made the
change: the same bytes go to every client of the event stream live (chat.hub) and to a
client that reconnects and asks for what it missed (`after`). A message in an event is
the message exactly as the REST API shows it.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from django.db import connection

from chat.models import Chat, Event

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from chat.models import Message
    from chat.serializers import MessageSerializer

MESSAGE_CREATED = "message.created"
MESSAGE_UPDATED = "message.updated"
MESSAGE_DELETED = "message.deleted"
MEMBER_ADDED = "member.added"
MEMBER_REMOVED = "member.removed"
CHAT_CREATED = "chat.created"
CHAT_UPDATED = "chat.updated"
REACTION_ADDED = "reaction.added"
REACTION_REMOVED = "reaction.removed"
MESSAGE_PINNED = "message.pinned"
MESSAGE_UNPINNED = "message.unpinned"

# A client that missed more than this many events of one chat is told to resync it
# (through the REST change feed) instead of being sent them all.
REPLAY_LIMIT = 1000


def advance(chat_id: int, *, new_message: bool = False) -> tuple[int, int]:
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


def record(chat_id: int, number: int, kind: str, **payload: Any) -> str:
    """Store event `number` of the chat and return its frame, made once for every client."""
    data = json.dumps(
        {"type": kind, "chat": chat_id, "event": number, **payload}, ensure_ascii=False, separators=(",", ":")
    )
    Event.objects.create(chat_id=chat_id, number=number, kind=kind, data=data)
    return data


@cache
def message_serializer() -> MessageSerializer:
    """One serializer for every event: DRF builds a serializer's fields on first use, which
    cost more than the message itself; they are the same for every message."""
    from chat.serializers import MessageSerializer

    return MessageSerializer()


def message_event(message: Message, kind: str) -> str:
    """Record a message's new version (its post, edit or deletion) under its event number,
    shown as the REST API shows it."""
    return record(
        message.chat_id, message.event, kind, message=message_serializer().to_representation(message)
    )


def user_data(user: User) -> dict[str, Any]:
    return {"id": user.pk, "username": user.username}


def chat_data(chat: Chat) -> dict[str, Any]:
    """A chat as events show it: the REST API's fields that are the same for every member."""
    return {
        "id": chat.pk,
        "name": chat.name,
        "kind": chat.kind,
        "visibility": chat.visibility,
        "topic": chat.topic,
        "created_at": chat.created_at.isoformat().replace("+00:00", "Z"),
    }


def chat_event(chat: Chat, kind: str, **payload: Any) -> tuple[int, str]:
    """Take the chat's next event number and record a change to the chat itself, or to who
    is in it; returns the number and the frame."""
    _, number = advance(chat.pk)
    chat.last_event = number
    return number, record(chat.pk, number, kind, **payload)


def missed(chat_id: int, after: int) -> list[tuple[int, str, str]] | None:
    """The chat's events after `after`, oldest first, as (number, kind, frame); None when
    there are more than REPLAY_LIMIT of them, or when the first of them was pruned (the
    client resyncs)."""
    limit = REPLAY_LIMIT
    found = list(
        Event.objects.filter(chat_id=chat_id, number__gt=after)
        .order_by("number")
        .values_list("number", "kind", "data")[: limit + 1]
    )
    if len(found) > limit or (found and found[0][0] != after + 1):
        return None
    if not found and Chat.objects.filter(pk=chat_id, last_event__gt=after).exists():
        # Every event after `after` was pruned.
        return None
    return found


def prune(*, before: datetime) -> int:
    """Forget the events stored before a moment (a client that missed them resyncs);
    returns how many."""
    deleted, _ = Event.objects.filter(created_at__lt=before).delete()
    return deleted


def removes(kind: str, frame: str, user_id: int) -> bool:
    """Whether the event takes the user out of its chat."""
    return kind == MEMBER_REMOVED and json.loads(frame)["user"]["id"] == user_id
