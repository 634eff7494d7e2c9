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

from chat import daphne_adapter

if TYPE_CHECKING:
    from chat.models import Message

logger = logging.getLogger(__name__)

DETAIL = "chat/chat_detail.html"
# The events that travel between processes: a fragment for a chat's sockets, and the
# end of someone's membership of a chat.
HTML_EVENT = "chat.html"
REVOKE_EVENT = "chat.revoke"
SESSIONS_EVENT = "user.sessions_ended"


def chat_group(chat_id: int) -> str:
    """The channel-layer group of the processes that have sockets open on a chat."""
    return f"chat.{chat_id}"


def user_group(user_id: int) -> str:
    """The channel-layer group of the processes that have sockets of a user open."""
    return f"user.{user_id}"


# Rendering: once per message version, the same bytes for every viewer.


def render_message(message: Message) -> str:
    """A new message, appended to the log."""
    return render_to_string(f"{DETAIL}#message_oob", {"message": message})


def render_message_version(message: Message) -> str:
    """An edited or deleted message, replacing the one shown (if it is shown)."""
    return render_to_string(f"{DETAIL}#message", {"message": message})


def message_posted(message: Message) -> None:
    publish(
        chat_group(message.chat_id),
        {"type": HTML_EVENT, "chat_id": message.chat_id, "html": render_message(message)},
    )


def message_changed(message: Message) -> None:
    publish(
        chat_group(message.chat_id),
        {"type": HTML_EVENT, "chat_id": message.chat_id, "html": render_message_version(message)},
    )


def member_left(chat_id: int, user_id: int) -> None:
    """A member left or was removed: their open sockets on the chat are closed."""
    publish(chat_group(chat_id), {"type": REVOKE_EVENT, "chat_id": chat_id, "user_id": user_id})


def sessions_ended(user_id: int) -> None:
    """The user logged out, changed their password or was deactivated: every open socket
    of theirs, on every process, is closed with a code the page retries; on reconnecting,
    a session that is no longer valid is refused."""
    publish(user_group(user_id), {"type": SESSIONS_EVENT, "user_id": user_id})


# Fan-out.

Send = Callable[[dict[str, Any]], Awaitable[None]]


