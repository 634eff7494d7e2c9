"""The REST API's search: GET /api/search/?q=<words>, over chat.search."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chat import search
from chat.api import examples
from chat.api.errors import errors, validated
from chat.api.pagination import MessagePages
from chat.api.views import signed_in
from chat.models import ID_MAX, Message
from chat.serializers import MessageSerializer

SEARCH_RESULTS = examples.response(
    "Messages that match",
    {
        **examples.MESSAGE,
        "chat_name": examples.CHAT["name"],
        "snippet": "Hello, **<mark>everyone</mark>**",
    },
)


class SearchQuerySerializer(serializers.Serializer[Any]):
    # Types only: chat.search says what a query may be, for the page and the API alike.
    q = serializers.CharField(
        allow_blank=True,
        # The words chat.search answers for an empty query.
        error_messages={"required": search.EMPTY_QUERY},
        trim_whitespace=False,
        help_text=(
            "What to look for: words, all of which must occur (whole words, in any case); "
            '"a phrase" in double quotes; `-word` for what must not occur; `or` between two words '
            f"or phrases for either. At most {search.QUERY_MAX_LENGTH} characters."
        ),
    )
    chat = serializers.IntegerField(
        required=False, min_value=1, max_value=ID_MAX, help_text="Only the messages of this chat."
    )
    author = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=150,
        help_text="Only the messages of this person, by username (or by id).",
    )


class SearchResultSerializer(MessageSerializer):
    """A message as the other routes show it, with its chat's name and the match in context."""

    chat_name = serializers.CharField(source="chat.name", read_only=True, help_text="The chat's name.")
    snippet = serializers.SerializerMethodField(
        help_text=(
            "The text around the match as HTML: everything escaped, the matched words in "
            "`<mark>`, with `…` where the text goes on."
        )
    )

    class Meta(MessageSerializer.Meta):
        fields = [*MessageSerializer.Meta.fields, "chat_name", "snippet"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField())
    def get_snippet(self, message: Message) -> str:
        return search.snippet_html(message)


class SearchPages(MessagePages):
    """Newest first, by id, as a chat's messages are (`after` and `since` have no meaning here)."""

    page_size = 20
    ordering = "-recency"  # the id (chat.search.search_messages)

    def paginate_queryset(
        self, queryset: QuerySet[Any, Any] | Sequence[Any], request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        return CursorPagination.paginate_queryset(self, queryset, request, view)


class Search(generics.GenericAPIView[Message]):
    serializer_class = SearchResultSerializer
    pagination_class = SearchPages

    @extend_schema(
        summary="Search messages",
        tags=["messages"],
        description=(
            "The messages of your chats and of the public rooms that match `q`, newest first, a "
            "page at a time: follow `next` for older ones. Deleted messages are never found. "
            "`chat` keeps to one chat (404 if you may not see it), `author` to one person's "
            "messages. An empty or missing `q` is a 400."
        ),
        parameters=[SearchQuerySerializer],
        responses={200: SearchResultSerializer(many=True), **errors(400, 404)},
        examples=[SEARCH_RESULTS],
    )
    def get(self, request: Request) -> Response:
        query = validated(SearchQuerySerializer, request.query_params)
        messages = search.search_messages(
            user=signed_in(request), query=query["q"], chat_id=query.get("chat"), author=query.get("author")
        )
        # The results show their files (one query for the page, not one per result).
        page = self.paginate_queryset(messages.prefetch_related("attachments"))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)
