"""Pushing rendered fragments to the open pages of a chat and of its members.

The only code that talks to the channel layer. A fragment is rendered once per message
version, whatever the number of recipients, and written straight to each socket:

- each server process keeps a registry (chat.hub) of its own sockets per open chat, per
  chat in their chat list, and per user;
- without a shared channel layer (no REDIS_URL) a push goes straight to that registry;
- with one, a push travels once per chat (or per user) to every process subscribed to
  it (one subscription per chat per process, not per socket), and each process writes it
  to its own sockets.

A push is the fast path, not the record: the database is, and clients catch up by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer
from django.core.cache import cache
from django.template.loader import render_to_string

from chat import daphne_adapter
from chat.hub import (
    HTML_EVENT,
    SESSIONS_EVENT,
    TOKEN_EVENT,
    USER_CHATS_EVENT,
    Hub,
    Outbox,
    chat_group,
    presence_key,
    user_group,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from chat.models import Chat, Message

__all__ = ["Hub", "Outbox", "chat_group", "hub", "publish", "user_group"]

logger = logging.getLogger(__name__)

DETAIL = "chat/chat_detail.html"
SIDEBAR = "chat/sidebar.html"
# The chat's title and topic, in its page's header.
CHAT_TITLE = "chat/room_settings.html#chat_title"


# Rendering: once per message version, the same bytes for every viewer.


def render_message(message: Message) -> str:
    """A new message, appended to the log."""
    return render_to_string(f"{DETAIL}#message_oob", {"message": message})


def render_message_version(message: Message) -> str:
    """An edited or deleted message, replacing the one shown (if it is shown)."""
    return render_to_string(f"{DETAIL}#message", {"message": message})


def render_sidebar_update(
    chat: Chat, action: str, unread: int = 0, mentions: int = 0, mentioned: str = ""
) -> str:
    """A change to a chat in its members' chat lists (chat/sidebar.html#update); `chat`
    carries its `last_message` (or None). `mentioned` lists whom a new message mentions
    (user ids, or "here"): each page counts its own mentions from it."""
    return render_to_string(
        f"{SIDEBAR}#update",
        {"chat": chat, "action": action, "unread": unread, "mentions": mentions, "mentioned": mentioned},
    )


def mentioned(message: Message) -> str:
    """Whom a new message mentions, as the chat-list carrier says it."""
    if message.mentions_everyone:
        return "here"
    return " ".join(str(user_id) for user_id in getattr(message, "mentioned_ids", ()))


def message_posted(message: Message, frame: str) -> None:
    """A new message: appended in the chat's open pages, moved to the top of its members'
    chat lists, with its preview, and `frame` (its event) to the event streams."""
    chat = message.chat
    chat.last_message = message  # type: ignore[attr-defined]
    chat.last_seq = max(chat.last_seq, message.seq)
    publish(
        chat_group(message.chat_id),
        {
            "type": HTML_EVENT,
            "chat_id": message.chat_id,
            "html": render_message(message),
            "sidebar": render_sidebar_update(chat, "message", mentioned=mentioned(message)),
            # A page with the chat open updates its own entry from the message (chat.js):
            # in a big room where everyone has it open, each frame stays the message alone.
            "open_pages_too": False,
            "frame": frame,
            "event": message.event,
        },
    )


def message_changed(message: Message, frame: str, event: int | None = None) -> None:
    """A message's new version replaces the one shown; `frame` is the change's event (number
    `event`, by default the message's own) for the event streams."""
    publish(
        chat_group(message.chat_id),
        {
            "type": HTML_EVENT,
            "chat_id": message.chat_id,
            "html": render_message_version(message),
            "frame": frame,
            "event": message.event if event is None else event,
        },
    )


def chat_event(chat_id: int, event: int, frame: str) -> None:
    """A change with nothing to show in the pages (someone joined): for the event streams."""
    publish(
        chat_group(chat_id),
        {"type": HTML_EVENT, "chat_id": chat_id, "html": "", "frame": frame, "event": event},
    )


def chat_updated(chat: Chat, frame: str) -> None:
    """A room was renamed, or its topic or visibility changed: its title in the pages that
    have it open, and its entry in its members' chat lists."""
    from chat.models import Message

    chat.last_message = Message.objects.last_in(chat.pk)  # type: ignore[attr-defined]
    publish(
        chat_group(chat.pk),
        {
            "type": HTML_EVENT,
            "chat_id": chat.pk,
            "html": render_to_string(CHAT_TITLE, {"chat": chat}),
            "sidebar": render_sidebar_update(chat, "update"),
            "frame": frame,
            "event": chat.last_event,
        },
    )


def user_typing(chat_id: int, user: User) -> None:
    """Someone is typing in a chat: a signal for its open pages, never stored."""
    html = render_to_string(f"{SIDEBAR}#typing", {"chat_id": chat_id, "typist": user})
    publish(chat_group(chat_id), {"type": HTML_EVENT, "chat_id": chat_id, "html": html})


def chat_added(chat_id: int, user_id: int) -> None:
    """The user joined a chat or was added to one: it appears in their chat lists."""
    from chat.models import sidebar_entry

    membership = sidebar_entry(user_id=user_id, chat_id=chat_id)
    if membership is None:
        return
    html = render_sidebar_update(
        membership.chat,
        "add",
        unread=membership.unread_count,  # type: ignore[attr-defined]
        mentions=membership.mention_count,  # type: ignore[attr-defined]
    )
    publish(
        user_group(user_id),
        {
            "type": USER_CHATS_EVENT,
            "user_id": user_id,
            "chat_id": chat_id,
            "action": "add",
            "html": html,
            # Their event streams follow the chat from the event that added them.
            "event": membership.joined_event,
        },
    )


def member_left(chat_id: int, user_id: int, event: int, frame: str) -> None:
    """A member left or was removed: the chat leaves their chat lists (and their open pages
    of it say so); then the event goes to the chat's streams (theirs included, which stop
    following the chat there) and their open sockets on the chat are closed."""
    html = render_to_string(f"{SIDEBAR}#update", {"chat": {"pk": chat_id}, "action": "remove"})
    publish(
        user_group(user_id),
        {"type": USER_CHATS_EVENT, "user_id": user_id, "chat_id": chat_id, "action": "remove", "html": html},
    )
    publish(
        chat_group(chat_id),
        {
            "type": HTML_EVENT,
            "chat_id": chat_id,
            "html": "",
            "frame": frame,
            "event": event,
            "removed_user": user_id,
        },
    )


def sessions_ended(user_id: int) -> None:
    """The user logged out, changed their password or was deactivated: every open socket
    of theirs, on every process, is closed with a code the page retries; on reconnecting,
    a session that is no longer valid is refused."""
    publish(user_group(user_id), {"type": SESSIONS_EVENT, "user_id": user_id})


def token_revoked(user_id: int, token_id: int) -> None:
    """One of the user's API tokens was revoked: the sockets signed in with it close, on
    every process, with a code that says not to retry."""
    publish(user_group(user_id), {"type": TOKEN_EVENT, "user_id": user_id, "token_id": token_id})


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
        if daphne_adapter.stopping.is_set():
            # async_to_sync would hand the send to the server's event loop, which is
            # stopping and may never run it: the thread, and the process, would hang.
            asyncio.run(layer.group_send(group, event))
        else:
            async_to_sync(layer.group_send)(group, event)
        return
    held = getattr(_holding, "events", None)
    if held is not None:
        held.append(event)
        return
    hand_over([event])


def hand_over(events: list[dict[str, Any]]) -> None:
    """Give events to every event loop's hub of this process, in one call each."""
    for loop, local_hub in list(_hubs.items()):
        if not loop.is_closed():
            loop.call_soon_threadsafe(local_hub.dispatch_all, events)


_holding = threading.local()


@contextlib.contextmanager
def held_pushes() -> Iterator[None]:
    """Hand what is published inside (on this thread, without a shared layer) to the hubs
    together at the end: a group commit's new messages reach each page in one frame,
    however the event loop and this thread take turns meanwhile."""
    if shared_layer() is not None or getattr(_holding, "events", None) is not None:
        yield
        return
    held: list[dict[str, Any]] = []
    _holding.events = held
    try:
        yield
    finally:
        _holding.events = None
        if held:
            hand_over(held)


def online(chat_id: int, user_ids: Iterable[int]) -> set[int]:
    """Which of these users have the chat open now, on any process."""
    keys = {presence_key(chat_id, user_id): user_id for user_id in user_ids}
    return {keys[key] for key in cache.get_many(list(keys))}


# Reactions and pins (chat.services.reactions, chat.services.pins).

# The chat's pin count, in its page's Pinned link.
PIN_COUNT = "chat/pins.html#pin_count"


def message_redrawn(message_id: int, event: int, frame: str) -> None:
    """A change shown on a message (its reactions, its pin) as chat event `event`: the
    message's newest version, rendered once with its reactions and pin, replaces it in the
    chat's open pages, and `frame` goes to the event streams.

    The message is read afresh, so that what is shown matches its `data-event`: a page
    keeps the newest version of a message, whichever push arrives first.
    """
    from chat.models import Message, with_extras

    message = Message.objects.with_author().get(pk=message_id)
    with_extras([message])
    message_changed(message, frame, event)


def pins_changed(chat_id: int, event: int = 0, frame: str = "") -> None:
    """The chat's pins changed: its new pin count in the open pages (a page whose Pinned
    panel is open fetches it afresh, chat.js). With `frame` (a deleted message leaving the
    pins, which shows nowhere else), the count carries event `event` and the frame goes to
    the event streams."""
    from chat.models import Pin

    count = Pin.objects.filter(chat_id=chat_id).count()
    html = render_to_string(PIN_COUNT, {"pin_count": count, "event": event})
    publish(
        chat_group(chat_id),
        {"type": HTML_EVENT, "chat_id": chat_id, "html": html, "frame": frame, "event": event},
    )
