"""Fan-out inside one server process: its open sockets, and its subscriptions to the others.

Each process (each event loop) keeps a Hub: its sockets per open chat, per member's chat
(for the chat list beside the conversation) and per user. A push arrives once per chat
or per user, through the channel layer (Redis) or straight from this process, and is
written to each socket here, framed once (chat.daphne_adapter). Redis sees one
subscription per chat and per user with sockets on a process, never one per socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import BaseChannelLayer
from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

from chat import daphne_adapter

logger = logging.getLogger(__name__)

# The events that travel between processes.
HTML_EVENT = "chat.html"  # a chat's change: fragments for its pages, its event for the streams
SESSIONS_EVENT = "user.sessions_ended"  # someone's sessions ended
USER_CHATS_EVENT = "user.chats"  # someone joined or left a chat: their chat list changes
TOKEN_EVENT = "user.token_revoked"  # noqa: S105 (an event type) one of their API tokens was revoked

# Presence: a socket's chat is marked "open by this user" for this long, renewed every
# PRESENCE_RENEW seconds while the socket lives; a closed tab or a dead process drops out
# within the lifetime.
PRESENCE_SECONDS = 60
PRESENCE_RENEW = 20
# Seconds before a reader that ended is started again (no tight loop on a lasting error).
READER_RESTART_DELAY = 0.5
# Seconds a group stays subscribed after its last socket left: a page that reloads or opens
# another chat is back within a second, and subscribing again costs round trips to Redis.
UNSUBSCRIBE_AFTER = 30.0


def chat_group(chat_id: int) -> str:
    """The channel-layer group of the processes that have sockets on a chat (open, or of a member)."""
    return f"chat.{chat_id}"


def user_group(user_id: int) -> str:
    """The channel-layer group of the processes that have sockets of a user open."""
    return f"user.{user_id}"


def presence_key(chat_id: int, user_id: int) -> str:
    return f"presence:{chat_id}:{user_id}"


def legacy_frame(frame: str) -> str:
    """An event in the original protocol's shape (ws/chat/): a new message as
    `{"message": <text>, ...}`; nothing for any other event."""
    event = json.loads(frame)
    if event["type"] != "message.created":
        return ""
    message = event["message"]
    return json.dumps(
        {
            "message": message["text"],
            "id": message["id"],
            "chat": message["chat"],
            "user": message["user"],
            "username": message["user"]["username"],
            "timestamp": message["timestamp"],
        },
        ensure_ascii=False,
    )


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
        chat_id: int | None = None,
        watching: Iterable[int] = (),
        token_id: int | None = None,
    ) -> None:
        self.send = send
        self.on_overflow = on_overflow
        # Whose socket this is, and what to do when they leave the chat or are removed.
        self.user_id = user_id
        self.on_revoke = on_revoke
        # The API token the socket signed in with (None: the browser session).
        self.token_id = token_id
        # The chat open in the page (None on the chat list), and the chats in its chat list.
        self.chat_id = chat_id
        self.watching = set(watching)
        self.limit = limit if limit is not None else settings.CHAT_SEND_BUFFER_BYTES
        # Texts waiting for the socket, each with its frame made once for every recipient (if any).
        self.queue: deque[tuple[str, Any]] = deque()
        self.queued_bytes = 0
        self.writer: asyncio.Task[None] | None = None
        self.overflowed = False
        self.paused = False
        # Joined before the socket is accepted: pushes wait here until release().
        self.held = False
        self.closing: asyncio.Future[None] | None = None
        self.protocol = daphne_adapter.find_protocol(send)
        if self.protocol is not None and not daphne_adapter.watch(self.protocol, self.pause, self.resume):
            self.protocol = None

    def push(self, text: str, prepared: Any = None) -> None:
        """Send a text to the socket; `prepared` is its frame made once for every recipient."""
        if self.overflowed:
            return
        protocol = self.protocol
        if (
            protocol is not None
            and not self.paused
            and not self.held
            and not self.queue
            and daphne_adapter.is_open(protocol)
        ):
            if prepared is not None:
                daphne_adapter.send_prepared(protocol, prepared)
            else:
                protocol.sendMessage(text.encode())
            return
        if self.queued_bytes + len(text) > self.limit:
            self.overflowed = True
            self.queue.clear()
            self.queued_bytes = 0
            self.on_overflow()
            return
        self.queue.append((text, prepared))
        self.queued_bytes += len(text)
        if protocol is None and self.writer is None and not self.held:
            self.writer = asyncio.get_running_loop().create_task(self.write())

    def release(self) -> None:
        """The socket is accepted: send what was pushed while it was held."""
        self.held = False
        if self.protocol is not None:
            self.send_queued()
        elif self.queue and self.writer is None:
            self.writer = asyncio.get_running_loop().create_task(self.write())

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        """The client reads again: send what queued meanwhile, until the transport is full again."""
        self.paused = False
        self.send_queued()

    def send_queued(self) -> None:
        """Under daphne: write what is queued while the socket may take it."""
        protocol = self.protocol
        while (
            self.queue
            and not self.paused
            and not self.held
            and protocol is not None
            and daphne_adapter.is_open(protocol)
        ):
            text, prepared = self.queue.popleft()
            self.queued_bytes -= len(text)
            if prepared is not None:
                daphne_adapter.send_prepared(protocol, prepared)
            else:
                protocol.sendMessage(text.encode())

    async def write(self) -> None:
        try:
            while self.queue:
                text, _ = self.queue.popleft()
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


class StreamOutbox(Outbox):
    """A socket of the event stream (chat.stream): the JSON events of every chat of its
    user, each chat's in order and once each.

    `cursors` holds, per chat, the last event number sent. An event that is not the next
    one (pushes from two processes may cross) or that arrives while the chat is being
    caught up is not sent here: `on_gap` reads what is missing from the database, where
    every event is stored before it is pushed.
    """

    def __init__(
        self,
        send: Send,
        on_overflow: Callable[[], None],
        *,
        user_id: int,
        token_id: int | None,
        on_revoke: Callable[[], None],
        on_gap: Callable[[int], None],
        cursors: dict[int, int],
    ) -> None:
        super().__init__(send, on_overflow, user_id=user_id, token_id=token_id, on_revoke=on_revoke)
        self.cursors = dict(cursors)
        self.on_gap = on_gap
        # Chats being read from the database now, and those of them that had a push meanwhile.
        self.catching_up: set[int] = set(cursors)
        self.stale: set[int] = set()

    def offer(self, chat_id: int, number: int, text: str, prepared: Any) -> None:
        if chat_id in self.catching_up:
            self.stale.add(chat_id)
            return
        cursor = self.cursors.get(chat_id)
        if cursor is None or number <= cursor:
            return
        if number == cursor + 1:
            self.cursors[chat_id] = number
            self.push(text, prepared)
        else:
            self.catch_up(chat_id)

    def catch_up(self, chat_id: int) -> None:
        if chat_id not in self.catching_up:
            self.catching_up.add(chat_id)
            self.on_gap(chat_id)


class LegacyOutbox(Outbox):
    """A socket of the original JSON protocol (ws/chat/): one chat's new messages."""

    def __init__(self, send: Send, on_overflow: Callable[[], None], *, follows: int, **kwargs: Any) -> None:
        super().__init__(send, on_overflow, **kwargs)
        self.follows = follows


