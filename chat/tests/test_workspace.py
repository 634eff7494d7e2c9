"""The workspace's pushes: every member's chat list follows their chats, typing shows, and
presence is kept, with one render per change whatever the number of sockets."""

from __future__ import annotations

import json
from unittest import mock

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.cache import cache
from django.template.loader import render_to_string
from django.test import TestCase, TransactionTestCase

from chat import broadcast, services
from chat.hub import presence_key
from chat.models import Chat, Membership
from chat.tests.factories import make_room, make_user
from chat.tests.test_consumers import HOST, ORIGIN, open_socket, session_cookie
from config.asgi import application


async def open_list_socket(user) -> WebsocketCommunicator:
    """The chat list page's socket: no open chat, the person's own updates."""
    headers = [(b"origin", ORIGIN), (b"host", HOST), (b"cookie", await sync_to_async(session_cookie)(user))]
    socket = WebsocketCommunicator(application, "/ws/chats/", headers=headers)
    connected, _ = await socket.connect()
    assert connected
    return socket


def carrier(frame: str) -> dict[str, str]:
    """The data-* attributes of the chat-list carrier in a pushed frame."""
    start = frame.index('<div id="sidebar-update"')
    tag = frame[start : frame.index(">", start)]
    attributes = {}
    for part in tag.split(" data-")[1:]:
        name, _, value = part.partition("=")
        attributes[name] = value.strip().strip('"')
    return attributes


class ChatListPushTests(TransactionTestCase):
    def setUp(self):
        self.alice, self.bob = make_user("alice"), make_user("bob")
        self.x = make_room(self.bob, "X")
        self.y = make_room(self.alice, "Y")
        services.join_chat(user=self.bob, chat=self.y)

    async def test_a_message_elsewhere_reaches_the_members_chat_list(self):
        """Bob sits in room X; Alice posts in room Y: Bob's sockets get Y's carrier (preview,
        order, sequence); the message itself goes only where Y is open, without a carrier."""
        bob = await open_socket(self.x, self.bob)
        bob_list = await open_list_socket(self.bob)
        alice = await open_socket(self.y, self.alice)
        await alice.send_to(text_data=json.dumps({"text": "lunch <at> noon?"}))
        for socket in (bob, bob_list):
            frame = await socket.receive_from(timeout=5)
            assert "<article" not in frame
            data = carrier(frame)
            assert data["action"] == "message" and data["chat-id"] == str(self.y.pk)
            assert data["author-id"] == str(self.alice.pk) and data["seq"] == "1"
            assert "alice: lunch &lt;at&gt; noon?" in frame
        frames = [await alice.receive_from(timeout=5) for _ in range(2)]
        [pushed] = [frame for frame in frames if "<article" in frame]
        # Where Y is open, the page makes its own entry from the message: no carrier.
        assert 'id="sidebar-update"' not in pushed
        for socket in (bob, bob_list, alice):
            await socket.disconnect()

    async def test_added_and_removed_chats_come_and_go(self):
        """Being added to a room brings its entry (its history read: nothing unread) and its
        later messages; being removed takes it away and stops them."""
        carol = await sync_to_async(make_user)("carol")
        carol_list = await open_list_socket(carol)
        await sync_to_async(services.post_message)(chat=self.y, user=self.alice, text="before carol")
        await sync_to_async(services.add_member)(chat=self.y, by=self.alice, user=carol)
        added = await carol_list.receive_from(timeout=5)
        assert carrier(added)["action"] == "add" and "unread" not in carrier(added)
        assert f'id="chat-entry-{self.y.pk}"' in added and "before carol" in added
        await sync_to_async(services.post_message)(chat=self.y, user=self.alice, text="hello carol")
        assert carrier(await carol_list.receive_from(timeout=5))["action"] == "message"
        await sync_to_async(services.remove_member)(chat=self.y, by=self.alice, user=carol)
        removed = carrier(await carol_list.receive_from(timeout=5))
        assert removed == {
            "action": "remove",
            "chat-id": str(self.y.pk),
            "kind": "",
            "seq": "",
            "activity": "0",
            "author-id": "",
        }
        await sync_to_async(services.post_message)(chat=self.y, user=self.alice, text="after carol")
        # Nothing more for Carol: the next thing she hears is a chat of her own.
        await sync_to_async(services.create_room)(user=carol, name="Carol's", visibility="public")
        assert "Carol&#x27;s" in await carol_list.receive_from(timeout=5)
        await carol_list.disconnect()

    async def test_a_new_direct_chat_appears_for_both(self):
        alice_list, bob_list = await open_list_socket(self.alice), await open_list_socket(self.bob)
        chat, _ = await sync_to_async(services.open_direct_chat)(user=self.alice, other=self.bob)
        for socket in (alice_list, bob_list):
            data = carrier(await socket.receive_from(timeout=5))
            assert data["action"] == "add" and data["kind"] == "direct" and data["chat-id"] == str(chat.pk)
            await socket.disconnect()

    async def test_a_renamed_chat_is_updated_everywhere(self):
        bob_list = await open_list_socket(self.bob)
        chat = await Chat.objects.aget(pk=self.y.pk)
        chat.name = "Y, renamed"
        await chat.asave()
        await sync_to_async(broadcast.chat_updated)(chat, "")
        frame = await bob_list.receive_from(timeout=5)
        assert carrier(frame)["action"] == "update" and "Y, renamed" in frame
        await bob_list.disconnect()

    async def test_one_render_per_change_whatever_the_sockets(self):
        """Ten members' sockets get the carrier rendered once, the message fragment once."""
        people = [await sync_to_async(make_user)(f"p{i}") for i in range(10)]
        for person in people:
            await Membership.objects.acreate(user=person, chat=self.y)
        sockets = [await open_list_socket(person) for person in people]
        with mock.patch.object(broadcast, "render_to_string", wraps=render_to_string) as render:
            await sync_to_async(services.post_message)(chat=self.y, user=self.alice, text="to all")
            frames = [await socket.receive_from(timeout=5) for socket in sockets]
        assert render.call_count == 2
        assert len(set(frames)) == 1
        for socket in sockets:
            await socket.disconnect()


