from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.urls import path

from chat.consumers import CLOSE_NOT_ALLOWED, ChatConsumer

websocket_urlpatterns = [
    path("ws/chats/<int:chat_id>/", ChatConsumer.as_asgi()),
]


class RefusedConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()
        await self.close(code=CLOSE_NOT_ALLOWED)


class RefusingOriginValidator(OriginValidator):
    """Channels' AllowedHostsOriginValidator, refusing with a close code the page won't retry.

    Channels' own validator closes before accepting, which the browser sees as an HTTP
    403 and htmx retries forever.
    """

    def __init__(self, application: Any) -> None:
        allowed = settings.ALLOWED_HOSTS
        if settings.DEBUG and not allowed:
            allowed = ["localhost", "127.0.0.1", "[::1]"]
        super().__init__(application, allowed)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        origin = None
        for name, value in scope.get("headers", []):
            if name == b"origin":
                try:
                    origin = urlparse(value.decode("latin1"))
                except (UnicodeDecodeError, ValueError):
                    origin = None
        if self.valid_origin(origin):
            return await self.application(scope, receive, send)
        return await RefusedConsumer()(scope, receive, send)
