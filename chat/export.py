"""Take your data with you: chats as JSON and as a self-contained static HTML archive.

`manage.py export_chat` writes the files; a room's owner downloads the same from
/chats/<id>/export/. Both only read (through the models' QuerySets), and both write a
chat piece by piece: messages are read in batches, so that a long chat is never held in
memory at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, StreamingHttpResponse
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_safe

from chat import services
from chat.models import Chat, Membership, Message
from chat.services.membership import require_owner

TEMPLATE = "chat/export.html"
# Messages read from the database per query.
BATCH_SIZE = 500
FORMATS = {"json": "application/json", "html": "text/html; charset=utf-8"}
FORMAT_VERSION = 1

# Called once per message written, so that a caller can show progress.
Progress = Callable[[], None]


def no_progress() -> None:
    return None


def messages_of(chat: Chat) -> Iterator[Message]:
    """The chat's messages, oldest first, read BATCH_SIZE at a time; deleted ones are left
    out (a tombstone has no text)."""
    return Message.objects.filter(chat=chat).not_deleted().with_author().order_by("pk").iterator(BATCH_SIZE)


def count_messages(chats: Iterable[Chat]) -> int:
    return Message.objects.filter(chat__in=list(chats)).not_deleted().count()


def members_of(chat: Chat) -> list[Membership]:
    return list(Membership.objects.filter(chat=chat).select_related("user").order_by("joined_at", "pk"))


def chat_record(chat: Chat) -> dict[str, Any]:
    return {
        "id": chat.pk,
        "name": chat.name,
        "kind": chat.kind,
        "visibility": chat.visibility,
        "created_at": chat.created_at.isoformat(),
        "members": [
            {"id": member.user_id, "username": member.user.username, "role": member.role}
            for member in members_of(chat)
        ],
    }


def message_record(message: Message) -> dict[str, Any]:
    return {
        "id": message.pk,
        "seq": message.seq,
        "user": {"id": message.user_id, "username": message.user.username},
        "text": message.text,
        "timestamp": message.timestamp.isoformat(),
        "edited_at": message.edited_at.isoformat() if message.edited_at else None,
    }


def json_chunks(chats: Iterable[Chat], progress: Progress = no_progress) -> Iterator[str]:
    """One JSON document, `{"format", "version", "exported_at", "chats": [...]}`, in pieces;
    each chat is its record plus `"messages"`, oldest first."""
    yield (
        "{"
        f'"format": "chat-export", "version": {FORMAT_VERSION}, '
        f'"exported_at": {json.dumps(timezone.now().isoformat())}, "chats": ['
    )
    for i, chat in enumerate(chats):
        record = json.dumps(chat_record(chat), ensure_ascii=False)
        yield ("," if i else "") + "\n" + record[:-1] + ', "messages": ['
        for j, message in enumerate(messages_of(chat)):
            yield ("," if j else "") + "\n" + json.dumps(message_record(message), ensure_ascii=False)
            progress()
        yield "]}"
    yield "\n]}\n"


def html_chunks(chats: Iterable[Chat], title: str, progress: Progress = no_progress) -> Iterator[str]:
    """One static HTML page of the chats, in pieces: inline CSS, no scripts, every text escaped."""
    yield render_to_string(f"{TEMPLATE}#head", {"title": title, "exported_at": timezone.now()})
    for chat in chats:
        yield render_to_string(f"{TEMPLATE}#chat_start", {"chat": chat, "members": members_of(chat)})
        for message in messages_of(chat):
            yield render_to_string(f"{TEMPLATE}#message", {"message": message})
            progress()
        yield render_to_string(f"{TEMPLATE}#chat_end")
    yield render_to_string(f"{TEMPLATE}#foot")


def chats_of(user: User) -> list[Chat]:
    """Every chat the user is a member of."""
    return list(Chat.objects.of_member(user).order_by("pk"))


def chunks(fmt: str, chats: list[Chat], title: str, progress: Progress = no_progress) -> Iterator[str]:
    if fmt == "json":
        return json_chunks(chats, progress)
    return html_chunks(chats, title, progress)


@login_required
@require_safe
def export_chat(request: HttpRequest, chat_id: int) -> StreamingHttpResponse:
    """The room's owner downloads it, `?format=html` (the default) or `?format=json`.

    A chat the user may not see answers 404; a member who is not the owner gets 403.
    """
    assert isinstance(request.user, User)
    chat = services.get_visible_chat(user=request.user, chat_id=chat_id)
    require_owner(user=request.user, chat=chat)
    fmt = request.GET.get("format", "html")
    if fmt not in FORMATS:
        fmt = "html"
    response = StreamingHttpResponse(chunks(fmt, [chat], chat.name), content_type=FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="chat-{chat.pk}.{fmt}"'
    response["Cache-Control"] = "private, no-store"
    return response
