"""Nothing fails silently: hostile frames, foreign origins, floods, and one rule per door."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any
from unittest import mock

from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import TestCase, TransactionTestCase, override_settings
from rest_framework.test import APIClient

from chat import broadcast, frames, services
from chat import hub as hub_module
from chat.consumers import CLOSE_FLOODING, CLOSE_NOT_ALLOWED, CLOSE_TOO_MANY_SOCKETS
from chat.models import MESSAGE_MAX_LENGTH, ApiToken, Chat, Membership, Message
from chat.tests.factories import PASSWORD, general, make_messages, make_room, make_user
from chat.tests.test_consumers import HOST, ORIGIN, open_socket, sentinel_arrives, session_cookie
from config.asgi import application


def rates(**changes: str) -> dict[str, str]:
    return {**settings.CHAT_RATES, **changes}


class HostileFrameTests(TransactionTestCase):
    def setUp(self):
        self.alice, self.bob = make_user("alice"), make_user("bob")
        self.chat = make_room(self.alice, name="Team")
        Membership.objects.create(user=self.bob, chat=self.chat)
        make_messages(self.chat, self.alice, 2)

    async def test_every_frame_gets_an_answer_and_the_socket_stays(self):
        """Frames that used to crash the handler (and leave the socket in the hub for good)
        each get an error on that socket alone; the socket goes on working."""
        deep = "[" * 10_000 + "]" * 10_000
        cases: list[tuple[str, str]] = [
            (json.dumps({"action": "catch_up", "after": "²", "since": 0}), "need message ids"),
            (json.dumps({"action": "catch_up", "after": "9" * 30, "since": 0}), "need message ids"),
            (json.dumps({"action": "catch_up", "after": 2**70, "since": 0}), "need message ids"),
            (json.dumps({"action": "read", "up_to": "١٢"}), "need message ids"),
            ('{"text": ' + deep + "}", "nested too deeply"),
            (deep, "nested too deeply"),
            ('{"text": "\\ud800"}', "not valid text"),
            (json.dumps({"text": "\ufeff"}), "Write a message first."),
            (json.dumps({"text": "\u200b\u200d\x07\x1b"}), "Write a message first."),
            (json.dumps({"text": "a\x00b"}), "Null characters"),
            (json.dumps({"text": "x" * (settings.FRAME_MAX_BYTES + 1)}), "too large"),
        ]
        alice = await open_socket(self.chat, self.alice)
        bob = await open_socket(self.chat, self.bob)
        for text_data, error in cases:
            with self.subTest(frame=text_data[:60]):
                await alice.send_to(text_data=text_data)
                reply = await alice.receive_from(timeout=5)
                assert reply.strip().startswith('<div id="composer-errors"'), reply[:200]
                assert error in reply
        assert await sentinel_arrives(bob, alice, "still here") == []
        assert not await Message.objects.filter(text__contains="\ufeff").aexists()
        await alice.disconnect()
        await bob.disconnect()

    async def test_an_unforeseen_error_is_answered_not_fatal(self):
        """An error nobody foresaw in handling a frame is logged and answered; the socket stays."""
        alice = await open_socket(self.chat, self.alice)
        with (
            mock.patch.object(frames, "send_message", side_effect=ZeroDivisionError),
            self.assertLogs("chat.frames", "ERROR"),
        ):
            await alice.send_to(text_data=json.dumps({"text": "boom"}))
            assert "could not be done" in await alice.receive_from(timeout=5)
        await alice.send_to(text_data=json.dumps({"text": "after"}))
        assert any("after" in frame for frame in [await alice.receive_from(timeout=5) for _ in range(2)])
        await alice.disconnect()

    async def test_a_crashed_socket_leaves_the_hub(self):
        """Whatever ends a socket, even an error that escapes the consumer, it leaves the hub."""
        alice = await open_socket(self.chat, self.alice)
        hub = broadcast.hub()
        assert len(hub.rooms[self.chat.pk]) == 1
        with mock.patch("chat.consumers.frames.handle", side_effect=RuntimeError("escaped")):
            await alice.send_to(text_data=json.dumps({"text": "x"}))
            with contextlib.suppress(RuntimeError):
                await alice.wait(timeout=5)
        assert self.chat.pk not in hub.rooms
        assert self.alice.pk not in hub.users


class OriginTests(TransactionTestCase):
    def setUp(self):
        self.alice = make_user("alice")
        self.chat = make_room(self.alice, "Team")

    async def connect(self, origin: bytes | None, host: bytes = HOST) -> dict[str, Any]:
        headers = [(b"host", host), (b"cookie", await sync_to_async(session_cookie)(self.alice))]
        if origin is not None:
            headers.append((b"origin", origin))
        socket = WebsocketCommunicator(application, f"/ws/chats/{self.chat.pk}/", headers=headers)
        connected, _ = await socket.connect()
        assert connected
        if await socket.receive_nothing(timeout=0.5):
            await socket.disconnect()
            return {"type": "still open"}
        return await socket.receive_output()

    async def test_only_the_pages_own_origin_may_open_a_socket(self):
        """Scheme, host and port must all match the page's own origin (or a trusted one)."""
        refused = {"type": "websocket.close", "code": CLOSE_NOT_ALLOWED}
        cases = [
            (b"http://127.0.0.1:1", refused),
            (b"https://127.0.0.1", refused),
            (b"https://127.0.0.1:8000", refused),
            (b"http://127.0.0.1", refused),
            (b"http://localhost:8000", refused),
            (b"http://evil.example:8000", refused),
            (b"null", refused),
            (b"", refused),
            (None, refused),
            (ORIGIN, {"type": "still open"}),
        ]
        for origin, expected in cases:
            with self.subTest(origin=origin):
                assert await self.connect(origin) == expected
        # A Host that is not allowed is refused even from "its own" origin.
        assert await self.connect(b"http://evil.example:8000", host=b"evil.example:8000") == refused

    @override_settings(CSRF_TRUSTED_ORIGINS=["https://chat.example.com"])
    async def test_a_trusted_origin_may_open_a_socket(self):
        """Behind a proxy, the public origin is trusted as Django's CSRF check trusts it."""
        assert await self.connect(b"https://chat.example.com") == {"type": "still open"}
        assert await self.connect(b"http://chat.example.com") == {
            "type": "websocket.close",
            "code": CLOSE_NOT_ALLOWED,
        }


