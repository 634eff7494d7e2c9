"""The sockets for programs, in process: the event stream (/ws/events/) and the original
protocol (/ws/chat/)."""

import json
import time
from datetime import timedelta
from io import StringIO
from typing import Any
from unittest import mock

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import TransactionTestCase
from django.utils import timezone

from chat import events, services
from chat.models import Chat, Event, Message
from chat.serializers import MessageSerializer
from chat.tests.factories import general, make_room, make_user
from chat.tests.test_consumers import HOST, ORIGIN, session_cookie
from config.asgi import application


async def connect(
    path: str, user: User | None = None, origin: bytes | None = ORIGIN
) -> WebsocketCommunicator:
    headers = [(b"host", HOST)]
    if origin is not None:
        headers.append((b"origin", origin))
    if user is not None:
        headers.append((b"cookie", await sync_to_async(session_cookie)(user)))
    socket = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await socket.connect()
    assert connected
    return socket


async def receive(socket: WebsocketCommunicator) -> dict[str, Any]:
    return json.loads(await socket.receive_from(timeout=5))


async def stream(user: User, **first: Any) -> tuple[WebsocketCommunicator, dict[str, Any]]:
    """An event stream signed in with the session; returns it with its hello."""
    socket = await connect("/ws/events/", user)
    await socket.send_to(text_data=json.dumps({"type": "resume", **first}))
    hello = await receive(socket)
    assert hello["type"] == "hello"
    return socket, hello


async def closed_with(socket: WebsocketCommunicator) -> int:
    while True:
        output = await socket.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            return output["code"]


def api_message(message_id: int) -> dict[str, Any]:
    return json.loads(json.dumps(MessageSerializer(Message.objects.with_author().get(pk=message_id)).data))


