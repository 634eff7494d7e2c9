"""The workspace in a real browser: the chat list beside the conversation, live; reading,
typing, edit in place and the small things; and all of it without JavaScript.

One daphne process (the `server` fixture) serves the whole session; every test signs up
its own people and rooms, so it finds its chats and messages by names no other test uses.
Nothing here asserts a time: each step waits for what the page shows.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Locator, Page, expect

from chat.tests.conftest import PASSWORD, PROJECT_ROOT, SOCKET_STATE_SCRIPT
from chat.tests.test_browser import (
    chat_id,
    composer,
    create_room,
    csrf_token,
    log,
    messages,
    messages_with,
    send,
    send_button,
    token,
    wait_for_socket,
)

pytestmark = pytest.mark.browser

SignUp = Callable[..., Page]

expect.set_options(timeout=10_000)

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# A read receipt leaves the page within half a second of a message being on screen; a
# check that none was sent waits longer than that.
RECEIPT_WINDOW_MS = 1500


def username(page: Page) -> str:
    """The signed-in person's name, as the header shows it."""
    name = page.get_by_role("navigation", name="Main").locator("strong").text_content()
    assert name
    return name


def sidebar(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Chats")


def entry(page: Page, chat: int) -> Locator:
    """The chat's link in the person's chat list."""
    return sidebar(page).locator(f'a[data-chat-id="{chat}"]')


def title_count(page: Page) -> int:
    """The total unread count that the tab's title starts with (0 when it has none)."""
    match = re.match(r"^\((\d+)\) ", page.title())
    return int(match.group(1)) if match else 0


def title_with(count: int, rest: str) -> re.Pattern[str]:
    prefix = rf"\({count}\) " if count else ""
    return re.compile(rf"^{prefix}{re.escape(rest)}")


def join(page: Page, room: int) -> None:
    page.goto(f"/chats/{room}/")
    page.get_by_role("button", name="Join room").click()
    expect(composer(page)).to_be_visible()
    wait_for_socket(page)


def post(page: Page, room: int, text: str) -> None:
    """Post by a plain form post from the page's session: quick, for history."""
    response = page.request.post(
        f"/chats/{room}/messages/",
        form={"text": text},
        headers={"X-CSRFToken": csrf_token(page)},
        max_redirects=0,
    )
    assert response.status == 302, response.text()


def server_unread(page: Page, room: int) -> str | None:
    """The chat's unread count as the server renders it now (the page goes to /chats/)."""
    page.goto("/chats/")
    return entry(page, room).get_attribute("data-unread")


def test_chat_list_follows_messages_in_other_chats(sign_up: SignUp) -> None:
    """Bob sits in room X; Alice posts in room Y: without a reload, Bob's entry for Y shows
    the count and the preview and moves to the top, and his tab title counts it. Bob opens
    Y: a "New messages" divider stands above the message, and once seen it is read."""
    alice = sign_up("alice")
    bob = sign_up("bob", viewport=DESKTOP)
    y_name = f"Y {token()}"
    y = create_room(alice, y_name)
    wait_for_socket(alice)
    join(bob, y)
    x_name = f"X {token()}"
    create_room(bob, x_name)
    wait_for_socket(bob)
    bob.evaluate("window.sameDocument = true")
    expect(entry(bob, y)).to_have_attribute("data-unread", "0")
    before = title_count(bob)

    text = f"Lunch at noon? {token()}"
    send(alice, text)
    expect(entry(bob, y)).to_have_attribute("data-unread", "1")
    expect(entry(bob, y).locator(".unread-badge")).to_be_visible()
    expect(entry(bob, y)).to_contain_text(text)
    expect(bob.locator("#sidebar-rooms > li").first).to_have_attribute("id", f"chat-entry-{y}")
    expect(bob).to_have_title(title_with(before + 1, x_name))
    assert bob.evaluate("window.sameDocument") is True
    # Alice's own entry counts nothing for her own message.
    expect(entry(alice, y)).to_have_attribute("data-unread", "0")

    entry(bob, y).click()
    expect(bob.get_by_role("heading", level=1)).to_have_text(y_name)
    expect(bob.get_by_role("separator", name="New messages")).to_be_visible()
    expect(bob.locator("#new-messages + article")).to_contain_text(text)
    expect(entry(bob, y)).to_have_attribute("aria-current", "page")
    expect(entry(bob, y)).to_have_attribute("data-unread", "0")
    expect(bob).to_have_title(title_with(before, y_name))

    # With Y open, Bob's page gets Alice's next message alone and updates Y's entry itself.
    wait_for_socket(bob)
    later = f"And again {token()}"
    send(alice, later)
    expect(messages_with(bob, later)).to_have_count(1)
    expect(entry(bob, y).locator(".entry-preview")).to_have_text(f"{username(alice)}: {later}")
    expect(bob.locator("#sidebar-rooms > li").first).to_have_attribute("id", f"chat-entry-{y}")


def test_typing_shows_and_clears(sign_up: SignUp) -> None:
    """While Alice types, Bob's page says so in a status; it goes a few seconds after she
    stops, and at once when her message arrives. Alice is not told about herself."""
    alice = sign_up("alice")
    bob = sign_up("bob")
    room = create_room(alice, f"Typing {token()}")
    wait_for_socket(alice)
    join(bob, room)
    name = username(alice)
    typing = bob.get_by_role("status").filter(has_text=name)

    composer(alice).press_sequentially("Hel")
    expect(typing).to_have_text(f"{name} is typing…")
    expect(alice.locator("#typing-status")).to_have_text("")
    # Gone a few seconds after the last signal.
    expect(bob.locator("#typing-status")).to_have_text("", timeout=15_000)

    composer(alice).press_sequentially("lo there")
    expect(typing).to_have_count(1)
    composer(alice).press("Enter")
    expect(messages_with(bob, "Hello there")).to_have_count(1)
    expect(bob.locator("#typing-status")).to_have_text("")


def test_scrolled_up_reader_keeps_unseen_messages_unread(sign_up: SignUp) -> None:
    """A reader scrolled up when a message arrives keeps their place; a "Jump to latest"
    button counts what came; the message stays unread, on the page and on the server,
    until it has been on screen."""
    alice = sign_up("alice")
    bob = sign_up("bob", viewport={"width": 1280, "height": 600})
    room = create_room(alice, f"History {token()}")
    wait_for_socket(alice)
    bob.goto(f"/chats/{room}/")
    bob.get_by_role("button", name="Join room").click()
    for number in range(1, 31):
        post(alice, room, f"Earlier message {number:02}")
    bob.reload()
    wait_for_socket(bob)
    bob_log = log(bob)
    bob_log.evaluate("log => { log.scrollTop = log.scrollHeight; }")
    expect(entry(bob, room)).to_have_attribute("data-unread", "0")
    bob_log.evaluate("log => { log.scrollTop = 0; }")
    expect(messages_with(bob, "Earlier message 30")).not_to_be_in_viewport()
    place = bob_log.evaluate("log => log.scrollTop")
    before = title_count(bob)

    unseen = f"Arrived below {token()}"
    send(alice, unseen)
    expect(messages_with(bob, unseen)).to_have_count(1)
    expect(bob.get_by_role("button", name="Jump to latest (1 new)")).to_be_visible()
    expect(entry(bob, room)).to_have_attribute("data-unread", "1")
    expect(bob).to_have_title(title_with(before + 1, "History"))
    assert bob_log.evaluate("log => log.scrollTop") == place
    expect(messages_with(bob, unseen)).not_to_be_in_viewport()
    # Nothing reports it read: a receipt would have left by now.
    bob.wait_for_timeout(RECEIPT_WINDOW_MS)
    assert server_unread(bob, room) == "1"

    # Back in the room, the view starts at it, and once it is seen it is read.
    entry(bob, room).click()
    expect(bob.locator("#new-messages + article")).to_contain_text(unseen)
    expect(messages_with(bob, unseen)).to_be_in_viewport()
    expect(entry(bob, room)).to_have_attribute("data-unread", "0")
    later = f"Another one {token()}"
    log(bob).evaluate("log => { log.scrollTop = 0; }")
    send(alice, later)
    jump = bob.get_by_role("button", name="Jump to latest (1 new)")
    expect(jump).to_be_visible()
    jump.click()
    expect(messages_with(bob, later)).to_be_in_viewport()
    expect(jump).to_be_hidden()
    expect(entry(bob, room)).to_have_attribute("data-unread", "0")


def test_added_and_removed_member_sees_it_live(sign_up: SignUp) -> None:
    """The owner adds Alice to a private room: it appears in her chat list without a
    reload. Removed while she has it open, it leaves her list and her page says so and
    disables the composer."""
    alice = sign_up("alice")
    owner = sign_up("owner")
    name = username(alice)
    wait_for_socket(alice)
    room_name = f"Plans {token()}"
    room = create_room(owner, room_name, visibility="Private")
    expect(entry(alice, room)).to_have_count(0)

    owner.goto(f"/chats/{room}/members/")
    owner.get_by_label("Add a member").fill(name)
    owner.get_by_role("button", name="Add", exact=True).click()
    expect(entry(alice, room)).to_have_count(1)
    expect(entry(alice, room)).to_contain_text(room_name)

    entry(alice, room).click()
    expect(alice.get_by_role("heading", level=1)).to_have_text(room_name)
    wait_for_socket(alice)
    owner.goto(f"/chats/{room}/members/")
    owner.get_by_role("button", name=f"Remove {name}").click()
    expect(alice.locator("#chat-notice")).to_have_text("You are no longer a member of this chat.")
    expect(alice.locator("#chat-notice")).to_have_attribute("role", "alert")
    expect(composer(alice)).to_be_disabled()
    expect(send_button(alice)).to_be_disabled()
    expect(entry(alice, room)).to_have_count(0)
    expect(alice.locator("#connection-status")).to_have_text("")


def test_edit_in_place_and_delete_with_a_dialog(sign_up: SignUp) -> None:
    """Edit turns the message into a small form: Escape puts it back, Enter saves it for
    everyone. Delete asks first. The actions are one small menu per message, with targets
    of at least 24 px, shown on hover and on keyboard focus."""
    alice = sign_up("alice", viewport=DESKTOP)
    bob = sign_up("bob")
    room = create_room(alice, f"Edits {token()}")
    wait_for_socket(alice)
    join(bob, room)
    text = f"teh typo {token()}"
    send(alice, text)
    mine = messages_with(alice, text)
    expect(messages_with(bob, text)).to_have_count(1)

    actions = mine.get_by_role("group", name="Message actions")
    expect(actions).to_have_css("opacity", "0")
    mine.hover()
    expect(actions).to_have_css("opacity", "1")
    for control in (actions.get_by_role("link", name="Edit"), actions.get_by_role("button", name="Delete")):
        box = control.bounding_box()
        assert box and box["width"] >= 24 and box["height"] >= 24, box
    # Others' messages offer Alice nothing; her own offer nothing to Bob.
    expect(messages_with(bob, text).get_by_role("link", name="Edit")).to_be_hidden()

    edit = mine.get_by_role("link", name="Edit")
    edit.click()
    field = alice.get_by_role("textbox", name="Edit message")
    expect(field).to_be_focused()
    field.fill("discarded")
    field.press("Escape")
    expect(field).to_have_count(0)
    expect(mine).to_contain_text(text)
    expect(edit).to_be_focused()

    edit.click()
    fixed = f"the typo, fixed {token()}"
    alice.get_by_role("textbox", name="Edit message").fill(fixed)
    alice.get_by_role("textbox", name="Edit message").press("Enter")
    expect(messages_with(bob, fixed)).to_contain_text("(edited)")
    expect(messages_with(alice, fixed)).to_have_count(1)
    expect(alice.get_by_role("textbox", name="Edit message")).to_have_count(0)

    questions: list[str] = []

    def answer(dialog: Dialog) -> None:
        questions.append(dialog.message)
        dialog.accept()

    alice.once("dialog", answer)
    element_id = messages_with(alice, fixed).get_attribute("id")
    messages_with(alice, fixed).hover()
    messages_with(alice, fixed).get_by_role("button", name="Delete").click()
    for page in (alice, bob):
        expect(page.locator(f"#{element_id}")).to_contain_text("This message was deleted.")
    assert questions == ["Delete this message for everyone?"]


def test_conversation_is_grouped_by_author_and_day(sign_up: SignUp) -> None:
    """A run of one author's messages shows the name and time once (still there for screen
    readers); a day separator says "Today"; each message has the author's initials on a
    colour that is the same on every page."""
    alice = sign_up("alice")
    bob = sign_up("bob")
    room = create_room(alice, f"Groups {token()}")
    wait_for_socket(alice)
    join(bob, room)
    for text in ("One", "Two"):
        send(alice, text)
        expect(messages_with(bob, text)).to_have_count(1)
    send(bob, "Three")
    expect(messages_with(alice, "Three")).to_have_count(1)

    for page in (alice, bob):
        expect(page.get_by_role("separator", name="Today")).to_have_count(1)
        first, second, third = (messages_with(page, text) for text in ("One", "Two", "Three"))
        expect(first.locator(".message-author")).to_be_visible()
        expect(second).to_have_class(re.compile(r"\bmessage-grouped\b"))
        expect(second.locator(".message-author")).to_be_hidden()
        expect(second.locator(".message-author")).to_have_text(username(alice))
        expect(third.locator(".message-author")).to_be_visible()
    colours = {
        messages_with(page, "One")
        .locator(".message-avatar")
        .evaluate("el => getComputedStyle(el).backgroundColor")
        for page in (alice, bob)
    }
    assert len(colours) == 1


def test_keyboard_menus_and_notices(sign_up: SignUp) -> None:
    """The composer has the focus when a chat opens on a desktop; the Room menu closes on
    Escape and on a click outside; a notice floats, and can be dismissed."""
    bob = sign_up("bob", viewport=DESKTOP)
    room_name = f"Keys {token()}"
    room = create_room(bob, room_name)
    wait_for_socket(bob)
    bob.goto(f"/chats/{room}/")
    expect(composer(bob)).to_be_focused()

    menu = bob.locator("details.room-menu")
    leave = bob.get_by_role("button", name=f"Leave {room_name}")
    summary = menu.locator("summary")
    summary.click()
    expect(leave).to_be_visible()
    bob.keyboard.press("Escape")
    expect(leave).to_be_hidden()
    expect(summary).to_be_focused()
    summary.click()
    expect(leave).to_be_visible()
    log(bob).click()
    expect(leave).to_be_hidden()

    summary.click()
    leave.click()
    expect(bob).to_have_url(re.compile(r"/chats/$"))
    notice = bob.get_by_role("status").filter(has_text=f"You left {room_name}.")
    # It floats over the page rather than pushing it down.
    expect(bob.locator("#notices")).to_have_css("position", "fixed")
    notice.get_by_role("button", name="Dismiss").click()
    expect(notice).to_have_count(0)


def test_notification_for_a_direct_message_while_hidden(sign_up: SignUp) -> None:
    """With "Notify me" on, a direct message that arrives while the tab is hidden shows a
    notification with the chat's name and the preview; the choice is remembered."""
    # A stand-in for the browser's Notification API and for a hidden tab: headless
    # Chromium has neither a notification centre nor a way to hide a tab.
    fake = """
    window.shown = [];
    window.tabHidden = false;
    Object.defineProperty(document, "visibilityState", {
      get: () => (window.tabHidden ? "hidden" : "visible"),
    });
    window.Notification = class {
      constructor(title, options) { window.shown.push({ title, body: options.body }); }
      close() {}
      static get permission() { return localStorage.getItem("fake-permission") || "default"; }
      static requestPermission() {
        localStorage.setItem("fake-permission", "granted");
        return Promise.resolve("granted");
      }
    };
    """
    alice = sign_up("alice")
    bob = sign_up("bob")
    bob.add_init_script(fake)
    bob.reload()
    notify = bob.get_by_role("button", name="Notify me")
    expect(notify).to_have_attribute("aria-pressed", "false")
    notify.click()
    expect(notify).to_have_attribute("aria-pressed", "true")
    bob.reload()
    expect(notify).to_have_attribute("aria-pressed", "true")
    wait_for_socket(bob)

    alice.get_by_label("Message someone directly").fill(username(bob))
    alice.get_by_role("button", name="Open chat").click()
    wait_for_socket(alice)
    direct = chat_id(alice)
    expect(entry(bob, direct)).to_have_count(1)
    bob.evaluate("window.tabHidden = true")
    text = f"Are you there? {token()}"
    send(alice, text)
    expect(entry(bob, direct)).to_have_attribute("data-unread", "1")
    shown = bob.evaluate("window.shown")
    assert len(shown) == 1
    assert username(alice) in shown[0]["title"] and text in shown[0]["body"]


def test_the_workspace_without_javascript(sign_up: SignUp) -> None:
    """With JavaScript off: the chat list links to each chat with its unread count, opening
    a chat marks it read, and editing and deleting go through their pages."""
    alice = sign_up("alice")
    carol = sign_up("carol", java_script_enabled=False)
    room_name = f"Plain {token()}"
    room = create_room(alice, room_name)
    wait_for_socket(alice)
    carol.goto(f"/chats/{room}/")
    carol.get_by_role("button", name="Join room").click()
    expect(composer(carol)).to_be_visible()
    hello = f"Hello Carol {token()}"
    send(alice, hello)
    # On Alice's page once it is stored.
    expect(messages_with(alice, hello)).to_have_count(1)
    carol.goto("/chats/")
    expect(entry(carol, room)).to_have_attribute("data-unread", "1")

    # The sidebar's link opens the chat; the page counts as read.
    with carol.expect_response(re.compile(rf"/chats/{room}/read/\?up_to=\d+$")) as pixel:
        entry(carol, room).click()
    assert pixel.value.status == 200
    expect(carol.get_by_role("heading", level=1)).to_have_text(room_name)
    expect(sidebar(carol)).to_be_visible()
    assert server_unread(carol, room) == "0"

    entry(carol, room).click()
    text = f"Posted plainly {token()}"
    send(carol, text)
    mine = messages_with(carol, text)
    mine.get_by_role("link", name="Edit").click()
    expect(carol.get_by_role("heading", level=1)).to_contain_text("Edit your message")
    carol.get_by_label("Message").fill(f"{text}, edited")
    carol.get_by_role("button", name="Save").click()
    expect(messages_with(carol, f"{text}, edited")).to_contain_text("(edited)")

    messages_with(carol, f"{text}, edited").get_by_role("button", name="Delete").click()
    expect(carol.get_by_role("heading", level=1)).to_have_text("Delete this message?")
    carol.get_by_role("button", name="Delete").click()
    expect(carol.get_by_role("heading", level=1)).to_have_text(room_name)
    expect(messages_with(carol, f"{text}, edited")).to_have_count(0)
    expect(messages(carol).last).to_contain_text("This message was deleted.")


def test_phone_shows_list_and_conversation_apart(sign_up: SignUp) -> None:
    """At phone width the chat list is its own screen, and the conversation another with
    a way back; neither scrolls sideways, the composer stays on screen, and a skip link
    leads to it."""
    phone = sign_up("phone", viewport=PHONE)
    expect(sidebar(phone)).to_be_visible()
    sidebar(phone).get_by_role("link", name=re.compile(r"^General\b")).click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("General")
    expect(sidebar(phone)).to_be_hidden()
    expect(phone.get_by_role("link", name="All chats")).to_be_visible()
    # No focus is moved on a phone (its keyboard would cover the chat); the first Tab
    # offers a way past the header to the composer.
    phone.keyboard.press("Tab")
    skip = phone.get_by_role("link", name="Skip to the composer")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    phone.keyboard.press("Enter")
    expect(composer(phone)).to_be_focused()
    for element in (composer(phone), send_button(phone)):
        expect(element).to_be_in_viewport()
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    wide = sign_up("wide", viewport=DESKTOP)
    sidebar(wide).get_by_role("link", name=re.compile(r"^General\b")).click()
    expect(sidebar(wide)).to_be_visible()
    expect(wide.get_by_role("link", name="All chats")).to_be_hidden()
    # The conversation takes the width beside the list: no wide empty margins.
    chat_box = wide.locator("#chat").bounding_box()
    assert chat_box and chat_box["x"] + chat_box["width"] >= DESKTOP["width"] - 1


# ---- Screenshots for the README ----

CONVERSATION = [
    ("alice", "Morning! Did the deploy go out?"),
    ("bob", "Yes, about ten minutes ago. Two daphne processes behind the proxy now."),
    ("bob", "I restarted one mid-chat: the pages reconnected and caught up by themselves."),
    ("alice", "Nice. And the chat list on the left updates live too?"),
    ("carol", "It does: counts, previews and order. Try posting in Design."),
    ("alice", "Lunch at 12? I'd like to go through the new sidebar with you both."),
]


def sign_up_as(chromium: Browser, server: str, name: str, viewport: dict[str, int]) -> Page:
    """A new account with exactly this name (the screenshots show it)."""
    page = new_page(chromium, server, viewport)
    page.goto("/accounts/signup/")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(f"{server}/chats/")
    return page


def log_in_as(chromium: Browser, server: str, name: str, viewport: dict[str, int]) -> Page:
    page = new_page(chromium, server, viewport)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{server}/chats/")
    return page


def new_page(chromium: Browser, server: str, viewport: dict[str, int]) -> Page:
    context = chromium.new_context(base_url=server, viewport=viewport)  # type: ignore[arg-type]
    context.set_default_timeout(10_000)
    context.add_init_script(SOCKET_STATE_SCRIPT)
    return context.new_page()


def test_screenshots(chromium: Browser, server: str, tmp_path: Path) -> None:
    """A realistic conversation at desktop (1280x800) and phone (390x844) width. With
    SCREENSHOTS=docs (on a fresh server) they are written to docs/ for the README, with
    plain names; otherwise the names carry a suffix, since the server is shared."""
    to_docs = os.environ.get("SCREENSHOTS") == "docs"
    suffix = "" if to_docs else token()[:4]
    names = {person: f"{person}{suffix}" for person in ("alice", "bob", "carol")}
    alice = sign_up_as(chromium, server, names["alice"], DESKTOP)
    bob = sign_up_as(chromium, server, names["bob"], DESKTOP)
    carol = sign_up_as(chromium, server, names["carol"], DESKTOP)
    pages = {"alice": alice, "bob": bob, "carol": carol}
    deploys = create_room(alice, f"Deploys{suffix}")
    design = create_room(carol, f"Design{suffix}")
    for page in (bob, carol):
        page.goto(f"/chats/{deploys}/")
        page.get_by_role("button", name="Join room").click()
    for page in (alice, bob):
        page.goto(f"/chats/{design}/")
        page.get_by_role("button", name="Join room").click()
    post(carol, design, "New mock-ups for the sidebar are in the shared folder.")
    post(bob, design, "Love the unread badges.")
    bob.goto("/chats/")
    bob.get_by_label("Message someone directly").fill(names["alice"])
    bob.get_by_role("button", name="Open chat").click()
    post(bob, chat_id(bob), "Can you review my pull request after lunch?")
    for page in pages.values():
        page.goto(f"/chats/{deploys}/")
        wait_for_socket(page)
    for person, text in CONVERSATION:
        send(pages[person], text)
        for page in pages.values():
            expect(messages_with(page, text)).to_have_count(1)
    composer(alice).fill("Sounds good, see you")
    # Typed as a person types, over a few seconds: Carol's reply a moment ago counts
    # against how often her page may signal.
    composer(carol).press_sequentially("On my way", delay=300)
    expect(alice.get_by_role("status").filter(has_text="is typing")).to_have_count(1)
    alice.mouse.move(0, 0)
    alice.screenshot(path=tmp_path / "screenshot-chat.png")

    phone = log_in_as(chromium, server, names["bob"], PHONE)
    phone.goto(f"/chats/{deploys}/")
    wait_for_socket(phone)
    expect(messages(phone).last).to_contain_text("Lunch at 12?")
    phone.screenshot(path=tmp_path / "screenshot-phone.png")

    for name in ("screenshot-chat.png", "screenshot-phone.png"):
        assert (tmp_path / name).stat().st_size > 10_000
        if to_docs:
            shutil.copy(tmp_path / name, PROJECT_ROOT / "docs" / name)
