"""The chat socket: authenticate, subscribe, and hand frames to chat.frames."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import SyncToAsync
from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.utils import translation

from chat import access_log, broadcast, connections, frames
from chat.i18n import language_of_scope
from chat.limits import parse_rate
from chat.models import Chat, Membership

logger = logging.getLogger(__name__)

# Closing with a code in 4000-4999 after accepting tells the page not to retry.
CLOSE_NOT_ALLOWED = 4003
# The socket kept sending faster than FRAME_RATE after being told to slow down.
CLOSE_FLOODING = 4008
# The user already has SOCKETS_PER_USER sockets open on this process.
CLOSE_TOO_MANY_SOCKETS = 4029
# The socket fell too far behind; the page reconnects and catches up by message id.
CLOSE_RECONNECT = 4500
# Windows in a row over FRAME_RATE before a socket is let go.
FLOOD_STRIKES = 3
# A socket's typing signals pass at most once per this many seconds. The page sends one
# every few seconds while someone types, and after a sent message, 2 s after its last
# one: the 0.5 s between the two lets a signal that came a little early through.
TYPING_INTERVAL = 1.5
TYPING_FRAME = re.compile(r'"action"\s*:\s*"typing"')


def socket_chats(user: User | AnonymousUser, chat_id: int | None) -> tuple[Chat | None, list[int]] | None:
    """The chat open in the page (if any) and every chat of the user (its chat list), or
    None if the user may not open this socket."""
    if not user.is_authenticated:
        return None
    chat_ids = list(Membership.objects.filter(user=user).values_list("chat_id", flat=True))
    if chat_id is None:
        return None, chat_ids
    if chat_id not in chat_ids:
        return None
    return Chat.objects.get(pk=chat_id), chat_ids


class FrameSyncToAsync(SyncToAsync):
    """Runs a socket's database work (its connect, its frames) in the one thread that every
    socket shares, keeping that thread's database connection from frame to frame
    (chat.connections)."""

    def thread_handler(self, loop: Any, *args: Any, **kwargs: Any) -> Any:
        connections.replace_failed()
        return super().thread_handler(loop, *args, **kwargs)


def frame_sync_to_async(function: Any) -> Any:
    return FrameSyncToAsync(function, thread_sensitive=True)


def in_language[T](language: str, function: Callable[..., T], **kwargs: Any) -> T:
    """Run a socket's frame in the language of its page."""
    with translation.override(language):
        return function(**kwargs)


class GroupCommit:
    """The chat pages' frames of one process (one event loop), handled together: the one
    writer takes every frame queued while it was busy and hands them to frames.handle_all,
    which handles them in one transaction; each socket gets its reply after the commit.

    One transaction, one commit and one thread hop per group instead of per frame. A socket
    still waits for its reply before its next frame, so each socket's frames keep their
    order; numbers, idempotency and per-frame errors are as with one transaction each
    (frames.handle_all).
    """

    def __init__(self) -> None:
        self.queue: list[tuple[frames.Job, asyncio.Future[str]]] = []
        self.writer: asyncio.Task[None] | None = None

    async def handle(self, job: frames.Job) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.queue.append((job, future))
        if self.writer is None:
            self.writer = asyncio.get_running_loop().create_task(self.write())
        return await future

    async def write(self) -> None:
        try:
            while self.queue:
                batch, self.queue = self.queue[:GROUP_COMMIT_MAX], self.queue[GROUP_COMMIT_MAX:]
                try:
                    replies = await frame_sync_to_async(frames.handle_all)([job for job, _ in batch])
                except asyncio.CancelledError as error:
                    # The process is stopping: no socket is left waiting.
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    raise
                except Exception:
                    # handle_all answers every frame itself: this is a bug, logged for a fix,
                    # and each sender is told that it could not be done.
                    logger.exception("A group of %d frames could not be handled", len(batch))
                    replies = [frames.failed_in(job.language) for job, _ in batch]
                for (_, future), reply in zip(batch, replies, strict=True):
                    if not future.done():
                        future.set_result(reply)
        finally:
            self.writer = None


# Frames in one transaction at most: a bigger group would hold the others' replies longer.
GROUP_COMMIT_MAX = 64
_group_commits: dict[asyncio.AbstractEventLoop, GroupCommit] = {}


def group_commit() -> GroupCommit:
    """This event loop's GroupCommit."""
    loop = asyncio.get_running_loop()
    found = _group_commits.get(loop)
    if found is None:
        for stale in [other for other in _group_commits if other.is_closed()]:
            del _group_commits[stale]
        found = _group_commits[loop] = GroupCommit()
    return found


