"""What a WebSocket frame from the chat page does: validate, act, and render the reply
for the one socket that sent it (the chat hears about a new message from the push).

Three kinds of frame arrive, each htmx's JSON of a form's fields:
- the composer's `{"text", "client_id"}`: send a message;
- the catch-up form's `{"action": "catch_up", "after", "since", "first"}`: what the page missed;
- the read receipt `{"action": "read", "up_to"}`: the messages the reader has seen;
- the typing signal `{"action": "typing"}`: pushed to the chat's open pages, never stored.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, connection, transaction
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext

from chat import broadcast, services
from chat.errors import Conflict
from chat.forms import MessageForm
from chat.models import ID_MAX, Chat, Message, page_context, parse_id, with_extras

logger = logging.getLogger(__name__)

DETAIL = "chat/chat_detail.html"
# Past this many missed messages, a page gets the latest page afresh instead.
CATCH_UP_LIMIT = 200


def render_errors(*errors: str) -> str:
    """The composer's error region, for the sender alone; the typed text stays as it is."""
    return render_to_string(f"{DETAIL}#composer_errors", {"errors": errors})


def too_fast() -> str:
    return render_errors(gettext("You are sending too fast. Wait a moment, then send again."))


def not_saved() -> str:
    return render_errors(gettext("Your message could not be saved. Please send it again."))


def failed() -> str:
    return render_errors(gettext("That could not be done. Reload the page if it happens again."))


def failed_in(language: str) -> str:
    with translation.override(language):
        return failed()


@dataclass(frozen=True, slots=True)
class Job:
    """One frame from a chat page's socket, with what its reply needs."""

    user: User
    chat: Chat
    text_data: str | None
    # The page's language, for the reply.
    language: str


def handle_all(jobs: list[Job]) -> list[str]:
    """The replies to frames from several sockets, handled in one transaction (a group
    commit, chat.consumers.GroupCommit): each frame in a savepoint of its own, so that one
    that fails changes nothing and the others go on, and every reply is given only once
    the transaction is committed. If the commit fails, nothing was saved, and every frame
    is told so (its sender sends again; the client id makes that safe).

    The group first locks its chats' rows, in the order of their ids: a message takes its
    chat's row, a read receipt its reader's membership, and two processes' groups that
    took these in other orders would wait for each other in a circle (a deadlock that
    PostgreSQL breaks only after a second, failing a frame)."""
    replies = [""] * len(jobs)
    try:
        with broadcast.held_pushes(), transaction.atomic():
            if len(jobs) > 1:
                lock_chats({job.chat.pk for job in jobs})
            for index, job in enumerate(jobs):
                with translation.override(job.language), transaction.atomic():
                    replies[index] = handle(user=job.user, chat=job.chat, text_data=job.text_data)
    except DatabaseError:
        logger.exception("Committing %d frames failed", len(jobs))
        for index, job in enumerate(jobs):
            with translation.override(job.language):
                replies[index] = not_saved()
    return replies


def parse_frame(text_data: str | None) -> dict[str, Any]:
    """The JSON object of a frame, or ValidationError saying what is wrong with it."""
    if text_data is None:
        raise ValidationError(gettext("Send text frames: binary frames are not understood."))
    if len(text_data.encode(errors="surrogatepass")) > settings.FRAME_MAX_BYTES:
        raise ValidationError(
            gettext("The frame is too large: at most %(limit)s bytes.") % {"limit": settings.FRAME_MAX_BYTES}
        )
    try:
        frame = json.loads(text_data)
    except ValueError:
        raise ValidationError(gettext("The frame is not valid JSON.")) from None
    except RecursionError:
        raise ValidationError(gettext("The frame is nested too deeply.")) from None
    if not isinstance(frame, dict):
        raise ValidationError(gettext("The frame must be a JSON object of the form's fields."))
    return frame