class SocketLimitTests(TransactionTestCase):
    def setUp(self):
        self.alice, self.bob = make_user("alice"), make_user("bob")
        self.chat = make_room(self.alice, "Team")
        services.join_chat(user=self.bob, chat=self.chat)

    @override_settings(SOCKETS_PER_USER=2)
    async def test_sockets_per_user_are_capped(self):
        """Past SOCKETS_PER_USER, one more socket of the same user is refused; others are not."""
        first, second = await open_socket(self.chat, self.alice), await open_socket(self.chat, self.alice)
        third = await open_socket(self.chat, self.alice)
        assert await third.receive_output(timeout=3) == {
            "type": "websocket.close",
            "code": CLOSE_TOO_MANY_SOCKETS,
        }
        bob = await open_socket(self.chat, self.bob)
        await first.disconnect()
        fourth = await open_socket(self.chat, self.alice)
        assert await sentinel_arrives(fourth, bob, "room again") == []
        for socket in (second, fourth, bob):
            await socket.disconnect()

    @override_settings(CHAT_RATES=rates(frame="5/second"))
    async def test_a_flooding_socket_is_told_then_let_go(self):
        """Past the frame rate a socket is told to slow down, then closed if it keeps on;
        the others' messages go on arriving meanwhile."""
        alice = await open_socket(self.chat, self.alice)
        bob = await open_socket(self.chat, self.bob)
        replies: list[Any] = []
        closed = None
        for _ in range(200):
            await alice.send_to(text_data=json.dumps({"action": "read", "up_to": 0}))
            await asyncio.sleep(0.02)
            while not await alice.receive_nothing(timeout=0.001):
                output = await alice.receive_output()
                if output["type"] == "websocket.close":
                    closed = output
                    break
                replies.append(output["text"])
            if closed:
                break
        assert closed == {"type": "websocket.close", "code": CLOSE_FLOODING}
        assert any("sending too fast" in reply for reply in replies)
        other = await open_socket(self.chat, self.alice)
        await bob.send_to(text_data=json.dumps({"text": "bob goes on"}))
        assert "bob goes on" in await other.receive_from(timeout=5)
        await other.disconnect()
        await bob.disconnect()


