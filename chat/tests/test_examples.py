"""The sockets' documentation and the examples for programs.

- The AsyncAPI document (chat/api/asyncapi.yaml): it describes every frame the server
  sends, each message has an example that its schema accepts, and what the services and
  the sockets actually send is accepted by the schemas too (in process).
- examples/bot.py, run as a process against a real daphne: it answers mentions, and
  after a restart it answers what it missed, once each.
- examples/client.html in Chromium, served from another origin than the chat's.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import jsonschema
import pytest
import yaml
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.files.base import ContentFile
from django.test import Client, TestCase, TransactionTestCase, override_settings

from chat import events, services
from chat.models import Chat, Event
from chat.serializers import AttachmentSerializer, MessageSerializer
from chat.tests.conftest import GENEROUS_RATES, PASSWORD, PROJECT_ROOT, Processes, free_port
from chat.tests.factories import general, make_room, make_user
from chat.tests.test_events import closed_with, connect, receive, stream

ASYNCAPI = PROJECT_ROOT / "chat" / "api" / "asyncapi.yaml"
EXAMPLES = PROJECT_ROOT / "examples"
# Frames of the event stream that are not stored events: sign-in, resync and the socket's own.
STREAM_FRAMES = ("hello", "resync", "chat.removed", "error", "pong")
IN_MEMORY = "django.core.files.storage.InMemoryStorage"
# How long a step of a process test may take before it fails (a busy machine is slow).
WAIT = 20.0


# --- The AsyncAPI document ------------------------------------------------------------


@functools.cache
def document() -> dict[str, Any]:
    return dict(yaml.safe_load(ASYNCAPI.read_text()))


def resolve(reference: str) -> Any:
    assert reference.startswith("#/"), reference
    node: Any = document()
    for part in reference[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def follow(node: Any) -> Any:
    while isinstance(node, dict) and set(node) == {"$ref"}:
        node = resolve(node["$ref"])
    return node


def validator(payload: dict[str, Any]) -> jsonschema.Draft7Validator:
    """A validator of one payload schema, whose references point into the document."""
    schema = {"components": document()["components"], "allOf": [payload]}
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def channel_messages(channel: str) -> dict[str, dict[str, Any]]:
    """A channel's messages, by name in the channel."""
    return {name: follow(message) for name, message in document()["channels"][channel]["messages"].items()}


def message_for(channel: str, frame: dict[str, Any]) -> dict[str, Any]:
    """The channel's message that describes a frame: the one whose payload's `type` is the frame's."""
    candidates = [
        message
        for message in channel_messages(channel).values()
        if follow(follow(message["payload"])["properties"].get("type", {})).get("const") == frame.get("type")
    ]
    assert len(candidates) == 1, f"{len(candidates)} messages of {channel} for {frame}"
    return candidates[0]


def check(channel: str, frame: dict[str, Any] | str, name: str = "") -> dict[str, Any]:
    """Assert that the channel's schema for the frame (its message `name`, or the one of the
    frame's type) accepts it; return the frame."""
    if isinstance(frame, str):
        frame = json.loads(frame)
    assert isinstance(frame, dict)
    message = channel_messages(channel)[name] if name else message_for(channel, frame)
    errors = [error.message for error in validator(message["payload"]).iter_errors(frame)]
    assert not errors, f"{frame} does not match the AsyncAPI document: {errors}"
    return frame


def event_types() -> list[str]:
    """Every type of stored event that chat.events defines."""
    return [
        value
        for name, value in vars(events).items()
        if name.isupper() and isinstance(value, str) and re.fullmatch(r"[a-z]+\.[a-z]+", value)
    ]


