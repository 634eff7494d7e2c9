"""Search (chat.search): who finds what, the query language, the snippets, the page and the API.

Every test runs on the database of the run: SQLite with its FTS5 table, or PostgreSQL with
its GIN index (CI runs the in-process tests on both).
"""

from __future__ import annotations

import re
from typing import Any
from unittest import skipUnless

from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import Http404
from django.test import TestCase
from django.utils.formats import date_format
from django.utils.timezone import localtime
from rest_framework.test import APIClient

from chat import search, services
from chat.models import Chat, Message
from chat.serializers import MessageSerializer
from chat.tests.factories import general, make_messages, make_room, make_user

PRIVATE = Chat.Visibility.PRIVATE

# Queries that mean something to FTS5's or tsquery's own syntax, or to nobody.
HOSTILE_QUERIES = [
    '"',
    '""',
    '"unclosed phrase',
    "'",
    "''",
    "*",
    "pine*",
    "*apple",
    "NEAR(pineapple secret)",
    "NEAR(",
    "pineapple NEAR/2 secret",
    "AND",
    "OR",
    "NOT",
    "pineapple AND NOT",
    "pineapple OR",
    "or or or",
    "-",
    "--",
    "-pineapple",
    "- - -",
    "(",
    ")",
    "((pineapple",
    "{text}: pineapple",
    "text:pineapple",
    "^pineapple",
    "pineapple:*",
    "!pineapple",
    "pineapple & secret | x",
    "!!",
    "<->",
    "pineapple <-> secret",
    "\\",
    "\\'",
    "%",
    "_",
    "%_%",
    "; DROP TABLE chat_message; --",
    "' OR 1=1 --",
    "rowid",
    "chat_message_fts",
    "\x00",
    "pine\x00apple",
    "\u200b",
    "\ufeff",
    "\ue000pineapple\ue001",
    "🍍",
    "🍍 pineapple",
    "パイナップル",
    "ананас",
    "Ананас ИЛИ груша",
    "é",
    "a" * 200,
    "pineapple " * 20,
    "x" * 10_000,
]


def post(chat: Chat, user: User, text: str) -> Message:
    message, _ = services.post_message(chat=chat, user=user, text=text)
    return message


def found(user: User, query: str, **filters: Any) -> list[str]:
    """The texts of the messages the user finds, newest first."""
    return [message.text for message in search.search_messages(user=user, query=query, **filters)]


