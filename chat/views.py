"""Pages and their htmx fragments: thin adapters over the services."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.middleware import HtmxDetails

from chat import services
from chat.account_views import client_address, too_many
from chat.forms import MessageForm, PersonForm, RoomForm
from chat.limits import RateLimited
from chat.models import Chat, Membership, Message, page_context

DETAIL = "chat/chat_detail.html"


class AuthedRequest(HttpRequest):
    """The request of a signed-in user, as the views behind login_required see it."""

    user: User
    htmx: HtmxDetails


def home(request: HttpRequest) -> HttpResponse:
    return redirect("chat:list" if request.user.is_authenticated else "login")


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("chat:list")
    form: UserCreationForm[User] = UserCreationForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        # Every attempt counts, before the form is checked and the password hashed.
        try:
            services.check_signup_attempt(address=client_address(request))
        except RateLimited as error:
            form.add_error(None, str(error))
            return too_many(render(request, "registration/signup.html", {"form": form}), error)
        if form.is_valid():
            user = services.create_account(
                username=form.cleaned_data["username"], password=form.cleaned_data["password1"]
            )
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("chat:list")
    return render(request, "registration/signup.html", {"form": form})


@login_required
def chat_list(request: AuthedRequest) -> HttpResponse:
    memberships = (
        Membership.objects.filter(user=request.user)
        .select_related("chat")
        .with_unread_count()
        .order_by("chat__name", "chat__pk")
    )
    joinable = Chat.objects.joinable_by(request.user)
    return render(request, "chat/chat_list.html", {"memberships": memberships, "joinable": joinable})


@login_required
@require_http_methods(["GET", "POST"])
def chat_create(request: AuthedRequest) -> HttpResponse:
    form = RoomForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            chat = services.create_room(user=request.user, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        except RateLimited as error:
            form.add_error(None, str(error))
        else:
            return redirect(chat)
    return render(request, "chat/chat_form.html", {"form": form})


def render_detail(
    request: AuthedRequest, chat: Chat, messages: list[Message], form: MessageForm, status: int = 200
) -> HttpResponse:
    membership = Membership.objects.filter(user=request.user, chat=chat).first()
    context = {
        "chat": chat,
        # Read with the chat, before its messages: the page catches up on anything after it.
        "last_event": chat.last_event,
        "is_member": membership is not None,
        "is_owner": membership is not None and membership.role == Membership.Role.OWNER,
        "form": form,
        **page_context(chat, messages),
    }
    return render(request, DETAIL, context, status=status)


@login_required
def chat_detail(request: AuthedRequest, chat_id: int) -> HttpResponse:
    chat = services.get_visible_chat(user=request.user, chat_id=chat_id)
    messages = Message.objects.latest_page(chat)
    if services.is_member(user=request.user, chat=chat):
        services.mark_read(user=request.user, chat=chat)
    return render_detail(request, chat, messages, MessageForm.fresh())


def parse_cursor(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit():
        raise ValueError(value)
    return int(value)


@login_required
@require_http_methods(["GET", "POST"])
def chat_messages(request: AuthedRequest, chat_id: int) -> HttpResponse:
    """GET: a page of messages (?before= or ?after= an id). POST: send a message."""
    chat = services.get_visible_chat(user=request.user, chat_id=chat_id)
    if request.method == "POST":
        return send_message(request, chat)
    try:
        before = parse_cursor(request.GET.get("before"))
        after = parse_cursor(request.GET.get("after"))
    except ValueError:
        return HttpResponseBadRequest("before and after take a message id.")
    if after is not None:
        messages = Message.objects.after(chat, after)
    else:
        messages = Message.objects.latest_page(chat, before=before)
    if request.htmx:
        return render(request, f"{DETAIL}#message_page", {"chat": chat, **page_context(chat, messages)})
    return render_detail(request, chat, messages, MessageForm.fresh())


def send_message(request: AuthedRequest, chat: Chat) -> HttpResponse:
    """The composer's plain form post: Post/Redirect/Get, or the fresh composer for htmx."""
    form = MessageForm(request.POST)
    if form.is_valid():
        try:
            services.post_message(
                chat=chat,
                user=request.user,
                text=form.cleaned_data["text"],
                client_id=form.cleaned_data["client_id"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        except RateLimited as error:
            form.add_error(None, str(error))
    if form.is_valid():
        if request.htmx:
            return render(request, f"{DETAIL}#composer", {"chat": chat, "form": MessageForm.fresh()})
        return redirect(chat)
    if request.htmx:
        return render(request, f"{DETAIL}#composer", {"chat": chat, "form": form})
    return render_detail(request, chat, Message.objects.latest_page(chat), form, status=400)


@login_required
@require_POST
def chat_join(request: AuthedRequest, chat_id: int) -> HttpResponse:
    chat = services.get_visible_chat(user=request.user, chat_id=chat_id)
    services.join_chat(user=request.user, chat=chat)
    return redirect(chat)


@login_required
@require_POST
def chat_leave(request: AuthedRequest, chat_id: int) -> HttpResponse:
    chat = services.get_visible_chat(user=request.user, chat_id=chat_id)
    services.leave_chat(user=request.user, chat=chat)
    messages.success(request, f"You left {chat.name}.")
    return redirect("chat:list")


@login_required
@require_POST
def chat_add_member(request: AuthedRequest, chat_id: int) -> HttpResponse:
    chat = services.get_visible_chat(user=request.user, chat_id=chat_id)
    form = PersonForm(request.POST)
    if form.is_valid():
        person = form.cleaned_data["username"]
        services.add_member(chat=chat, by=request.user, user=person)
        messages.success(request, f"{person.username} is now a member of {chat.name}.")
    else:
        messages.error(request, " ".join(form.all_errors()))
    return redirect(chat)


@login_required
@require_POST
def direct_chat(request: AuthedRequest) -> HttpResponse:
    form = PersonForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.all_errors()))
        return redirect("chat:list")
    try:
        chat, _ = services.open_direct_chat(user=request.user, other=form.cleaned_data["username"])
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("chat:list")
    return redirect(chat)


def get_chat_message(request: AuthedRequest, chat_id: int, message_id: int) -> Message:
    message = services.get_visible_message(user=request.user, message_id=message_id)
    if message.chat_id != chat_id:
        raise Http404("No such message.")
    return message


@login_required
@require_http_methods(["GET", "POST"])
def message_edit(request: AuthedRequest, chat_id: int, message_id: int) -> HttpResponse:
    message = get_chat_message(request, chat_id, message_id)
    services.check_can_edit(message=message, user=request.user)
    form = MessageForm(request.POST or None, initial={"text": message.text})
    if request.method == "POST" and form.is_valid():
        try:
            services.edit_message(message=message, user=request.user, text=form.cleaned_data["text"])
        except ValidationError as error:
            form.add_error(None, error)
        except RateLimited as error:
            form.add_error(None, str(error))
        else:
            return redirect(f"{message.chat.get_absolute_url()}#message-{message.pk}")
    return render(request, "chat/message_form.html", {"chat": message.chat, "message": message, "form": form})


@login_required
@require_POST
def message_delete(request: AuthedRequest, chat_id: int, message_id: int) -> HttpResponse:
    message = get_chat_message(request, chat_id, message_id)
    services.delete_message(message=message, user=request.user)
    if request.htmx:
        # The page learns of the deletion from the push, like everyone else's.
        return HttpResponse(status=204)
    return redirect(message.chat)
