"""Small builders for tests: they go through the services, as the doors do."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from django.contrib.auth.models import User

from chat import broadcast, services
from chat.models import Chat, Membership, Message

PASSWORD = "correct-horse-battery-42"
_numbers = itertools.count(1)


def make_user(name: str = "") -> User:
    return services.create_account(username=name or f"user{next(_numbers)}", password=PASSWORD)


def make_room(owner: User, name: str = "Room", visibility: str = Chat.Visibility.PUBLIC) -> Chat:
    return services.create_room(user=owner, name=name, visibility=visibility)


def general() -> Chat:
    return Chat.objects.get(name="General", auto_join=True)


def make_messages(chat: Chat, user: User, count: int) -> list[Message]:
    """Messages saved directly, without pushes: for tests about reading, not sending."""
    chat.refresh_from_db()
    messages = Message.objects.bulk_create(
        Message(
            chat=chat,
            user=user,
            text=f"message {i}",
            html=f"<p>message {i}</p>",
            seq=chat.last_seq + i,
            event=chat.last_event + i,
        )
        for i in range(1, count + 1)
    )
    Chat.objects.filter(pk=chat.pk).update(last_seq=chat.last_seq + count, last_event=chat.last_event + count)
    return messages


def unread_count(user: User, chat: Chat) -> int:
    membership = Membership.objects.with_unread_count().get(user=user, chat=chat)
    return membership.unread_count  # type: ignore[attr-defined]


class SocketListener:
    """An open socket of a chat as the broadcast hub sees it, on an event loop of its own."""

    def __init__(self, chat: Chat) -> None:
        self.loop = asyncio.new_event_loop()
        self.frames: list[str] = []
        self.outbox = broadcast.Outbox(self.record, on_overflow=lambda: None, chat_id=chat.pk)
        self.loop.run_until_complete(self.join(chat))

    async def join(self, chat: Chat) -> None:
        await broadcast.hub().join(self.outbox)

    async def record(self, message: dict[str, Any]) -> None:
        self.frames.append(message["text"])

    def pending(self) -> list[str]:
        """The fragments pushed so far, once the loop has run what was handed to it."""
        self.loop.run_until_complete(asyncio.sleep(0.02))
        frames, self.frames = self.frames, []
        return frames

    def close(self) -> None:
        self.loop.close()
