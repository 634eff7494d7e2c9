"""Pushing rendered fragments to the open sockets of a chat.

The only code that talks to the channel layer. A fragment is rendered once per message
version, whatever the number of recipients, and written straight to each socket:

- each server process keeps a registry (a Hub) of its own open sockets per chat;
- without a shared channel layer (no REDIS_URL) a push goes straight to that registry;
- with one, a push travels once per chat to every process subscribed to it (one
  subscription per chat per process, not per socket), and each process writes it to
  its own sockets.

A push is the fast path, not the record: the database is, and clients catch up by id.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.template.loader import render_to_string

if TYPE_CHECKING:
    from chat.models import Message

logger = logging.getLogger(__name__)

DETAIL = "chat/chat_detail.html"
# The events that travel between processes: a fragment for a chat's sockets, and the
# end of someone's membership of a chat.
HTML_EVENT = "chat.html"
REVOKE_EVENT = "chat.revoke"


def chat_group(chat_id: int) -> str:
    """The channel-layer group of the processes that have sockets open on a chat."""
    return f"chat.{chat_id}"


# Rendering: once per message version, the same bytes for every viewer.


def render_message(message: Message) -> str:
    """A new message, appended to the log."""
    return render_to_string(f"{DETAIL}#message_oob", {"message": message})


def render_message_version(message: Message) -> str:
    """An edited or deleted message, replacing the one shown (if it is shown)."""
    return render_to_string(f"{DETAIL}#message", {"message": message})


def message_posted(message: Message) -> None:
    publish({"type": HTML_EVENT, "chat_id": message.chat_id, "html": render_message(message)})


def message_changed(message: Message) -> None:
    publish({"type": HTML_EVENT, "chat_id": message.chat_id, "html": render_message_version(message)})


def member_left(chat_id: int, user_id: int) -> None:
    """A member left or was removed: their open sockets on the chat are closed."""
    publish({"type": REVOKE_EVENT, "chat_id": chat_id, "user_id": user_id})


# Fan-out.

Send = Callable[[dict[str, Any]], Awaitable[None]]


def daphne_protocol(send: Send) -> Any:
    """daphne's protocol object behind a socket's send, or None under another server.

    daphne's send is a partial over the connection's protocol (behind Channels' session
    wrapper). Its transport tells how much is queued for the client: daphne never makes a
    send wait, so a client that stops reading would grow Twisted's buffer without bound.
    """
    while (wrapper := getattr(send, "__self__", None)) is not None and hasattr(wrapper, "real_send"):
        send = wrapper.real_send
    protocol = getattr(send, "args", (None,))[0]
    if getattr(protocol, "transport", None) is None or not hasattr(protocol, "STATE_OPEN"):
        return None
    return protocol


def websocket_frame(text: str) -> bytes:
    """The WebSocket text frame of a fragment: server frames are not masked, so every
    recipient can be sent the same bytes."""
    data = text.encode()
    size = len(data)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 1 << 16:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + data


class Outbox:
    """One socket's bounded send buffer; a socket that falls too far behind is let go.

    The limit bounds the server's memory per socket, and the writer task keeps one slow
    socket from slowing the others.
    """

    def __init__(
        self,
        send: Send,
        on_overflow: Callable[[], None],
        limit: int | None = None,
        *,
        user_id: int | None = None,
        on_revoke: Callable[[], None] = lambda: None,
    ) -> None:
        self.send = send
        self.on_overflow = on_overflow
        # Whose socket this is, and what to do when they leave the chat or are removed.
        self.user_id = user_id
        self.on_revoke = on_revoke
        self.limit = limit if limit is not None else settings.CHAT_SEND_BUFFER_BYTES
        self.queue: deque[str] = deque()
        self.queued_bytes = 0
        self.writer: asyncio.Task[None] | None = None
        self.overflowed = False
        self.protocol = daphne_protocol(send)

    def backlog(self) -> int:
        """Bytes the server has accepted for this socket but not yet written to the network."""
        if self.protocol is None:
            return 0
        transport = self.protocol.transport
        return int(len(transport.dataBuffer) - transport.offset + transport._tempDataLen)

    def push(self, text: str, frame: bytes | None = None) -> None:
        """Send a text to the socket; `frame` is its WebSocket frame, when the caller made one."""
        if self.overflowed:
            return
        if self.queued_bytes + len(text) + self.backlog() > self.limit:
            self.overflowed = True
            self.queue.clear()
            self.queued_bytes = 0
            self.on_overflow()
            return
        protocol = self.protocol
        idle = self.writer is None and not self.queue
        if frame is not None and protocol is not None and idle and protocol.state == protocol.STATE_OPEN:
            # The frame made once for every recipient goes straight to daphne's transport:
            # framing each send separately was a third of the cost of a delivery.
            protocol.transport.write(frame)
            return
        self.queue.append(text)
        self.queued_bytes += len(text)
        if self.writer is None:
            self.writer = asyncio.get_running_loop().create_task(self.write())

    async def write(self) -> None:
        try:
            while self.queue:
                text = self.queue.popleft()
                self.queued_bytes -= len(text)
                await self.send({"type": "websocket.send", "text": text})
        except OSError:
            # The client went away mid-write (uvicorn raises ClientDisconnected); the
            # consumer's disconnect cleans up.
            self.queue.clear()
            self.queued_bytes = 0
        finally:
            self.writer = None


class Hub:
    """One event loop's open sockets per chat, and its subscriptions to other processes."""

    def __init__(self, loop: asyncio.AbstractEventLoop, layer: BaseChannelLayer | None) -> None:
        self.loop = loop
        self.layer = layer
        self.rooms: dict[int, set[Outbox]] = {}
        self.channel: str | None = None
        self.reader: asyncio.Task[None] | None = None

    async def join(self, chat_id: int, outbox: Outbox) -> None:
        sockets = self.rooms.setdefault(chat_id, set())
        sockets.add(outbox)
        if len(sockets) == 1 and self.layer is not None:
            await self.layer.group_add(chat_group(chat_id), await self.subscription())

    async def leave(self, chat_id: int, outbox: Outbox) -> None:
        sockets = self.rooms.get(chat_id)
        if sockets is None:
            return
        sockets.discard(outbox)
        if not sockets:
            del self.rooms[chat_id]
            if self.layer is not None and self.channel is not None:
                await self.layer.group_discard(chat_group(chat_id), self.channel)

    def deliver(self, chat_id: int, text: str) -> None:
        """Write a fragment to every socket of the chat in this process."""
        frame = websocket_frame(text)
        for outbox in tuple(self.rooms.get(chat_id, ())):
            outbox.push(text, frame)

    def revoke(self, chat_id: int, user_id: int) -> None:
        """The user left the chat or was removed: let go of their sockets on it."""
        for outbox in tuple(self.rooms.get(chat_id, ())):
            if outbox.user_id == user_id:
                outbox.on_revoke()

    def dispatch(self, event: dict[str, Any]) -> None:
        if event.get("type") == HTML_EVENT:
            self.deliver(event["chat_id"], event["html"])
        elif event.get("type") == REVOKE_EVENT:
            self.revoke(event["chat_id"], event["user_id"])

    async def subscription(self) -> str:
        """This process's one channel for fragments from other processes."""
        if self.channel is None:
            assert self.layer is not None
            self.channel = await self.layer.new_channel("chat-process.")
            self.reader = self.loop.create_task(self.read(self.layer, self.channel))
        return self.channel

    async def read(self, layer: BaseChannelLayer, channel: str) -> None:
        while True:
            self.dispatch(await layer.receive(channel))


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def shared_layer() -> BaseChannelLayer | None:
    """The channel layer that links processes; the in-memory layer links nothing."""
    layer = get_channel_layer()
    return None if isinstance(layer, InMemoryChannelLayer) else layer


def hub() -> Hub:
    """The hub of the running event loop."""
    loop = asyncio.get_running_loop()
    if loop not in _hubs:
        _hubs[loop] = Hub(loop, shared_layer())
    return _hubs[loop]


def publish(event: dict[str, Any]) -> None:
    """Hand an event about a chat to every process's sockets on that chat.

    Called from synchronous code (after a commit), on any thread.
    """
    layer = shared_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(chat_group(event["chat_id"]), event)
        return
    for loop, local_hub in list(_hubs.items()):
        if not loop.is_closed():
            loop.call_soon_threadsafe(local_hub.dispatch, event)
