"""Pages converge to the database: after a server restart, and when a push is lost.

A daphne process of this module's own (it is killed and restarted) on a SQLite file;
messages "posted elsewhere" are saved by a separate process through the services, so
they are stored but their push reaches no page, as when a process dies between saving
and pushing.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from chat.tests.conftest import (
    GENEROUS_RATES,
    PASSWORD,
    SOCKET_STATE_SCRIPT,
    Processes,
    free_port,
    unique_username,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

SAVE_ELSEWHERE = """
import json, sys
from django.contrib.auth.models import User
from chat import services
from chat.models import Chat
user = User.objects.get(username=sys.argv[-2])
chat = Chat.objects.get(name="General")
for text in json.loads(sys.argv[-1]):
    services.post_message(chat=chat, user=user, text=text)
"""
STORED_IDS = """
import json
from chat.models import Message
ids = Message.objects.filter(chat__name="General").order_by("pk").values_list("pk", flat=True)
print(json.dumps(list(ids)))
"""


class Deployment:
    """One daphne process on a fixed port, which the test can kill and start again."""

    def __init__(self, directory: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = Processes.env(
            DATABASE_URL=f"sqlite:///{directory}/db.sqlite3",
            DEBUG="true",
            ALLOWED_HOSTS="127.0.0.1",
            **GENEROUS_RATES,
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = Processes.start_daphne(self.env, self.port)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def stored_ids(self) -> list[int]:
        return list(json.loads(Processes.python(self.env, STORED_IDS)))

    def save_elsewhere(self, username: str, *texts: str) -> None:
        Processes.python(self.env, SAVE_ELSEWHERE, username, json.dumps(texts))


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    with tempfile.TemporaryDirectory(prefix="chat-delivery-") as directory:
        deployment = Deployment(directory)
        migrated = Processes.manage(deployment.env, "migrate", "--noinput")
        assert migrated.returncode == 0, migrated.stderr
        deployment.start()
        try:
            yield deployment
        finally:
            deployment.kill()


@pytest.fixture
def open_general(chromium: Browser, deployment: Deployment) -> Iterator[Callable[[], tuple[Page, str]]]:
    """Sign up a new user and open General with its socket connected; returns the page and username."""
    from playwright.sync_api import expect

    contexts = []

    def open_general() -> tuple[Page, str]:
        context = chromium.new_context(base_url=deployment.base_url)
        context.set_default_timeout(15_000)
        context.add_init_script(SOCKET_STATE_SCRIPT)
        contexts.append(context)
        page = context.new_page()
        username = unique_username("member")
        page.goto("/accounts/signup/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Password confirmation").fill(PASSWORD)
        page.get_by_role("button", name="Sign up").click()
        page.get_by_role("link", name="General").click()
        expect(page.locator("html")).to_have_attribute("data-chat-socket", "open")
        return page, username

    yield open_general
    for context in contexts:
        context.close()


def shown_ids(page: Page) -> list[int]:
    ids: list[Any] = page.eval_on_selector_all(
        "#messages article", "els => els.map(e => +e.dataset.messageId)"
    )
    return [int(i) for i in ids]


def send(page: Page, text: str) -> None:
    from playwright.sync_api import expect

    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("log", name="Messages").get_by_text(text, exact=True)).to_be_visible()


def converge(page: Page, expected: list[int]) -> None:
    """Wait until the page shows exactly these messages, in this order."""
    page.wait_for_function(
        "ids => JSON.stringify([...document.querySelectorAll('#messages article')]"
        ".map(e => +e.dataset.messageId)) === JSON.stringify(ids)",
        arg=expected,
        timeout=20_000,
    )


def test_pages_converge_after_a_server_restart(deployment, open_general):
    """Two open pages reconnect after the server is killed and restarted, and without a reload
    show exactly the database's messages, including those saved while they were away."""
    alice, _ = open_general()
    bob, bob_name = open_general()
    send(alice, "before the restart")
    deployment.kill()
    deployment.save_elsewhere(bob_name, "while the server was down 1", "while the server was down 2")
    for page in (alice, bob):
        page.evaluate("window.notReloaded = true")
    deployment.start()
    expected = deployment.stored_ids()
    assert len(expected) == 3
    for page in (alice, bob):
        converge(page, expected)
        assert page.evaluate("window.notReloaded") is True
    send(bob, "after the restart")
    converge(alice, deployment.stored_ids())


def test_connected_page_fills_a_lost_push(deployment, open_general):
    """A message saved without its push (lost between saving and pushing) appears on a connected
    page, in order, when the next push shows the gap."""
    alice, alice_name = open_general()
    bob, _ = open_general()
    send(alice, "first")
    deployment.save_elsewhere(alice_name, "lost push")
    # Its push is lost indeed: a second later (a push takes milliseconds here), Bob's page
    # still shows only the first message.
    bob.wait_for_timeout(1000)
    assert len(shown_ids(bob)) == 1
    send(alice, "third")
    expected = deployment.stored_ids()
    assert len(expected) == 3
    converge(bob, expected)
    converge(alice, expected)
    assert bob.get_by_role("log", name="Messages").get_by_text("lost push").is_visible()


def test_edits_and_deletions_reach_other_pages_live(deployment, open_general):
    """An edit and a deletion by the author show on another member's open page without a reload."""
    from playwright.sync_api import expect

    alice, _ = open_general()
    bob, _ = open_general()
    send(alice, "teh typo")
    [message_id] = deployment.stored_ids()
    bob_log = bob.get_by_role("log", name="Messages")
    assert bob.locator(f"#message-{message_id} .message-edit").is_hidden()
    alice.locator(f"#message-{message_id}").get_by_role("link", name="Edit").click()
    alice.get_by_role("textbox", name="Edit message").fill("the typo, fixed")
    alice.get_by_role("button", name="Save").click()
    expect(bob_log.get_by_text("the typo, fixed")).to_be_visible()
    expect(bob.locator(f"#message-{message_id}")).to_contain_text("(edited)")
    expect(alice.locator("html")).to_have_attribute("data-chat-socket", "open")
    alice.on("dialog", lambda dialog: dialog.accept())
    alice.locator(f"#message-{message_id}").get_by_role("button", name="Delete").click()
    expect(bob.locator(f"#message-{message_id}")).to_contain_text("This message was deleted.")
    expect(alice.locator(f"#message-{message_id}")).to_contain_text("This message was deleted.")
    expect(bob_log.get_by_text("the typo, fixed")).to_have_count(0)