class Outbox:
    """One socket's bounded send buffer; a socket that falls too far behind is let go.

    Under daphne, frames go straight to the socket's protocol while its transport takes
    them, and queue here while Twisted's flow control says the client is not reading
    (chat.daphne_adapter). Elsewhere a writer task sends them through ASGI. Either way
    the limit bounds the server's memory per socket, and one slow socket never slows
    the others.
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
        self.paused = False
        self.closing: asyncio.Future[None] | None = None
        self.protocol = daphne_adapter.find_protocol(send)
        if self.protocol is not None and not daphne_adapter.watch(self.protocol, self.pause, self.resume):
            self.protocol = None

    def push(self, text: str, prepared: Any = None) -> None:
        """Send a text to the socket; `prepared` is its frame made once for every recipient."""
        if self.overflowed:
            return
        protocol = self.protocol
        if protocol is not None and not self.paused and not self.queue and daphne_adapter.is_open(protocol):
            if prepared is not None:
                protocol.sendPreparedMessage(prepared)
            else:
                protocol.sendMessage(text.encode())
            return
        if self.queued_bytes + len(text) > self.limit:
            self.overflowed = True
            self.queue.clear()
            self.queued_bytes = 0
            self.on_overflow()
            return
        self.queue.append(text)
        self.queued_bytes += len(text)
        if protocol is None and self.writer is None:
            self.writer = asyncio.get_running_loop().create_task(self.write())

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        """The client reads again: send what queued meanwhile, until the transport is full again."""
        self.paused = False
        protocol = self.protocol
        while self.queue and not self.paused and protocol is not None and daphne_adapter.is_open(protocol):
            text = self.queue.popleft()
            self.queued_bytes -= len(text)
            protocol.sendMessage(text.encode())

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

    def restart(self) -> None:
        """Close with 1012 (service restart): the page reconnects, to this process or another,
        and catches up; a session that is no longer valid is refused then."""
        if self.protocol is not None:
            daphne_adapter.close_for_restart(self.protocol)
        else:
            self.closing = asyncio.ensure_future(self.send({"type": "websocket.close", "code": 1012}))


class Hub:
    """One event loop's open sockets per chat and per user, and its subscriptions to other
    processes: one per chat and one per user with sockets here, never one per socket."""

    def __init__(self, loop: asyncio.AbstractEventLoop, layer: BaseChannelLayer | None) -> None:
        self.loop = loop
        self.layer = layer
        self.rooms: dict[int, set[Outbox]] = {}
        self.users: dict[int, set[Outbox]] = {}
        self.channel: str | None = None
        self.reader: asyncio.Task[None] | None = None

    def sockets_of(self, user_id: int) -> int:
        return len(self.users.get(user_id, ()))

    async def join(self, chat_id: int, outbox: Outbox) -> None:
        await self.add(self.rooms, chat_id, chat_group(chat_id), outbox)
        if outbox.user_id is not None:
            await self.add(self.users, outbox.user_id, user_group(outbox.user_id), outbox)

    async def leave(self, chat_id: int, outbox: Outbox) -> None:
        await self.discard(self.rooms, chat_id, chat_group(chat_id), outbox)
        if outbox.user_id is not None:
            await self.discard(self.users, outbox.user_id, user_group(outbox.user_id), outbox)

    async def add(self, registry: dict[int, set[Outbox]], key: int, group: str, outbox: Outbox) -> None:
        sockets = registry.setdefault(key, set())
        sockets.add(outbox)
        if len(sockets) == 1 and self.layer is not None:
            await self.layer.group_add(group, await self.subscription())

    async def discard(self, registry: dict[int, set[Outbox]], key: int, group: str, outbox: Outbox) -> None:
        sockets = registry.get(key)
        if sockets is None or outbox not in sockets:
            return
        sockets.discard(outbox)
        if not sockets:
            del registry[key]
            if self.layer is not None and self.channel is not None:
                await self.layer.group_discard(group, self.channel)

    def deliver(self, chat_id: int, text: str) -> None:
        """Write a fragment to every socket of the chat in this process, framed once."""
        prepared = None
        for outbox in tuple(self.rooms.get(chat_id, ())):
            if prepared is None and outbox.protocol is not None:
                prepared = daphne_adapter.prepare(outbox.protocol, text)
            outbox.push(text, prepared)

    def revoke(self, chat_id: int, user_id: int) -> None:
        """The user left the chat or was removed: let go of their sockets on it."""
        for outbox in tuple(self.rooms.get(chat_id, ())):
            if outbox.user_id == user_id:
                outbox.on_revoke()

    def end_sessions(self, user_id: int) -> None:
        for outbox in tuple(self.users.get(user_id, ())):
            outbox.restart()

    def restart_all(self) -> None:
        """The process is stopping: every socket reconnects, to another process if there is one."""
        logger.info("Stopping: %d socket(s) are asked to reconnect", sum(map(len, self.rooms.values())))
        for sockets in tuple(self.rooms.values()):
            for outbox in tuple(sockets):
                outbox.restart()

    def dispatch(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == HTML_EVENT:
            self.deliver(event["chat_id"], event["html"])
        elif kind == REVOKE_EVENT:
            self.revoke(event["chat_id"], event["user_id"])
        elif kind == SESSIONS_EVENT:
            self.end_sessions(event["user_id"])
        else:
            logger.error("An event of unknown type %r was dropped", kind)

    async def subscription(self) -> str:
        """This process's one channel for events from other processes."""
        assert self.layer is not None
        if self.channel is None:
            self.channel = await self.layer.new_channel("chat-process.")
        if self.reader is None or self.reader.done():
            self.start_reader()
        return self.channel

    def start_reader(self) -> None:
        assert self.layer is not None and self.channel is not None
        self.reader = self.loop.create_task(self.read(self.layer, self.channel))
        self.reader.add_done_callback(self.reader_ended)

    def reader_ended(self, reader: asyncio.Task[None]) -> None:
        """The reader never ends on its own: if it does, it is started again at once."""
        if reader.cancelled() or self.loop.is_closed():
            return
        logger.error("The channel layer's reader ended (%r); starting it again", reader.exception())
        self.start_reader()

    async def read(self, layer: BaseChannelLayer, channel: str) -> None:
        """Hand each event to this process's sockets; one bad event or a lost connection to
        the layer never ends delivery."""
        while True:
            try:
                event = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Reading from the channel layer failed; trying again in a second")
                await asyncio.sleep(1)
                continue
            try:
                self.dispatch(event)
            except Exception:
                logger.exception("An event of type %r could not be delivered", event.get("type"))


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def shared_layer() -> BaseChannelLayer | None:
    """The channel layer that links processes; the in-memory layer links nothing."""
    layer = get_channel_layer()
    return None if isinstance(layer, InMemoryChannelLayer) else layer


def hub() -> Hub:
    """The hub of the running event loop."""
    loop = asyncio.get_running_loop()
    if loop not in _hubs:
        _hubs[loop] = local_hub = Hub(loop, shared_layer())
        if daphne_adapter.under_daphne():
            daphne_adapter.before_shutdown(local_hub.restart_all)
    return _hubs[loop]


def publish(group: str, event: dict[str, Any]) -> None:
    """Hand an event to every process's sockets in the group (a chat's or a user's).

    Called from synchronous code (after a commit), on any thread.
    """
    layer = shared_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(group, event)
        return
    for loop, local_hub in list(_hubs.items()):
        if not loop.is_closed():
            loop.call_soon_threadsafe(local_hub.dispatch, event)