class Hub:
    """One event loop's sockets and its subscriptions to other processes."""

    def __init__(self, loop: asyncio.AbstractEventLoop, layer: BaseChannelLayer | None) -> None:
        self.loop = loop
        self.layer = layer
        # Sockets by the chat open in them, by the chats in their chat list, and by user.
        self.rooms: dict[int, set[Outbox]] = {}
        self.watchers: dict[int, set[Outbox]] = {}
        self.users: dict[int, set[Outbox]] = {}
        # Event-stream sockets by the chats they follow, and the original protocol's by chat.
        self.streams: dict[int, set[StreamOutbox]] = {}
        self.legacy: dict[int, set[Outbox]] = {}
        # How many registrations need each group; subscribed while above zero, and for
        # UNSUBSCRIBE_AFTER seconds after (the timers of the groups that nothing needs).
        self.groups: dict[str, int] = {}
        self.unneeded: dict[str, asyncio.TimerHandle] = {}
        self.channel: str | None = None
        self.channel_lock = asyncio.Lock()
        self.reader: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.presence: asyncio.Task[None] | None = None
        # New messages' fragments per chat, held until the loop's next turn and written to
        # each page as one frame: a burst costs a write per page, not one per message.
        self.held: dict[int, list[str]] = {}
        self.flush_soon: asyncio.Handle | None = None

    def sockets_of(self, user_id: int) -> int:
        return len(self.users.get(user_id, ()))

    async def join(self, outbox: Outbox) -> None:
        """Register a socket: its open chat, its chat list and its user."""
        if outbox.chat_id is not None:
            self.register(self.rooms, outbox.chat_id, chat_group(outbox.chat_id), outbox)
        for chat_id in outbox.watching:
            self.register(self.watchers, chat_id, chat_group(chat_id), outbox)
        if isinstance(outbox, StreamOutbox):
            for chat_id in outbox.cursors:
                self.register(self.streams, chat_id, chat_group(chat_id), outbox)
        if isinstance(outbox, LegacyOutbox):
            self.register(self.legacy, outbox.follows, chat_group(outbox.follows), outbox)
        if outbox.user_id is not None:
            self.register(self.users, outbox.user_id, user_group(outbox.user_id), outbox)
        # Subscribed before the socket hears anything: what it missed meanwhile it catches up.
        await self.settle()
        if outbox.chat_id is not None and outbox.user_id is not None:
            self.keep_presence()
            await sync_to_async(cache.set)(
                presence_key(outbox.chat_id, outbox.user_id), True, timeout=PRESENCE_SECONDS
            )

    async def leave(self, outbox: Outbox) -> None:
        """Unregister a socket; safe to call twice."""
        if outbox.chat_id is not None:
            self.unregister(self.rooms, outbox.chat_id, chat_group(outbox.chat_id), outbox)
            if outbox.user_id is not None and not any(
                other.user_id == outbox.user_id for other in self.rooms.get(outbox.chat_id, ())
            ):
                await sync_to_async(cache.delete)(presence_key(outbox.chat_id, outbox.user_id))
        for chat_id in tuple(outbox.watching):
            self.unregister(self.watchers, chat_id, chat_group(chat_id), outbox)
        if isinstance(outbox, StreamOutbox):
            for chat_id in tuple(outbox.cursors):
                self.unregister(self.streams, chat_id, chat_group(chat_id), outbox)
        if isinstance(outbox, LegacyOutbox):
            self.unregister(self.legacy, outbox.follows, chat_group(outbox.follows), outbox)
        if outbox.user_id is not None:
            self.unregister(self.users, outbox.user_id, user_group(outbox.user_id), outbox)
        await self.settle()

    def register[O: Outbox](self, registry: dict[int, set[O]], key: int, group: str, outbox: O) -> None:
        sockets = registry.setdefault(key, set())
        if outbox not in sockets:
            sockets.add(outbox)
            self.need(group, +1)

    def unregister[O: Outbox](self, registry: dict[int, set[O]], key: int, group: str, outbox: O) -> None:
        sockets = registry.get(key)
        if sockets is None or outbox not in sockets:
            return
        sockets.discard(outbox)
        if not sockets:
            del registry[key]
        self.need(group, -1)

    def need(self, group: str, change: int) -> None:
        """Count a registration on a group; subscribe on the first, unsubscribe a while
        after the last (UNSUBSCRIBE_AFTER) unless it is needed again meanwhile."""
        count = self.groups.get(group, 0) + change
        if count > 0:
            self.groups[group] = count
        else:
            self.groups.pop(group, None)
        if self.layer is None:
            return
        if change > 0 and count == 1:
            timer = self.unneeded.pop(group, None)
            if timer is not None:
                timer.cancel()  # still subscribed
            else:
                self.track(self.subscribe(group))
        elif count <= 0 and group not in self.unneeded:
            self.unneeded[group] = self.loop.call_later(UNSUBSCRIBE_AFTER, self.let_go, group)

    def let_go(self, group: str) -> None:
        self.unneeded.pop(group, None)
        self.track(self.unsubscribe(group))

    async def subscribe(self, group: str) -> None:
        assert self.layer is not None
        await self.layer.group_add(group, await self.subscription())

    async def unsubscribe(self, group: str) -> None:
        if self.layer is not None and self.channel is not None and group not in self.groups:
            await self.layer.group_discard(group, self.channel)

    def track(self, coroutine: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = self.loop.create_task(coroutine)  # type: ignore[arg-type]
        self.tasks.add(task)
        task.add_done_callback(self.untrack)

    def untrack(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("Changing a subscription failed: %r", task.exception())

    async def settle(self) -> None:
        """Wait for the subscription changes under way."""
        if self.tasks:
            await asyncio.gather(*tuple(self.tasks), return_exceptions=True)

    def watch(self, outbox: Outbox, chat_id: int) -> None:
        outbox.watching.add(chat_id)
        self.register(self.watchers, chat_id, chat_group(chat_id), outbox)

    def unwatch(self, outbox: Outbox, chat_id: int) -> None:
        outbox.watching.discard(chat_id)
        self.unregister(self.watchers, chat_id, chat_group(chat_id), outbox)

    def follow(self, outbox: StreamOutbox, chat_id: int, after: int) -> None:
        """An event stream follows a chat it joined, from event `after` on."""
        if chat_id not in outbox.cursors:
            self.register(self.streams, chat_id, chat_group(chat_id), outbox)
            outbox.cursors[chat_id] = after
            outbox.catch_up(chat_id)

    def drop(self, outbox: StreamOutbox, chat_id: int) -> None:
        """An event stream's user is out of a chat: nothing more of it."""
        if outbox.cursors.pop(chat_id, None) is not None:
            self.unregister(self.streams, chat_id, chat_group(chat_id), outbox)

    def deliver(
        self,
        chat_id: int,
        html: str,
        sidebar: str = "",
        *,
        open_pages_too: bool = True,
        frame: str = "",
        event: int = 0,
        removed_user: int | None = None,
    ) -> None:
        """Write a chat's fragments to this process's sockets, each framed once: the pages
        that have the chat open get `html` (with the chat-list carrier, unless their page
        makes its own entry from `html`: a new message), members' other pages the carrier,
        and event streams the event's JSON `frame` (number `event`)."""
        if frame:
            self.deliver_event(chat_id, frame, event, removed_user)
        if removed_user is not None:
            self.revoke(chat_id, removed_user)
        if html and not open_pages_too:
            self.held.setdefault(chat_id, []).append(html)
            if self.flush_soon is None:
                self.flush_soon = self.loop.call_soon(self.flush)
        elif html:
            self.flush()
            self.write_to_pages(chat_id, html + sidebar)
        if sidebar:
            prepared = None
            for outbox in tuple(self.watchers.get(chat_id, ())):
                if html and outbox.chat_id == chat_id:
                    continue
                if prepared is None and outbox.protocol is not None:
                    prepared = daphne_adapter.prepare(outbox.protocol, sidebar)
                outbox.push(sidebar, prepared)

    def write_to_pages(self, chat_id: int, text: str) -> None:
        prepared = None
        for outbox in tuple(self.rooms.get(chat_id, ())):
            if prepared is None and outbox.protocol is not None:
                prepared = daphne_adapter.prepare(outbox.protocol, text)
            outbox.push(text, prepared)

    def flush(self) -> None:
        """Write the new messages held (in the order they came): called before anything
        else is written to a page, so that each page sees every change in order."""
        if self.flush_soon is not None:
            self.flush_soon.cancel()
            self.flush_soon = None
        held, self.held = self.held, {}
        for chat_id, fragments in held.items():
            self.write_to_pages(chat_id, "".join(fragments))

    def deliver_event(self, chat_id: int, frame: str, event: int, removed_user: int | None) -> None:
        prepared = None
        for outbox in tuple(self.streams.get(chat_id, ())):
            if prepared is None and outbox.protocol is not None:
                prepared = daphne_adapter.prepare(outbox.protocol, frame)
            outbox.offer(chat_id, event, frame, prepared)
            if removed_user == outbox.user_id and outbox.cursors.get(chat_id) == event:
                self.drop(outbox, chat_id)
        if chat_id in self.legacy:
            text = legacy_frame(frame)
            prepared = None
            for legacy in tuple(self.legacy[chat_id]) if text else ():
                if prepared is None and legacy.protocol is not None:
                    prepared = daphne_adapter.prepare(legacy.protocol, text)
                legacy.push(text, prepared)

    def revoke(self, chat_id: int, user_id: int) -> None:
        """The user left the chat or was removed: let go of their sockets on it."""
        self.flush()
        for outbox in (*self.rooms.get(chat_id, ()), *self.legacy.get(chat_id, ())):
            if outbox.user_id == user_id:
                outbox.on_revoke()

    def user_chats(self, user_id: int, chat_id: int, action: str, html: str, event: int = 0) -> None:
        """The user joined or left a chat: their sockets follow it, or stop, in their chat
        list; their event streams follow it from the event that added them (`event`)."""
        self.flush()
        for outbox in tuple(self.users.get(user_id, ())):
            if isinstance(outbox, StreamOutbox):
                # A stream stops at the member.removed event itself, which follows.
                if action == "add":
                    self.follow(outbox, chat_id, max(event - 1, 0))
                continue
            if isinstance(outbox, LegacyOutbox):
                continue
            if action == "add":
                self.watch(outbox, chat_id)
            elif action == "remove":
                self.unwatch(outbox, chat_id)
            outbox.push(html)

    def revoke_token(self, user_id: int, token_id: int) -> None:
        """An API token was revoked: the sockets that signed in with it are closed for good."""
        for outbox in tuple(self.users.get(user_id, ())):
            if outbox.token_id == token_id:
                outbox.on_revoke()

    def end_sessions(self, user_id: int) -> None:
        self.flush()
        for outbox in tuple(self.users.get(user_id, ())):
            outbox.restart()

    def restart_all(self) -> None:
        """The process is stopping: every socket reconnects, to another process if there is one."""
        sockets = {outbox for group in self.users.values() for outbox in group}
        logger.info("Stopping: %d socket(s) are asked to reconnect", len(sockets))
        self.flush()
        for outbox in sockets:
            outbox.restart()

    def dispatch_all(self, events: list[dict[str, Any]]) -> None:
        """Events handed over together (chat.broadcast.held_pushes): each delivered in turn,
        one failing not stopping the others."""
        for event in events:
            try:
                self.dispatch(event)
            except Exception:
                logger.exception("An event of type %r could not be delivered", event.get("type"))

    def dispatch(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == HTML_EVENT:
            self.deliver(
                event["chat_id"],
                event.get("html", ""),
                event.get("sidebar", ""),
                open_pages_too=event.get("open_pages_too", True),
                frame=event.get("frame", ""),
                event=event.get("event", 0),
                removed_user=event.get("removed_user"),
            )
        elif kind == USER_CHATS_EVENT:
            self.user_chats(
                event["user_id"], event["chat_id"], event["action"], event["html"], event.get("event", 0)
            )
        elif kind == SESSIONS_EVENT:
            self.end_sessions(event["user_id"])
        elif kind == TOKEN_EVENT:
            self.revoke_token(event["user_id"], event["token_id"])
        else:
            logger.error("An event of unknown type %r was dropped", kind)

    async def subscription(self) -> str:
        """This process's one channel for events from other processes.

        Several subscriptions start at once when a socket joins (its chat, its chat list,
        its user): the lock makes them share one channel, the one the reader reads.
        """
        assert self.layer is not None
        async with self.channel_lock:
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
        """The reader never ends on its own: if it does (an error nobody foresaw), it is
        started again a moment later."""
        if reader.cancelled() or self.loop.is_closed():
            return
        logger.error("The channel layer's reader ended (%r); starting it again", reader.exception())
        self.loop.call_later(READER_RESTART_DELAY, self.start_reader)

    async def read(self, layer: BaseChannelLayer, channel: str) -> None:
        """Hand each event to this process's sockets; one bad event or a lost connection to
        the layer never ends delivery."""
        while True:
            try:
                event = await layer.receive(channel)
            except (OSError, RedisError):
                logger.exception("Reading from the channel layer failed; trying again in a second")
                await asyncio.sleep(1)
                continue
            # Any error in one event's delivery is that event's: logged, and the next goes on
            # (the house rule for long-lived tasks: catch and log per item).
            try:
                self.dispatch(event)
            except Exception:
                logger.exception("An event of type %r could not be delivered", event.get("type"))

    def keep_presence(self) -> None:
        if self.presence is None or self.presence.done():
            self.presence = self.loop.create_task(self.renew_presence())

    async def renew_presence(self) -> None:
        """Every PRESENCE_RENEW seconds, mark the chats open here as open by their users."""
        while self.rooms:
            await asyncio.sleep(PRESENCE_RENEW)
            keys = {
                presence_key(chat_id, outbox.user_id): True
                for chat_id, sockets in tuple(self.rooms.items())
                for outbox in sockets
                if outbox.user_id is not None
            }
            try:
                await sync_to_async(cache.set_many)(keys, timeout=PRESENCE_SECONDS)
            except (OSError, RedisError):
                logger.exception("Renewing presence failed; trying again later")