def handle(*, user: User, chat: Chat, text_data: str | None) -> str:
    """The reply to one frame from the page: whatever the frame holds, an answer to the one
    socket that sent it, never an error that ends the socket."""
    try:
        frame = parse_frame(text_data)
        # Membership is checked on every frame, not only on connect: a member may have left
        # or been removed (post_message checks it; mark_read changes only a member's row).
        if frame.get("action") == "read":
            services.mark_read(user=user, chat=chat, up_to=cursor(frame.get("up_to")))
            return ""
        if frame.get("action") == "typing":
            # Never stored; the socket is a member's (a member who leaves is let go).
            broadcast.user_typing(chat.pk, user)
            return ""
        if frame.get("action") == "catch_up":
            services.get_membership(user=user, chat=chat)
            return catch_up(
                chat=chat, after=frame.get("after"), since=frame.get("since"), first=frame.get("first")
            )
        return send_message(user=user, chat=chat, frame=frame)
    except ValidationError as error:
        return render_errors(*error.messages)
    except (PermissionDenied, Conflict) as error:
        return render_errors(str(error))
    except DatabaseError:
        # The connection is renewed before the next frame; nothing was saved, so the
        # sender keeps the text and may send it again (the client id makes that safe).
        logger.exception("Saving a frame from user %s in chat %s failed", user.pk, chat.pk)
        undo_frame()
        return not_saved()
    except Exception:
        # A frame the checks above did not foresee: logged for a fix, and the socket
        # (and every other socket of this process) goes on.
        logger.exception("A frame from user %s in chat %s could not be handled", user.pk, chat.pk)
        undo_frame()
        return failed()


def lock_chats(chat_ids: set[int]) -> None:
    """Lock the chats' rows until commit, in id order (SQLite locks the whole database)."""
    if connection.features.has_select_for_update:
        list(Chat.objects.select_for_update().filter(pk__in=chat_ids).order_by("pk").values_list("pk"))


def undo_frame() -> None:
    """A frame that failed unforeseen leaves nothing behind: handled in a group (handle_all),
    its savepoint is rolled back, and the group's transaction goes on."""
    if transaction.get_connection().in_atomic_block:
        transaction.set_rollback(True)


def send_message(*, user: User, chat: Chat, frame: dict[str, Any]) -> str:
    """Post the composer's message; the reply, sent only once it is stored, clears the composer."""
    form = MessageForm.from_frame(frame)
    if not form.is_valid():
        return render_errors(*form.all_errors())
    message, _ = services.post_message(
        chat=chat,
        user=user,
        text=form.cleaned_data["text"],
        client_id=form.cleaned_data["client_id"],
        reply_to=form.cleaned_data["reply_to"],
    )
    return render_to_string(
        f"{DETAIL}#composer_sent", {"chat": chat, "form": MessageForm.fresh(), "sent": message}
    )


def cursor(value: object) -> int:
    """A message id or event number from a frame: a whole number, or ASCII digits."""
    try:
        if isinstance(value, str):
            return parse_id(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= ID_MAX:
            return value
    except ValueError:
        pass
    raise ValidationError(gettext("Catching up and read receipts need message ids and event numbers."))


def catch_up(*, chat: Chat, after: object, since: object, first: object = 0) -> str:
    """What a page missed: every message after id `after`, and every message from id `first`
    to `after` changed after the chat's event `since` (edited, deleted, or never received).

    Beyond CATCH_UP_LIMIT the page gets the latest page of messages afresh.
    """
    after, since, first = cursor(after), cursor(since), cursor(first or 0)
    # Read the chat's counter first: whatever changes after it is pushed, or caught up next time.
    last_event = Chat.objects.values_list("last_event", flat=True).get(pk=chat.pk)
    newer = list(
        Message.objects.filter(chat=chat, pk__gt=after).with_author().order_by("pk")[: CATCH_UP_LIMIT + 1]
    )
    changed = list(
        Message.objects.changed_since(chat, after=after, since=since).filter(pk__gte=first)[
            : CATCH_UP_LIMIT + 1
        ]
    )
    context: dict[str, Any] = {"chat": chat, "last_event": last_event}
    if len(newer) + len(changed) > CATCH_UP_LIMIT:
        context.update(page_context(chat, Message.objects.latest_page(chat), None), stale=True)
        return render_to_string(f"{DETAIL}#message_log", context)
    context["missed"] = with_extras(changed + newer)
    return render_to_string(f"{DETAIL}#catch_up", context)