class AsyncApiDocumentTests(TestCase):
    def test_every_frame_the_server_sends_has_a_message_with_examples_its_schema_accepts(self):
        """Each event type of chat.events, and each frame of the stream itself, is a message
        that an operation sends, with examples that its schema accepts."""
        types = event_types()
        assert {"message.created", "member.added", "chat.updated"} <= set(types)
        # What the server sends: its `send` operations' messages and its replies.
        sending = [
            follow(reference)
            for operation in document()["operations"].values()
            if operation["action"] == "send" or "reply" in operation
            for reference in (
                operation["messages"] if operation["action"] == "send" else operation["reply"]["messages"]
            )
        ]
        for kind in [*types, *STREAM_FRAMES]:
            message = message_for("events", {"type": kind})
            assert message in sending, f"no operation sends {kind}"
            assert message.get("examples"), f"{kind} has no example"
            for example in message["examples"]:
                assert example["payload"]["type"] == kind
                check("events", example["payload"])

    def test_every_example_matches_its_schema(self):
        """Every message, client frames and the original protocol's too, has a valid example."""
        for name, message in document()["components"]["messages"].items():
            assert message.get("examples"), f"{name} has no example"
            schema = validator(message["payload"])
            for example in message["examples"]:
                errors = [error.message for error in schema.iter_errors(example["payload"])]
                assert not errors, f"{name}, example {example.get('name')}: {errors}"

    def test_every_reference_resolves_and_operations_use_their_channels_messages(self):
        """The document holds together: no dangling $ref, and operations speak their channel's messages."""

        def references(node: Any) -> Iterator[str]:
            if isinstance(node, dict):
                if "$ref" in node:
                    yield node["$ref"]
                for value in node.values():
                    yield from references(value)
            elif isinstance(node, list):
                for value in node:
                    yield from references(value)

        for reference in references(document()):
            resolve(reference)
        assert document()["asyncapi"].startswith("3.")
        assert {channel["address"] for channel in document()["channels"].values()} == {
            "/ws/events/",
            "/ws/chat/",
        }
        for name, operation in document()["operations"].items():
            assert operation["action"] in ("send", "receive"), name
            channel = operation["channel"]["$ref"]
            for message in operation["messages"]:
                assert message["$ref"].startswith(f"{channel}/messages/"), (name, message)

    def test_a_message_has_the_rest_apis_fields(self):
        """The document's message is the REST API's: a new field in the serializer fails here
        until the document shows it too."""
        schemas = document()["components"]["schemas"]
        for name, serializer in (("Message", MessageSerializer), ("Attachment", AttachmentSerializer)):
            fields = set(serializer().fields)
            assert set(schemas[name]["properties"]) == fields, name
            assert set(schemas[name]["required"]) == fields, name

    def test_the_api_serves_the_document(self):
        """/api/asyncapi.yaml, beside the OpenAPI schema, is this file."""
        client = Client()
        client.force_login(make_user("reader"))
        response = client.get("/api/asyncapi.yaml")
        assert response.status_code == 200
        assert response.content == ASYNCAPI.read_bytes()


class RecordedEventsTests(TestCase):
    def test_what_the_services_record_matches_the_document(self):
        """Every kind of event, as the services store it (the same bytes go to every client)."""
        alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
        room = make_room(alice, name="Team")
        services.add_member(chat=room, by=alice, user=bob)
        services.join_chat(user=carol, chat=room)
        message, _ = services.post_message(chat=room, user=bob, text="hello **@alice**")
        with override_settings(STORAGES={**settings.STORAGES, "default": {"BACKEND": IN_MEMORY}}):
            notes, _ = services.post_message(
                chat=room,
                user=alice,
                text="the notes",
                reply_to=message.pk,
                files=[ContentFile(b"Notes for Friday.\n", name="notes.txt")],
            )
        services.add_reaction(message=notes, user=bob, emoji="👍")
        services.remove_reaction(message=notes, user=bob, emoji="👍")
        services.pin_message(message=notes, user=bob)
        services.unpin_message(message=notes, user=alice)
        services.pin_message(message=message, user=alice)
        services.edit_message(message=message, user=bob, text="hello @alice")
        services.delete_message(message=message, user=alice)
        services.update_room(chat=room, by=alice, name="Team 2", topic="Plans", visibility="private")
        services.remove_member(chat=room, by=alice, user=bob)
        services.leave_chat(user=carol, chat=room)
        services.open_direct_chat(user=alice, other=bob)
        kinds = set()
        for stored in Event.objects.all():
            frame = check("events", stored.data)
            assert (frame["type"], frame["chat"], frame["event"]) == (
                stored.kind,
                stored.chat_id,
                stored.number,
            )
            kinds.add(stored.kind)
        assert kinds == set(event_types())


