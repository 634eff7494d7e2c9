"""Query budgets: every page, form post, API route and socket action makes a fixed number
of queries, whatever the number of messages, authors, members, reactions, pins, replies,
mentions, files and chats it shows.

Each test measures its door twice: in a small room (three messages, two members, one
reaction) and, after `grow()`, in a big one (thirty-odd messages from ten authors, twelve
members, reactions by several people, pins, replies, mentions, files, an edited and a
deleted message, more chats in the chat list). Both counts must equal the door's budget,
an exact number: a query more is a failure to justify (raise the budget, saying why) and a
query that grows with the data is an N+1 to fix.

The count includes what runs after the commit (the push's rendering), since a real request
pays for it too. Each door is warmed up once first, so that per-process caches (content
types, a token's "last used" note) do not count; the messages' cached HTML is emptied
before each count (chat.fragments): a page's budget is that of its first view.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

from django.contrib.auth.models import User
from django.core.cache import caches
from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext

from chat import consumers, fragments, frames, services
from chat.models import Chat, Message
from chat.tests.factories import make_room, make_user
from chat.tests.test_api import api
from chat.tests.test_attachments import MediaMixin, text_file

HTMX = {"HX-Request": "true"}


def per_vendor(*, sqlite: int, postgresql: int) -> int:
    """A budget that differs between the two databases the suite runs on."""
    return {"sqlite": sqlite, "postgresql": postgresql}[connection.vendor]


def post(chat: Chat, user: User, text: str, **options: Any) -> Message:
    message, _ = services.post_message(chat=chat, user=user, text=text, **options)
    return message


class QueryBudgetTests(MediaMixin, TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.alice, self.bob = make_user("alice"), make_user("bob")
        self.room = make_room(self.alice, name="Team")
        services.join_chat(user=self.bob, chat=self.room)
        self.first = post(self.room, self.alice, "message one for @bob")
        post(self.room, self.bob, "message two")
        post(self.room, self.alice, "message three")
        services.add_reaction(message=self.first, user=self.bob, emoji="👍")
        self.client.force_login(self.alice)
        self.emojis = iter(["👍", "🎉", "❤️", "😂", "👀", "🚀"])

    def grow(self) -> None:
        """From the small room to the big one, and more chats in Alice's chat list."""
        people = [make_user(f"person{n}") for n in range(10)]
        for person in people:
            services.join_chat(user=person, chat=self.room)
        authors = [self.alice, self.bob, *people[:8]]
        posted: list[Message] = []
        for n in range(30):
            author, mentioned = authors[n % 10], authors[(n + 1) % 10]
            text = f"message {n} for @{mentioned.username}" + (" and @here" if n == 7 else "")
            reply_to = posted[n - 3].pk if n % 5 == 4 else None
            files = [text_file(f"notes{n}.txt"), text_file(f"plans{n}.txt")] if n % 10 == 3 else []
            posted.append(post(self.room, author, text, reply_to=reply_to, files=files))
        for message in [self.first, *posted[::4]]:
            for person in [self.bob, *people[:4]]:
                services.add_reaction(message=message, user=person, emoji="👍")
            for person in people[4:6]:
                services.add_reaction(message=message, user=person, emoji="🎉")
        for message in (self.first, posted[10], posted[20]):
            services.pin_message(message=message, user=self.bob)
        services.edit_message(message=posted[0], user=self.alice, text="message 0, edited")
        services.delete_message(message=posted[1], user=self.bob)
        for n in range(3):
            side = make_room(people[n], name=f"Side {n}")
            services.join_chat(user=self.alice, chat=side)
            post(side, people[n], f"message on the side for @alice {n}")
        for other in (self.bob, people[0]):
            direct, _ = services.open_direct_chat(user=self.alice, other=other)
            post(direct, other, "a direct message")
        make_room(people[5], name="Joinable")
        post(self.room, people[9], "the latest message")

    def budget(
        self, expected: int, door: Callable[[Any], object], prepare: Callable[[], Any] = lambda: None
    ) -> None:
        """The door costs `expected` queries in the small room and in the big one, with no
        message's HTML in the cache (chat.fragments): the budget of a page seen first."""
        door(prepare())
        counts = []
        for size in ("small", "big"):
            if size == "big":
                self.grow()
            argument = prepare()
            caches[fragments.CACHE].clear()
            with CaptureQueriesContext(connection) as queries, self.captureOnCommitCallbacks(execute=True):
                door(argument)
            counts.append(queries)
        small, big = counts
        sql = "\n".join(query["sql"] for query in big.captured_queries)
        assert len(small) == len(big) == expected, (
            f"small {len(small)}, big {len(big)}, budget {expected}; the big room's queries:\n{sql}"
        )

    def get(self, url: str, **headers: str) -> Callable[[Any], object]:
        def door(_: object) -> None:
            response = self.client.get(url, headers=headers)
            assert response.status_code == 200, response

        return door

    def api_get(self, client: Any, url: str) -> Callable[[Any], object]:
        def door(_: object) -> None:
            response = client.get(url)
            assert response.status_code == 200, response.content

        return door

    def latest_id(self) -> int:
        return Message.objects.filter(chat=self.room).latest("pk").pk

    def test_the_big_room_shows_what_it_holds(self) -> None:
        """The big room's page does show the messages, reactions, files, replies, pins and
        chats that the budgets are measured over."""
        self.grow()
        page = self.client.get(f"/chats/{self.room.pk}/").text
        assert page.count('<article id="message-') == 34
        assert page.count('class="reaction ') == 18
        assert page.count('class="attachment ') == 6
        assert page.count('class="message-pinned"') == 3
        assert page.count('class="reply-quote ') == 6
        assert page.count('class="mention"') >= 30
        # General, Team, three side rooms and two direct chats, in the chat list.
        assert len(set(re.findall(r'data-chat-id="(\d+)"', page))) == 7
        frame = {"action": "catch_up", "after": str(self.first.pk), "since": "0", "first": str(self.first.pk)}
        caught_up = frames.handle(user=self.alice, chat=self.room, text_data=json.dumps(frame))
        assert caught_up.count('<article id="message-') == 34, caught_up.count('<article id="message-')
        assert len(api(self.alice).get("/api/search/?q=message").json()["results"]) == 20

    # Pages.

    def test_chat_list(self) -> None:
        self.budget(5, self.get("/chats/"))

    def test_chat_list_sidebar(self) -> None:
        self.budget(4, self.get("/chats/sidebar/", **HTMX))

    def test_room_page(self) -> None:
        # The session, the user, the chat (with the membership that lets Alice see it), the
        # page of messages, their reactions counted, her membership again (views.render_detail),
        # the chat list (two), the messages' files, reactions with their users and pins,
        # whether there are older and newer messages, and the pin count.
        self.budget(14, self.get(f"/chats/{self.room.pk}/"))

    def test_room_page_seen_before(self) -> None:
        """With every message's HTML in the cache, its files, reactions and pins are not read."""
        self.grow()
        page = self.get(f"/chats/{self.room.pk}/")
        page(None)
        with CaptureQueriesContext(connection) as queries:
            page(None)
        assert len(queries) == 11, "\n".join(query["sql"] for query in queries.captured_queries)

    def test_room_page_around_a_message(self) -> None:
        # The room page's, with the messages before and after the one linked to read apart.
        self.budget(15, self.get(f"/chats/{self.room.pk}/?around={self.first.pk}"))

    def test_older_messages_fragment(self) -> None:
        def door(latest: int) -> None:
            response = self.client.get(f"/chats/{self.room.pk}/messages/?before={latest}", headers=HTMX)
            assert response.status_code == 200

        self.budget(10, door, self.latest_id)

    def test_members_panel(self) -> None:
        self.budget(4, self.get(f"/chats/{self.room.pk}/members/"))

    def test_pinned_panel(self) -> None:
        self.budget(5, self.get(f"/chats/{self.room.pk}/pins/"))

    def test_search_page(self) -> None:
        # SQLite asks sqlite_master whether the FTS5 table exists on every search
        # (chat.search.ensure_fts5_index): one query more than PostgreSQL.
        self.budget(per_vendor(sqlite=5, postgresql=4), self.get("/search/?q=message"))

    def test_edit_page(self) -> None:
        self.budget(4, self.get(f"/chats/{self.room.pk}/messages/{self.first.pk}/edit/"))

    # Form posts, without JavaScript.

    def test_send_a_message(self) -> None:
        def door(_: object) -> None:
            response = self.client.post(
                f"/chats/{self.room.pk}/messages/",
                {"text": "hello @bob", "client_id": str(uuid.uuid4()), "reply_to": str(self.first.pk)},
            )
            assert response.status_code == 302

        self.budget(15, door)

    # The new version is pushed with its files, reactions (and who reacted) and pin, read
    # once (chat.models.with_extras in services.edit_message): not one query per reactor.
    def test_edit_a_message(self) -> None:
        def door(_: object) -> None:
            response = self.client.post(
                f"/chats/{self.room.pk}/messages/{self.first.pk}/edit/", {"text": f"edited {uuid.uuid4()}"}
            )
            assert response.status_code == 302

        self.budget(14, door)

    # The htmx answer shows the same version as the push, with no query of its own.
    def test_edit_a_message_with_htmx(self) -> None:
        def door(_: object) -> None:
            response = self.client.post(
                f"/chats/{self.room.pk}/messages/{self.first.pk}/edit/",
                {"text": f"edited {uuid.uuid4()}"},
                headers=HTMX,
            )
            assert response.status_code == 200

        self.budget(14, door)

    def test_delete_a_message(self) -> None:
        # check_can_delete asks user.has_perm(), which loads Alice's own and her groups'
        # permissions: two queries on every delete, even by the author.
        def door(message: Message) -> None:
            response = self.client.post(f"/chats/{self.room.pk}/messages/{message.pk}/delete/")
            assert response.status_code == 302

        self.budget(14, door, lambda: post(self.room, self.alice, "to be deleted"))

    def test_react(self) -> None:
        # The toggle asks twice whether Alice already reacted with this emoji (toggle_reaction,
        # then add_reaction), and the push reads the message and its files, reactions and pin
        # afresh (broadcast.message_redrawn).
        def door(emoji: str) -> None:
            response = self.client.post(
                f"/chats/{self.room.pk}/messages/{self.first.pk}/reactions/", {"emoji": emoji}
            )
            assert response.status_code == 302

        self.budget(21, door, lambda: next(self.emojis))

    def test_react_with_htmx(self) -> None:
        # The push's four queries once more: reaction_views.answer reads the message and its
        # extras again for its own answer.
        def door(emoji: str) -> None:
            response = self.client.post(
                f"/chats/{self.room.pk}/messages/{self.first.pk}/reactions/", {"emoji": emoji}, headers=HTMX
            )
            assert response.status_code == 200

        self.budget(25, door, lambda: next(self.emojis))

    def test_pin(self) -> None:
        # The chat's pins are counted twice: against the limit, then for the push.
        def door(message: Message) -> None:
            response = self.client.post(f"/chats/{self.room.pk}/messages/{message.pk}/pin/", {"pinned": "1"})
            assert response.status_code == 302

        self.budget(19, door, lambda: post(self.room, self.bob, "worth pinning"))

    # The API, with a token.

    def test_api_chats(self) -> None:
        client = api(self.alice)
        self.budget(3, self.api_get(client, "/api/chats/"))

    def test_api_messages(self) -> None:
        client = api(self.alice)
        self.budget(4, self.api_get(client, f"/api/chats/{self.room.pk}/messages/"))

    def test_api_message(self) -> None:
        client = api(self.alice)
        self.budget(3, self.api_get(client, f"/api/messages/{self.first.pk}/"))

    def test_api_post_a_message(self) -> None:
        client = api(self.alice)

        def door(_: object) -> None:
            response = client.post(
                f"/api/chats/{self.room.pk}/messages/",
                {"text": "hello @bob", "client_id": str(uuid.uuid4()), "reply_to": self.first.pk},
                format="json",
            )
            assert response.status_code == 201, response.content

        self.budget(14, door)

    # PATCH goes through services.edit_message, as the form does.
    def test_api_edit_a_message(self) -> None:
        client = api(self.alice)

        def door(_: object) -> None:
            response = client.patch(
                f"/api/messages/{self.first.pk}/", {"text": f"edited {uuid.uuid4()}"}, format="json"
            )
            assert response.status_code == 200, response.content

        self.budget(12, door)

    # The token, the search and one prefetch of the results' files (the API view's); SQLite's
    # check of its FTS5 table (chat.search.ensure_fts5_index) is one query more.
    def test_api_search(self) -> None:
        client = api(self.alice)
        self.budget(per_vendor(sqlite=4, postgresql=3), self.api_get(client, "/api/search/?q=message"))

    # The chat page's socket.

    def test_socket_connect(self) -> None:
        # Alice's chat ids, then the chat itself (the target is one query, or none).
        def door(_: object) -> None:
            found = consumers.socket_chats(self.alice, self.room.pk)
            assert found is not None and found[0] == self.room

        self.budget(2, door)

    def test_socket_message_frame(self) -> None:
        # frames.handle alone: a real socket's frame also has the SAVEPOINT and RELEASE of its
        # place in a group commit (frames.handle_all). As in every write here, the service's
        # outer transaction is a savepoint inside the test's (BEGIN and COMMIT in production).
        def door(_: object) -> None:
            frame = {"text": "hello @bob", "client_id": str(uuid.uuid4()), "reply_to": str(self.first.pk)}
            reply = frames.handle(user=self.alice, chat=self.room, text_data=json.dumps(frame))
            assert "data-sent-id" in reply, reply

        self.budget(12, door)

    def test_socket_catch_up_frame(self) -> None:
        def door(_: object) -> None:
            frame = {
                "action": "catch_up",
                "after": str(self.first.pk),
                "since": "0",
                "first": str(self.first.pk),
            }
            reply = frames.handle(user=self.alice, chat=self.room, text_data=json.dumps(frame))
            assert "message-" in reply, reply

        self.budget(7, door)

    def test_socket_read_frame(self) -> None:
        def door(latest: int) -> None:
            frame = {"action": "read", "up_to": str(latest)}
            assert frames.handle(user=self.alice, chat=self.room, text_data=json.dumps(frame)) == ""

        self.budget(4, door, self.latest_id)