class EventStreamTests(TransactionTestCase):
    def setUp(self):
        # A TransactionTestCase starts from an empty database: General as the migration made it.
        Chat.objects.get_or_create(name="General", auto_join=True)
        self.alice, self.bob, self.carol = make_user("alice"), make_user("bob"), make_user("carol")
        self.room = make_room(self.alice, name="Team")
        services.add_member(chat=self.room, by=self.alice, user=self.bob)

    def post(self, text: str, user: User | None = None) -> Message:
        message, _ = services.post_message(chat=self.room, user=user or self.alice, text=text)
        return message

    async def test_changes_arrive_in_order_once_each_as_the_api_shows_them(self):
        socket, hello = await stream(self.bob)
        assert hello["user"] == {"id": self.bob.pk, "username": "bob"}
        start = hello["chats"][str(self.room.pk)]
        assert start == (await Chat.objects.aget(pk=self.room.pk)).last_event

        message = await sync_to_async(self.post)("hello **bob**")
        await sync_to_async(services.edit_message)(message=message, user=self.alice, text="hello bob")
        await sync_to_async(services.delete_message)(message=message, user=self.alice)
        await sync_to_async(services.add_member)(chat=self.room, by=self.alice, user=self.carol)

        received = [await receive(socket) for _ in range(4)]
        assert [event["type"] for event in received] == [
            "message.created",
            "message.updated",
            "message.deleted",
            "member.added",
        ]
        assert [event["event"] for event in received] == [start + 1, start + 2, start + 3, start + 4]
        assert {event["chat"] for event in received} == {self.room.pk}
        assert received[0]["message"]["text"] == "hello **bob**"
        assert received[1]["message"]["text"] == "hello bob"
        assert received[2]["message"] == await sync_to_async(api_message)(message.pk)
        assert received[2]["message"]["deleted"] is True
        assert received[3]["user"] == {"id": self.carol.pk, "username": "carol"}
        assert received[3]["by"] == {"id": self.alice.pk, "username": "alice"}
        await socket.send_to(text_data=json.dumps({"type": "ping"}))
        assert await receive(socket) == {"type": "pong"}
        await socket.disconnect()

    async def test_a_reconnecting_client_gets_exactly_what_it_missed_before_anything_new(self):
        socket, hello = await stream(self.bob)
        await sync_to_async(self.post)("before")
        seen = await receive(socket)
        await socket.disconnect()

        missed = [await sync_to_async(self.post)(f"missed {n}") for n in range(2)]
        await sync_to_async(services.update_room)(
            chat=await Chat.objects.aget(pk=self.room.pk),
            by=self.alice,
            name="Team 2",
            topic="",
            visibility="public",
        )

        # The client's cursors: where hello started each chat, then each event it got.
        cursors = {**hello["chats"], str(self.room.pk): seen["event"]}
        socket, hello = await stream(self.bob, cursors=cursors)
        assert hello["chats"][str(self.room.pk)] == seen["event"]
        replayed = [await receive(socket) for _ in range(3)]
        assert [event["type"] for event in replayed] == ["message.created", "message.created", "chat.updated"]
        assert [event["message"]["id"] for event in replayed[:2]] == [message.pk for message in missed]
        assert replayed[2]["chat"] == self.room.pk and replayed[2]["event"] == seen["event"] + 3
        # Then live, and nothing twice.
        new = await sync_to_async(self.post)("new")
        live = await receive(socket)
        assert live["message"]["id"] == new.pk and live["event"] == seen["event"] + 4
        assert await socket.receive_nothing(timeout=0.2)
        await socket.disconnect()

    async def test_chats_not_listed_start_where_the_user_joined(self):
        """A client that resumes and was added to a chat meanwhile gets it from its member.added on."""
        socket, hello = await stream(self.carol)
        cursors = {chat: number for chat, number in hello["chats"].items()}
        await socket.disconnect()
        await sync_to_async(services.add_member)(chat=self.room, by=self.alice, user=self.carol)
        await sync_to_async(self.post)("welcome")
        socket, _ = await stream(self.carol, cursors=cursors)
        added, welcome = await receive(socket), await receive(socket)
        assert added["type"] == "member.added" and added["user"]["id"] == self.carol.pk
        assert welcome["message"]["text"] == "welcome"
        await socket.disconnect()

    async def test_added_live_then_removed(self):
        socket, _ = await stream(self.carol)
        await sync_to_async(services.add_member)(chat=self.room, by=self.alice, user=self.carol)
        added = await receive(socket)
        assert added["type"] == "member.added" and added["user"]["id"] == self.carol.pk
        await sync_to_async(self.post)("for carol too")
        assert (await receive(socket))["message"]["text"] == "for carol too"
        await sync_to_async(services.remove_member)(chat=self.room, by=self.alice, user=self.carol)
        removed = await receive(socket)
        assert removed["type"] == "member.removed" and removed["user"]["id"] == self.carol.pk
        await sync_to_async(self.post)("not for carol")
        # A message in a chat carol is in proves that the one above was not sent to her.
        await sync_to_async(services.post_message)(
            chat=await sync_to_async(general)(), user=self.bob, text="sentinel"
        )
        sentinel = await receive(socket)
        assert sentinel["message"]["text"] == "sentinel"
        await socket.disconnect()

    async def test_a_new_room_and_a_direct_chat_arrive_from_their_first_event(self):
        socket, _ = await stream(self.carol)
        room = await sync_to_async(make_room)(self.carol, name="Carol's")
        created = await receive(socket)
        assert created["type"] == "chat.created" and created["chat"] == room.pk and created["event"] == 1
        assert created["chat"] == created["chat"] and created["members"] == [
            {"user": {"id": self.carol.pk, "username": "carol"}, "role": "owner"}
        ]
        direct, _ = await sync_to_async(services.open_direct_chat)(user=self.alice, other=self.carol)
        opened = await receive(socket)
        assert opened["type"] == "chat.created" and opened["chat"] == direct.pk
        assert opened["chat"] != room.pk and opened["event"] == 1
        await socket.disconnect()

    async def test_past_the_limit_a_chat_is_resynced(self):
        socket, hello = await stream(self.bob)
        cursors = hello["chats"]
        await socket.disconnect()
        for n in range(4):
            await sync_to_async(self.post)(f"m{n}")
        with mock.patch.object(events, "REPLAY_LIMIT", 3):
            socket, _ = await stream(self.bob, cursors=cursors)
            resync = await receive(socket)
        last = (await Chat.objects.aget(pk=self.room.pk)).last_event
        assert resync == {
            "type": "resync",
            "chat": self.room.pk,
            "after": cursors[str(self.room.pk)],
            "event": last,
        }
        new = await sync_to_async(self.post)("after the resync")
        assert (await receive(socket))["message"]["id"] == new.pk
        await socket.disconnect()

    async def test_bad_first_frames(self):
        socket = await connect("/ws/events/")
        await socket.send_to(text_data="not json")
        assert (await receive(socket))["code"] == "invalid"
        await socket.send_to(text_data=json.dumps({"type": "resume"}))
        assert (await receive(socket))["code"] == "not_authenticated"
        assert await closed_with(socket) == 4003

        socket = await connect("/ws/events/")
        await socket.send_to(text_data=json.dumps({"type": "auth", "token": "nope"}))
        assert (await receive(socket))["code"] == "invalid_token"
        assert await closed_with(socket) == 4003

        socket = await connect("/ws/events/", self.bob)
        await socket.send_to(text_data=json.dumps({"type": "resume", "cursors": {"x": 1}}))
        assert (await receive(socket))["code"] == "invalid_cursors"
        await socket.send_to(text_data=json.dumps({"type": "resume"}))
        assert (await receive(socket))["type"] == "hello"
        await socket.send_to(text_data=json.dumps({"type": "subscribe"}))
        assert (await receive(socket))["code"] == "unknown_type"
        await socket.disconnect()

    async def test_removed_and_added_again_while_away(self):
        """The replay goes past the removal to the member.added, and the chat stays followed."""
        socket, hello = await stream(self.bob)
        await socket.disconnect()
        room = await Chat.objects.aget(pk=self.room.pk)
        await sync_to_async(services.remove_member)(chat=room, by=self.alice, user=self.bob)
        await sync_to_async(self.post)("while bob was out")
        await sync_to_async(services.add_member)(chat=room, by=self.alice, user=self.bob)
        socket, _ = await stream(self.bob, cursors=hello["chats"])
        removed, added = await receive(socket), await receive(socket)
        assert removed["type"] == "member.removed" and removed["user"]["id"] == self.bob.pk
        assert added["type"] == "member.added" and added["user"]["id"] == self.bob.pk
        await sync_to_async(self.post)("welcome back")
        assert (await receive(socket))["message"]["text"] == "welcome back"
        await socket.disconnect()

    async def test_a_chat_the_user_is_no_longer_in_is_said_once(self):
        socket, hello = await stream(self.bob)
        cursors = {**hello["chats"], "999999": 3}
        await socket.disconnect()
        socket, hello = await stream(self.bob, cursors=cursors)
        assert "999999" not in hello["chats"]
        assert await receive(socket) == {"type": "chat.removed", "chat": 999999}
        assert await socket.receive_nothing(timeout=0.2)
        await socket.disconnect()

    async def test_origins(self):
        """A program may come without an Origin; a page of another origin is refused."""
        socket = await connect("/ws/events/", self.bob, origin=None)
        await socket.send_to(text_data=json.dumps({"type": "resume"}))
        assert (await receive(socket))["type"] == "hello"
        await socket.disconnect()
        socket = await connect("/ws/events/", self.bob, origin=b"http://evil.example")
        assert await closed_with(socket) == 4003
        socket = await connect("/ws/chats/", self.bob, origin=None)
        assert await closed_with(socket) == 4003

    async def test_unknown_socket_paths_are_refused(self):
        for path in ("/ws/nothing/", "/ws/chats/abc/", "/elsewhere"):
            socket = await connect(path, self.bob)
            assert await closed_with(socket) == 4003

    async def test_the_json_is_made_once_per_event_whatever_the_number_of_clients(self):
        sockets = [(await stream(user))[0] for user in (self.alice, self.bob, self.bob, self.alice)]
        with (
            mock.patch.object(
                MessageSerializer,
                "to_representation",
                autospec=True,
                side_effect=MessageSerializer.to_representation,
            ) as serialized,
            mock.patch.object(events.json, "dumps", side_effect=json.dumps) as dumped,
        ):
            await sync_to_async(self.post)("once")
            frames = [await socket.receive_from(timeout=5) for socket in sockets]
        assert serialized.call_count == 1 and dumped.call_count == 1
        assert len(set(frames)) == 1
        for socket in sockets:
            await socket.disconnect()

    async def test_stored_events_are_gapless_per_chat(self):
        await sync_to_async(self.post)("one")
        await sync_to_async(services.join_chat)(
            user=self.carol, chat=await Chat.objects.aget(pk=self.room.pk)
        )
        numbers = [
            number async for number in Event.objects.filter(chat=self.room).values_list("number", flat=True)
        ]
        assert numbers == list(range(1, len(numbers) + 1))
        assert numbers[-1] == (await Chat.objects.aget(pk=self.room.pk)).last_event


