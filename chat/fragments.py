"""Each shown message's HTML, rendered once per version and kept in the cache.

Rendering the 50 message partials was nearly all of a room page's cost (41 of 44 ms). A
message's HTML depends only on what the message shows (its text, author, time, files,
reactions, pin and reply quote), the page's language and whether it is for a page (with
its words and actions) or for a push. The cache key is a digest of all of these and of the
templates themselves, so a fragment is never stale: any change makes another key, and an
entry nobody asks for ages out. Nothing is lost when the cache is: a miss renders.

Who reacted is the one thing shown that is neither the message's nor counted in its key:
a rename (chat.apps.renaming) draws a new NAMES token, shared through the default cache
(Redis, when the processes share one), and every key carries it.

A page's forms carry its viewer's CSRF token; the cached HTML carries PLACEHOLDER_INPUT
instead, replaced per page. Only a template can write an <input> tag into a message (user
text is escaped, Markdown's HTML is allow-listed), so the replacement finds ours alone.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import caches
from django.db.models import Count, Sum
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.safestring import mark_safe

from chat.models import Message, Reaction, with_extras

if TYPE_CHECKING:
    from django.http import HttpRequest

CACHE = "fragments"
NAMES = "fragments:names"
TEMPLATE = "chat/chat_detail.html#message"
PLACEHOLDER = "csrf-token-of-the-page"
PLACEHOLDER_INPUT = f'<input type="hidden" name="csrfmiddlewaretoken" value="{PLACEHOLDER}">'
# What a fragment is made of besides the message: its templates and their tags.
SOURCES = ("templates/chat", "chat/templatetags")


@functools.cache
def templates_version() -> str:
    """A digest of the templates and tags that make a message's HTML, read once per process:
    a deployment that changes them never serves the fragments of the one before."""
    digest = hashlib.blake2b(digest_size=8)
    for source in SOURCES:
        for path in sorted((Path(settings.BASE_DIR) / source).rglob("*")):
            if path.is_file():
                digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def reaction_stamps(messages: list[Message]) -> dict[int, tuple[int, int]]:
    """Each message's reactions, as their count and the sum of their ids (one query).

    Two sets of a message's reactions at two moments with the same count and sum are the
    same set: a reaction that came in between has an id greater than any that left.
    """
    rows = (
        Reaction.objects.filter(message__in=messages)
        .order_by()
        .values_list("message_id")
        .annotate(Count("pk"), Sum("pk"))
    )
    return {message_id: (count, total) for message_id, count, total in rows}


def shown(message: Message, reactions: tuple[int, int] | None) -> tuple[object, ...]:
    """What a message's HTML shows, read with the message (with_author) and its `reactions`
    stamp. A pin or an unpin moves the message's event (chat.services.pins.record); files
    come and go with the message."""
    answered = message.reply_to if message.reply_to_id else None
    return (
        message.pk,
        message.chat_id,
        message.user_id,
        message.user.username,
        message.seq,
        message.event,
        message.timestamp,
        message.edited_at,
        message.deleted_at,
        message.html,
        answered and (answered.pk, answered.user.username, answered.deleted_at, answered.text[:100]),
        reactions,
    )


def names_token() -> str:
    """The current NAMES token, drawn afresh if the cache has none (after a flush, say)."""
    cache = caches["default"]
    token = cache.get(NAMES)
    if token is None:
        cache.add(NAMES, uuid.uuid4().hex, timeout=None)
        token = cache.get(NAMES)
    return str(token)


def renamed() -> None:
    """Someone's name changed: every cached fragment may show the old one."""
    caches["default"].set(NAMES, uuid.uuid4().hex, timeout=None)


def key(message: Message, reactions: tuple[int, int] | None, variant: str) -> str:
    digest = hashlib.blake2b(repr(shown(message, reactions)).encode(), digest_size=16).hexdigest()
    return f"{templates_version()}:{variant}:{digest}"


def render(message: Message, request: HttpRequest | None) -> str:
    context: dict[str, object] = {"message": message}
    if request is not None:
        context["csrf_token"] = PLACEHOLDER
    return render_to_string(TEMPLATE, context, request)


def attach(messages: Iterable[Message], request: HttpRequest | None) -> None:
    """Give each message (read with_author) its `fragment`: its HTML for a page, in the
    page's language and with its CSRF token (`request`), or as pushed (None). Only the
    messages not in the cache have their files, reactions and pin read, to be rendered."""
    messages = list(messages)
    if not messages:
        return
    if request is None:
        variant = "push"
    else:
        variant = f"page:{translation.get_language()}:{timezone.get_current_timezone_name()}"
    variant = f"{variant}:{names_token()}"
    stamps = reaction_stamps(messages)
    keys = [key(message, stamps.get(message.pk), variant) for message in messages]
    cache = caches[CACHE]
    found = cache.get_many(keys)
    missing = {k: message for k, message in zip(keys, messages, strict=True) if k not in found}
    with_extras(list(missing.values()))
    made = {k: render(message, request) for k, message in missing.items()}
    if made:
        cache.set_many(made)
    token_input = "" if request is None else PLACEHOLDER_INPUT.replace(PLACEHOLDER, get_token(request))
    for k, message in zip(keys, messages, strict=True):
        html = found.get(k) or made[k]
        if request is not None:
            html = html.replace(PLACEHOLDER_INPUT, token_input)
        # Safe: the template's own autoescaped output (here or from the cache, which holds
        # nothing else), with our placeholder input swapped for one holding Django's token.
        message.fragment = mark_safe(html)  # type: ignore[attr-defined]  # noqa: S308