class TypingAndPresenceTests(TransactionTestCase):
    def setUp(self):
        self.alice, self.bob = make_user("alice"), make_user("bob")
        self.chat = make_room(self.alice, "Team")
        services.join_chat(user=self.bob, chat=self.chat)

    async def test_typing_reaches_the_open_pages_throttled_and_unstored(self):
        before = await sync_to_async(lambda: Chat.objects.get(pk=self.chat.pk).last_event)()
        alice = await open_socket(self.chat, self.alice)
        bob = await open_socket(self.chat, self.bob)
        for _ in range(5):
            await alice.send_to(text_data=json.dumps({"action": "typing"}))
        signal = await bob.receive_from(timeout=5)
        assert 'id="typing-signal"' in signal and 'data-username="alice"' in signal
        # Throttled: the next thing Bob hears is Alice's message, not four more signals.
        await alice.send_to(text_data=json.dumps({"text": "done typing"}))
        assert "done typing" in await bob.receive_from(timeout=5)
        assert await sync_to_async(lambda: Chat.objects.get(pk=self.chat.pk).last_event)() == before + 1
        await alice.disconnect()
        await bob.disconnect()

    async def test_presence_follows_open_sockets(self):
        """A member with the chat open is online; closing the last socket takes them off."""
        assert await sync_to_async(broadcast.online)(self.chat.pk, [self.alice.pk, self.bob.pk]) == set()
        alice = await open_socket(self.chat, self.alice)
        second = await open_socket(self.chat, self.alice)
        assert await sync_to_async(broadcast.online)(self.chat.pk, [self.alice.pk, self.bob.pk]) == {
            self.alice.pk
        }
        await alice.disconnect()
        assert await sync_to_async(cache.get)(presence_key(self.chat.pk, self.alice.pk))
        await second.disconnect()
        assert await sync_to_async(broadcast.online)(self.chat.pk, [self.alice.pk]) == set()


class ChatListCountTests(TestCase):
    def test_the_counts_are_counted_from_the_last_read_message_on(self):
        """The chat list's unread and mention counts are subqueries per membership, read on
        the (chat, id) index from the last read message on. Counted over a join of every
        message of the member's chats, grouped, they cost the square of the unread count
        (on PostgreSQL, 0.4 s for a chat list with 1,000 unread, 6 s with 4,000)."""
        reader = make_user("reader")
        sql = str(Membership.objects.filter(user=reader).with_unread_count().query)
        outer = sql.rsplit(")", 1)[-1]
        assert "GROUP BY" not in outer, sql
        assert "JOIN" not in sql.split("(SELECT", 1)[0], sql
