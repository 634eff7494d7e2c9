"""Mentions, replies and permalinks, through the page (with and without JavaScript), the
socket and the API."""

from __future__ import annotations

import json
import re

from asgiref.sync import sync_to_async
from django.core.cache import caches
from django.db import connection
from django.test import TestCase, TransactionTestCase
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from chat import broadcast, fragments, services
from chat.models import Chat, Message
from chat.tests.factories import SocketListener, make_room, make_user
from chat.tests.test_consumers import open_socket, receive_frames


class MentionTests(TestCase):
    def setUp(self):
        self.alice, self.bob, self.carol = make_user("alice"), make_user("bob"), make_user("carol")
        self.room = make_room(self.alice, "Plans")
        services.add_member(chat=self.room, by=self.alice, user=self.bob)

    def post(self, text: str, user=None) -> Message:
        message, _ = services.post_message(chat=self.room, user=user or self.alice, text=text)
        return message

    def test_members_are_mentioned_others_are_not(self):
        message = self.post("hi @bob, @carol and @nobody")
        assert list(message.mentions.all()) == [self.bob]
        assert f'<span class="mention" data-mention="{self.bob.pk}">@bob</span>,' in message.html
        assert "@carol and @nobody" in message.html  # carol is not in the room: plain text
        assert not message.mentions_everyone

    def test_here_mentions_everyone_and_an_edit_updates_mentions(self):
        message = self.post("@here lunch?")
        assert (
            message.mentions_everyone
            and '<span class="mention" data-mention="here">@here</span>' in message.html
        )
        services.edit_message(message=message, user=self.alice, text="@bob lunch?")
        message.refresh_from_db()
        assert not message.mentions_everyone and list(message.mentions.all()) == [self.bob]
        services.edit_message(message=message, user=self.alice, text="lunch?")
        assert list(message.mentions.all()) == []

    def test_the_mention_count_is_in_the_chat_list_until_read(self):
        self.post("@bob look")
        self.post("no mention")
        self.post("@here all of you")
        self.post("@bob mine don't count", user=self.bob)
        self.client.force_login(self.bob)
        entry = self.entry()
        assert 'data-unread="3"' in entry and 'data-mentions="2"' in entry
        services.mark_read(user=self.bob, chat=self.room)
        entry = self.entry()
        assert 'data-mentions="0"' in entry

    def entry(self) -> str:
        """The room's link in the chat list, as the server renders it for the signed-in person."""
        found = re.search(rf'<a href="/chats/{self.room.pk}/"[^>]*>', self.client.get("/chats/").text)
        assert found is not None
        return found.group(0)

    def test_the_carrier_says_whom_a_message_mentions_once_for_everyone(self):
        listener = SocketListener(self.room)

        async def watch_only() -> None:
            """A member's page of another chat: its chat list follows this one."""
            hub = broadcast.hub()
            await hub.leave(listener.outbox)
            listener.outbox.chat_id = None
            listener.outbox.watching = {self.room.pk}
            await hub.join(listener.outbox)

        listener.loop.run_until_complete(watch_only())
        with self.captureOnCommitCallbacks(execute=True):
            self.post("@bob see this")
        [carrier] = listener.pending()
        assert f'data-mentions="{self.bob.pk}"' in carrier and 'id="sidebar-update"' in carrier
        listener.close()

    def test_the_page_highlights_the_readers_mentions_by_css(self):
        self.post("@bob see this")
        self.client.force_login(self.bob)
        page = self.client.get(self.room.get_absolute_url()).text
        assert f'.mention[data-mention="{self.bob.pk}"]' in page


