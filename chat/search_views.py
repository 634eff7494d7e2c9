"""The search page, /search/?q=<words>: a plain GET form and its results (chat.search)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from chat import search
from chat.models import ID_MAX, Chat, Message
from chat.views import AuthedRequest

PAGE_SIZE = 20


class SearchForm(forms.Form):
    # Types only: chat.search says what a query may be, for the page and the API alike.
    q = forms.CharField(required=False, strip=False, label=_("Search messages"))
    chat = forms.IntegerField(required=False, min_value=1, max_value=ID_MAX, label=_("Chat"))
    author = forms.CharField(required=False, max_length=150, label=_("Author"))
    # The id below which the next page of results starts (they go from newest to oldest).
    before = forms.IntegerField(required=False, min_value=1, max_value=ID_MAX, widget=forms.HiddenInput)


def message_url(message: Message) -> str:
    """The message in its chat: the chat's page opened around it (as its permalink is)."""
    chat_url = reverse("chat:detail", args=[message.chat_id])
    return f"{chat_url}?around={message.pk}#message-{message.pk}"


@login_required
@require_GET
def search_page(request: AuthedRequest) -> HttpResponse:
    form = SearchForm(request.GET)
    context: dict[str, Any] = {"form": form, "results": None, "older_url": None}
    status = 200
    # Without q, the page is the empty form: nothing has been asked yet.
    if "q" in request.GET:
        context.update(results(request, form))
        status = 400 if form.errors else 200
    chats = list(Chat.objects.of_member(request.user).order_by("name", "pk"))
    form.is_valid()
    # Kept when another field has an error, so that the form comes back as it was sent.
    chosen = form.cleaned_data.get("chat")
    if chosen and all(chat.pk != chosen for chat in chats):
        # A public room the searcher has not joined: it stays chosen in the list.
        chats += list(Chat.objects.visible_to(request.user).filter(pk=chosen))
    context.update(chats=chats, chosen_chat=chosen)
    return render(request, "chat/search.html", context, status=status)


def results(request: AuthedRequest, form: SearchForm) -> dict[str, Any]:
    """A page of results with the address of the next one, or nothing when the form has errors."""
    if not form.is_valid():
        return {}
    data = form.cleaned_data
    try:
        messages = search.search_messages(
            user=request.user, query=data["q"], chat_id=data["chat"], author=data["author"] or None
        )
    except ValidationError as error:
        form.add_error(None, error)
        return {}
    if data["before"] is not None:
        messages = messages.filter(pk__lt=data["before"])
    page = list(messages[: PAGE_SIZE + 1])
    found = [
        {"message": message, "snippet": search.snippet_html(message), "url": message_url(message)}
        for message in page[:PAGE_SIZE]
    ]
    older_url = None
    if len(page) > PAGE_SIZE:
        query = {name: value for name, value in data.items() if value not in (None, "")}
        older_url = f"{reverse('chat:search')}?{urlencode({**query, 'before': page[PAGE_SIZE - 1].pk})}"
    return {"results": found, "older_url": older_url}