class HistoryCostTests(TestCase):
    """The chat list, the room page and the chat list's fragment cost the same however long
    the chats' histories are: counted in SQLite's virtual machine steps, which, unlike time,
    do not depend on the machine or its load."""

    def steps(self, call: Callable[[], object]) -> int:
        counted = 0

        def count() -> int:
            nonlocal counted
            counted += 1
            return 0

        connection.ensure_connection()
        raw = connection.connection
        raw.set_progress_handler(count, 1)
        try:
            call()
        finally:
            raw.set_progress_handler(None, 1)
        return counted

    def test_pages_do_not_read_the_history(self) -> None:
        if connection.vendor != "sqlite":
            self.skipTest("counts SQLite's steps; PostgreSQL runs the same queries")
        alice, bob = make_user("alice"), make_user("bob")
        room = make_room(alice, name="Long")
        services.join_chat(user=bob, chat=room)
        self.client.force_login(alice)
        doors = {
            "chat list": ("/chats/", {}),
            "room page": (f"/chats/{room.pk}/", {}),
            "chat list fragment": ("/chats/sidebar/", HTMX),
        }

        def costs(more: int) -> dict[str, int]:
            """The doors' steps after `more` messages, all read, were added to the room."""
            last = max(Message.objects.filter(chat=room).values_list("seq", flat=True), default=0)
            Message.objects.bulk_create(
                Message(chat=room, user=bob, text="old", html="<p>old</p>", seq=last + n, event=0)
                for n in range(1, more + 1)
            )
            newest = Message.objects.filter(chat=room).order_by("pk").last()
            room.memberships.filter(user=alice).update(last_read_message=newest)
            found = {}
            for name, (url, headers) in doors.items():
                caches[fragments.CACHE].clear()
                found[name] = self.steps(partial(self.client.get, url, headers=headers))
            return found

        costs(0)  # what a first request of the process reads once
        short, long = costs(60), costs(5000)
        for name in doors:
            assert long[name] < short[name] * 1.2, (name, short[name], long[name])
