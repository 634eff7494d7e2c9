"""The ASGI application: pages and static files over HTTP, chats over WebSocket."""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Django must be set up before the consumers and their models are imported.
django.setup(set_prefix=False)

from config.handlers import SyncChainASGIHandler  # noqa: E402

# As get_asgi_application(), with the middleware chain run in one hop (config/handlers.py).
django_asgi_app = SyncChainASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chat.routing import SameOriginOnly, socket_auth_stack, websocket_urlpatterns  # noqa: E402

# What start-up made lives as long as the process: keep it out of the collector's way,
# and collect less often. Collections of a large heap were what delayed the last
# recipients of a message in a 1,000-member room.
gc.freeze()
gc.set_threshold(50_000, 50, 1000)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": SameOriginOnly(socket_auth_stack(URLRouter(websocket_urlpatterns))),
    }
)