def api(user: User | None = None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


class SearchTestCase(TestCase):
    def setUp(self) -> None:
        cache.clear()
        self.alice, self.bob, self.carol = make_user("alice"), make_user("bob"), make_user("carol")
        # A private room of alice and bob; carol is not in it.
        self.secret = make_room(self.alice, "Secret", visibility=PRIVATE)
        services.add_member(chat=self.secret, by=self.alice, user=self.bob)
        self.public = make_room(self.alice, "Open")
        services.join_chat(user=self.bob, chat=self.public)


class WhoFindsWhatTests(SearchTestCase):
    def test_member_finds_what_a_non_member_never_does(self):
        """A word only in a private room: its members find it, a non-member finds nothing,
        on the page and the API, even when asking for that room by id."""
        post(self.secret, self.bob, "The pineapple plan")
        assert found(self.alice, "pineapple") == ["The pineapple plan"]
        assert found(self.bob, "pineapple") == ["The pineapple plan"]
        assert found(self.carol, "pineapple") == []

        self.client.force_login(self.carol)
        page = self.client.get("/search/", {"q": "pineapple"})
        assert page.status_code == 200
        assert page.context["results"] == []
        assert "pineapple plan" not in page.content.decode()
        response = api(self.carol).get("/api/search/", {"q": "pineapple"})
        assert response.status_code == 200
        assert response.json()["results"] == []
        # Naming the room is no way in: it does not exist for her.
        assert (
            api(self.carol).get("/api/search/", {"q": "pineapple", "chat": str(self.secret.pk)}).status_code
            == 404
        )
        assert self.client.get("/search/", {"q": "pineapple", "chat": str(self.secret.pk)}).status_code == 404
        with self.assertRaises(Http404):
            found(self.carol, "pineapple", chat_id=self.secret.pk)

        self.client.force_login(self.bob)
        page = self.client.get("/search/", {"q": "pineapple"})
        assert [result["message"].text for result in page.context["results"]] == ["The pineapple plan"]
        response = api(self.bob).get("/api/search/", {"q": "pineapple"})
        assert [item["text"] for item in response.json()["results"]] == ["The pineapple plan"]

    def test_public_rooms_are_searched_without_joining(self):
        """Public rooms, which anyone signed in may read, are searched too; direct chats of
        others are not."""
        post(self.public, self.alice, "Pineapple for everyone")
        direct, _ = services.open_direct_chat(user=self.alice, other=self.bob)
        post(direct, self.alice, "Pineapple between us")
        assert found(self.carol, "pineapple") == ["Pineapple for everyone"]
        assert found(self.bob, "pineapple") == ["Pineapple between us", "Pineapple for everyone"]

    def test_a_former_member_finds_nothing_more(self):
        """Leaving a private room takes its messages out of one's searches."""
        post(self.secret, self.alice, "pineapple before")
        services.leave_chat(user=self.bob, chat=self.secret)
        assert found(self.bob, "pineapple") == []

    def test_anonymous_callers_are_refused(self):
        """The API answers 401 without credentials; the page sends visitors to log in."""
        assert api().get("/api/search/", {"q": "pineapple"}).status_code == 401
        response = self.client.get("/search/", {"q": "pineapple"})
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")

    def test_deleted_messages_are_never_found(self):
        """A deleted message is found by no word it had, by its author or anyone."""
        message = post(self.secret, self.alice, "pineapple to delete")
        post(self.secret, self.alice, "pineapple to keep")
        services.delete_message(message=message, user=self.alice)
        assert found(self.alice, "pineapple") == ["pineapple to keep"]
        assert found(self.alice, "delete") == []
        assert api(self.alice).get("/api/search/", {"q": "delete"}).json()["results"] == []

    def test_results_follow_edits(self):
        """After an edit the new words are found and the old ones no longer."""
        message = post(self.secret, self.alice, "pineapple")
        services.edit_message(message=message, user=self.alice, text="mango")
        assert found(self.alice, "pineapple") == []
        assert found(self.alice, "mango") == ["mango"]
        response = api(self.alice).get("/api/search/", {"q": "mango"})
        assert response.json()["results"][0]["snippet"] == "<mark>mango</mark>"

    def test_messages_written_directly_are_found(self):
        """Messages saved without the services (a bulk import) are indexed too."""
        make_messages(self.secret, self.alice, 3)
        assert found(self.alice, "message") == ["message 3", "message 2", "message 1"]


class FilterTests(SearchTestCase):
    def setUp(self) -> None:
        super().setUp()
        post(self.secret, self.alice, "pineapple from alice in secret")
        post(self.secret, self.bob, "pineapple from bob in secret")
        post(self.public, self.bob, "pineapple from bob in the open")

    def test_chat_filter(self):
        """`chat` keeps to one chat the user may see."""
        assert found(self.bob, "pineapple", chat_id=self.public.pk) == ["pineapple from bob in the open"]
        response = api(self.bob).get("/api/search/", {"q": "pineapple", "chat": str(self.secret.pk)})
        assert [item["text"] for item in response.json()["results"]] == [
            "pineapple from bob in secret",
            "pineapple from alice in secret",
        ]
        assert api(self.bob).get("/api/search/", {"q": "pineapple", "chat": "x"}).status_code == 400
        assert api(self.bob).get("/api/search/", {"q": "pineapple", "chat": str(10**30)}).status_code == 400

    def test_author_filter(self):
        """`author` keeps to one person's messages, named by username or by id; an unknown
        person has none."""
        assert found(self.alice, "pineapple", author="bob") == [
            "pineapple from bob in the open",
            "pineapple from bob in secret",
        ]
        assert found(self.alice, "pineapple", author=str(self.alice.pk)) == ["pineapple from alice in secret"]
        assert found(self.alice, "pineapple", author="nobody") == []
        assert found(self.alice, "pineapple", author="nul\x00") == []
        response = api(self.carol).get("/api/search/", {"q": "pineapple", "author": "bob"})
        assert [item["text"] for item in response.json()["results"]] == ["pineapple from bob in the open"]

    def test_filters_together_on_the_page(self):
        """The page takes both filters and keeps them in its form."""
        self.client.force_login(self.alice)
        page = self.client.get("/search/", {"q": "pineapple", "chat": str(self.secret.pk), "author": "bob"})
        assert [result["message"].text for result in page.context["results"]] == [
            "pineapple from bob in secret"
        ]
        html = page.content.decode()
        assert f'<option value="{self.secret.pk}" selected>Secret</option>' in html
        assert 'name="author" value="bob"' in html

    def test_a_public_room_not_joined_stays_chosen(self):
        """A public room one has not joined can be searched alone; the form keeps it chosen,
        also when the query has an error."""
        self.client.force_login(self.carol)
        page = self.client.get("/search/", {"q": "pineapple", "chat": str(self.public.pk)})
        assert [result["message"].text for result in page.context["results"]] == [
            "pineapple from bob in the open"
        ]
        assert f'<option value="{self.public.pk}" selected>Open</option>' in page.content.decode()
        page = self.client.get("/search/", {"q": "", "chat": str(self.public.pk)})
        assert page.status_code == 400
        assert f'<option value="{self.public.pk}" selected>Open</option>' in page.content.decode()


class QueryLanguageTests(SearchTestCase):
    def test_words_phrases_exclusions_and_either(self):
        """All words must occur, anywhere and in any case; "a phrase" in order; -word must
        not occur; `or` takes either."""
        for text in ["red apple pie", "Apple red", "green apple", "red cherry"]:
            post(self.public, self.alice, text)
        assert found(self.alice, "apple red") == ["Apple red", "red apple pie"]
        assert found(self.alice, "APPLE") == ["green apple", "Apple red", "red apple pie"]
        assert found(self.alice, '"red apple"') == ["red apple pie"]
        assert found(self.alice, "apple -red") == ["green apple"]
        assert found(self.alice, 'apple -"red apple"') == ["green apple", "Apple red"]
        assert found(self.alice, "cherry or pie") == ["red cherry", "red apple pie"]
        assert found(self.alice, "red cherry OR green") == ["red cherry"]
        assert found(self.alice, "-apple") == []
        # Whole words only: no stemming, no prefixes.
        assert found(self.alice, "app") == []
        assert found(self.alice, "apples") == []

    def test_russian_and_other_scripts(self):
        """Words of any script match in any case, Russian ones too."""
        post(self.public, self.alice, "Привет, МИР! Ёлка и ёжик")
        post(self.public, self.alice, "Ελληνικά και パイナップル")
        assert found(self.alice, "привет") == ["Привет, МИР! Ёлка и ёжик"]
        assert found(self.alice, "мир ЁЛКА") == ["Привет, МИР! Ёлка и ёжик"]
        assert found(self.alice, "ελληνικά") == ["Ελληνικά και パイナップル"]
        assert found(self.alice, "パイナップル") == ["Ελληνικά και パイナップル"]
        response = api(self.alice).get("/api/search/", {"q": "ёжик"})
        assert response.json()["results"][0]["snippet"].endswith("<mark>ёжик</mark>")

    def test_hostile_queries_never_fail(self):
        """Characters of the databases' query languages, quotes, NUL, very long or odd Unicode
        queries: each answers results or a 400, never an error, on the page and the API."""
        post(self.public, self.alice, "pineapple secret: text, rowid and NEAR(")
        self.client.force_login(self.alice)
        for query in HOSTILE_QUERIES:
            try:
                results = found(self.alice, query)
            except ValidationError as error:
                assert "q" in error.message_dict, query
                results = []
            assert all(text.startswith("pineapple") for text in results), query
            response = api(self.alice).get("/api/search/", {"q": query})
            assert response.status_code in (200, 400), (query, response.status_code)
            page = self.client.get("/search/", {"q": query})
            assert page.status_code in (200, 400), (query, page.status_code)
        # Quoted, the syntax is text.
        assert found(self.alice, "NEAR(") == ["pineapple secret: text, rowid and NEAR("]
        assert found(self.alice, "pine*") == []
        assert found(self.alice, "text:pineapple") == []
        assert found(self.alice, "-pineapple") == []

    def test_empty_and_overlong_queries_are_refused(self):
        """An empty query, or one past the limit, is refused with words that say why."""
        for query in ["", "   ", "\x00"]:
            with self.assertRaises(ValidationError):
                found(self.alice, query)
        for params in [{}, {"q": ""}, {"q": "  "}]:
            response = api(self.alice).get("/api/search/", params)
            assert response.status_code == 400
            assert response.json()["q"] == ["Type what to search for."]
            assert response.json()["detail"] == "Type what to search for."
        long = "x" * (search.QUERY_MAX_LENGTH + 1)
        response = api(self.alice).get("/api/search/", {"q": long})
        assert response.status_code == 400
        assert response.json()["detail"] == "A search can have at most 200 characters (it has 201)."
        self.client.force_login(self.alice)
        page = self.client.get("/search/", {"q": ""})
        assert page.status_code == 400
        assert "Type what to search for." in page.content.decode()

    def test_parse_query(self):
        """The query language, parsed."""
        terms = search.parse_query('a "b c" -d or e -"f g" h OR i "unclosed')
        # An `or` after an excluded word has nothing to take either of.
        assert terms.groups == (("a",), ("b c",), ("e",), ("h", "i"), ("unclosed",))
        assert terms.excluded == ("d", "f g")
        assert search.fts5_query(terms) == (
            '(("a") AND ("b c") AND ("e") AND ("h" OR "i") AND ("unclosed")) NOT "d" NOT "f g"'
        )
        assert search.fts5_query(search.parse_query('say "NEAR("')) == '(("say") AND ("NEAR("))'
        assert search.fts5_query(search.parse_query('x"y')) == '(("x""y"))'


class SnippetTests(SearchTestCase):
    def test_markup_in_messages_is_escaped(self):
        """The snippet escapes the message's text and marks only the matched words."""
        post(self.public, self.alice, '<script>alert("pineapple")</script> & <b>pineapple</b>')
        [message] = search.search_messages(user=self.alice, query="pineapple")
        snippet = search.snippet_html(message)
        assert "<script>" not in snippet and "<b>" not in snippet
        assert snippet == (
            "&lt;script&gt;alert(&quot;<mark>pineapple</mark>&quot;)&lt;/script&gt; "
            "&amp; &lt;b&gt;<mark>pineapple</mark>&lt;/b&gt;"
        )
        response = api(self.alice).get("/api/search/", {"q": "pineapple"})
        assert response.json()["results"][0]["snippet"] == snippet
        self.client.force_login(self.alice)
        html = self.client.get("/search/", {"q": "pineapple"}).content.decode()
        assert '<script>alert("pineapple")' not in html
        assert snippet in html

    def test_marking_characters_in_a_message_mark_nothing(self):
        """A message that holds the snippet's own marking characters can't mark words itself."""
        post(self.public, self.alice, "pineapple \ue000chosen\ue001 \ue001 \ue000")
        [message] = search.search_messages(user=self.alice, query="pineapple")
        assert search.snippet_html(message) == "pineapple chosen"

    def test_a_long_message_shows_the_match_in_context(self):
        """In a long message the snippet is the part around the match, with … where the
        text goes on."""
        words = [f"word{i}" for i in range(200)]
        words[100] = "pineapple"
        post(self.public, self.alice, " ".join(words))
        [message] = search.search_messages(user=self.alice, query="pineapple")
        snippet = search.snippet_html(message)
        assert snippet.startswith("… ") and snippet.endswith(" …")
        assert "<mark>pineapple</mark>" in snippet
        assert "word99" in snippet and "word101" in snippet
        assert "word0 " not in snippet and "word199" not in snippet
        assert len(snippet) < 400


class PageTests(SearchTestCase):
    def test_the_form_without_a_search(self):
        """/search/ without `q` is the form alone, with its labelled fields."""
        self.client.force_login(self.alice)
        response = self.client.get("/search/")
        assert response.status_code == 200
        assert response.context["results"] is None
        html = response.content.decode()
        assert '<label for="search-q"' in html and "Search messages</label>" in html
        assert 'name="q"' in html and 'name="chat"' in html and 'name="author"' in html
        assert '<option value="">All your chats and public rooms</option>' in html
        assert f'<option value="{self.secret.pk}">Secret</option>' in html

    def test_results_link_to_the_message_in_its_chat(self):
        """Each result names its chat, author and time, and links to the message in its chat."""
        message = post(self.secret, self.bob, "pineapple <i>plan</i>")
        self.client.force_login(self.alice)
        response = self.client.get("/search/", {"q": "pineapple"})
        html = response.content.decode()
        link = f'href="/chats/{self.secret.pk}/?around={message.pk}#message-{message.pk}"'
        assert link in html
        assert f'href="/chats/{self.secret.pk}/"' in html
        assert ">Secret</a>" in html and ">bob</span>" in html
        when = date_format(localtime(message.timestamp), "SHORT_DATETIME_FORMAT")
        assert f'<span class="search-when">{when}</span>' in html
        assert "<mark>pineapple</mark> &lt;i&gt;plan&lt;/i&gt;" in html

    def test_nothing_found(self):
        """A search that finds nothing says so."""
        self.client.force_login(self.alice)
        response = self.client.get("/search/", {"q": "pineapple"})
        assert response.status_code == 200
        assert "No messages match." in response.content.decode()

    def test_older_results_page_by_page(self):
        """Twenty results a page, newest first, with a link to older ones that keeps the filters."""
        make_messages(self.public, self.bob, 45)
        self.client.force_login(self.alice)
        response = self.client.get("/search/", {"q": "message", "author": "bob"})
        texts = [result["message"].text for result in response.context["results"]]
        assert texts == [f"message {i}" for i in range(45, 25, -1)]
        older = response.context["older_url"]
        assert "author=bob" in older and "q=message" in older
        seen = texts
        while older:
            response = self.client.get(older.replace("&amp;", "&"))
            seen += [result["message"].text for result in response.context["results"]]
            older = response.context["older_url"]
        assert seen == [f"message {i}" for i in range(45, 0, -1)]

    def test_every_page_has_the_search_box(self):
        """The header of every signed-in page has a search field that opens /search/."""
        self.client.force_login(self.alice)
        html = self.client.get("/chats/").content.decode()
        form = re.search(r'<form method="get" action="/search/" role="search">.*?</form>', html, re.S)
        assert form is not None
        assert '<label for="header-search" class="sr-only">Search</label>' in form.group()
        assert 'name="q"' in form.group()


class ApiTests(SearchTestCase):
    def test_shape_of_a_result(self):
        """A result is a message as the other routes show it, with chat_name and snippet."""
        message = post(self.secret, self.bob, "pineapple")
        response = api(self.alice).get("/api/search/", {"q": "pineapple"})
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"next", "previous", "results"}
        [result] = body["results"]
        expected = MessageSerializer(message).data
        assert {name: result[name] for name in expected} == {**expected, "timestamp": result["timestamp"]}
        assert result["chat_name"] == "Secret"
        assert result["snippet"] == "<mark>pineapple</mark>"
        assert result["user"] == {"id": self.bob.pk, "username": "bob"}

    def test_pages_newest_first(self):
        """Results come newest first, twenty a page; `next` leads through the rest once each."""
        make_messages(self.public, self.bob, 45)
        response = api(self.carol).get("/api/search/", {"q": "message"})
        seen = [item["text"] for item in response.json()["results"]]
        assert len(seen) == 20
        next_url = response.json()["next"]
        while next_url:
            body = api(self.carol).get(next_url).json()
            seen += [item["text"] for item in body["results"]]
            next_url = body["next"]
        assert seen == [f"message {i}" for i in range(45, 0, -1)]
        assert api(self.carol).get("/api/search/", {"q": "message", "cursor": "junk"}).status_code == 404

    def test_documented_in_the_schema(self):
        """GET /api/search/ is in the OpenAPI document, with its parameters and an example."""
        schema = api(self.alice).get("/api/schema/").json()
        operation = schema["paths"]["/api/search/"]["get"]
        assert {parameter["name"] for parameter in operation["parameters"]} >= {
            "q",
            "chat",
            "author",
            "cursor",
        }
        assert "examples" in operation["responses"]["200"]["content"]["application/json"]
        assert set(operation["responses"]) >= {"200", "400", "401", "404"}


