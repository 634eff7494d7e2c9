"""The person's language: for a socket (whose frames have no request), and the words that
the page's script needs, rendered once per page in the page's language.

Pages get their language from Django's LocaleMiddleware: the switcher's cookie, else the
browser's Accept-Language, else LANGUAGE_CODE. A socket's replies (its error fragments,
a catch-up) follow the same choice, made from the handshake's headers by the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.http.cookie import parse_cookie
from django.utils import translation
from django.utils.translation import gettext, ngettext, pgettext

# A number of each plural category of CLDR (the names the browser's Intl.PluralRules gives)
# for the languages the chat speaks: gettext's plural formula picks the form for it. For
# English and Russian the integers agree with CLDR; "other" is a fraction in Russian, which
# a count never is, and takes the form of "many".
PLURAL_SAMPLES = (("one", 1), ("few", 2), ("many", 5), ("other", 5))


def language_of_scope(scope: Mapping[str, Any]) -> str:
    """The language of a WebSocket's replies, chosen as LocaleMiddleware chooses a page's:
    the language cookie, else Accept-Language, else settings.LANGUAGE_CODE.

    Django's own choice runs on a request made of the handshake's headers, so that the
    two never disagree.
    """
    request = HttpRequest()
    cookies = scope.get("cookies")
    headers = {name.lower(): value for name, value in scope.get("headers", ())}
    if cookies is None:
        cookies = parse_cookie(headers.get(b"cookie", b"").decode("latin-1"))
    request.COOKIES = dict(cookies)
    accept = headers.get(b"accept-language")
    if accept is not None:
        request.META["HTTP_ACCEPT_LANGUAGE"] = accept.decode("latin-1")
    return translation.get_language_from_request(request) or settings.LANGUAGE_CODE


def by_category(message: Callable[[int], str]) -> dict[str, str]:
    """A plural message in the active language for each CLDR category, with "{n}" where
    the number goes: the page's script picks one with Intl.PluralRules."""
    return {category: message(n) % {"count": "{n}"} for category, n in PLURAL_SAMPLES}


def page_strings() -> dict[str, Any]:
    """The words of a page that neither its markup nor its pushed fragments hold, in the
    active language: rendered into each page (as JSON for chat.js, and as CSS), so that
    the script and the fragments hold no words of their own."""
    return {
        # The words the pushed fragments leave out (chat/page_words.html shows them by CSS
        # until chat.js writes them in).
        "edited": gettext("(edited)"),
        "deleted": gettext("This message was deleted."),
        "edit": gettext("Edit"),
        "delete": gettext("Delete"),
        "message_actions": gettext("Message actions"),
        "reply": gettext("Reply"),
        "in_reply_to": gettext("In reply to"),
        "react": gettext("React"),
        "reactions": gettext("Reactions"),
        "pin": gettext("Pin"),
        "unpin": gettext("Unpin"),
        "pinned": gettext("Pinned"),
        "preview_none": gettext("No messages yet."),
        "preview_deleted": gettext("A message was deleted."),
        "private": gettext("private"),
        "direct": pgettext("a direct chat", "direct"),
        # What chat.js writes of its own.
        "site": gettext("Chat"),
        "today": gettext("Today"),
        "yesterday": gettext("Yesterday"),
        "unread": by_category(lambda n: ngettext("%(count)s unread message", "%(count)s unread messages", n)),
        "new_below": by_category(lambda n: ngettext("(%(count)s new)", "(%(count)s new)", n)),
        "typing_one": gettext("%(name)s is typing…") % {"name": "{name}"},
        "typing_many": gettext("%(names)s are typing…") % {"names": "{names}"},
        # Joins names where the browser has no Intl.ListFormat: "a, b and c".
        "and": gettext("and"),
        "confirm_delete": gettext("Delete this message for everyone?"),
        "notifications_blocked": gettext(
            "Notifications are blocked in this browser's settings for this site."
        ),
        "new_message": gettext("New message"),
        "not_allowed": gettext("You can no longer follow this chat live. Reload the page to check why."),
        "reconnecting": gettext("Reconnecting…"),
        "removed": gettext("You are no longer a member of this chat."),
    }