class LegacySocketTests(TransactionTestCase):
    """ws/chat/: the original design's `{"message": ...}` protocol."""

    def setUp(self):
        Chat.objects.get_or_create(name="General", auto_join=True)
        self.alice, self.bob = make_user("alice"), make_user("bob")

    async def test_general_by_default(self):
        alice = await connect("/ws/chat/", self.alice)
        bob = await connect("/ws/chat/", self.bob)
        await alice.send_to(text_data=json.dumps({"message": "hello <everyone>"}))
        for socket in (alice, bob):
            received = await receive(socket)
            assert received["message"] == "hello <everyone>"
            assert received["username"] == "alice" and received["chat"] == (await sync_to_async(general)()).pk
        assert await Message.objects.filter(text="hello <everyone>").acount() == 1
        await alice.send_to(text_data=json.dumps({"message": ""}))
        assert (await receive(alice))["code"] == "invalid"
        await alice.send_to(text_data=json.dumps({"text": "wrong field"}))
        assert "message" in (await receive(alice))["error"]
        await alice.send_to(text_data="[1")
        assert (await receive(alice))["code"] == "invalid"
        await alice.send_to(text_data=json.dumps({"message": "still works"}))
        assert (await receive(bob))["message"] == "still works"
        await alice.disconnect()
        await bob.disconnect()

    async def test_connected_means_listening(self):
        """The socket is accepted once it is in the hub: a message posted as soon as the
        client is connected reaches it, however long finding its chat took."""
        from chat import stream

        find = stream.legacy_chat

        def slow_find(*args: Any) -> Chat | None:
            time.sleep(0.3)
            return find(*args)

        chat = await sync_to_async(general)()
        with mock.patch.object(stream, "legacy_chat", slow_find):
            bob = await connect("/ws/chat/", self.bob)
        # Posted beside the socket's own work, as from another process.
        post = sync_to_async(services.post_message, thread_sensitive=False)
        await post(chat=chat, user=self.alice, text="right away")
        assert (await receive(bob))["message"] == "right away"
        await bob.disconnect()

    async def test_a_chosen_chat_and_the_same_rules(self):
        room = await sync_to_async(make_room)(self.alice, name="Private", visibility="private")
        bob = await connect(f"/ws/chat/?chat={room.pk}", self.bob)
        assert await closed_with(bob) == 4003
        for query in ("?chat=abc", "?chat=99999999"):
            socket = await connect(f"/ws/chat/{query}", self.alice)
            assert await closed_with(socket) == 4003
        alice = await connect(f"/ws/chat/?chat={room.pk}", self.alice)
        await alice.send_to(text_data=json.dumps({"message": "x" * 5000}))
        assert "at most" in (await receive(alice))["error"]
        await sync_to_async(services.add_member)(chat=room, by=self.alice, user=self.bob)
        bob = await connect(f"/ws/chat/?chat={room.pk}", self.bob)
        await alice.send_to(text_data=json.dumps({"message": "in private"}))
        assert (await receive(bob))["message"] == "in private"
        await sync_to_async(services.remove_member)(chat=room, by=self.alice, user=self.bob)
        assert await closed_with(bob) == 4003
        await alice.disconnect()

    async def test_anonymous_is_refused_after_the_wait_or_a_bad_frame(self):
        socket = await connect("/ws/chat/")
        await socket.send_to(text_data=json.dumps({"message": "hi"}))
        assert (await receive(socket))["code"] == "not_authenticated"
        assert await closed_with(socket) == 4003
        assert not await Message.objects.filter(text="hi").aexists()


