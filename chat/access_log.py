"""One log line per HTTP request and per socket session, for operators.

A line says what was asked and how it went: method, path (without its query string),
status, duration and the user's id; for a socket, the chat, the close code and how long
it stayed open. Never message text, query strings, cookies or tokens. With
`LOG_FORMAT=json` every line of the project's logs is one JSON object (`JsonFormatter`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from django.utils.functional import empty

logger = logging.getLogger("chat.access")

# The fields a line of this module carries, as `extra` of its log record.
FIELDS = ("event", "method", "path", "status", "duration_ms", "user_id", "chat_id", "code")


def user_id(request: HttpRequest) -> int | None:
    """The id of the user that the request authenticated, without loading one for the log.

    `request.user` is lazy: evaluating it here would read the session (and the database)
    for requests that never needed it, such as health checks and static files.
    """
    user = request.__dict__.get("user")
    if user is None:
        return None
    wrapped = getattr(user, "_wrapped", user)
    if wrapped is empty or not getattr(wrapped, "is_authenticated", False):
        return None
    return int(wrapped.pk)


def request_finished(request: HttpRequest, status: int, started: float) -> None:
    duration = round((time.perf_counter() - started) * 1000, 1)
    fields = {
        "event": "http",
        "method": request.method,
        "path": request.path,
        "status": status,
        "duration_ms": duration,
        "user_id": user_id(request),
    }
    logger.info(
        "%s %s %s %.1fms user=%s",
        request.method,
        request.path,
        status,
        duration,
        fields["user_id"] if fields["user_id"] is not None else "-",
        extra=fields,
    )


def socket_session(*, user_id: int | None, chat_id: int | None, code: int | None, duration: float) -> None:
    """Log a WebSocket session when it ends: whose, on which chat, its close code, and its
    length in seconds (the consumer calls it at disconnect)."""
    fields = {
        "event": "socket",
        "user_id": user_id,
        "chat_id": chat_id,
        "code": code,
        "duration_ms": round(duration * 1000, 1),
    }
    logger.info(
        "socket chat=%s code=%s %.1fs user=%s",
        chat_id if chat_id is not None else "-",
        code if code is not None else "-",
        duration,
        user_id if user_id is not None else "-",
        extra=fields,
    )


class AccessLogMiddleware:
    """Log every request once it has its response; first in MIDDLEWARE, so that the
    duration covers every other middleware."""

    sync_capable = True
    async_capable = True

    def __init__(
        self, get_response: Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]]
    ) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        started = time.perf_counter()
        response = self.get_response(request)
        assert isinstance(response, HttpResponseBase)
        request_finished(request, response.status_code, started)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = self.get_response(request)
        assert not isinstance(response, HttpResponseBase)
        result = await response
        request_finished(request, result.status_code, started)
        return result


class JsonFormatter(logging.Formatter):
    """Every record as one JSON object on one line: time, level, logger, message, and the
    fields of an access line when it is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)
