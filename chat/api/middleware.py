"""RateLimit-* headers on the API's answers, from the rates the request counted against."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from django.utils.decorators import sync_and_async_middleware

from chat import limits

GetResponse = Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]]

API_PREFIX = "/api/"


def add_headers(response: HttpResponseBase, usages: list[limits.Usage]) -> None:
    """The rate closest to refusing, as the IETF draft's RateLimit-Limit, -Remaining and
    -Reset (seconds); a 429's Retry-After comes with the error itself."""
    usage = limits.tightest(usages)
    if usage is not None:
        response.headers["RateLimit-Limit"] = str(usage.limit)
        response.headers["RateLimit-Remaining"] = str(usage.remaining)
        response.headers["RateLimit-Reset"] = str(usage.reset)


@sync_and_async_middleware
def rate_limit_headers(get_response: GetResponse) -> GetResponse:
    """Note the rates counted (chat.limits.hit) while an API request is handled, and say
    where the tightest stands. Written for both modes so that, under ASGI, it costs no hop
    to a thread."""

    if iscoroutinefunction(get_response):

        async def async_middleware(request: HttpRequest) -> HttpResponseBase:
            if not request.path.startswith(API_PREFIX):
                return await cast(Awaitable[HttpResponseBase], get_response(request))
            with limits.recording() as usages:
                response = await cast(Awaitable[HttpResponseBase], get_response(request))
            add_headers(response, usages)
            return response

        return markcoroutinefunction(async_middleware)

    def middleware(request: HttpRequest) -> HttpResponseBase:
        if not request.path.startswith(API_PREFIX):
            return cast(HttpResponseBase, get_response(request))
        with limits.recording() as usages:
            response = cast(HttpResponseBase, get_response(request))
        add_headers(response, usages)
        return response

    return middleware