class PruneTests(TransactionTestCase):
    async def test_a_client_whose_events_were_pruned_resyncs(self):
        await Chat.objects.aget_or_create(name="General", auto_join=True)
        alice = await sync_to_async(make_user)("alice")
        room = await sync_to_async(make_room)(alice, name="Old")
        socket, hello = await stream(alice)
        await socket.disconnect()
        for n in range(3):
            await sync_to_async(services.post_message)(chat=room, user=alice, text=f"m{n}")
        first = await Event.objects.filter(chat=room).order_by("number").afirst()
        assert first is not None
        # The oldest missed event is older than the cut: it goes, and the client resyncs.
        await Event.objects.filter(chat=room, number__lte=first.number + 1).aupdate(
            created_at=timezone.now() - timedelta(days=40)
        )
        output = StringIO()
        await sync_to_async(call_command)("prune_events", "--days", "30", stdout=output)
        assert "event(s) older than 30 day(s) forgotten" in output.getvalue()
        socket, _ = await stream(alice, cursors=hello["chats"])
        resync = await receive(socket)
        last = (await Chat.objects.aget(pk=room.pk)).last_event
        assert resync == {
            "type": "resync",
            "chat": room.pk,
            "after": hello["chats"][str(room.pk)],
            "event": last,
        }
        await socket.disconnect()


