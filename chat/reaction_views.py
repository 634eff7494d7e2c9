"""Reactions and pins in the pages: thin adapters over the services.

A reaction or a pin is a form inside a message (chat/message_reactions.html,
chat/message_actions_react.html): without JavaScript it posts and comes back to the chat
at the message (Post/Redirect/Get); with htmx the answer is the message's new version,
swapped in place (everyone else gets it pushed). The Pinned panel is chat/pins.html,
shown as the members panel is: a page, or its `panel` partial in the chat page.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget

from chat import services
from chat.limits import RateLimited
from chat.models import Chat, Message, with_extras
from chat.views import DETAIL, AuthedRequest, get_chat_message

PINS = "chat/pins.html"
PICKER = "chat/reaction_picker.html"
# The panel's id: htmx names it in the HX-Target header when the panel asks.
PINS_PANEL_ID = "pins-panel"


def at_message(message: Message) -> str:
    """The chat, opened around the message."""
    return f"{reverse('chat:detail', args=[message.chat_id])}?around={message.pk}#message-{message.pk}"


def answer(request: AuthedRequest, message: Message) -> HttpResponse:
    """htmx: the message's new version, as the push shows it; otherwise back to it."""
    if not request.htmx:
        return redirect(at_message(message))
    fresh = with_extras([Message.objects.with_author().get(pk=message.pk)])[0]
    return render(request, f"{DETAIL}#message", {"message": fresh})


def refuse(request: AuthedRequest, message: Message, error: str) -> HttpResponse:
    """Say what went wrong: in the chat page's notice (htmx), or after going back to the message."""
    if request.htmx:
        response = render(request, f"{PINS}#notice", {"error": error})
        return reswap(retarget(response, "#chat-notice"), "outerHTML")
    messages.error(request, error)
    return redirect(at_message(message))


def reason(error: ValidationError | RateLimited) -> str:
    return " ".join(error.messages) if isinstance(error, ValidationError) else str(error)


@login_required
@require_GET
def picker(request: AuthedRequest, chat_id: int, message_id: int) -> HttpResponse:
    """The message's reaction picker: loaded into its React menu (htmx), or as a page."""
    message = get_chat_message(request, chat_id, message_id)
    template = f"{PICKER}#picker" if request.htmx else PICKER
    return render(request, template, {"message": message})


@login_required
@require_POST
def react(request: AuthedRequest, chat_id: int, message_id: int) -> HttpResponse:
    """Toggle the person's reaction (`emoji`) on a message."""
    message = get_chat_message(request, chat_id, message_id)
    try:
        services.toggle_reaction(message=message, user=request.user, emoji=request.POST.get("emoji", ""))
    except (ValidationError, RateLimited) as error:
        return refuse(request, message, reason(error))
    return answer(request, message)


def render_pins(request: AuthedRequest, chat: Chat, *, error: str = "") -> HttpResponse:
    template = f"{PINS}#panel" if request.htmx else PINS
    context = {
        "chat": chat,
        "pins": services.pinned_messages(chat),
        "is_member": services.is_member(user=request.user, chat=chat),
        "error": error,
    }
    return render(request, template, context)


@login_required
@require_GET
def pins(request: AuthedRequest, chat_id: int) -> HttpResponse:
    """The Pinned panel: the chat's pinned messages, the latest first."""
    return render_pins(request, services.get_visible_chat(user=request.user, chat_id=chat_id))


@login_required
@require_POST
def pin(request: AuthedRequest, chat_id: int, message_id: int) -> HttpResponse:
    """Pin a message (`pinned` 1) or unpin it (`pinned` 0), from its actions or from the
    Pinned panel (`next` is `pins`, or htmx's target is the panel), which then shows again."""
    message = get_chat_message(request, chat_id, message_id)
    from_panel = request.POST.get("next") == "pins" or request.htmx.target == PINS_PANEL_ID
    try:
        if request.POST.get("pinned", "1") == "0":
            services.unpin_message(message=message, user=request.user)
        else:
            services.pin_message(message=message, user=request.user)
    except (ValidationError, RateLimited) as error:
        if not from_panel:
            return refuse(request, message, reason(error))
        if request.htmx:
            return render_pins(request, message.chat, error=reason(error))
        messages.error(request, reason(error))
    if not from_panel:
        return answer(request, message)
    if request.htmx:
        return render_pins(request, message.chat)
    return redirect("chat:pins", message.chat_id)