class SessionEndTests(TransactionTestCase):
    async def test_ended_sessions_close_sockets_to_reconnect(self):
        """When a user's sessions end, their sockets close with 1012 (the page retries), and a
        socket of a session that no longer exists is refused."""
        alice = await sync_to_async(make_user)("alice")
        chat = await sync_to_async(make_room)(alice, "Team")
        socket = await open_socket(chat, alice)
        await sync_to_async(broadcast.sessions_ended)(alice.pk)
        assert await socket.receive_output(timeout=3) == {"type": "websocket.close", "code": 1012}
        headers = [(b"origin", ORIGIN), (b"host", HOST), (b"cookie", b"sessionid=gone")]
        again = WebsocketCommunicator(application, f"/ws/chats/{chat.pk}/", headers=headers)
        assert (await again.connect())[0]
        assert await again.receive_output(timeout=3) == {"type": "websocket.close", "code": CLOSE_NOT_ALLOWED}


class OneRuleEveryDoorTests(TransactionTestCase):
    """For the same bad input, the page, the socket and the API answer the same words."""

    def setUp(self):
        self.alice = make_user("alice")
        self.chat = make_room(self.alice, "Team")

    def page_says(self, text: str) -> str:
        self.client.force_login(self.alice)
        response = self.client.post(f"/chats/{self.chat.pk}/messages/", {"text": text})
        assert response.status_code in (400, 429)
        return response.content.decode()

    def api_says(self, text: str) -> str:
        client = APIClient()
        client.force_authenticate(self.alice)
        response = client.post(f"/api/chats/{self.chat.pk}/messages/", {"text": text}, format="json")
        assert response.status_code in (400, 429), response.content
        body = response.json()
        return " ".join(body.get("text", [])) + body.get("detail", "")

    async def socket_says(self, text: str) -> str:
        socket = await open_socket(self.chat, self.alice)
        await socket.send_to(text_data=json.dumps({"text": text}))
        reply = await socket.receive_from(timeout=5)
        await socket.disconnect()
        return reply

    async def test_same_words_for_bad_text(self):
        cases = {
            "": "Write a message first.",
            "   \n ": "Write a message first.",
            "\ufeff": "Write a message first.",
            "x" * (MESSAGE_MAX_LENGTH + 1): f"A message can have at most {MESSAGE_MAX_LENGTH} characters",
            "a\x00b": "Null characters are not allowed.",
        }
        for text, words in cases.items():
            with self.subTest(text=text[:10]):
                assert words in await sync_to_async(self.page_says)(text)
                assert words in await sync_to_async(self.api_says)(text)
                assert words in await self.socket_says(text)
        assert not await Message.objects.aexists()

    async def test_one_message_rate_over_every_door(self):
        """The message rate counts posts from the page, the socket and the API together."""
        with override_settings(CHAT_RATES=rates(message="3/minute")):
            client = APIClient()
            await sync_to_async(client.force_authenticate)(self.alice)
            path = f"/api/chats/{self.chat.pk}/messages/"
            assert (await sync_to_async(client.post)(path, {"text": "api"}, format="json")).status_code == 201
            await sync_to_async(self.client.force_login)(self.alice)
            page = await sync_to_async(self.client.post)(f"/chats/{self.chat.pk}/messages/", {"text": "page"})
            assert page.status_code == 302
            socket = await open_socket(self.chat, self.alice)
            await socket.send_to(text_data=json.dumps({"text": "socket", "client_id": str(uuid.uuid4())}))
            assert any(
                "socket" in frame for frame in [await socket.receive_from(timeout=5) for _ in range(2)]
            )
            await socket.disconnect()
            words = "You are sending messages too fast."
            assert words in await self.socket_says("one too many")
            assert words in await sync_to_async(self.page_says)("one too many")
            assert words in await sync_to_async(self.api_says)("one too many")
        assert await Message.objects.acount() == 3


class RuleTests(TestCase):
    def test_an_author_who_left_may_neither_edit_nor_delete(self):
        """Editing and deleting one's message both need membership of its chat."""
        alice, owner = make_user("alice"), make_user("owner")
        room = make_room(owner, "Open")
        services.join_chat(user=alice, chat=room)
        message, _ = services.post_message(chat=room, user=alice, text="mine")
        services.leave_chat(user=alice, chat=room)
        client = APIClient()
        client.force_authenticate(alice)
        assert client.patch(f"/api/messages/{message.pk}/", {"text": "x"}, format="json").status_code == 403
        assert client.delete(f"/api/messages/{message.pk}/").status_code == 403
        message.refresh_from_db()
        assert message.text == "mine" and not message.is_deleted

    def test_deeply_nested_json_is_a_400(self):
        """The API answers 400, not 500, to JSON nested deeper than the parser can take."""
        client = APIClient()
        client.force_authenticate(make_user())
        body = "[" * 100_000 + "]" * 100_000
        response = client.post(f"/api/chats/{general().pk}/messages/", body, content_type="application/json")
        assert response.status_code == 400
        assert "nested too deeply" in response.json()["detail"]

    def test_room_name_rule_is_the_services(self):
        """The page and the API give the service's words for a name that is too long."""
        user = make_user()
        self.client.force_login(user)
        long_name = "n" * 101
        page = self.client.post("/chats/new/", {"name": long_name, "visibility": "public"})
        client = APIClient()
        client.force_authenticate(user)
        api = client.post("/api/chats/", {"name": long_name, "visibility": "public"}, format="json")
        assert "A room name has at most 100 characters." in page.content.decode()
        assert api.json()["name"] == ["A room name has at most 100 characters."]


