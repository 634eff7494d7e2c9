"""Files in a real browser: Chromium against a real daphne process that stores its files in
a temporary folder of its own."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from chat.tests.conftest import GENEROUS_RATES, Processes
from chat.tests.test_browser import SignUp, composer, messages_with, open_chat, send_button, token

pytestmark = pytest.mark.browser

expect.set_options(timeout=10_000)

# Drops a file on the conversation, as a file dragged from the desktop arrives.
DROP_FILE = """
([name, text]) => {
  const transfer = new DataTransfer();
  transfer.items.add(new File([text], name, { type: "text/plain" }));
  const target = document.getElementById("messages");
  for (const kind of ["dragover", "drop"]) {
    target.dispatchEvent(new DragEvent(kind, { dataTransfer: transfer, bubbles: true, cancelable: true }));
  }
}
"""
# Pastes a file into the composer's text field, as a copied screenshot arrives.
PASTE_FILE = """
([name, text]) => {
  const transfer = new DataTransfer();
  transfer.items.add(new File([text], name, { type: "text/plain" }));
  const field = document.querySelector("#composer textarea");
  const paste = new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true, cancelable: true });
  field.dispatchEvent(paste);
}
"""


@pytest.fixture(scope="module")
def server(processes: type[Processes]) -> Iterator[str]:
    """The development server of conftest.py, with MEDIA_ROOT in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="chat-files-browser-") as directory:
        env = processes.env(
            DATABASE_URL=f"sqlite:///{directory}/db.sqlite3",
            MEDIA_ROOT=f"{directory}/media",
            DEBUG="true",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            **GENEROUS_RATES,
        )
        migrated = processes.manage(env, "migrate", "--noinput")
        if migrated.returncode != 0:
            pytest.fail(f"migrate failed:\n{migrated.stdout}{migrated.stderr}")
        with processes.daphne(env) as base_url:
            yield base_url


def test_an_attached_image_reaches_another_member_live(sign_up: SignUp, tmp_path: Path) -> None:
    """Alice attaches an image with the file input and sends: the message goes over HTTP
    (files can't go over the socket), her composer empties, and Bob's open page shows the
    thumbnail live, loaded, linking to the full image."""
    alice = sign_up("alice")
    bob = sign_up("bob")
    open_chat(alice)
    open_chat(bob)

    picture = tmp_path / "sunset.png"
    Image.new("RGB", (640, 480), (250, 120, 20)).save(picture)
    text = f"Look at this {token()}"
    composer(alice).fill(text)
    alice.get_by_label("Attach files").set_input_files(picture)
    with alice.expect_response(lambda response: response.request.method == "POST") as posted:
        send_button(alice).click()
    assert posted.value.status == 200
    assert "multipart/form-data" in (posted.value.request.headers.get("content-type") or "")

    for page in (bob, alice):
        message = messages_with(page, text)
        expect(message).to_have_count(1)
        image = message.get_by_role("img", name="sunset.png")
        expect(image).to_be_visible()
        expect(image).to_have_js_property("complete", True)
        assert image.evaluate("img => img.naturalWidth") == 400
        link = message.get_by_role("link", name="sunset.png")
        href = link.get_attribute("href")
        assert href and href.startswith("/files/")
        full = page.request.get(href)
        assert full.status == 200 and full.headers["content-type"] == "image/png"
    expect(composer(alice)).to_have_value("")
    expect(alice.get_by_label("Attach files")).to_have_value("")

    # The fresh composer sends over the socket again.
    after = f"And without files {token()}"
    composer(alice).fill(after)
    composer(alice).press("Enter")
    expect(messages_with(bob, after)).to_have_count(1)
    expect(messages_with(bob, after).get_by_role("img")).to_have_count(0)


def test_files_dropped_and_pasted_are_sent_without_text(sign_up: SignUp) -> None:
    """A file dropped on the conversation, and one pasted into the composer, go with the
    next message; sent without words, they show as cards with their names and sizes in the
    others' pages."""
    alice = sign_up("alice")
    bob = sign_up("bob")
    open_chat(alice)
    open_chat(bob)

    dropped, pasted = f"notes-{token()}.txt", f"pasted-{token()}.txt"
    alice.evaluate(DROP_FILE, [dropped, "Plans for Monday"])
    alice.evaluate(PASTE_FILE, [pasted, "Hello"])
    expect(alice.get_by_label("Attach files")).to_have_value(re.compile(re.escape(dropped)))
    assert alice.get_by_label("Attach files").evaluate("input => input.files.length") == 2
    composer(alice).press("Enter")
    log = bob.get_by_role("log", name="Messages")
    expect(log.get_by_role("link", name=dropped)).to_contain_text("16 byte")
    expect(log.get_by_role("link", name=pasted)).to_contain_text("5 byte")
    expect(alice.get_by_label("Attach files")).to_have_value("")
