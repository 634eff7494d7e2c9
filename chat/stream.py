"""The sockets for programs: JSON in, JSON out.

- /ws/events/: the event stream, every event of every chat of the user (chat.events),
  each chat's in order and once each, resumable from per-chat cursors.
- /ws/chat/?chat=<id>: the original design's protocol, `{"message": "<text>"}` in and out,
  for one chat (General when `chat` is left out).

Both sign in with the browser session (the Origin is checked as for the pages) or with an
API token sent as the first frame, `{"type": "auth", "token": "<key>"}`, never in the URL.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from typing import Any
from urllib.parse import parse_qs

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError

from chat import events, frames, services
from chat.consumers import (
    CLOSE_FLOODING,
    CLOSE_NOT_ALLOWED,
    FrameRate,
    HubConsumer,
    frame_sync_to_async,
    in_language,
)
from chat.errors import Conflict
from chat.forms import MessageForm
from chat.hub import LegacyOutbox, StreamOutbox
from chat.i18n import language_of_scope
from chat.models import Chat, Membership, parse_id

logger = logging.getLogger(__name__)

# A socket that has not signed in within this many seconds is closed.
AUTH_SECONDS = 10.0


def dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def error(code: str, detail: str) -> str:
    return dumps({"type": "error", "code": code, "detail": detail})


def token_user(key: object) -> tuple[User, int] | None:
    """The active user of an API token, and the token's id."""
    if not isinstance(key, str) or not key:
        return None
    from chat.services.accounts import user_for_token

    return user_for_token(key)


def member_chats(user: User) -> list[tuple[int, int, int]]:
    """(chat id, the event that made the user a member, the chat's last event) of each chat of the user."""
    return list(
        Membership.objects.filter(user=user).values_list("chat_id", "joined_event", "chat__last_event")
    )


def joined_event(user: User, chat_id: int) -> int | None:
    """The event that made the user a member of the chat, if they are one."""
    return (
        Membership.objects.filter(user=user, chat_id=chat_id).values_list("joined_event", flat=True).first()
    )


def last_events(chat_ids: list[int]) -> dict[int, int]:
    return dict(Chat.objects.filter(pk__in=chat_ids).values_list("pk", "last_event"))


