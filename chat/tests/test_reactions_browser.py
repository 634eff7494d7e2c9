"""Reactions and pins in a real browser: Chromium against a real daphne process.

Alice and Bob share a room; Bob reacts to Alice's message and pins it, and Alice sees
both live, her Pinned panel included. Without JavaScript the same forms post and come back.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Locator, Page, expect

from chat.tests.test_browser import create_room, messages_with, send, token, wait_for_socket
from chat.tests.test_workspace_browser import join, username

pytestmark = pytest.mark.browser

SignUp = Callable[..., Page]

expect.set_options(timeout=10_000)


def actions(message: Locator) -> Locator:
    """The message's actions, shown on hover."""
    message.hover()
    return message.get_by_role("group", name="Message actions")


def react(message: Locator, emoji: str) -> None:
    """Open the message's emoji picker and press one of its emoji."""
    menu = actions(message)
    menu.locator(".reaction-picker summary").click()
    menu.get_by_role("button", name=emoji, exact=True).click()


def test_reactions_and_pins_reach_the_author_live(sign_up: SignUp) -> None:
    alice = sign_up("alice")
    bob = sign_up("bob")
    bob_name = username(bob)
    room = create_room(alice, f"Reactions {token()}")
    wait_for_socket(alice)
    join(bob, room)
    text = f"Lunch at noon? {token()}"
    send(alice, text)
    on_alice, on_bob = messages_with(alice, text), messages_with(bob, text)
    expect(on_bob).to_have_count(1)

    # Bob reacts from the picker; Alice sees it live, named with its count and who reacted.
    react(on_bob, "👍")
    thumbs = on_alice.get_by_role("button", name=f"👍 1: {bob_name}")
    expect(thumbs).to_be_visible()
    expect(thumbs).to_have_attribute("aria-pressed", "false")
    mine = on_bob.get_by_role("button", name=f"👍 1: {bob_name}")
    expect(mine).to_have_attribute("aria-pressed", "true")
    expect(mine).to_have_attribute("title", bob_name)

    # Any emoji, typed; then Alice joins in with the same one, from its button.
    menu = actions(on_bob)
    menu.locator(".reaction-picker summary").click()
    menu.get_by_label("Any emoji").fill("🦊")
    menu.get_by_role("button", name="Add", exact=True).click()
    fox = on_alice.get_by_role("button", name=re.compile(r"^🦊 1: "))
    expect(fox).to_be_visible()
    fox.click()
    expect(on_bob.get_by_role("button", name=f"🦊 2: {bob_name}, {username(alice)}")).to_be_visible()

    # A second press takes Bob's thumbs up back, for everyone.
    mine.click()
    expect(on_alice.get_by_role("button", name=re.compile(r"^👍"))).to_have_count(0)

    # Alice has her Pinned panel open; Bob pins her message, and it appears there live.
    alice.get_by_role("link", name=re.compile(r"^Pinned")).click()
    panel = alice.get_by_role("region", name="Pinned messages")
    expect(panel).to_contain_text("Nothing is pinned yet.")
    actions(on_bob).get_by_role("button", name="Pin", exact=True).click()
    pinned = panel.get_by_role("link", name=re.compile(re.escape(text)))
    expect(pinned).to_be_visible()
    message_id = on_alice.get_attribute("data-message-id")
    expect(pinned).to_have_attribute("href", f"/chats/{room}/?around={message_id}#message-{message_id}")
    expect(on_alice).to_contain_text("Pinned")
    expect(alice.locator("#chat-pin-count")).to_have_text("1")
    expect(actions(on_bob).get_by_role("button", name="Unpin", exact=True)).to_be_visible()

    # Unpinned from Alice's panel: gone from both pages.
    panel.get_by_role("button", name=re.compile(r"^Unpin")).click()
    expect(panel).to_contain_text("Nothing is pinned yet.")
    expect(on_bob.locator(".message-pinned")).to_have_count(0)
    expect(bob.locator("#chat-pin-count")).to_have_text("")


def test_reactions_and_pins_without_javascript(sign_up: SignUp) -> None:
    """With JavaScript off the React menu leads to the picker's page, whose forms (and Pin's)
    come back to the message; a bad emoji is explained; the Pinned link is a page."""
    alice = sign_up("alice")
    room = create_room(alice, f"Plain {token()}")
    text = f"Plain forms {token()}"
    send(alice, text)
    carol = sign_up("carol", java_script_enabled=False)
    carol.goto(f"/chats/{room}/")
    carol.get_by_role("button", name="Join room").click()
    message = messages_with(carol, text)
    # The React menu holds a link to the picker's page, whose emoji are plain forms.
    menu = actions(message)
    menu.locator(".reaction-picker summary").click()
    menu.get_by_role("link", name="React").click()
    expect(carol).to_have_url(re.compile(rf"/chats/{room}/messages/\d+/react/$"))
    carol.get_by_role("button", name="🎉", exact=True).click()
    expect(carol).to_have_url(re.compile(rf"/chats/{room}/\?around=\d+#message-\d+$"))
    expect(message.get_by_role("button", name=f"🎉 1: {username(carol)}")).to_be_visible()

    menu = actions(message)
    menu.locator(".reaction-picker summary").click()
    menu.get_by_role("link", name="React").click()
    carol.get_by_label("Any emoji").fill("<b>")
    carol.get_by_role("button", name="Add", exact=True).click()
    expect(carol.get_by_role("status").filter(has_text="letters, digits, spaces and markup")).to_be_visible()

    actions(message).get_by_role("button", name="Pin", exact=True).click()
    expect(message.locator(".message-pinned")).to_have_count(1)
    carol.get_by_role("link", name=re.compile(r"^Pinned")).click()
    expect(carol).to_have_url(re.compile(rf"/chats/{room}/pins/$"))
    expect(carol.get_by_role("link", name=re.compile(re.escape(text)))).to_be_visible()
