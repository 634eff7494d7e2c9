from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.auth import AuthMiddleware, get_user
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.urls import path, re_path

from chat.consumers import CLOSE_NOT_ALLOWED, ChatConsumer, frame_sync_to_async
from chat.stream import EventsConsumer, LegacyChatConsumer

# Sockets for programs, which may come without an Origin (not from a browser page).
PROGRAM_PATHS = ("/ws/events/", "/ws/chat/")


class SocketAuthMiddleware(AuthMiddleware):
    """Channels' AuthMiddleware, reading the session's user on the thread that all sockets'
    database work shares (chat.consumers.frame_sync_to_async). Channels' own reads it with
    database_sync_to_async, which closes that thread's database connection before and
    after: every connect, and the frame after it, opened a new one."""

    async def resolve_scope(self, scope: Any) -> None:
        scope["user"]._wrapped = await frame_sync_to_async(get_user.func)(scope)


def socket_auth_stack(inner: Any) -> Any:
    """The session cookie, the session and the user, as Channels' AuthMiddlewareStack."""
    return CookieMiddleware(SessionMiddleware(SocketAuthMiddleware(inner)))


class RefusedConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()
        await self.close(code=CLOSE_NOT_ALLOWED)


websocket_urlpatterns = [
    path("ws/chats/<int:chat_id>/", ChatConsumer.as_asgi()),
    # The chat list alone (/chats/): the person's own updates, no open chat.
    path("ws/chats/", ChatConsumer.as_asgi()),
    path("ws/events/", EventsConsumer.as_asgi()),
    path("ws/chat/", LegacyChatConsumer.as_asgi()),
    # Any other path is refused cleanly, not with a server error.
    re_path(r"", RefusedConsumer.as_asgi()),
]


def origin_of(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of an origin or URL, with the scheme's default port filled in."""
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    return parts.scheme.lower(), parts.hostname.lower(), port


DEFAULT_PORTS = {"http": 80, "https": 443}


def request_origin(scope: dict[str, Any]) -> tuple[str, str, int | None] | None:
    """The origin the socket was opened on: its Host header and scheme (HTTPS behind a
    proxy that says so in SECURE_PROXY_SSL_HEADER), if the host is an allowed one."""
    headers = {name.decode("latin1"): value.decode("latin1") for name, value in scope.get("headers", [])}
    host = headers.get("host", "")
    if not host or not validate_host(split_domain_port(host)[0], allowed_hosts()):
        return None
    scheme = "https" if scope.get("scheme") == "wss" else "http"
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        name, secure_value = proxy_header
        asgi_name = name.removeprefix("HTTP_").replace("_", "-").lower()
        if headers.get(asgi_name, "").split(",")[0].strip() == secure_value:
            scheme = "https"
    return origin_of(f"{scheme}://{host}")


def allowed_hosts() -> list[str]:
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = ["localhost", "127.0.0.1", "[::1]"]
    return allowed


def origin_allowed(scope: dict[str, Any]) -> bool:
    """The socket's Origin is the page's own (scheme, host and port), or a trusted origin.

    As Django's CSRF check does for form posts: a page on the same host at another port or
    scheme is another origin, and would otherwise read and post as the signed-in user.
    """
    origins = [value for name, value in scope.get("headers", []) if name == b"origin"]
    if not origins and scope.get("path") in PROGRAM_PATHS:
        # A program, not a page: browsers always send an Origin, so no other site's page
        # can use a visitor's session this way.
        return True
    if len(origins) != 1:
        return False
    origin = origin_of(origins[0].decode("latin1"))
    if origin is None:
        return False
    if origin == request_origin(scope):
        return True
    return origin in {origin_of(trusted) for trusted in settings.CSRF_TRUSTED_ORIGINS}


class SameOriginOnly:
    """Refuses a socket from another origin with a close code the page won't retry.

    Channels' own validator compares host names only, and closes before accepting, which
    the browser sees as an HTTP 403 and htmx retries forever.
    """

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        return await RefusedConsumer()(scope, receive, send)
