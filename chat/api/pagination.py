"""Pages of the REST API's lists."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from django.db.models import QuerySet
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination, PageNumberPagination
from rest_framework.request import Request
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from chat.api.errors import validated
from chat.models import Message
from chat.serializers import MessageQuerySerializer


class Pages(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 200


class MessagePages(CursorPagination):
    """Newest first, by id: a cursor stays stable while new messages arrive.

    With `?after=<id>` the page is instead the messages after that id, oldest first, and
    `next` continues from the last of them while there are more: what a polling bot needs.
    With `?since=<event>` (the change feed) it is the messages whose latest version came
    after that chat event, by event, and `next` is `since` the page's last event. A chat's
    events are handed out one at a time in commit order, so that continuation has neither
    gaps nor repeats; a message changed again later shows up again, at its new event.
    """

    ordering = "-id"
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"
    after: int | None = None
    since: int | None = None

    def paginate_queryset(
        self, queryset: QuerySet[Any, Any] | Sequence[Any], request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        query = validated(MessageQuerySerializer, request.query_params)
        self.after, self.since = query.get("after"), query.get("since")
        if self.after is not None:
            newer = cast(QuerySet[Message], queryset).filter(pk__gt=self.after).order_by("pk")
        elif self.since is not None:
            newer = cast(QuerySet[Message], queryset).filter(event__gt=self.since).order_by("event")
        else:
            return super().paginate_queryset(queryset, request, view)
        size = self.get_page_size(request) or self.page_size or 1
        messages = list(newer[: size + 1])
        self.base_url = remove_query_param(request.build_absolute_uri(), self.cursor_query_param)
        self.page = messages[:size]
        self.has_next = len(messages) > size
        self.has_previous = False
        return self.page

    def decode_cursor(self, request: Request) -> Cursor | None:
        cursor = super().decode_cursor(request)
        # The position is compared with ids, so anything but a number is a cursor this API never made.
        if cursor is not None and cursor.position is not None and not str(cursor.position).isdigit():
            raise NotFound(self.invalid_cursor_message)
        return cursor

    def get_next_link(self) -> str | None:
        if self.after is None and self.since is None:
            return super().get_next_link()
        if not (self.has_next and self.page and self.base_url):
            return None
        if self.since is not None:
            return replace_query_param(self.base_url, "since", self.page[-1].event)
        return replace_query_param(self.base_url, "after", self.page[-1].pk)

    def get_previous_link(self) -> str | None:
        if self.after is None and self.since is None:
            return super().get_previous_link()
        return None
