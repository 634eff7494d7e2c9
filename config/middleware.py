"""Response headers that Django has no setting for, and the static files kept out of the way
of the synchronous chain."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.utils.decorators import sync_and_async_middleware
from servestatic.middleware import ServeStaticMiddleware

GetResponse = Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]]


@sync_and_async_middleware
def permissions_policy(get_response: GetResponse) -> GetResponse:
    """Add settings.PERMISSIONS_POLICY as the Permissions-Policy header, unless a view set one.

    Written for both modes so that, under ASGI, it costs no hop to a thread.
    """
    policy: str = settings.PERMISSIONS_POLICY

    if iscoroutinefunction(get_response):

        async def async_middleware(request: HttpRequest) -> HttpResponseBase:
            response = await cast(Awaitable[HttpResponseBase], get_response(request))
            response.headers.setdefault("Permissions-Policy", policy)
            return response

        return markcoroutinefunction(async_middleware)

    def middleware(request: HttpRequest) -> HttpResponseBase:
        response = cast(HttpResponseBase, get_response(request))
        response.headers.setdefault("Permissions-Policy", policy)
        return response

    return middleware


class StaticFilesMiddleware:
    """servestatic's middleware, for the paths under the static prefix only.

    ServeStaticMiddleware is async-only: anywhere in the chain, it would make every page
    hop from the synchronous chain (config/handlers.py) to the event loop and back. Here
    only a static file's request takes that hop.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        # A path under the prefix that names no file goes on down the chain (a 404).
        self.files = ServeStaticMiddleware(sync_to_async(get_response))
        self.serve = async_to_sync(self.files)

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info.startswith(self.files.static_prefix):
            return self.serve(request)
        return self.get_response(request)
