"""The chat in a real browser: Chromium against a real daphne process.

Every test signs up its own users through the form and drives the pages by role and
label, as a screen reader does. The server's database is shared by the whole module,
so tests find their messages by text that no other test sends.
"""

from __future__ import annotations

import re
import struct
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Dialog, Locator, Page, WebSocketRoute, expect

pytestmark = pytest.mark.browser

SignUp = Callable[..., Page]

expect.set_options(timeout=10_000)

# Opens a raw WebSocket from the page and reports how it ended. It resolves with a
# null code if nothing happens within ten seconds, so that a hanging socket fails
# the test instead of blocking it.
SOCKET_OUTCOME = """
(url) => new Promise((resolve) => {
  const socket = new WebSocket(url);
  let opened = false;
  socket.onopen = () => { opened = true; };
  socket.onclose = (event) => resolve({ opened, code: event.code });
  setTimeout(() => resolve({ opened, code: null }), 10000);
})
"""


def png_pixels(data: bytes) -> tuple[int, int, set[bytes]]:
    """The width, height and distinct colours of an 8-bit, non-interlaced RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    chunks: dict[bytes, bytes] = {}
    position = 8
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        chunks[kind] = chunks.get(kind, b"") + data[position + 8 : position + 8 + length]
        position += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, colour_type, interlace) in {(8, 2, 0), (8, 6, 0)}, (depth, colour_type, interlace)
    channels = 3 if colour_type == 2 else 4
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = width * channels
    assert len(raw) == height * (stride + 1), "the image data is truncated"
    colours: set[bytes] = set()
    previous = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up, up_left = previous[x], previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                estimate = left + up - up_left
                distances = (abs(estimate - left), abs(estimate - up), abs(estimate - up_left))
                nearest = (left, up, up_left)[distances.index(min(distances))]
                line[x] = (line[x] + nearest) & 0xFF
        colours.update(bytes(line[x : x + channels]) for x in range(0, stride, channels))
        previous = line
    return width, height, colours


def token() -> str:
    return uuid.uuid4().hex[:8]


def chat_id(page: Page) -> int:
    match = re.search(r"/chats/(\d+)/", page.url)
    assert match, page.url
    return int(match.group(1))


def open_chat(page: Page, name: str = "General", *, live: bool = True) -> None:
    """Follow the chat's link from the chat list; with `live`, wait until its socket is open."""
    page.goto("/chats/")
    chats = page.get_by_role("navigation", name="Chats")
    # The link's name goes on with its last message and maybe an unread count.
    chats.get_by_role("link", name=re.compile(rf"^{re.escape(name)}\b")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    if live:
        wait_for_socket(page)


def wait_for_socket(page: Page) -> None:
    expect(page.locator("html")).to_have_attribute("data-chat-socket", "open")


def create_room(page: Page, name: str, *, visibility: str = "Public") -> int:
    page.goto("/chats/new/")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label(visibility, exact=True).check()
    page.get_by_role("button", name="Create room").click()
    expect(page).to_have_url(re.compile(r"/chats/\d+/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    return chat_id(page)


def composer(page: Page) -> Locator:
    return page.get_by_role("textbox", name="Message", exact=True)


def send_button(page: Page) -> Locator:
    return page.get_by_role("button", name="Send", exact=True)


def log(page: Page) -> Locator:
    return page.get_by_role("log", name="Messages")


def messages(page: Page) -> Locator:
    return log(page).locator("article")


def messages_with(page: Page, text: str) -> Locator:
    return messages(page).filter(has_text=text)


def send(page: Page, text: str) -> None:
    composer(page).fill(text)
    send_button(page).click()


def csrf_token(page: Page) -> str:
    cookies = {cookie.get("name"): cookie.get("value") for cookie in page.context.cookies()}
    value = cookies.get("csrftoken")
    assert value, "the page set no csrftoken cookie"
    return value


def test_message_reaches_other_member_live(sign_up: SignUp, tmp_path: Path) -> None:
    """A message sent from the page appears once in every open page of the chat, without a
    reload; the sender's composer empties and keeps the focus; Enter sends, Shift+Enter
    starts a new line."""
    alice = sign_up("alice", viewport={"width": 1000, "height": 700})
    bob = sign_up("bob")
    open_chat(alice)
    open_chat(bob)

    first = "Morning! Did the deploy go out?"
    send(alice, first)
    expect(messages_with(bob, first)).to_have_count(1)
    expect(messages_with(alice, first)).to_have_count(1)
    expect(composer(alice)).to_have_value("")

    reply = "Yes, about ten minutes ago. All green so far."
    composer(bob).fill(reply)
    composer(bob).press("Enter")
    expect(messages_with(alice, reply)).to_have_count(1)
    expect(messages_with(bob, reply)).to_have_count(1)
    expect(composer(bob)).to_have_value("")
    expect(composer(bob)).to_be_focused()

    composer(alice).fill("Great, thanks!")
    composer(alice).press("Shift+Enter")
    composer(alice).press_sequentially("I'll tell the others.")
    expect(composer(alice)).to_have_value("Great, thanks!\nI'll tell the others.")
    composer(alice).press("Enter")
    expect(messages_with(bob, "I'll tell the others.")).to_have_count(1)
    expect(composer(alice)).to_have_value("")

    # One fragment for everyone: the author is marked by data, the same on both pages.
    for page in (alice, bob):
        alice_id = messages_with(page, first).get_attribute("data-author-id")
        bob_id = messages_with(page, reply).get_attribute("data-author-id")
        assert alice_id and bob_id and alice_id != bob_id
    # The screenshot shows the conversation: the messages and the composer are on screen.
    for text in (first, reply, "I'll tell the others."):
        expect(messages_with(alice, text)).to_be_in_viewport()
    expect(composer(alice)).to_be_in_viewport()
    alice.screenshot(path=tmp_path / "chat.png")
    width, height, colours = png_pixels((tmp_path / "chat.png").read_bytes())
    assert (width, height) == (1000, 700)
    # Text is anti-aliased: a page showing a conversation has many shades; a blank one, one.
    assert len(colours) >= 16, f"{len(colours)} colours: is the page blank?"


def test_member_without_javascript_posts_by_form(sign_up: SignUp) -> None:
    """With JavaScript off, a user signs up and posts with plain forms (Post/Redirect/Get),
    and members who have the chat open with JavaScript see the message live."""
    alice = sign_up("alice")
    bob = sign_up("bob")
    carol = sign_up("carol", java_script_enabled=False)
    open_chat(alice)
    open_chat(bob)
    open_chat(carol, live=False)
    page_url = carol.url

    text = f"Posted without JavaScript {token()}"
    composer(carol).fill(text)
    with carol.expect_response(lambda response: response.request.method == "POST") as posted:
        send_button(carol).click()
    assert posted.value.status == 302
    expect(messages_with(carol, text)).to_have_count(1)
    assert carol.url == page_url
    expect(composer(carol)).to_have_value("")

    expect(messages_with(alice, text)).to_have_count(1)
    expect(messages_with(bob, text)).to_have_count(1)


def test_a_message_sent_before_the_answer_to_the_last_is_its_own(sign_up: SignUp) -> None:
    """While the answer to a send is on its way (held back here), a second message typed
    and sent is stored as a message of its own, Enter pressed twice stores one, and text
    typed meanwhile is not wiped by the answers when they come."""
    alice = sign_up("alice")
    held: list[str] = []
    routes: list[WebSocketRoute] = []
    holding = True

    def route(socket: WebSocketRoute) -> None:
        routes.append(socket)
        server = socket.connect_to_server()

        def from_server(message: str | bytes) -> None:
            if holding and isinstance(message, str) and "data-sent-client-id" in message:
                held.append(message)
            else:
                socket.send(message)

        server.on_message(from_server)

    alice.route_web_socket(re.compile(r"/ws/chats/\d+/"), route)
    open_chat(alice)
    first, second, twice, later = (f"{word} {token()}" for word in ("First", "Second", "Twice", "Later"))

    send(alice, first)
    expect(messages_with(alice, first)).to_have_count(1)
    send(alice, second)
    expect(messages_with(alice, second)).to_have_count(1)
    composer(alice).fill(twice)
    send_button(alice).click()
    send_button(alice).click()
    # Four answers: the first's, the second's, and two for the one sent twice.
    for _ in range(200):
        if len(held) == 4:
            break
        alice.wait_for_timeout(50)
    assert len(held) == 4, held
    expect(messages_with(alice, twice)).to_have_count(1)
    composer(alice).fill(later)

    holding = False
    for message in held:
        routes[-1].send(message)
    expect(composer(alice)).to_have_value(later)
    send_button(alice).click()
    expect(messages_with(alice, later)).to_have_count(1)
    expect(composer(alice)).to_have_value("")
    alice.reload()
    for text in (first, second, twice, later):
        expect(messages_with(alice, text)).to_have_count(1)


def test_markup_in_messages_shows_as_text(sign_up: SignUp) -> None:
    """Markup in a message is shown as text on every page: no script runs and no
    out-of-band swap replaces the log."""
    alice = sign_up("alice")
    bob = sign_up("bob")
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    for page in (alice, bob):
        page.on("dialog", on_dialog)
        open_chat(page)

    earlier = f"Before the markup {token()}"
    send(alice, earlier)
    expect(messages_with(bob, earlier)).to_have_count(1)

    script = "<script>alert(1)</script>"
    oob = '<div id="messages" hx-swap-oob="true">x</div>'
    for text in (script, oob):
        send(alice, text)
        for page in (alice, bob):
            expect(messages_with(page, text)).to_have_count(1)
            expect(messages_with(page, text)).to_contain_text(text)

    for page in (alice, bob):
        expect(page.locator("#messages")).to_have_count(1)
        expect(log(page)).to_have_count(1)
        expect(messages_with(page, earlier)).to_have_count(1)
        expect(log(page).locator("script")).to_have_count(0)
    assert dialogs == []


def test_validation_error_shows_to_the_sender_only(sign_up: SignUp) -> None:
    """A message that is too long, or blank, shows an error in the sender's composer and
    keeps what they typed; nobody else sees an error or a message."""
    alice = sign_up("alice")
    bob = sign_up("bob")
    open_chat(alice)
    open_chat(bob)
    seen_by_bob = messages(bob).count()
    alice_errors = alice.locator("#composer-errors")
    expect(alice_errors).to_have_attribute("role", "alert")

    too_long = ("Far too long. " * 300)[:4001]
    composer(alice).evaluate("textarea => textarea.removeAttribute('maxlength')")
    send(alice, too_long)
    expect(alice_errors).to_contain_text("4000")
    expect(composer(alice)).to_have_value(too_long)

    composer(alice).evaluate("textarea => textarea.removeAttribute('required')")
    send(alice, "   ")
    expect(alice_errors).to_contain_text("Write a message first.")
    expect(composer(alice)).to_have_value("   ")

    # The next good message reaches Bob after anything the failed sends could have pushed.
    fine = f"This one is fine {token()}"
    send(alice, fine)
    expect(messages_with(bob, fine)).to_have_count(1)
    expect(alice_errors).to_be_empty()
    expect(messages(bob)).to_have_count(seen_by_bob + 1)
    expect(bob.locator("#composer-errors")).to_be_empty()
    expect(messages_with(alice, "Far too long.")).to_have_count(0)


def test_older_messages_load_on_demand(sign_up: SignUp) -> None:
    """A chat shows its latest 50 messages and a link to older ones, which loads them
    into the log in place with JavaScript, and is a plain link to them without."""
    alice = sign_up("alice")
    room = create_room(alice, f"History {token()}")
    csrf = csrf_token(alice)
    for number in range(1, 61):
        response = alice.request.post(
            f"/chats/{room}/messages/",
            form={"text": f"History message {number:02}"},
            headers={"X-CSRFToken": csrf},
            max_redirects=0,
        )
        assert response.status == 302, response.text()

    alice.reload()
    wait_for_socket(alice)
    expect(messages(alice)).to_have_count(50)
    expect(messages(alice).first).to_contain_text("History message 11")
    expect(messages(alice).last).to_contain_text("History message 60")
    page_url = alice.url
    alice.get_by_role("link", name="Load older messages").click()
    expect(messages(alice)).to_have_count(60)
    expect(messages(alice).first).to_contain_text("History message 01")
    expect(alice.get_by_role("link", name="Load older messages")).to_have_count(0)
    assert alice.url == page_url

    dave = sign_up("dave", java_script_enabled=False)
    dave.goto(f"/chats/{room}/")
    expect(messages(dave)).to_have_count(50)
    dave.get_by_role("link", name="Load older messages").click()
    expect(dave).to_have_url(re.compile(rf"/chats/{room}/messages/\?before=\d+$"))
    expect(messages(dave)).to_have_count(10)
    expect(messages(dave).first).to_contain_text("History message 01")
    expect(messages(dave).last).to_contain_text("History message 10")


def test_chat_fits_a_phone(sign_up: SignUp) -> None:
    """On a 390 px wide phone the chat page does not scroll sideways, even with a long
    unbroken word in the log, and the composer and its Send button are on screen."""
    phone = sign_up("phone", viewport={"width": 390, "height": 844})
    open_chat(phone)
    long_word = f"https://example.com/{token()}/" + "a" * 200
    send(phone, long_word)
    expect(messages_with(phone, long_word)).to_have_count(1)

    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    for element in (composer(phone), send_button(phone)):
        expect(element).to_be_visible()
        expect(element).to_be_in_viewport()


def test_socket_to_a_chat_the_user_is_not_in_is_refused(sign_up: SignUp, server: str) -> None:
    """A socket to a private chat the user is not in is accepted and then closed with 4003,
    a code the page does not retry; the chat's page answers 404."""
    alice = sign_up("alice")
    room = create_room(alice, f"Secret {token()}", visibility="Private")
    bob = sign_up("bob")

    socket_url = re.sub(r"^http", "ws", server) + f"/ws/chats/{room}/"
    outcome = bob.evaluate(SOCKET_OUTCOME, socket_url)
    assert outcome == {"opened": True, "code": 4003}

    response = bob.goto(f"/chats/{room}/")
    assert response is not None
    assert response.status == 404
