"""The bare hello app (bench/hello.py) as an ASGI application, for daphne, with a bare socket
beside it: any WebSocket is accepted, and ends when the client closes it.

DJANGO_SETTINGS_MODULE=bench.hello SECRET_KEY=… daphne bench.hello_asgi:application
"""

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.hello")

django_application = get_asgi_application()


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "websocket":
        await django_application(scope, receive, send)
        return
    # The floor of a socket connect: daphne's handshake and closing, and nothing else.
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.disconnect":
            return