def parse_cursors(value: object) -> dict[int, int]:
    """`{"<chat id>": <last event seen>, ...}` from a client, or ValidationError."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError("`cursors` maps chat ids to the last event number you have.")
    try:
        return {parse_id(str(chat)): frames.cursor(number) for chat, number in value.items()}
    except (ValueError, ValidationError):
        raise ValidationError("`cursors` maps chat ids to the last event number you have.") from None


class ProgramConsumer(HubConsumer):
    """Signing in, for the sockets of programs: the session, or a token as the first frame."""

    token_id: int | None = None
    started = False

    async def connect(self) -> None:
        self.user = self.scope["user"]
        self.rate = FrameRate()
        self.deadline = asyncio.get_running_loop().call_later(AUTH_SECONDS, self.too_late)
        if self.starts_at_once() and self.user.is_authenticated:
            # In the hub before the handshake ends: a program that sends, or listens, as
            # soon as it is connected misses nothing.
            await self.begin({})
        await self.accept()

    def starts_at_once(self) -> bool:
        """Whether a signed-in browser starts without sending a first frame."""
        return False

    def too_late(self) -> None:
        if not self.started:
            asyncio.get_running_loop().create_task(self.refuse("auth_timeout", "Sign in within 10 seconds."))

    async def refuse(self, code: str, detail: str) -> None:
        await self.accept()
        await self.send(self.error(code, detail))
        await self.close(code=CLOSE_NOT_ALLOWED)

    def error(self, code: str, detail: str) -> str:
        return error(code, detail)

    async def disconnect(self, code: int) -> None:
        self.deadline.cancel()
        await super().disconnect(code)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.rate.take():
            if self.rate.flooding:
                await self.close(code=CLOSE_FLOODING)
            elif self.rate.count == self.rate.allowed + 1:
                await self.send(self.error("too_fast", "You are sending too fast. Wait a moment."))
            return
        try:
            frame = frames.parse_frame(text_data)
        except ValidationError as invalid:
            await self.send(self.error("invalid", " ".join(invalid.messages)))
            return
        if self.started:
            await self.handle(frame)
        elif frame.get("type") == "auth" and "token" in frame:
            found = await frame_sync_to_async(token_user)(frame["token"])
            if found is None:
                await self.refuse("invalid_token", "That token is not valid (or its account is not active).")
                return
            self.user, self.token_id = found
            await self.begin(frame)
        elif self.user.is_authenticated and frame.get("type") in ("auth", "resume"):
            await self.begin(frame)
        else:
            await self.refuse("not_authenticated", 'Sign in first: send {"type": "auth", "token": "<key>"}.')

    async def begin(self, frame: dict[str, Any]) -> None:
        raise NotImplementedError

    async def handle(self, frame: dict[str, Any]) -> None:
        raise NotImplementedError


class EventsConsumer(ProgramConsumer):
    """/ws/events/: the user's chats' events, JSON, as chat.events made them.

    The first frame signs in (or, with the session, says `{"type": "resume"}`) and may give
    `cursors`, the last event the client has of each chat. The server answers `hello`
    with where each chat starts, sends what the client missed (chats it did not list
    from the event that added the user), then every new event. Past events.REPLAY_LIMIT
    missed in a chat, `resync` says to read that chat's change feed instead.
    """

    def logged_chat_id(self) -> None:
        return None

    async def begin(self, frame: dict[str, Any]) -> None:
        try:
            given = parse_cursors(frame.get("cursors"))
        except ValidationError as invalid:
            await self.send(self.error("invalid_cursors", " ".join(invalid.messages)))
            return
        self.started = True
        chats = await frame_sync_to_async(member_chats)(self.user)
        resuming = "cursors" in frame
        start = {
            chat_id: min(given[chat_id], last)
            if chat_id in given
            else (max(joined - 1, 0) if resuming else last)
            for chat_id, joined, last in chats
        }
        self.gaps: deque[int] = deque()
        self.catching_up: asyncio.Task[None] | None = None
        outbox = StreamOutbox(
            self.base_send,
            on_overflow=self.fell_behind,
            user_id=self.user.pk,
            token_id=self.token_id,
            on_revoke=self.revoked,
            on_gap=self.gap,
            cursors=start,
        )
        if not await self.join_hub(outbox):
            return
        outbox.push(
            dumps(
                {
                    "type": "hello",
                    "user": events.user_data(self.user),
                    "chats": {str(chat_id): cursor for chat_id, cursor in start.items()},
                }
            )
        )
        for chat_id in given.keys() - start.keys():
            outbox.push(dumps({"type": "chat.removed", "chat": chat_id}))
        # Subscribed now: what happened before is read from the database, what happens
        # from here on arrives live (and waits, as `stale`, while its chat is read).
        latest = await frame_sync_to_async(last_events)(list(start))
        for chat_id, cursor in start.items():
            if cursor < latest.get(chat_id, 0) or chat_id in outbox.stale:
                self.gap(chat_id)
            else:
                outbox.catching_up.discard(chat_id)

    def gap(self, chat_id: int) -> None:
        """Read a chat's missed events from the database, one chat at a time."""
        self.gaps.append(chat_id)
        if self.catching_up is None or self.catching_up.done():
            self.catching_up = asyncio.get_running_loop().create_task(self.catch_up())

    async def catch_up(self) -> None:
        while self.gaps and self.outbox is not None:
            await self.catch_up_chat(self.gaps.popleft())

    async def catch_up_chat(self, chat_id: int) -> None:
        outbox = self.outbox
        assert isinstance(outbox, StreamOutbox)
        while self.outbox is outbox:
            outbox.stale.discard(chat_id)
            after = outbox.cursors.get(chat_id)
            if after is None:
                break
            found = await frame_sync_to_async(events.missed)(chat_id, after)
            if found is None:
                latest = (await frame_sync_to_async(last_events)([chat_id])).get(chat_id, after)
                outbox.cursors[chat_id] = latest
                outbox.push(dumps({"type": "resync", "chat": chat_id, "after": after, "event": latest}))
            for number, kind, frame in found or ():
                if chat_id not in outbox.cursors:
                    break
                outbox.cursors[chat_id] = number
                outbox.push(frame)
                if events.removes(kind, frame, self.user.pk):
                    # Out of the chat here; back in later if they were added again since.
                    rejoined = await frame_sync_to_async(joined_event)(self.user, chat_id)
                    if rejoined is not None and rejoined > number:
                        outbox.cursors[chat_id] = rejoined - 1
                        outbox.stale.add(chat_id)
                    else:
                        self.hub.drop(outbox, chat_id)
                    break
            if chat_id not in outbox.stale:
                break
        outbox.catching_up.discard(chat_id)

    async def handle(self, frame: dict[str, Any]) -> None:
        if frame.get("type") == "ping":
            await self.send(dumps({"type": "pong"}))
        else:
            await self.send(self.error("unknown_type", 'This socket understands {"type": "ping"} only.'))


