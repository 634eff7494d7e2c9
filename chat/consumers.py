"""The chat socket: authenticate, subscribe, and hand frames to chat.frames."""

from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth.models import AnonymousUser, User

from chat import broadcast, frames
from chat.models import Chat

logger = logging.getLogger(__name__)

# Closing with a code in 4000-4999 after accepting tells the page not to retry.
CLOSE_NOT_ALLOWED = 4003
# The socket fell too far behind; the page reconnects and catches up by message id.
CLOSE_RECONNECT = 4500


def member_chat(user: User | AnonymousUser, chat_id: int) -> Chat | None:
    """The chat, if the user is a member of it."""
    if not user.is_authenticated:
        return None
    try:
        return Chat.objects.get(pk=chat_id, memberships__user=user)
    except Chat.DoesNotExist:
        return None


class ChatConsumer(AsyncWebsocketConsumer):
    # Pushes arrive through broadcast's per-process hub, not through a channel per socket.
    channel_layer_alias = "no channel per socket"
    chat: Chat | None = None

    async def connect(self) -> None:
        self.user = self.scope["user"]
        chat = await database_sync_to_async(member_chat)(
            self.user, self.scope["url_route"]["kwargs"]["chat_id"]
        )
        await self.accept()
        if chat is None:
            await self.close(code=CLOSE_NOT_ALLOWED)
            return
        self.chat = chat
        self.outbox = broadcast.Outbox(
            self.base_send, on_overflow=self.fell_behind, user_id=self.user.pk, on_revoke=self.revoked
        )
        self.hub = broadcast.hub()
        await self.hub.join(chat.pk, self.outbox)

    async def disconnect(self, code: int) -> None:
        if self.chat is not None:
            await self.hub.leave(self.chat.pk, self.outbox)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.chat is None:
            return
        reply = await database_sync_to_async(frames.handle)(
            user=self.user, chat=self.chat, text_data=text_data
        )
        if reply:
            self.outbox.push(reply)

    def revoked(self) -> None:
        asyncio.get_running_loop().create_task(self.close(code=CLOSE_NOT_ALLOWED))

    def fell_behind(self) -> None:
        logger.warning(
            "A socket of user %s in chat %s fell too far behind: closing it", self.user.pk, self.chat
        )
        asyncio.get_running_loop().create_task(self.close(code=CLOSE_RECONNECT))
