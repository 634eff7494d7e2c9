"""A room's members panel and its settings: thin adapters over the services.

The members panel is one template (chat/members.html) shown three ways: the whole page
(without JavaScript), its `panel` partial (loaded by htmx into the chat page, and
re-rendered after an add or a removal), and its `member_list` partial (the list alone,
which re-fetches itself for presence).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from chat import broadcast, services
from chat.forms import PersonForm, RoomSettingsForm
from chat.limits import RateLimited
from chat.models import Chat, Membership
from chat.views import AuthedRequest

MEMBERS = "chat/members.html"
SETTINGS = "chat/room_settings.html"
# The id of the list that re-fetches itself: htmx names it in the HX-Target header.
MEMBER_LIST_ID = "member-list"
SUGGESTIONS = 8
# A panel lists this many members at most (General holds every account); the rest are counted.
MEMBERS_SHOWN = 200


def panel_context(
    request: AuthedRequest, chat: Chat, *, form: PersonForm | None = None, notice: str = "", error: str = ""
) -> dict[str, Any]:
    """Who is in the chat, its owner first, then whoever has it open, then by name."""
    memberships = list(
        Membership.objects.filter(chat=chat).select_related("user").only("role", "chat_id", "user__username")
    )
    online = broadcast.online(chat.pk, [membership.user_id for membership in memberships])
    for membership in memberships:
        membership.is_online = membership.user_id in online  # type: ignore[attr-defined]
    memberships.sort(
        key=lambda m: (m.role != Membership.Role.OWNER, m.user_id not in online, m.user.username.casefold())
    )
    mine = next((m for m in memberships if m.user_id == request.user.pk), None)
    return {
        "chat": chat,
        "memberships": memberships[:MEMBERS_SHOWN],
        "hidden_count": max(0, len(memberships) - MEMBERS_SHOWN),
        "member_count": len(memberships),
        "online_count": len(online),
        "is_member": mine is not None,
        "can_manage": chat.kind == Chat.Kind.ROOM and mine is not None and mine.role == Membership.Role.OWNER,
        "form": form or PersonForm(),
        "notice": notice,
        "error": error,
    }


def render_panel(
    request: AuthedRequest,
    chat: Chat,
    *,
    form: PersonForm | None = None,
    notice: str = "",
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    if request.htmx.target == MEMBER_LIST_ID:
        template = f"{MEMBERS}#member_list"
    elif request.htmx:
        template = f"{MEMBERS}#panel"
    else:
        template = MEMBERS
    context = panel_context(request, chat, form=form, notice=notice, error=error)
    return render(request, template, context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def members(request: AuthedRequest, chat_id: int) -> HttpResponse:
    """GET: the members panel. POST `username`: the owner adds that person to the room."""
    chat = services.get_visible_chat(user=request.user, chat_id=chat_id)
    if request.method == "GET":
        return render_panel(request, chat)
    # Only the owner learns whether a name exists.
    services.require_room_owner(user=request.user, chat=chat)
    form = PersonForm(request.POST)
    if not form.is_valid():
        # htmx swaps only successful responses: the panel with its errors is one.
        return render_panel(request, chat, form=form, status=200 if request.htmx else 400)
    person = form.cleaned_data["username"]
    already = services.is_member(user=person, chat=chat)
    services.add_member(chat=chat, by=request.user, user=person)
    if already:
        notice = _("%(username)s is already a member of %(name)s.") % {
            "username": person.username,
            "name": chat.name,
        }
    else:
        notice = _("%(username)s is now a member of %(name)s.") % {
            "username": person.username,
            "name": chat.name,
        }
    if request.htmx:
        return render_panel(request, chat, form=PersonForm(), notice=notice)
    messages.success(request, notice)
    return redirect("rooms:members", chat.pk)


@login_required
@require_GET
def suggest(request: AuthedRequest, chat_id: int) -> HttpResponse:
    """For the owner: active people whose name starts with `username` who are not members yet."""
    chat = services.get_visible_chat(user=request.user, chat_id=chat_id)
    services.require_room_owner(user=request.user, chat=chat)
    prefix = request.GET.get("username", "").strip()
    people: list[User] = []
    if prefix:
        people = list(
            User.objects.filter(is_active=True, username__istartswith=prefix)
            .exclude(memberships__chat=chat)
            .order_by("username")
            .only("username")[:SUGGESTIONS]
        )
    return render(request, f"{MEMBERS}#suggestions", {"chat": chat, "people": people})


@login_required
@require_POST
def remove_member(request: AuthedRequest, chat_id: int, user_id: int) -> HttpResponse:
    """The owner removes a member from the room."""
    chat = services.get_visible_chat(user=request.user, chat_id=chat_id)
    person = get_object_or_404(User, pk=user_id)
    try:
        services.remove_member(chat=chat, by=request.user, user=person)
    except ValidationError as error:
        if request.htmx:
            return render_panel(request, chat, error=" ".join(error.messages))
        messages.error(request, " ".join(error.messages))
    else:
        notice = _("%(username)s is no longer a member of %(name)s.") % {
            "username": person.username,
            "name": chat.name,
        }
        if request.htmx:
            return render_panel(request, chat, notice=notice)
        messages.success(request, notice)
    return redirect("rooms:members", chat.pk)


@login_required
@require_http_methods(["GET", "POST"])
def room_settings(request: AuthedRequest, chat_id: int) -> HttpResponse:
    """The owner's settings of a room: its name, its topic, public or private."""
    chat = services.get_visible_chat(user=request.user, chat_id=chat_id)
    services.require_room_owner(user=request.user, chat=chat)
    form = RoomSettingsForm(request.POST) if request.method == "POST" else RoomSettingsForm.of(chat)
    saved = False
    if request.method == "POST" and form.is_valid():
        try:
            services.update_room(chat=chat, by=request.user, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        except RateLimited as error:
            form.add_error(None, str(error))
        else:
            if not request.htmx:
                messages.success(request, _("Room settings saved."))
                return redirect(chat)
            form, saved = RoomSettingsForm.of(chat), True
    template = f"{SETTINGS}#settings" if request.htmx else SETTINGS
    status = 400 if form.errors and not request.htmx else 200
    return render(request, template, {"chat": chat, "form": form, "saved": saved}, status=status)
