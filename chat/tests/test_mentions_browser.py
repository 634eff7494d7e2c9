"""Mentions, replies and permalinks in Chromium: alice mentions bob (choosing him from the
suggestions with the keyboard); bob, in another chat, sees the mention count rise and, on
opening the chat, the message highlighted; he replies to it, and the quote links back."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from chat.tests.test_browser import composer, create_room, messages_with, send, token, wait_for_socket
from chat.tests.test_workspace_browser import DESKTOP, entry, join, username

pytestmark = pytest.mark.browser


def test_a_mention_counts_highlights_and_gets_a_reply(sign_up) -> None:
    alice: Page = sign_up("alice", viewport=DESKTOP)
    bob: Page = sign_up("bob", viewport=DESKTOP)
    bob_name = username(bob)
    room = create_room(alice, f"Mentions {token()}")
    other = create_room(bob, f"Elsewhere {token()}")
    join(bob, room)
    bob.goto(f"/chats/{other}/")
    wait_for_socket(bob)
    alice.goto(f"/chats/{room}/")
    wait_for_socket(alice)

    # Alice types "@" and the start of bob's name; the suggestion is chosen with Enter.
    box = composer(alice)
    box.click()
    box.press_sequentially(f"look @{bob_name[:5]}")
    suggestion = alice.get_by_role("listbox", name="People to mention").get_by_role(
        "option", name=f"@{bob_name}"
    )
    expect(suggestion).to_be_visible()
    box.press("Enter")
    expect(box).to_have_value(f"look @{bob_name} ")
    box.press_sequentially("please")
    box.press("Enter")
    sent = messages_with(alice, "please")
    expect(sent.locator(".mention")).to_have_text(f"@{bob_name}")
    message_id = sent.get_attribute("data-message-id")

    # Bob, in another chat, sees the count rise.
    expect(entry(bob, room)).to_have_attribute("data-mentions", "1")
    expect(entry(bob, room).locator(".mention-badge")).to_be_visible()

    # Opening the chat: the message is highlighted for him (and only his mention is marked).
    entry(bob, room).click()
    wait_for_socket(bob)
    message = bob.locator(f"#message-{message_id}")
    chip = message.locator(".mention[data-mention]")
    expect(chip).to_have_text(f"@{bob_name}")
    background = chip.evaluate("element => getComputedStyle(element).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "transparent"), background
    assert alice.locator(".message-text .mention").evaluate(
        "element => getComputedStyle(element).backgroundColor"
    ) in ("rgba(0, 0, 0, 0)", "transparent")

    # Bob replies; alice sees the quote live, and it links to the message.
    message.hover()
    message.get_by_role("link", name="Reply").click()
    expect(bob.locator("#reply-banner")).to_be_visible()
    send(bob, "on it")
    reply = messages_with(alice, "on it")
    quote = reply.locator("a.reply-quote")
    expect(quote).to_contain_text("please")
    assert re.search(rf"\?around={message_id}#message-{message_id}$", quote.get_attribute("href") or "")
    quote.click()
    expect(alice.locator(f"#message-{message_id}")).to_be_visible()