class PrunedWithNothingNewerTests(TransactionTestCase):
    async def test_every_missed_event_pruned_is_a_resync(self):
        await Chat.objects.aget_or_create(name="General", auto_join=True)
        alice = await sync_to_async(make_user)("alice")
        room = await sync_to_async(make_room)(alice, name="Quiet")
        socket, hello = await stream(alice)
        await socket.disconnect()
        for n in range(3):
            await sync_to_async(services.post_message)(chat=room, user=alice, text=f"old {n}")
        await Event.objects.filter(chat=room).aupdate(created_at=timezone.now() - timedelta(days=40))
        await sync_to_async(events.prune)(before=timezone.now() - timedelta(days=30))
        socket, _ = await stream(alice, cursors=hello["chats"])
        assert (await receive(socket))["type"] == "resync"
        await socket.disconnect()


class TokenSocketTests(TransactionTestCase):
    """Programs sign in with an API token as the first frame, on both program sockets."""

    def setUp(self):
        Chat.objects.get_or_create(name="General", auto_join=True)
        self.alice, self.bob = make_user("alice"), make_user("bob")
        self.room = make_room(self.alice, name="Bots")
        self.bot, token = services.accounts.create_bot(username="helper", owner=self.alice)
        self.key = token.key
        self.token_id = token.token.pk
        services.add_member(chat=self.room, by=self.alice, user=self.bot)

    async def test_a_token_follows_every_chat_of_its_account(self):
        socket = await connect("/ws/events/", origin=None)
        await socket.send_to(text_data=json.dumps({"type": "auth", "token": self.key}))
        hello = await receive(socket)
        assert hello["user"] == {"id": self.bot.pk, "username": "helper"}
        assert str(self.room.pk) in hello["chats"]
        message, _ = await sync_to_async(services.post_message)(
            chat=self.room, user=self.alice, text="@helper hi"
        )
        assert (await receive(socket))["message"]["id"] == message.pk
        await socket.disconnect()

    async def test_revoking_the_token_closes_its_sockets_and_only_them(self):
        other = await sync_to_async(services.accounts.issue_token)(user=self.bot, name="other")
        sockets = []
        for key in (self.key, other.key):
            socket = await connect("/ws/events/", origin=None)
            await socket.send_to(text_data=json.dumps({"type": "auth", "token": key}))
            assert (await receive(socket))["type"] == "hello"
            sockets.append(socket)
        legacy = await connect(f"/ws/chat/?chat={self.room.pk}", origin=None)
        await legacy.send_to(text_data=json.dumps({"type": "auth", "token": self.key}))
        await sync_to_async(services.accounts.revoke_token)(user=self.bot, token_id=self.token_id)
        assert await closed_with(sockets[0]) == 4003
        assert await closed_with(legacy) == 4003
        message, _ = await sync_to_async(services.post_message)(
            chat=self.room, user=self.alice, text="still here"
        )
        assert (await receive(sockets[1]))["message"]["id"] == message.pk
        await sockets[1].disconnect()
        socket = await connect("/ws/events/", origin=None)
        await socket.send_to(text_data=json.dumps({"type": "auth", "token": self.key}))
        assert (await receive(socket))["code"] == "invalid_token"
        assert await closed_with(socket) == 4003

    async def test_the_original_protocol_with_a_token(self):
        legacy = await connect(f"/ws/chat/?chat={self.room.pk}", origin=None)
        await legacy.send_to(text_data=json.dumps({"type": "auth", "token": self.key}))
        await legacy.send_to(text_data=json.dumps({"message": "beep"}))
        received = await receive(legacy)
        assert received["message"] == "beep" and received["username"] == "helper"
        assert await Message.objects.filter(chat=self.room, user=self.bot, text="beep").aexists()
        await legacy.disconnect()