class FrameRate:
    """How fast one socket sends frames, in fixed windows of FRAME_RATE's period; kept in the
    socket itself, since a flood is refused before it costs a thread hop or a cache trip."""

    def __init__(self) -> None:
        self.allowed, self.period = parse_rate(settings.CHAT_RATES["frame"])
        self.window = 0
        self.count = 0
        self.strikes = 0

    def take(self) -> bool:
        """Count a frame: False if it is over the rate."""
        window = int(time.monotonic() // self.period)
        if window != self.window:
            self.strikes = self.strikes + 1 if self.count > self.allowed else 0
            self.window, self.count = window, 0
        self.count += 1
        return self.count <= self.allowed

    @property
    def flooding(self) -> bool:
        return self.strikes >= FLOOD_STRIKES


class HubConsumer(AsyncWebsocketConsumer):
    """A socket registered in its process's hub (chat.hub), whatever it speaks."""

    # Pushes arrive through broadcast's per-process hub, not through a channel per socket.
    channel_layer_alias = "no channel per socket"
    outbox: broadcast.Outbox | None = None
    accepted = False
    # The code the socket ended with: the server's when it closed it, else the client's.
    close_code: int | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # However the socket ends (a close, an error, a cancelled task at shutdown), it
        # leaves the hub: a socket kept there would cost every later push in its chat.
        started = time.monotonic()
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.leave_hub()
            user = getattr(self, "user", None) or scope.get("user")
            access_log.socket_session(
                user_id=user.pk if user is not None else None,
                chat_id=self.logged_chat_id(),
                code=self.close_code,
                duration=time.monotonic() - started,
            )

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its close_old_connections before every message: that
        was a thread hop per frame, and (CONN_MAX_AGE=0) closed the connection that the
        frames' thread keeps, so every frame opened a new one. FrameSyncToAsync replaces a
        connection that failed instead."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    def logged_chat_id(self) -> int | None:
        return self.scope.get("url_route", {}).get("kwargs", {}).get("chat_id")

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        """Accept once; what the hub pushed before (joined first) goes out after."""
        if self.accepted:
            return
        self.accepted = True
        await super().accept(subprotocol, headers)
        if self.outbox is not None:
            self.outbox.release()

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        # Accepted first, so that the client sees the code, not a refused handshake.
        await self.accept()
        self.close_code = self.close_code or (code if isinstance(code, int) else 1000)
        await super().close(code=code, reason=reason)

    async def disconnect(self, code: int) -> None:
        self.close_code = self.close_code or code
        await self.leave_hub()

    async def join_hub(self, outbox: broadcast.Outbox) -> bool:
        """Register the socket, unless its user has too many open on this process."""
        self.hub = broadcast.hub()
        if self.hub.sockets_of(self.user.pk) >= settings.SOCKETS_PER_USER:
            logger.warning("User %s has too many sockets open: refusing one more", self.user.pk)
            await self.close(code=CLOSE_TOO_MANY_SOCKETS)
            return False
        self.outbox = outbox
        outbox.held = not self.accepted
        await self.hub.join(outbox)
        return True

    async def leave_hub(self) -> None:
        if self.outbox is not None:
            outbox, self.outbox = self.outbox, None
            await self.hub.leave(outbox)

    def reply(self, text: str) -> None:
        """Write to this socket alone, after what the hub holds for its chat (new messages
        are held a moment, to write several in one frame): the answer to a send comes
        after the message it stored."""
        if self.outbox is not None:
            self.hub.flush()
            self.outbox.push(text)

    def revoked(self) -> None:
        asyncio.get_running_loop().create_task(self.close(code=CLOSE_NOT_ALLOWED))

    def fell_behind(self) -> None:
        logger.warning("A socket of user %s fell too far behind: closing it", self.user.pk)
        asyncio.get_running_loop().create_task(self.close(code=CLOSE_RECONNECT))


class ChatConsumer(HubConsumer):
    """The chat page's socket (/ws/chats/<id>/, or /ws/chats/ for the chat list alone):
    HTML fragments out, htmx's form frames in."""

    chat: Chat | None = None

    async def connect(self) -> None:
        self.user = self.scope["user"]
        self.rate = FrameRate()
        self.typed_at = 0.0
        # The replies to this socket alone (errors, catch-up) speak the page's language.
        self.language = language_of_scope(self.scope)
        found = await frame_sync_to_async(socket_chats)(
            self.user, self.scope["url_route"]["kwargs"].get("chat_id")
        )
        await self.accept()
        if found is None:
            await self.close(code=CLOSE_NOT_ALLOWED)
            return
        self.chat, watching = found
        outbox = broadcast.Outbox(
            self.base_send,
            on_overflow=self.fell_behind,
            user_id=self.user.pk,
            on_revoke=self.revoked,
            chat_id=self.chat.pk if self.chat is not None else None,
            watching=watching,
        )
        await self.join_hub(outbox)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # A socket without an open chat (the chat list) only listens.
        if self.chat is None or self.outbox is None:
            return
        if not self.rate.take():
            if self.rate.flooding:
                logger.warning(
                    "User %s kept flooding chat %s: closing the socket", self.user.pk, self.chat.pk
                )
                await self.close(code=CLOSE_FLOODING)
            elif self.rate.count == self.rate.allowed + 1:
                with translation.override(self.language):
                    self.reply(frames.too_fast())
            return
        if text_data is not None and TYPING_FRAME.search(text_data[:64]):
            # Typing signals are throttled per socket, and cost nothing when dropped.
            now = time.monotonic()
            if now - self.typed_at < TYPING_INTERVAL:
                return
            self.typed_at = now
        reply = await group_commit().handle(
            frames.Job(user=self.user, chat=self.chat, text_data=text_data, language=self.language)
        )
        if reply:
            self.reply(reply)
