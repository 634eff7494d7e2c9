"""Django's ASGI handler, with the middleware chain and the view run as one synchronous call."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase


class SyncChainASGIHandler(ASGIHandler):
    """Serves HTTP under daphne as Django's ASGIHandler does, except that the middleware and
    the view run together in one hop to the thread of synchronous code.

    Django's own async chain hops to that thread and back for each `process_request` and
    `process_response` of every MiddlewareMixin: about 20 hops a request for this project's
    stack, then one more for the view. Every view here is synchronous, so the chain runs as
    under WSGI; an async view would still work (Django wraps it), at the cost of hops.
    """

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)
