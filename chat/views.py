"""Pages and their htmx fragments: thin adapters over the services."""

from __future__ import annotations

from types import SimpleNamespace

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import reswap, retarget
from django_htmx.middleware import HtmxDetails

from chat import services
from chat.account_views import client_address, too_many
from chat.errors import Conflict
from chat.forms import MessageForm, PersonForm, RoomForm
from chat.limits import RateLimited
from chat.models import Chat, Membership, Message, page_context, parse_id, sidebar

DETAIL = "chat/chat_detail.html"
EDIT = "chat/message_form.html"
# A transparent 1x1 GIF: the read receipt of a page read without JavaScript.
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


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
    joinable = Chat.objects.joinable_by(request.user)
    chats = sidebar(request.user)
    context = {"sidebar": chats, "unread_total": unread_total(chats), "joinable": joinable}
    return render(request, "chat/chat_list.html", context)


def unread_total(chats: dict[str, list[Membership]]) -> int:
    """The unread messages over all of a person's chats: the tab title shows it."""
    return sum(m.unread_count for section in chats.values() for m in section)  # type: ignore[attr-defined]


@login_required
def chat_sidebar(request: AuthedRequest) -> HttpResponse:
    """The chat list alone, as of now: a page fetches it after every (re)connection."""
    try:
        open_chat_id = parse_cursor(request.GET.get("open"))
    except ValueError:
        open_chat_id = None
    context = {"sidebar": sidebar(request.user), "open_chat_id": open_chat_id}
    return render(request, "chat/sidebar.html#sidebar", context)


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
    request: AuthedRequest,
    chat: Chat,
    messages: list[Message],
    form: MessageForm,
    status: int = 200,
    around: int | None = None,
) -> HttpResponse:
    membership = Membership.objects.filter(user=request.user, chat=chat).first()
    chats = sidebar(request.user)
    last_read_id = (membership.last_read_message_id or 0) if membership is not None else None
    context = {
        "chat": chat,
        # Read with the chat, before its messages: the page catches up on anything after it.
        "last_event": chat.last_event,
        "is_member": membership is not None,
        "is_owner": membership is not None and membership.role == Membership.Role.OWNER,
        "form": form,
        "sidebar": chats,
        "unread_total": unread_total(chats),
        "open_chat_id": chat.pk,
        "last_read_id": last_read_id,
        "first_unread_id": first_unread(messages, user=request.user, last_read_id=last_read_id),
        "around_id": around,
        "actions_template": actions_template(chat),
        **page_context(chat, messages, request),
    }
    return render(request, DETAIL, context, status=status)


# The message id in the page's template of a message's actions, replaced by chat.js.
ACTIONS_ID = 999_999_999


def actions_template(chat: Chat) -> SimpleNamespace:
    """What the page's template of a message's actions is rendered for (a message of the
    chat, not deleted, not pinned)."""
    return SimpleNamespace(pk=ACTIONS_ID, chat_id=chat.pk, is_deleted=False, pin=None)


def first_unread(messages: list[Message], *, user: User, last_read_id: int | None) -> int | None:
    """The id of the first message on the page that the member has not read (others'
    messages after their last read one), above which the page shows "New messages"."""
    if last_read_id is None:
        return None
    for message in messages:
        if message.pk > last_read_id and message.user_id != user.pk and not message.is_deleted:
            return message.pk
    return None


@login_required
def chat_detail(request: AuthedRequest, chat_id: int) -> HttpResponse:
    # Opening the page marks nothing read: chat.js reports the messages that were on
    # screen, and a page read without JavaScript loads the read pixel (chat_read).
    chat = services.get_visible_chat(user=request.user, chat_id=chat_id)
    try:
        # A permalink opens the page around its message, which the page highlights; a
        # message's Reply action without JavaScript opens it with the composer answering it.
        around = parse_cursor(request.GET.get("around"))
        reply_to = parse_cursor(request.GET.get("reply_to"))
    except ValueError:
        return HttpResponseBadRequest(_("around and reply_to take a message id."))
    messages = Message.objects.around(chat, around) if around else Message.objects.latest_page(chat)
    replying = (
        Message.objects.not_deleted().with_author().filter(chat=chat, pk=reply_to).first()
        if reply_to
        else None
    )
    form = MessageForm.fresh(replying=replying)
    return render_detail(request, chat, messages, form, around=around)