class SocketFramesTests(TransactionTestCase):
    """What the sockets send, in process, against the document."""

    def setUp(self):
        Chat.objects.get_or_create(name="General", auto_join=True)
        self.alice, self.bob = make_user("alice"), make_user("bob")
        self.room = make_room(self.alice, name="Team")
        services.add_member(chat=self.room, by=self.alice, user=self.bob)

    async def test_the_event_streams_frames_match_the_document(self):
        """hello, a live event, pong, error, resync and chat.removed, as a real socket sends them."""
        socket, hello = await stream(self.bob)
        check("events", hello)
        cursors = hello["chats"]
        await sync_to_async(services.post_message)(chat=self.room, user=self.alice, text="live")
        check("events", await receive(socket))
        await socket.send_to(text_data=json.dumps({"type": "ping"}))
        check("events", await receive(socket))
        await socket.send_to(text_data=json.dumps({"type": "subscribe"}))
        check("events", await receive(socket))
        await socket.disconnect()

        for n in range(3):
            await sync_to_async(services.post_message)(chat=self.room, user=self.alice, text=f"missed {n}")
        with mock.patch.object(events, "REPLAY_LIMIT", 2):
            socket, hello = await stream(self.bob, cursors={**cursors, "999999": 1})
            frames = [await receive(socket), await receive(socket)]
        assert {frame["type"] for frame in frames} == {"chat.removed", "resync"}
        for frame in frames:
            check("events", frame)
        await socket.disconnect()

        socket = await connect("/ws/events/")
        await socket.send_to(text_data=json.dumps({"type": "auth", "token": "not a token"}))
        check("events", await receive(socket))
        assert await closed_with(socket) == 4003

    async def test_the_original_protocols_frames_match_the_document(self):
        """/ws/chat/: a frame as the document shows it is taken; the message and the error it sends match."""
        bob = await connect("/ws/chat/", self.bob)
        await bob.send_to(text_data=json.dumps(check("chat", {"message": "hello"}, "legacySend")))
        received = check("chat", await receive(bob), "legacyMessage")
        assert received["chat"] == (await sync_to_async(general)()).pk
        await bob.send_to(text_data=json.dumps({"message": ""}))
        check("chat", await receive(bob), "legacyError")
        await bob.disconnect()


# --- The examples, against a real daphne ------------------------------------------------


class Api:
    """The REST API of a running server, as a program calls it: urllib and a token."""

    def __init__(self, base_url: str, token: str = "") -> None:
        self.base_url = base_url
        self.token = token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        url = path if path.startswith("http") else self.base_url + path
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=WAIT) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path}: {error.code} {error.read()[:500]!r}") from None

    @classmethod
    def sign_in(cls, base_url: str, username: str) -> Api:
        made = cls(base_url).call("POST", "/api/auth/token/", {"username": username, "password": PASSWORD})
        return cls(base_url, made["token"])

    def post(self, chat: int, text: str) -> dict[str, Any]:
        return dict(self.call("POST", f"/api/chats/{chat}/messages/", {"text": text}))

    def changes(self, chat: int, since: int = 0) -> list[dict[str, Any]]:
        """Every message of the chat created or changed after an event, oldest first."""
        found: list[dict[str, Any]] = []
        page: str | None = f"/api/chats/{chat}/messages/?since={since}&page_size=200"
        while page:
            result = self.call("GET", page)
            found += result["results"]
            page = result["next"]
        return found


def wait_until(condition: Any, what: str, timeout: float = WAIT) -> Any:
    """Poll until `condition()` is true(ish) and return it; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@contextlib.contextmanager
def static_files(directory: Path) -> Iterator[str]:
    """A plain web server for a folder, on a port of its own: another origin than the chat's."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", free_port()), functools.partial(Quiet, directory=str(directory))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


CREATE_PEOPLE = """
import json, sys
from chat import services
from chat.models import Chat
people = {}
for name in sys.argv[1].split(","):
    people[name] = services.create_account(username=name, password=sys.argv[2]).pk
print(json.dumps({"people": people, "general": Chat.objects.get(name="General", auto_join=True).pk}))
"""


@contextlib.contextmanager
def chat_server(**settings: str) -> Iterator[tuple[str, dict[str, str]]]:
    """A daphne on a SQLite database of its own; yields its URL and its environment."""
    with tempfile.TemporaryDirectory(prefix="chat-examples-") as directory:
        env = Processes.env(
            DATABASE_URL=f"sqlite:///{directory}/db.sqlite3",
            DEBUG="true",
            ALLOWED_HOSTS="127.0.0.1",
            CHAT_LOG_LEVEL="WARNING",
            **GENEROUS_RATES,
            **settings,
        )
        migrated = Processes.manage(env, "migrate", "--noinput")
        assert migrated.returncode == 0, migrated.stderr
        with Processes.daphne(env) as url:
            yield url, env


def create_people(env: dict[str, str], *names: str) -> dict[str, Any]:
    return dict(json.loads(Processes.python(env, CREATE_PEOPLE, ",".join(names), PASSWORD)))


def create_bot(env: dict[str, str], name: str) -> str:
    """A bot account made as the README says (manage.py create_bot); its token's key."""
    made = Processes.manage(env, "create_bot", name)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


