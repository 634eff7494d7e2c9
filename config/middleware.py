"""Response headers that Django has no setting for."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.utils.decorators import sync_and_async_middleware

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
