import json
import uuid
from typing import Any

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client, TransactionTestCase

from chat import frames, services
from chat.models import MESSAGE_MAX_LENGTH, Chat, Membership, Message
from chat.tests.factories import make_messages, make_room, make_user, unread_count
from config.asgi import application

HOST = b"127.0.0.1:8000"
ORIGIN = b"http://" + HOST


def session_cookie(user: User) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def open_socket(chat: Chat, user: User | None = None, origin: bytes = ORIGIN) -> WebsocketCommunicator:
    headers = [(b"origin", origin), (b"host", HOST)]
    if user is not None:
        headers.append((b"cookie", await sync_to_async(session_cookie)(user)))
    socket = WebsocketCommunicator(application, f"/ws/chats/{chat.pk}/", headers=headers)
    connected, _ = await socket.connect()
    assert connected
    return socket


async def sentinel_arrives(
    socket: WebsocketCommunicator, other: WebsocketCommunicator, text: str
) -> list[str]:
    """Send a message from `other` and collect what `socket` receives before it: proof that
    nothing else arrived in between, without a fixed sleep."""
    await other.send_to(text_data=json.dumps({"text": text}))
    received: list[str] = []
    while True:
        frame = await socket.receive_from(timeout=5)
        if text in frame and "<article" in frame:
            return received
        received.append(frame)


async def receive_frames(socket: WebsocketCommunicator, count: int) -> list[str]:
    return [await socket.receive_from(timeout=3) for _ in range(count)]


class ConsumerTests(TransactionTestCase):
    def setUp(self):
        self.alice, self.bob = make_user("alice"), make_user("bob")
        self.chat = make_room(self.alice, name="Team")
        Membership.objects.create(user=self.bob, chat=self.chat)

    async def test_message_reaches_every_socket_of_the_chat(self):
        """A sent message is saved and pushed to every open socket, the sender's included;
        the sender also gets a fresh composer."""
        alice = await open_socket(self.chat, self.alice)
        bob = await open_socket(self.chat, self.bob)
        client_id = str(uuid.uuid4())
        await alice.send_to(text_data=json.dumps({"text": "hi <b>", "client_id": client_id, "HEADERS": {}}))
        [pushed] = await receive_frames(bob, 1)
        message = await Message.objects.aget(client_id=client_id)
        assert f'<article id="message-{message.pk}"' in pushed
        assert "hi &lt;b&gt;" in pushed
        frames = await receive_frames(alice, 2)
        assert pushed in frames
        [reply] = [frame for frame in frames if frame != pushed]
        assert 'id="composer-fields"' in reply
        assert f'data-sent-id="{message.pk}" data-sent-client-id="{client_id}"' in reply
        assert reply.count(client_id) == 1  # the fresh composer has a new client id
        assert await sentinel_arrives(bob, alice, "sentinel") == []
        await alice.disconnect()
        await bob.disconnect()

    async def test_repeated_frame_makes_one_message(self):
        """The same client id sent twice (a retry) makes one message, pushed once."""
        alice = await open_socket(self.chat, self.alice)
        bob = await open_socket(self.chat, self.bob)
        frame = json.dumps({"text": "once", "client_id": str(uuid.uuid4())})
        await alice.send_to(text_data=frame)
        await alice.send_to(text_data=frame)
        await receive_frames(bob, 1)
        assert await sentinel_arrives(bob, alice, "sentinel") == []
        assert await Message.objects.filter(text="once").acount() == 1
        await alice.disconnect()
        await bob.disconnect()

    async def test_refused_sockets_close_with_4003(self):
        """Anonymous users, non-members and foreign origins are accepted, then closed with 4003."""
        outsider = await sync_to_async(make_user)("mallory")
        private = await sync_to_async(make_room)(self.alice, "Private", Chat.Visibility.PRIVATE)
        public = await sync_to_async(make_room)(self.alice, "Public", Chat.Visibility.PUBLIC)
        cases = [
            (self.chat, None, ORIGIN),
            (private, outsider, ORIGIN),
            (public, outsider, ORIGIN),
            (self.chat, self.alice, b"http://evil.example"),
        ]
        for chat, user, origin in cases:
            with self.subTest(chat=chat.name, user=user, origin=origin):
                socket = await open_socket(chat, user, origin)
                assert await socket.receive_output(timeout=3) == {"type": "websocket.close", "code": 4003}
                await socket.wait()

    async def test_bad_frames_answer_the_sender_and_keep_the_socket(self):
        """A malformed frame gets an error for that socket alone, saves nothing, and the socket stays open."""
        too_long = "x" * (MESSAGE_MAX_LENGTH + 1)
        bad_frames: list[tuple[dict[str, Any], str]] = [
            ({"text_data": "not json"}, "not valid JSON"),
            ({"text_data": "[1, 2]"}, "JSON object"),
            ({"text_data": '"text"'}, "JSON object"),
            ({"text_data": "null"}, "JSON object"),
            ({"text_data": "{}"}, "Write a message first."),
            ({"text_data": json.dumps({"text": ""})}, "Write a message first."),
            ({"text_data": json.dumps({"text": " \n\t "})}, "Write a message first."),
            ({"text_data": json.dumps({"text": too_long})}, "at most 4000 characters"),
            ({"text_data": json.dumps({"text": 42})}, "must be text"),
            ({"text_data": json.dumps({"text": ["a"]})}, "must be text"),
            ({"text_data": json.dumps({"text": None})}, "must be text"),
            ({"text_data": json.dumps({"text": "hi", "client_id": "not-a-uuid"})}, "valid UUID"),
            ({"bytes_data": b'{"text": "hi"}'}, "binary frames"),
        ]
        alice = await open_socket(self.chat, self.alice)
        bob = await open_socket(self.chat, self.bob)
        for frame, error in bad_frames:
            with self.subTest(frame=frame):
                await alice.send_to(**frame)
                reply = await alice.receive_from(timeout=3)
                assert reply.strip().startswith('<div id="composer-errors"')
                assert error in reply
        assert not await Message.objects.aexists()
        assert await sentinel_arrives(bob, alice, "still here") == []
        await alice.disconnect()
        await bob.disconnect()

    async def test_removed_member_is_let_go(self):
        """A member removed by the owner is told (the chat leaves their chat list) and has their
        open sockets on the chat closed with 4003, while the others stay connected."""
        await sync_to_async(services.add_member)(chat=self.chat, by=self.alice, user=self.bob)
        alice = await open_socket(self.chat, self.alice)
        bob = await open_socket(self.chat, self.bob)
        await sync_to_async(services.remove_member)(chat=self.chat, by=self.alice, user=self.bob)
        told = await bob.receive_from(timeout=3)
        assert 'id="sidebar-update"' in told and 'data-action="remove"' in told
        assert f'data-chat-id="{self.chat.pk}"' in told
        assert await bob.receive_output(timeout=3) == {"type": "websocket.close", "code": 4003}
        await alice.send_to(text_data=json.dumps({"text": "after bob left"}))
        assert any("after bob left" in frame for frame in await receive_frames(alice, 2))
        await alice.disconnect()

    async def test_member_removed_while_connected_cannot_post(self):
        """Membership is checked on every send, not only on connect."""
        bob = await open_socket(self.chat, self.bob)
        await Membership.objects.filter(user=self.bob, chat=self.chat).adelete()
        await bob.send_to(text_data=json.dumps({"text": "sneaky"}))
        assert "Join this chat first." in await bob.receive_from(timeout=3)
        assert not await Message.objects.aexists()
        await bob.disconnect()