class BotProcess:
    """examples/bot.py as its users run it: a process, configured by the environment."""

    def __init__(self, url: str, token: str, state: Path, log: Path) -> None:
        self.env = {**Processes.env(), "CHAT_URL": url, "CHAT_TOKEN": token, "BOT_STATE": str(state)}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        greeted = self.output().count("Signed in as")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(EXAMPLES / "bot.py")], env=self.env, stdout=log, stderr=log
            )
        wait_until(lambda: self.output().count("Signed in as") > greeted, "the bot to sign in")

    def kill(self) -> None:
        """Killed without warning, as by a crash or an out-of-memory killer."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def replied_to(self) -> list[int]:
        """The messages the bot answered, in its log's order (each reply is logged once)."""
        return [int(found) for found in re.findall(r"Replied to message (\d+)", self.output())]


def replies(api: Api, chat: int, bot: str) -> dict[int, int]:
    """How many replies the bot posted to each message, from what the chat holds."""
    counts: dict[int, int] = {}
    for message in api.changes(chat):
        found = re.search(r"your message #(\d+)", message["text"])
        if message["user"]["username"] == bot and found:
            counts[int(found.group(1))] = counts.get(int(found.group(1)), 0) + 1
    return counts


@pytest.mark.process
def test_the_example_bot_answers_mentions_and_after_a_restart_what_it_missed(tmp_path: Path) -> None:
    """The bot answers a mention; killed, it misses two more; restarted, it resumes from its
    cursor file and answers each of those once, and nothing twice."""
    with chat_server() as (url, env):
        people = create_people(env, "alice")
        general = people["general"]
        token = create_bot(env, "helper-bot")
        alice = Api.sign_in(url, "alice")
        bot = BotProcess(url, token, tmp_path / "bot-state.json", tmp_path / "bot.log")
        try:
            bot.start()
            first = alice.post(general, "@helper-bot are you there?")
            wait_until(lambda: first["id"] in replies(alice, general, "helper-bot"), "the first reply")

            bot.kill()
            missed = [alice.post(general, f"@helper-bot question {n}") for n in (1, 2)]
            alice.post(general, "a message for people, not for the bot")
            bot.start()
            # A mention after the restart: its reply comes after the missed ones' (in order).
            last = alice.post(general, "and now, @helper-bot?")
            wait_until(lambda: last["id"] in replies(alice, general, "helper-bot"), "the last reply")

            asked = [first["id"], *(message["id"] for message in missed), last["id"]]
            assert replies(alice, general, "helper-bot") == dict.fromkeys(asked, 1)
            assert bot.replied_to() == asked
            state = json.loads((tmp_path / "bot-state.json").read_text())
            assert state[str(general)] == alice.call("GET", f"/api/chats/{general}/")["last_event"]
        finally:
            bot.stop()
        # The token revoked: the bot stops by itself, as it says it does on 4003.
        bot.start()
        bot_api = Api(url, token)
        bot_api.call("DELETE", "/api/auth/token/")
        assert bot.process is not None
        assert bot.process.wait(timeout=WAIT) == 1
        assert "Refused by the server" in bot.output()


@pytest.mark.browser
def test_the_html_client_signs_in_follows_and_posts_from_another_origin(chromium: Any) -> None:
    """examples/client.html, served from its own origin: it signs in with a password, shows a
    message posted through the API live, shows hostile text as text, and posts."""
    from playwright.sync_api import expect

    with static_files(EXAMPLES) as origin, chat_server(CORS_ALLOWED_ORIGINS=origin) as (url, env):
        people = create_people(env, "alice", "bob")
        general = people["general"]
        bob = Api.sign_in(url, "bob")
        context = chromium.new_context()
        context.set_default_timeout(WAIT * 1000)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            page.goto(f"{origin}/client.html?server={url}")
            page.get_by_label("Username").fill("alice")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("navigation", name="Chats").get_by_role("button", name="General").click()
            expect(page.get_by_role("status")).to_have_text("connected as alice")
            log = page.get_by_role("log", name="Messages")

            live = bob.post(general, "Hello from the API, live")
            expect(log.locator(f"#message-{live['id']}")).to_contain_text("Hello from the API, live")
            hostile = '<img src=x onerror="document.title=1"> & <b>bold</b>'
            shown = bob.post(general, hostile)
            expect(log.locator(f"#message-{shown['id']}")).to_contain_text(hostile)
            assert log.locator("img, b").count() == 0

            page.get_by_role("textbox", name="Message").fill("Hello from the page")
            page.get_by_role("button", name="Send").click()
            expect(log).to_contain_text("Hello from the page")
            stored = [message for message in bob.changes(general) if message["text"] == "Hello from the page"]
            assert [message["user"]["username"] for message in stored] == ["alice"]
            expect(page.get_by_role("log", name="Events")).to_contain_text(f"message.created chat {general}")
            assert errors == []
        finally:
            context.close()