class AdminTests(TestCase):
    def setUp(self):
        from django.contrib.auth.models import User

        self.admin = User.objects.create_superuser("root", password=PASSWORD)
        self.client.force_login(self.admin)

    def test_every_account_joins_general(self):
        """Accounts made by createsuperuser or in the admin join General, as sign-ups do."""
        response = self.client.post(
            "/admin/auth/user/add/",
            {
                "username": "made_in_admin",
                "password1": PASSWORD,
                "password2": PASSWORD,
                "usable_password": "true",
            },
        )
        assert response.status_code == 302, response.content.decode()[:2000]
        for username in ("root", "made_in_admin"):
            assert Membership.objects.filter(user__username=username, chat=general()).exists()

    def test_messages_are_read_only_and_deleted_through_the_service(self):
        """The admin can't add or edit messages; its deletion leaves a pushed tombstone."""
        author = make_user()
        message, _ = services.post_message(chat=general(), user=author, text="spam")
        assert self.client.get("/admin/chat/message/add/").status_code == 403
        self.client.post(f"/admin/chat/message/{message.pk}/change/", {"text": "changed"})
        message.refresh_from_db()
        assert message.text == "spam"
        with (
            mock.patch.object(broadcast, "message_changed") as pushed,
            self.captureOnCommitCallbacks(execute=True),
        ):
            response = self.client.post(
                "/admin/chat/message/",
                {"action": "delete_leaving_tombstones", "_selected_action": [message.pk]},
            )
        assert response.status_code == 302
        message.refresh_from_db()
        assert message.is_deleted and message.text == ""
        pushed.assert_called_once()
        assert Chat.objects.get(pk=general().pk).last_event == message.event

    def test_tokens_show_no_key_and_are_revoked_through_the_service(self):
        """The admin lists a token by name and prefix; revoking it there closes its sockets."""
        user = make_user("scripter")
        made = services.accounts.issue_token(user=user, name="ci")
        page = self.client.get("/admin/chat/apitoken/").content.decode()
        assert made.token.prefix in page and made.key not in page
        assert self.client.get("/admin/chat/apitoken/add/").status_code == 403
        with (
            mock.patch.object(broadcast, "token_revoked") as revoked,
            self.captureOnCommitCallbacks(execute=True),
        ):
            response = self.client.post(
                "/admin/chat/apitoken/", {"action": "revoke", "_selected_action": [made.token.pk]}
            )
        assert response.status_code == 302
        assert not ApiToken.objects.filter(pk=made.token.pk).exists()
        revoked.assert_called_once_with(user.pk, made.token.pk)
        assert self.client.get("/admin/chat/bot/").status_code == 200

    def test_deactivating_a_user_ends_their_sockets(self):
        """Unticking "active" in the admin goes through the service: sockets close after commit."""
        user = make_user("leaver")
        with (
            mock.patch.object(broadcast, "sessions_ended") as ended,
            self.captureOnCommitCallbacks(execute=True),
        ):
            response = self.client.post(
                f"/admin/auth/user/{user.pk}/change/",
                {
                    "username": "leaver",
                    "is_active": "",
                    "date_joined_0": "2026-01-01",
                    "date_joined_1": "00:00:00",
                    "initial-date_joined_0": "2026-01-01",
                    "initial-date_joined_1": "00:00:00",
                },
            )
        assert response.status_code == 302, response.content.decode()[:3000]
        user.refresh_from_db()
        assert not user.is_active
        ended.assert_called_once_with(user.pk)


