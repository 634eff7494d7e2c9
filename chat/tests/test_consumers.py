import json
import uuid
from typing import Any

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client, TransactionTestCase

from chat.models import MESSAGE_MAX_LENGTH, Chat, Membership, Message
from chat.tests.factories import make_room, make_user
from config.asgi import application

ORIGIN = b"http://127.0.0.1:8000"


def session_cookie(user: User) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def open_socket(chat: Chat, user: User | None = None, origin: bytes = ORIGIN) -> WebsocketCommunicator:
    headers = [(b"origin", origin)]
    if user is not None:
        headers.append((b"cookie", await sync_to_async(session_cookie)(user)))
    socket = WebsocketCommunicator(application, f"/ws/chats/{chat.pk}/", headers=headers)
    connected, _ = await socket.connect()
    assert connected
    return socket


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
        assert client_id not in reply
        assert await bob.receive_nothing()
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
        assert await bob.receive_nothing()
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
        assert await bob.receive_nothing()
        assert not await Message.objects.aexists()
        await alice.send_to(text_data=json.dumps({"text": "still here"}))
        assert "still here" in (await receive_frames(bob, 1))[0]
        await alice.disconnect()
        await bob.disconnect()

    async def test_member_removed_while_connected_cannot_post(self):
        """Membership is checked on every send, not only on connect."""
        bob = await open_socket(self.chat, self.bob)
        await Membership.objects.filter(user=self.bob, chat=self.chat).adelete()
        await bob.send_to(text_data=json.dumps({"text": "sneaky"}))
        assert "Join this chat first." in await bob.receive_from(timeout=3)
        assert not await Message.objects.aexists()
        await bob.disconnect()