class ReplyTests(TestCase):
    def setUp(self):
        self.alice, self.bob = make_user("alice"), make_user("bob")
        self.room = make_room(self.alice, "Plans")
        services.add_member(chat=self.room, by=self.alice, user=self.bob)
        self.question, _ = services.post_message(
            chat=self.room, user=self.alice, text="Friday <or> Saturday?"
        )

    def test_a_reply_quotes_and_links_to_the_message(self):
        answer, _ = services.post_message(
            chat=self.room, user=self.bob, text="Friday", reply_to=self.question.pk
        )
        assert answer.reply_to == self.question
        self.client.force_login(self.alice)
        page = self.client.get(self.room.get_absolute_url()).text
        found = re.search(r'<a class="reply-quote.*?</a>', page, re.S)
        assert found is not None
        quote = found.group(0)
        assert f'?around={self.question.pk}#message-{self.question.pk}"' in quote
        assert "alice" in quote and "Friday &lt;or&gt; Saturday?" in quote

    def test_only_a_message_of_the_same_chat_that_is_not_deleted(self):
        other = make_room(self.bob, "Elsewhere")
        elsewhere, _ = services.post_message(chat=other, user=self.bob, text="x")
        for target in (elsewhere.pk, 999999):
            with self.assertRaisesMessage(Exception, "You can only reply to a message of this chat"):
                services.post_message(chat=self.room, user=self.bob, text="y", reply_to=target)
        services.delete_message(message=self.question, user=self.alice)
        with self.assertRaisesMessage(Exception, "You can only reply to a message of this chat"):
            services.post_message(chat=self.room, user=self.bob, text="y", reply_to=self.question.pk)

    def test_without_javascript(self):
        """The Reply link opens the page with the composer answering; the form post sends the reply."""
        self.client.force_login(self.bob)
        page = self.client.get(f"{self.room.get_absolute_url()}?reply_to={self.question.pk}").text
        assert re.search(r'<div id="reply-banner"\s+class=', page)  # shown: not hidden
        assert f'name="reply_to" value="{self.question.pk}"' in page
        response = self.client.post(
            f"/chats/{self.room.pk}/messages/", {"text": "Saturday", "reply_to": str(self.question.pk)}
        )
        assert response.status_code == 302
        assert Message.objects.get(text="Saturday").reply_to_id == self.question.pk
        assert self.client.get(f"{self.room.get_absolute_url()}?reply_to=abc").status_code == 400

    def test_through_the_api(self):
        api = APIClient()
        api.force_authenticate(self.bob)
        response = api.post(
            f"/api/chats/{self.room.pk}/messages/",
            {"text": "Sunday", "reply_to": self.question.pk},
            format="json",
        )
        assert response.status_code == 201 and response.json()["reply_to"] == self.question.pk
        response = api.post(
            f"/api/chats/{self.room.pk}/messages/", {"text": "x", "reply_to": 999999}, format="json"
        )
        assert response.status_code == 400 and "reply_to" in response.json()

    def test_the_room_page_costs_the_same_queries_whatever_the_replies(self):
        self.client.force_login(self.alice)
        url = self.room.get_absolute_url()
        self.client.get(url)
        # Both views first views: every message's HTML made afresh (chat.fragments).
        caches[fragments.CACHE].clear()
        with CaptureQueriesContext(connection) as few:
            self.client.get(url)
        for n in range(10):
            services.post_message(chat=self.room, user=self.bob, text=f"r{n}", reply_to=self.question.pk)
        caches[fragments.CACHE].clear()
        with CaptureQueriesContext(connection) as many:
            self.client.get(url)
        assert len(many) == len(few)


class ReplySocketTests(TransactionTestCase):
    async def test_a_reply_over_the_socket(self):
        await Chat.objects.aget_or_create(name="General", auto_join=True)
        alice = await sync_to_async(make_user)("alice")
        room = await sync_to_async(make_room)(alice, "Plans")
        question, _ = await sync_to_async(services.post_message)(chat=room, user=alice, text="q")
        socket = await open_socket(room, alice)
        await socket.send_to(
            text_data=json.dumps({"text": "a", "reply_to": str(question.pk), "client_id": ""})
        )
        frames = await receive_frames(socket, 2)
        answer = await Message.objects.aget(text="a")
        assert answer.reply_to_id == question.pk
        assert any("reply-quote" in frame for frame in frames)
        await socket.send_to(text_data=json.dumps({"text": "b", "reply_to": "999999"}))
        [error] = await receive_frames(socket, 1)
        assert "You can only reply to a message of this chat" in error
        await socket.disconnect()


class PermalinkTests(TestCase):
    def setUp(self):
        self.alice = make_user("alice")
        self.room = make_room(self.alice, "Long")
        self.messages = [
            services.post_message(chat=self.room, user=self.alice, text=f"m{n}")[0] for n in range(120)
        ]
        self.client.force_login(self.alice)

    def test_a_permalink_opens_the_chat_around_the_message_paging_both_ways(self):
        target = self.messages[30]
        page = self.client.get(f"{self.room.get_absolute_url()}?around={target.pk}").text
        shown = [int(pk) for pk in re.findall(r'<article id="message-(\d+)"', page)]
        assert target.pk in shown and len(shown) == 50
        assert shown[0] < target.pk < shown[-1]
        assert f"#message-{target.pk} {{ background" in page  # highlighted
        assert f"?before={shown[0]}" in page and f"?after={shown[-1]}" in page
        # Not at the end of the chat: no live appends into a page with a gap below it.
        assert 'ws-connect="/ws/chats/"' in page
        assert f'href="/chats/{self.room.pk}/?around={target.pk}#message-{target.pk}"' in page

    def test_bad_around(self):
        assert self.client.get(f"{self.room.get_absolute_url()}?around=x").status_code == 400
        page = self.client.get(f"{self.room.get_absolute_url()}?around=99999999").text
        assert "message-" in page  # an unknown id shows the end of the chat
