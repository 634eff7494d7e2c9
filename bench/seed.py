"""The seed's design, kept only as the benchmark's baseline: one channel per socket.

The consumer is the one from the seed's documentation (SEED.md section 6), with a room
per URL instead of one global room: each socket joins the room's group with its own
channel, every frame is sent to the group, and each socket's consumer forwards each
event as JSON. It runs on the app's settings, so it has the same database, sessions
and channel layer (in-memory without REDIS_URL).

    daphne bench.seed:application
"""

from __future__ import annotations

import json
import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402


class SeedConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.room_group_name = f"seed.{self.scope['url_route']['kwargs']['room']}"
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        data = json.loads(text_data or "{}")
        message = data["message"]
        await self.channel_layer.group_send(
            self.room_group_name, {"type": "chat_message", "message": message}
        )

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps({"message": event["message"]}))


websocket_urlpatterns = [path("ws/seed/<slug:room>/", SeedConsumer.as_asgi())]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)
