"""The colour theme: light, dark, or the system's (prefers-color-scheme), remembered.

The choice lives in a cookie that the server reads for every page, so that the first
paint is already in the chosen theme, with no flash of the other one; "system" leaves it
to the browser's media query. The switcher is a plain form (templates/theme_switcher.html)
that works without JavaScript; with htmx it is posted in place and chat.js repaints.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

THEMES = ("light", "dark", "system")
COOKIE = "theme"
COOKIE_MAX_AGE = 365 * 24 * 60 * 60


def chosen_theme(request: HttpRequest | None) -> str:
    """The theme a request asks for: "light", "dark" or "system" (the default)."""
    value = request.COOKIES.get(COOKIE) if request is not None else None
    return value if value in THEMES else "system"


def safe_next(request: HttpRequest) -> str:
    """Where to go back to: the form's `next` or the referring page, if on this site."""
    for candidate in (request.POST.get("next"), request.headers.get("referer")):
        if candidate and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return candidate
    return "/"


@require_POST
def set_theme(request: HttpRequest) -> HttpResponse:
    """Remember the theme; back to the page (Post/Redirect/Get), or 204 for htmx."""
    theme = request.POST.get("theme", "")
    if theme not in THEMES:
        raise BadRequest(f"Unknown theme {theme!r}.")
    response: HttpResponse
    if request.headers.get("HX-Request") == "true":
        # chat.js repaints the page from this event; nothing is swapped.
        response = HttpResponse(status=204)
        response["HX-Trigger"] = json.dumps({"chat:theme": {"theme": theme}})
    else:
        response = HttpResponseRedirect(safe_next(request))
    response.set_cookie(
        COOKIE,
        theme,
        max_age=COOKIE_MAX_AGE,
        samesite="Lax",
        httponly=True,
        secure=settings.SESSION_COOKIE_SECURE,
    )
    return response