def post_legacy(*, user: User, chat: Chat, frame: dict[str, Any]) -> str:
    """A message in the original protocol, posted as from any other door: the reply is an
    error for the sender alone, or nothing (the message comes back as a push, to everyone)."""
    if "message" not in frame:
        return legacy_error("invalid", 'Send {"message": "<text>"}.')
    form = MessageForm.from_frame({"text": frame["message"], "client_id": frame.get("client_id")})
    if not form.is_valid():
        return legacy_error("invalid", " ".join(form.all_errors()))
    try:
        services.post_message(
            chat=chat, user=user, text=form.cleaned_data["text"], client_id=form.cleaned_data["client_id"]
        )
    except ValidationError as invalid:
        return legacy_error("invalid", " ".join(invalid.messages))
    except Conflict as conflict:
        return legacy_error("conflict", str(conflict))
    except PermissionDenied as denied:
        return legacy_error("permission_denied", str(denied))
    except DatabaseError:
        logger.exception("Saving a message from user %s in chat %s failed", user.pk, chat.pk)
        return legacy_error("not_saved", "Your message could not be saved. Please send it again.")
    except Exception:
        # As for the page's frames: logged for a fix, and the socket goes on.
        logger.exception("A frame from user %s in chat %s could not be handled", user.pk, chat.pk)
        return legacy_error("error", "That could not be done.")
    return ""


def legacy_error(code: str, detail: str) -> str:
    return dumps({"error": detail, "code": code})


def legacy_chat(user: User, query: bytes) -> Chat | None:
    """The chat a ws/chat/ socket asks for (`?chat=<id>`, General by default), if the user is in it."""
    values = parse_qs(query.decode("latin1")).get("chat")
    try:
        chats = Chat.objects.filter(pk=parse_id(values[0])) if values else Chat.objects.filter(auto_join=True)
    except ValueError:
        return None
    return chats.filter(memberships__user=user).order_by("pk").first()


class LegacyChatConsumer(ProgramConsumer):
    """ws/chat/: the original design's socket, one chat's new messages as `{"message", ...}`."""

    chat: Chat | None = None

    def starts_at_once(self) -> bool:
        return True

    def logged_chat_id(self) -> int | None:
        return self.chat.pk if self.chat is not None else None

    def error(self, code: str, detail: str) -> str:
        return legacy_error(code, detail)

    async def begin(self, frame: dict[str, Any]) -> None:
        self.started = True
        self.chat = await frame_sync_to_async(legacy_chat)(self.user, self.scope.get("query_string", b""))
        if self.chat is None:
            await self.refuse("not_found", "No such chat, or you are not in it.")
            return
        outbox = LegacyOutbox(
            self.base_send,
            self.fell_behind,
            follows=self.chat.pk,
            user_id=self.user.pk,
            token_id=self.token_id,
            on_revoke=self.revoked,
        )
        await self.join_hub(outbox)

    async def handle(self, frame: dict[str, Any]) -> None:
        if self.chat is None:
            return
        reply = await frame_sync_to_async(in_language)(
            language_of_scope(self.scope), post_legacy, user=self.user, chat=self.chat, frame=frame
        )
        if reply:
            await self.send(reply)
