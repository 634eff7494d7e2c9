"""The hostile corpus in Chromium: 200 messages posted through the API, then shown in the
page as its members see them (the page's history) and as they arrive live (the push)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Dialog, Page, expect

from chat.tests.hostile_markdown import corpus
from chat.tests.test_browser import create_room, csrf_token, log, messages, token, wait_for_socket

pytestmark = pytest.mark.browser

# What a page must not have inside its message log, whatever the messages say.
AUDIT = """() => {
  const log = document.getElementById("messages");
  const bad = [];
  for (const element of log.querySelectorAll("*")) {
    for (const attribute of element.attributes) {
      const name = attribute.name.toLowerCase();
      if (["on", "hx-", "data-hx", "ws-"].some((prefix) => name.startsWith(prefix))) {
        if (!element.closest(".message-actions, form")) bad.push(element.outerHTML.slice(0, 200));
      }
    }
  }
  for (const link of log.querySelectorAll(".message-text a[href]")) {
    if (!["http:", "https:", "mailto:"].includes(new URL(link.href).protocol)) bad.push(link.outerHTML);
  }
  const foreign = "script, iframe, object, embed, img, svg, style, link, base, meta";
  for (const element of log.querySelectorAll(foreign)) bad.push(element.outerHTML.slice(0, 200));
  return {bad, pwned: window.pwned === 1};
}"""


def post(page: Page, chat: int, text: str) -> None:
    response = page.request.post(
        f"/api/chats/{chat}/messages/", data={"text": text}, headers={"X-CSRFToken": csrf_token(page)}
    )
    assert response.status == 201, response.text()


def test_the_hostile_corpus_is_inert_in_chromium(sign_up) -> None:
    alice = sign_up("alice")
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    alice.on("dialog", on_dialog)
    texts = corpus()
    # Each room's page shows its latest 50 messages: four rooms hold the 200.
    for start in range(0, len(texts), 50):
        room = create_room(alice, f"Corpus {start} {token()}")
        wait_for_socket(alice)
        # The first half arrives live, pushed to the open page.
        batch = texts[start : start + 50]
        for text in batch[:25]:
            post(alice, room, text)
        expect(messages(alice)).to_have_count(25)
        # The second half is in the page's history when it loads.
        for text in batch[25:]:
            post(alice, room, text)
        alice.reload()
        expect(messages(alice)).to_have_count(50)
        expect(log(alice)).to_have_count(1)
        audit = alice.evaluate(AUDIT)
        assert audit == {"bad": [], "pwned": False}
    assert dialogs == []