class IndexTests(SearchTestCase):
    @skipUnless(connection.vendor == "sqlite", "the FTS5 table is SQLite's")
    def test_fts5_schema_is_the_migrations(self):
        """chat.search repairs the index with the same statements as migration 0008 made it."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT name, sql FROM sqlite_master WHERE name LIKE 'chat_message_fts%'")
            made = {name: sql for name, sql in cursor.fetchall() if name in search.SQLITE_SCHEMA}
        assert made == search.SQLITE_SCHEMA

    @skipUnless(connection.vendor == "sqlite", "the FTS5 triggers are SQLite's")
    def test_lost_triggers_are_made_again(self):
        """When chat_message is rebuilt (as Django does on SQLite for most field changes), its
        triggers are gone; the next search makes them again and indexes what came meanwhile."""
        post(self.public, self.alice, "pineapple before")
        with connection.cursor() as cursor:
            for name in ["insert", "update", "delete"]:
                cursor.execute(f"DROP TRIGGER chat_message_fts_{name}")
        post(self.public, self.alice, "pineapple meanwhile")
        with self.assertLogs("chat.search", "WARNING"):
            assert found(self.alice, "pineapple") == ["pineapple meanwhile", "pineapple before"]
        message = post(self.public, self.alice, "pineapple after")
        services.edit_message(message=message, user=self.alice, text="pineapple edited")
        assert found(self.alice, "pineapple") == [
            "pineapple edited",
            "pineapple meanwhile",
            "pineapple before",
        ]

    @skipUnless(connection.vendor == "postgresql", "the GIN index is PostgreSQL's")
    def test_gin_index_serves_the_search(self):
        """The search's condition is the GIN index's expression, so that PostgreSQL uses it."""
        make_messages(general(), self.alice, 50)
        post(general(), self.alice, "pineapple")
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'chat_message_text_search'")
            [(definition,)] = cursor.fetchall()
            assert "USING gin (to_tsvector('simple'::regconfig, text))" in definition
            cursor.execute("SET LOCAL enable_seqscan = off")
        messages = Message.objects.alias(document=search.Document("text")).filter(
            document=search.tsquery(search.parse_query("pineapple"))
        )
        assert "chat_message_text_search" in messages.explain()
        assert found(self.alice, "pineapple") == ["pineapple"]
