"""Group names, rendering a pushed fragment once, and fan-out to the sockets of a chat.

The only code that talks to the channel layer. A push is the fast path: the database
is the record, and clients catch up by message id.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.template.loader import render_to_string

if TYPE_CHECKING:
    from chat.models import Message

logger = logging.getLogger(__name__)

# The consumer method that writes a rendered fragment to its socket.
HTML_EVENT = "chat.html"


def chat_group(chat_id: int) -> str:
    """The channel-layer group of every open socket of a chat."""
    return f"chat.{chat_id}"


def render_message(message: Message) -> str:
    """The pushed fragment of a new message: the same bytes for every viewer."""
    return render_to_string("chat/chat_detail.html#message_oob", {"message": message})


def send_to_chat(chat_id: int, html: str) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(chat_group(chat_id), {"type": HTML_EVENT, "html": html})


def message_posted(message: Message) -> None:
    send_to_chat(message.chat_id, render_message(message))


def message_changed(message: Message) -> None:
    """An edit or a deletion: the new version replaces the old one wherever it is shown."""
    send_to_chat(message.chat_id, render_to_string("chat/chat_detail.html#message", {"message": message}))
