"""The workspace in Chromium across two daphne processes sharing Redis: Alice's pages are
served by one process, Bob's by the other, and everything still reaches them live."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, expect

from chat.tests.conftest import GENEROUS_RATES, Processes, free_port, missing, unique_username
from chat.tests.test_browser import composer, create_room, send, token, wait_for_socket
from chat.tests.test_delivery import RedisServer
from chat.tests.test_workspace_browser import (
    DESKTOP,
    entry,
    join,
    sign_up_as,
    title_count,
    title_with,
    username,
)

pytestmark = pytest.mark.browser


@dataclass
class Pair:
    a: str
    b: str


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    """Two daphne processes on one database, sharing a Redis of the test's own."""
    if shutil.which("redis-server") is None:
        missing("redis-server is not installed (apt-get install -y redis-server)")
    with tempfile.TemporaryDirectory(prefix="chat-pair-") as directory:
        redis = RedisServer(directory)
        redis.start()
        env = Processes.env(
            DATABASE_URL=f"sqlite:///{directory}/db.sqlite3",
            REDIS_URL=f"redis://127.0.0.1:{redis.port}/0",
            DEBUG="true",
            ALLOWED_HOSTS="127.0.0.1",
            CHAT_LOG_LEVEL="WARNING",
            **GENEROUS_RATES,
        )
        migrated = Processes.manage(env, "migrate", "--noinput")
        assert migrated.returncode == 0, migrated.stderr
        servers: list[subprocess.Popen[bytes]] = []
        try:
            urls = []
            for _ in range(2):
                port = free_port()
                servers.append(Processes.start_daphne(env, port))
                urls.append(f"http://127.0.0.1:{port}")
            yield Pair(*urls)
        finally:
            for server in servers:
                Processes.stop(server)
            redis.stop()


def test_chat_list_typing_and_presence_across_processes(chromium: Browser, pair: Pair) -> None:
    """Bob (process B) sits in room X; Alice (process A) posts in room Y: Bob's entry for Y
    counts it, previews it and moves to the top, and his title counts it. In Y, Alice's
    typing shows on Bob's page and clears; Bob's members panel shows Alice online while
    her page is open, and offline once she has left."""
    alice = sign_up_as(chromium, pair.a, unique_username("alice"), DESKTOP)
    bob = sign_up_as(chromium, pair.b, unique_username("bob"), DESKTOP)
    y_name = f"Y {token()}"
    y = create_room(alice, y_name)
    wait_for_socket(alice)
    join(bob, y)
    x_name = f"X {token()}"
    create_room(bob, x_name)
    wait_for_socket(bob)
    before = title_count(bob)

    text = f"Across processes {token()}"
    send(alice, text)
    expect(entry(bob, y)).to_have_attribute("data-unread", "1")
    expect(entry(bob, y)).to_contain_text(text)
    expect(bob.locator("#sidebar-rooms > li").first).to_have_attribute("id", f"chat-entry-{y}")
    expect(bob).to_have_title(title_with(before + 1, x_name))

    entry(bob, y).click()
    expect(bob.get_by_role("separator", name="New messages")).to_be_visible()
    wait_for_socket(bob)
    name = username(alice)
    # Typed over a few seconds, as a person types: the page signals at most every 3 s,
    # and its last signal went out with the message above.
    composer(alice).press_sequentially("Still there? Anyone?", delay=250)
    expect(bob.get_by_role("status").filter(has_text=name)).to_have_text(f"{name} is typing…")
    expect(bob.locator("#typing-status")).to_have_text("", timeout=15_000)

    bob.goto(f"/chats/{y}/members/")
    alice_id = alice.evaluate("document.getElementById('chat-sidebar').dataset.userId")
    expect(bob.locator(f"#member-{alice_id}")).to_have_attribute("data-online", "true")
    alice.goto("/accounts/password/")
    bob.reload()
    expect(bob.locator(f"#member-{alice_id}")).to_have_attribute("data-online", "false")


def test_added_and_removed_across_processes(chromium: Browser, pair: Pair) -> None:
    """The owner (process A) adds Alice (process B) to a private room: it appears in her
    chat list live; removed while she has it open, it leaves and her page says so."""
    owner = sign_up_as(chromium, pair.a, unique_username("owner"), DESKTOP)
    alice = sign_up_as(chromium, pair.b, unique_username("alice"), DESKTOP)
    wait_for_socket(alice)
    name = username(alice)
    room_name = f"Plans {token()}"
    room = create_room(owner, room_name, visibility="Private")

    owner.goto(f"/chats/{room}/members/")
    owner.get_by_label("Add a member").fill(name)
    owner.get_by_role("button", name="Add", exact=True).click()
    expect(entry(alice, room)).to_contain_text(room_name)

    entry(alice, room).click()
    wait_for_socket(alice)
    owner.goto(f"/chats/{room}/members/")
    owner.get_by_role("button", name=f"Remove {name}").click()
    expect(alice.locator("#chat-notice")).to_have_text("You are no longer a member of this chat.")
    expect(composer(alice)).to_be_disabled()
    expect(entry(alice, room)).to_have_count(0)