@never_cache
@login_required
@require_GET
def chat_read(request: AuthedRequest, chat_id: int) -> HttpResponse:
    """The read receipt of a page shown without JavaScript: an image in its <noscript>
    that marks the chat read up to the last message the page showed."""
    chat = services.get_visible_chat(user=request.user, chat_id=chat_id)
    try:
        up_to = parse_cursor(request.GET.get("up_to"))
    except ValueError:
        return HttpResponseBadRequest(_("up_to takes a message id."))
    if up_to is not None and services.is_member(user=request.user, chat=chat):
        services.mark_read(user=request.user, chat=chat, up_to=up_to)
    return HttpResponse(PIXEL, content_type="image/gif")


# How many people the composer suggests while "@name" is typed.
MENTION_SUGGESTIONS = 8


@login_required
@require_GET
def mention_suggestions(request: AuthedRequest, chat_id: int) -> HttpResponse:
    """The members of the chat whose name starts with `q`: the composer's suggestions
    while someone types "@" (without JavaScript, typing the whole name is enough)."""
    chat = services.get_visible_chat(user=request.user, chat_id=chat_id)
    services.get_membership(user=request.user, chat=chat)
    prefix = request.GET.get("q", "")[:150]
    people = list(
        chat.members.filter(is_active=True, username__istartswith=prefix)
        .order_by("username")
        .values_list("username", flat=True)[:MENTION_SUGGESTIONS]
    )
    if "here".startswith(prefix.lower()) and chat.kind == Chat.Kind.ROOM:
        people.append("here")
    return render(request, f"{DETAIL}#mention_suggestions", {"people": people})


def parse_cursor(value: str | None) -> int | None:
    return None if value is None else parse_id(value)


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
        return HttpResponseBadRequest(_("before and after take a message id."))
    if after is not None:
        messages = Message.objects.after(chat, after)
    else:
        messages = Message.objects.latest_page(chat, before=before)
    if request.htmx:
        return render(
            request, f"{DETAIL}#message_page", {"chat": chat, **page_context(chat, messages, request)}
        )
    return render_detail(request, chat, messages, MessageForm.fresh())


def send_message(request: AuthedRequest, chat: Chat) -> HttpResponse:
    """The composer's plain form post: Post/Redirect/Get, or the fresh composer for htmx."""
    form = MessageForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            services.post_message(
                chat=chat,
                user=request.user,
                text=form.cleaned_data["text"],
                client_id=form.cleaned_data["client_id"],
                reply_to=form.cleaned_data["reply_to"],
                files=form.cleaned_data["files"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        except (RateLimited, Conflict) as error:
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
    messages.success(request, _("You left %(name)s.") % {"name": chat.name})
    return redirect("chat:list")


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
        raise Http404(_("No such message."))
    return message


@login_required
@require_http_methods(["GET", "POST"])
def message_edit(request: AuthedRequest, chat_id: int, message_id: int) -> HttpResponse:
    """The edit page; for htmx, the small form that takes the place of the message's text,
    and after saving, the message itself."""
    message = get_chat_message(request, chat_id, message_id)
    services.check_can_edit(message=message, user=request.user)
    form = MessageForm(request.POST or None, initial={"text": message.text})
    if request.method == "POST" and form.is_valid():
        try:
            message = services.edit_message(
                message=message, user=request.user, text=form.cleaned_data["text"]
            )
        except ValidationError as error:
            form.add_error(None, error)
        except RateLimited as error:
            form.add_error(None, str(error))
        else:
            if request.htmx:
                return render(request, f"{DETAIL}#message", {"message": message})
            return redirect(f"{message.chat.get_absolute_url()}#message-{message.pk}")
    context = {"chat": message.chat, "message": message, "form": form}
    if request.htmx:
        response = render(request, f"{EDIT}#inline_form", context)
        # A failed save shows the form again with its errors, in place of the text.
        return reswap(retarget(response, f"#message-{message.pk}-body"), "innerHTML")
    return render(request, EDIT, context)


@login_required
@require_http_methods(["GET", "POST"])
def message_delete(request: AuthedRequest, chat_id: int, message_id: int) -> HttpResponse:
    """GET: the confirmation page (without JavaScript; with it, a dialog asks). POST: delete."""
    message = get_chat_message(request, chat_id, message_id)
    if request.method == "GET":
        services.check_can_delete(message=message, user=request.user)
        return render(request, "chat/message_delete.html", {"chat": message.chat, "message": message})
    services.delete_message(message=message, user=request.user)
    if request.htmx:
        # The page learns of the deletion from the push, like everyone else's.
        return HttpResponse(status=204)
    return redirect(message.chat)
