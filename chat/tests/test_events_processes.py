"""The event stream for programs, end to end: a bot with a token follows a room that a person
changes from the page in Chromium, on one daphne process, and with the bot and the browser
on two daphne processes that share Redis and one database.

The bot sees, in order and once each: a message posted from the page's form, an edit made
in the page, a deletion through the API and a member added from the page. Then it is away
for ten seconds while three more changes happen, and on reconnecting with its cursors it
gets exactly those three before anything new (a message posted while it signs in again).

Also here: the benchmark's `events` scenario at its small size, which delivers every
message to every token client of the chat exactly once.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from websockets.sync.client import ClientConnection, connect

from chat.tests.conftest import GENEROUS_RATES, Processes, free_port, missing, unique_username
from chat.tests.test_bench import assert_all_delivered_once, run_bench
from chat.tests.test_browser import composer, create_room, messages_with, send, token, wait_for_socket
from chat.tests.test_delivery import RedisServer
from chat.tests.test_examples import WAIT, Api, create_people
from chat.tests.test_workspace_browser import DESKTOP, sign_up_as

# The bot's real time away, as the issue asks.
AWAY_SECONDS = 10.0
# After the bot has what it waited for, frames of the room that arrive within this long
# would be duplicates: there must be none.
QUIET_SECONDS = 1.0


@dataclass
class Servers:
    page: str  # the daphne the browser (and the person's API calls) use
    bot: str  # the daphne the bot's socket uses
    env: dict[str, str]


@pytest.fixture(scope="module", params=["one process", "two processes and Redis"])
def servers(request: pytest.FixtureRequest) -> Iterator[Servers]:
    """One daphne; or two on one SQLite database, sharing a Redis of the test's own."""
    shared = request.param != "one process"
    if shared and shutil.which("redis-server") is None:
        missing("redis-server is not installed (apt-get install -y redis-server)")
    with tempfile.TemporaryDirectory(prefix="chat-events-") as directory:
        settings = {
            "DATABASE_URL": f"sqlite:///{directory}/db.sqlite3",
            "DEBUG": "true",
            "ALLOWED_HOSTS": "127.0.0.1",
            "CHAT_LOG_LEVEL": "WARNING",
            **GENEROUS_RATES,
        }
        redis = RedisServer(directory) if shared else None
        if redis is not None:
            redis.start()
            settings["REDIS_URL"] = f"redis://127.0.0.1:{redis.port}/0"
        env = Processes.env(**settings)
        running: list[subprocess.Popen[bytes]] = []
        try:
            migrated = Processes.manage(env, "migrate", "--noinput")
            assert migrated.returncode == 0, migrated.stderr
            urls = []
            for _ in range(2 if shared else 1):
                port = free_port()
                running.append(Processes.start_daphne(env, port))
                urls.append(f"http://127.0.0.1:{port}")
            yield Servers(page=urls[0], bot=urls[-1], env=env)
        finally:
            for process in running:
                Processes.stop(process)
            if redis is not None:
                redis.stop()


class EventStream:
    """A program on /ws/events/: signs in with its token, keeps a cursor per chat."""

    def __init__(self, base_url: str, key: str) -> None:
        self.url = base_url.replace("http://", "ws://") + "/ws/events/"
        self.key = key
        self.cursors: dict[str, int] = {}
        self.socket: ClientConnection | None = None
        self.opened = contextlib.ExitStack()

    def sign_in(self, *, resume: bool) -> None:
        """Open the socket and send the first frame (with the cursors when resuming)."""
        self.socket = self.opened.enter_context(connect(self.url, open_timeout=WAIT))
        first: dict[str, Any] = {"type": "auth", "token": self.key}
        if resume:
            first["cursors"] = self.cursors
        self.socket.send(json.dumps(first))

    def hello(self) -> dict[str, Any]:
        hello = self.next()
        assert hello["type"] == "hello", hello
        self.cursors = dict(hello["chats"])
        return hello

    def next(self, timeout: float = WAIT) -> dict[str, Any]:
        assert self.socket is not None
        frame = json.loads(self.socket.recv(timeout=timeout))
        if "event" in frame:
            self.cursors[str(frame["chat"])] = frame["event"]
        return dict(frame)

    def events_of(self, chat: int, count: int) -> list[dict[str, Any]]:
        """The next `count` events of a chat (other chats' events go by, cursors kept)."""
        found: list[dict[str, Any]] = []
        while len(found) < count:
            frame = self.next()
            assert frame["type"] != "resync", frame
            if frame.get("chat") == chat:
                found.append(frame)
        return found

    def nothing_more_of(self, chat: int) -> None:
        """No other frame of the chat is on its way (a duplicate would be)."""
        deadline = time.monotonic() + QUIET_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            try:
                frame = self.next(timeout=left)
            except TimeoutError:
                return
            assert frame.get("chat") != chat, f"unexpected {frame}"

    def close(self) -> None:
        self.opened.close()
        self.socket = None


def message_id(page: Page, text: str) -> int:
    value = messages_with(page, text).get_attribute("data-message-id")
    assert value, text
    return int(value)


