"""Django's ASGI handler, with the middleware chain and the view run as one synchronous call
in a thread that keeps its database connection."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase

from chat import connections

# The threads that serve HTTP in a process. Python runs one at a time; more let requests
# that wait on the database overlap. Each holds a SQLite connection (a PostgreSQL one goes
# back to the pool after every request).
HTTP_THREADS = 8


class SyncChainASGIHandler(ASGIHandler):
    """Serves HTTP under daphne as Django's ASGIHandler does, except that:

    - The middleware and the view run together in one hop to a thread. Django's own async
      chain hops to a thread and back for each `process_request` and `process_response` of
      every MiddlewareMixin: about 20 hops a request for this project's stack, then one
      more for the view. Every view here is synchronous, so the chain runs as under WSGI;
      an async view would still work (Django wraps it), at the cost of hops.
    - That thread is one of HTTP_THREADS that live as long as the process, instead of one
      made for each request, so it keeps its database connection (chat.connections):
      opening a SQLite connection was 0.6 ms of every request.
    """

    threads = ThreadPoolExecutor(max_workers=HTTP_THREADS, thread_name_prefix="http")

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        return await sync_to_async(self.respond, thread_sensitive=False, executor=self.threads)(request)

    def respond(self, request: HttpRequest) -> HttpResponseBase:
        connections.replace_failed()
        try:
            return self.get_response(request)
        finally:
            connections.release_pooled()
