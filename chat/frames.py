"""What a WebSocket frame from the composer does: validate, act, and render the reply
for the one socket that sent it (the chat hears about the message from the push)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.loader import render_to_string

from chat import services
from chat.forms import MessageForm
from chat.models import Chat

DETAIL = "chat/chat_detail.html"


def render_errors(*errors: str) -> str:
    """The composer's error region, for the sender alone; the typed text stays as it is."""
    return render_to_string(f"{DETAIL}#composer_errors", {"errors": errors})


def parse_frame(text_data: str | None) -> dict[str, Any]:
    """The JSON object of a frame, or ValidationError saying what is wrong with it."""
    if text_data is None:
        raise ValidationError("Send text frames: binary frames are not understood.")
    try:
        frame = json.loads(text_data)
    except ValueError:
        raise ValidationError("The frame is not valid JSON.") from None
    if not isinstance(frame, dict):
        raise ValidationError("The frame must be a JSON object of the form's fields.")
    return frame


def send_message(*, user: User, chat: Chat, text_data: str | None) -> str:
    """Post the composer's message and return the reply: a fresh composer, or the errors."""
    try:
        form = MessageForm.from_frame(parse_frame(text_data))
        if not form.is_valid():
            return render_errors(*form.all_errors())
        services.post_message(
            chat=chat, user=user, text=form.cleaned_data["text"], client_id=form.cleaned_data["client_id"]
        )
    except ValidationError as error:
        return render_errors(*error.messages)
    except PermissionDenied as error:
        return render_errors(str(error))
    return render_to_string(f"{DETAIL}#composer_sent", {"chat": chat, "form": MessageForm.fresh()})