class ReaderTests(TestCase):
    def test_a_bad_event_does_not_stop_the_reader(self):
        """One event that fails to dispatch is logged; the next event still arrives."""
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self.poisoned(InMemoryChannelLayer()))
        finally:
            loop.close()

    def test_a_bad_event_on_redis_does_not_stop_the_reader(self):
        """The same through a real Redis, as processes share pushes in production."""
        from channels_redis.pubsub import RedisPubSubChannelLayer

        from chat.tests.test_api import REDIS_URL, reachable_redis

        reachable_redis()
        loop = asyncio.new_event_loop()
        try:
            # Publish and subscribe ignore Redis's database number: a prefix of this run's own
            # keeps other processes on the same Redis (another worker, a benchmark) out.
            layer = RedisPubSubChannelLayer(
                hosts=[{"address": REDIS_URL, "socket_timeout": None}], prefix=f"test-{uuid.uuid4().hex}"
            )
            loop.run_until_complete(self.poisoned(layer))
            loop.run_until_complete(layer.flush())
        finally:
            loop.close()

    async def poisoned(self, layer: Any) -> None:
        hub = broadcast.Hub(asyncio.get_running_loop(), layer)
        received: list[str] = []
        outbox = broadcast.Outbox(
            lambda message: record(received, message), on_overflow=lambda: None, chat_id=7
        )
        await hub.join(outbox)
        with self.assertLogs("chat.hub", "ERROR") as logs:
            await layer.group_send(
                hub_module.chat_group(7), {"type": hub_module.HTML_EVENT, "html": "no chat"}
            )
            await layer.group_send(hub_module.chat_group(7), {"type": "chat.unknown"})
            await layer.group_send(
                hub_module.chat_group(7), {"type": hub_module.HTML_EVENT, "chat_id": 7, "html": "after"}
            )
            for _ in range(100):
                if received:
                    break
                await asyncio.sleep(0.01)
        assert received == ["after"]
        assert any("could not be delivered" in line for line in logs.output)
        assert hub.reader is not None and not hub.reader.done()
        hub.reader.cancel()

    def test_a_dead_reader_is_started_again(self):
        """If the reader task ends anyway, it is started again and delivery goes on."""
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self.killed(InMemoryChannelLayer()))
        finally:
            loop.close()

    async def killed(self, layer: Any) -> None:
        hub = broadcast.Hub(asyncio.get_running_loop(), layer)
        received: list[str] = []
        outbox = broadcast.Outbox(
            lambda message: record(received, message), on_overflow=lambda: None, chat_id=7
        )
        real_read = hub.read
        calls = 0

        async def dies_once(*args: Any) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("reader died")
            await real_read(*args)

        with mock.patch.object(hub, "read", dies_once), self.assertLogs("chat.hub", "ERROR"):
            await hub.join(outbox)
            await layer.group_send(
                hub_module.chat_group(7), {"type": hub_module.HTML_EVENT, "chat_id": 7, "html": "hi"}
            )
            for _ in range(500):
                if received:
                    break
                await asyncio.sleep(0.01)
        assert received == ["hi"] and calls == 2
        assert hub.reader is not None
        hub.reader.cancel()


async def record(received: list[str], message: dict[str, Any]) -> None:
    received.append(message["text"])


class SocketLogTests(TransactionTestCase):
    async def test_one_line_per_socket_session_without_message_text(self):
        """A socket's end is logged once, with user, chat, code and duration, never the text sent."""
        alice = await sync_to_async(make_user)("alice")
        chat = await sync_to_async(make_room)(alice, "Team")
        with self.assertLogs("chat.access", "INFO") as logs:
            socket = await open_socket(chat, alice)
            await socket.send_to(text_data=json.dumps({"text": "secret words"}))
            await socket.receive_from(timeout=5)
            await socket.disconnect(code=1001)
            await socket.wait()
        [line] = [line for line in logs.output if "socket" in line]
        assert f"chat={chat.pk}" in line and f"user={alice.pk}" in line and "code=1001" in line
        assert "secret" not in " ".join(logs.output)


class LimitOutageTests(TestCase):
    def test_an_unreachable_cache_lets_messages_through(self):
        """While the cache (Redis) is down, rate limits step aside, logged once; nothing is refused."""
        from django.core.cache import cache

        user = make_user()
        with (
            mock.patch.object(cache, "add", side_effect=ConnectionError("Redis is down")),
            self.assertLogs("chat.limits", "ERROR") as logs,
        ):
            for i in range(3):
                services.post_message(chat=general(), user=user, text=f"during the outage {i}")
        assert len(logs.output) == 1
        assert Message.objects.filter(text__startswith="during the outage").count() == 3
        with self.assertLogs("chat.limits", "WARNING"):
            services.post_message(chat=general(), user=user, text="after")