def edit_in_page(page: Page, text: str, fixed: str) -> None:
    """Edit one's message in place: its Edit action, the field, Enter."""
    mine = messages_with(page, text)
    mine.hover()
    mine.get_by_role("link", name="Edit").click()
    field = page.get_by_role("textbox", name="Edit message")
    # The page focuses the field (its text selected to the end) once it is in: then type.
    expect(field).to_be_focused()
    field.fill(fixed)
    expect(field).to_have_value(fixed)
    field.press("Enter")
    expect(messages_with(page, fixed)).to_have_count(1)
    expect(field).to_have_count(0)


def add_in_page(page: Page, room: int, username: str, user_id: int) -> None:
    page.goto(f"/chats/{room}/members/")
    page.get_by_label("Add a member").fill(username)
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator(f"#member-{user_id}")).to_be_visible()


@pytest.mark.browser
def test_a_bot_follows_a_room_in_order_and_catches_up_after_ten_seconds_away(
    chromium: Browser, servers: Servers
) -> None:
    """In order and once each: a post from the page's form, an edit in the page, a deletion
    through the API, a member added in the page. After ten seconds away, during which three
    more changes happen, the bot's cursors bring exactly those three, then what is new."""
    alice_name = unique_username("alice")
    alice = sign_up_as(chromium, servers.page, alice_name, DESKTOP)
    room = create_room(alice, f"Events {token()}")
    wait_for_socket(alice)
    alice_api = Api.sign_in(servers.page, alice_name)
    made = alice_api.call("POST", "/api/bots/", {"username": unique_username("bot")})
    Api(servers.bot, made["token"]).call("POST", f"/api/chats/{room}/join/")
    carol_name = unique_username("carol")
    carol_id = create_people(servers.env, carol_name)["people"][carol_name]

    bot = EventStream(servers.bot, made["token"])
    bot.sign_in(resume=False)
    start = bot.hello()["chats"][str(room)]

    # Four changes through three doors: the page's form, the page's edit, the API, the page's members form.
    posted = f"From the form {token()}"
    send(alice, posted)
    expect(messages_with(alice, posted)).to_have_count(1)
    fixed = f"Edited in the page {token()}"
    edit_in_page(alice, posted, fixed)
    posted_id = message_id(alice, fixed)
    alice_api.call("DELETE", f"/api/messages/{posted_id}/")
    add_in_page(alice, room, carol_name, carol_id)

    seen = bot.events_of(room, 4)
    assert [event["type"] for event in seen] == [
        "message.created",
        "message.updated",
        "message.deleted",
        "member.added",
    ]
    assert [event["event"] for event in seen] == [start + 1, start + 2, start + 3, start + 4]
    assert [seen[0]["message"]["text"], seen[1]["message"]["text"]] == [posted, fixed]
    assert {event["message"]["id"] for event in seen[:3]} == {posted_id}
    assert seen[0]["message"]["user"]["username"] == alice_name
    assert seen[2]["message"]["deleted"] is True and seen[2]["message"]["text"] == ""
    assert seen[3]["user"] == {"id": carol_id, "username": carol_name}
    assert seen[3]["by"]["username"] == alice_name
    # The tombstone is the one the REST change feed shows.
    assert [seen[2]["message"]] == [
        message for message in alice_api.changes(room, since=start + 2) if message["id"] == posted_id
    ]
    bot.nothing_more_of(room)

    # Away for ten seconds while three more changes happen.
    bot.close()
    left = time.monotonic()
    away = f"While the bot was away {token()}"
    alice.goto(f"/chats/{room}/")
    wait_for_socket(alice)
    send(alice, away)
    expect(messages_with(alice, away)).to_have_count(1)
    away_id = message_id(alice, away)
    alice_api.call("PATCH", f"/api/messages/{away_id}/", {"text": f"{away}, edited"})
    alice_api.call("DELETE", f"/api/chats/{room}/members/{carol_id}/")
    time.sleep(max(0.0, left + AWAY_SECONDS - time.monotonic()))

    # Back with its cursors; something new happens while it signs in.
    cursor = bot.cursors[str(room)]
    assert cursor == start + 4
    bot.sign_in(resume=True)
    new = alice_api.post(room, f"New, after the bot came back {token()}")
    assert bot.hello()["chats"][str(room)] == cursor
    caught_up = bot.events_of(room, 4)
    assert [event["type"] for event in caught_up] == [
        "message.created",
        "message.updated",
        "member.removed",
        "message.created",
    ]
    assert [event["event"] for event in caught_up] == [cursor + 1, cursor + 2, cursor + 3, cursor + 4]
    assert [event["message"]["id"] for event in (caught_up[0], caught_up[1], caught_up[3])] == [
        away_id,
        away_id,
        new["id"],
    ]
    assert caught_up[1]["message"]["text"] == f"{away}, edited"
    assert caught_up[2]["user"]["id"] == carol_id
    bot.nothing_more_of(room)
    bot.close()
    expect(composer(alice)).to_be_enabled()


@pytest.mark.process
def test_the_benchmarks_event_stream_delivers_every_message_to_every_token_client_once(
    tmp_path: Path,
) -> None:
    """`python -m bench.run --small --only events`: token clients on /ws/events/ of one chat."""
    scenarios = run_bench(tmp_path, "--only", "events")
    assert_all_delivered_once(scenarios, ["events"])
    assert scenarios["events"]["daphne"]["distinct_frames_per_event"] == 1