class CatchUpTests(TransactionTestCase):
    def setUp(self):
        self.alice, self.bob = make_user("alice"), make_user("bob")
        self.chat = make_room(self.alice, name="Team")
        Membership.objects.create(user=self.bob, chat=self.chat)

    def catch_up_frame(self, **fields: object) -> str:
        return json.dumps({"action": "catch_up", "HEADERS": {}, **fields})

    async def test_reconnecting_page_gets_what_it_missed(self):
        """A page that was away gets the newer messages and the changed older ones, in id order,
        and the chat's event count it is now complete up to."""
        seen = await sync_to_async(make_messages)(self.chat, self.alice, 3)
        since = (await Chat.objects.aget(pk=self.chat.pk)).last_event
        missed = await sync_to_async(make_messages)(self.chat, self.bob, 2)
        await sync_to_async(services.edit_message)(message=seen[1], user=self.alice, text="edited while away")
        bob = await open_socket(self.chat, self.bob)
        await bob.send_to(text_data=self.catch_up_frame(after=seen[-1].pk, since=since, first=seen[0].pk))
        reply = await bob.receive_from(timeout=3)
        positions = [reply.index(f'id="message-{m.pk}"') for m in (seen[1], *missed)]
        assert positions == sorted(positions)
        assert "edited while away" in reply
        assert f'id="message-{seen[0].pk}"' not in reply and f'id="message-{seen[2].pk}"' not in reply
        last_event = (await Chat.objects.aget(pk=self.chat.pk)).last_event
        assert f'<div id="chat-sync" hidden data-last-event="{last_event}">' in reply
        await bob.disconnect()

    async def test_too_far_behind_gets_the_latest_page(self):
        """Past the catch-up limit the page gets its whole message list afresh."""
        await sync_to_async(make_messages)(self.chat, self.alice, frames.CATCH_UP_LIMIT + 1)
        bob = await open_socket(self.chat, self.bob)
        await bob.send_to(text_data=self.catch_up_frame(after=0, since=0, first=0))
        reply = await bob.receive_from(timeout=3)
        assert reply.strip().startswith(
            '<div id="messages" role="log" aria-label="Messages" hx-swap-oob="true"'
        )
        assert reply.count("<article") == 50
        await bob.disconnect()

    async def test_bad_cursors_are_an_error(self):
        """A catch-up without usable cursors gets an error, and the socket stays open."""
        bob = await open_socket(self.chat, self.bob)
        cases: list[dict[str, Any]] = [
            {},
            {"after": "x", "since": 0},
            {"after": -1, "since": 0},
            {"after": True, "since": 0},
        ]
        for fields in cases:
            await bob.send_to(text_data=self.catch_up_frame(**fields))
            assert "Catching up and read receipts need" in await bob.receive_from(timeout=3)
        await bob.send_to(text_data=self.catch_up_frame(after="0", since="0"))
        assert 'id="chat-sync"' in await bob.receive_from(timeout=3)
        await bob.disconnect()


class ReadReceiptTests(TransactionTestCase):
    async def test_read_receipt_marks_messages_read(self):
        """A read receipt marks the chat read up to the given message, and answers nothing."""
        alice, bob = await sync_to_async(make_user)("alice"), await sync_to_async(make_user)("bob")
        chat = await sync_to_async(make_room)(alice, "Team")
        await Membership.objects.acreate(user=bob, chat=chat)
        messages = await sync_to_async(make_messages)(chat, alice, 3)
        socket = await open_socket(chat, bob)
        await socket.send_to(text_data=json.dumps({"action": "read", "up_to": messages[1].pk}))
        # The next answer is the catch-up's: the read receipt answered nothing.
        await socket.send_to(
            text_data=json.dumps({"action": "catch_up", "after": messages[-1].pk, "since": 0})
        )
        assert 'id="chat-sync"' in await socket.receive_from(timeout=5)
        assert await sync_to_async(unread_count)(bob, chat) == 1
        await socket.disconnect()
