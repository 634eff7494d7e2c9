"""Languages in a real browser: Chromium with `Accept-Language: ru` against a real daphne.

A Russian reader sees the Russian interface on every page, Russian plurals in the unread
counts and dates in Russian; the same pushed fragments read in English on an English
reader's page. The switcher in the header is a plain form: with JavaScript off it
switches to English, and the choice sticks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import Dialog, Locator, Page, expect

from chat.tests.conftest import PASSWORD, SOCKET_STATE_SCRIPT, unique_username

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.browser

expect.set_options(timeout=10_000)

SignUp = Callable[..., Page]


@pytest.fixture
def sign_up_in(chromium: Browser, server: str) -> Iterator[SignUp]:
    """Sign up through the form in a browser context of its own, in the browser's language:
    `sign_up_in("ru", "ivan")` sends Accept-Language: ru and fills the Russian form."""
    contexts = []

    def sign_up(language: str, prefix: str, **context_options: Any) -> Page:
        locale = {"ru": "ru-RU", "en": "en-US"}[language]
        context = chromium.new_context(base_url=server, locale=locale, **context_options)
        context.set_default_timeout(10_000)
        context.add_init_script(SOCKET_STATE_SCRIPT)
        contexts.append(context)
        page = context.new_page()
        page.goto("/accounts/signup/")
        expect(page.locator("html")).to_have_attribute("lang", language)
        page.locator("#id_username").fill(unique_username(prefix))
        page.locator("#id_password1").fill(PASSWORD)
        page.locator("#id_password2").fill(PASSWORD)
        page.get_by_role("button", name={"ru": "Зарегистрироваться", "en": "Sign up"}[language]).click()
        expect(page).to_have_url(f"{server}/chats/")
        return page

    yield sign_up
    for context in contexts:
        context.close()


def log(page: Page) -> Locator:
    return page.locator("#messages")


def entry_link(page: Page, chat: int) -> Locator:
    return page.locator(f'#chat-sidebar a[data-chat-id="{chat}"]')


def wait_for_socket(page: Page) -> None:
    expect(page.locator("html")).to_have_attribute("data-chat-socket", "open")


def send(page: Page, text: str, *, label: str) -> None:
    page.get_by_role("textbox", name=label, exact=True).fill(text)
    page.get_by_role("textbox", name=label, exact=True).press("Enter")
    expect(log(page).locator("article").filter(has_text=text)).to_have_count(1)


def test_russian_interface_and_plurals(sign_up_in: SignUp) -> None:
    """With Accept-Language: ru every page is Russian (<html lang="ru">); the unread count
    is said with Russian plurals (1, 3, 5) as messages arrive; dates, "Сегодня", typing and
    an edited or deleted message read in Russian while an English reader's page, fed the
    same pushed fragments, reads English."""
    ivan = sign_up_in("ru", "ivan", viewport={"width": 1200, "height": 800})
    anna = sign_up_in("en", "anna", viewport={"width": 1200, "height": 800})
    expect(ivan.get_by_role("heading", level=1)).to_have_text("Ваши чаты")

    # A room, made with the Russian form.
    ivan.get_by_role("link", name="Новая комната").first.click()
    expect(ivan.get_by_role("heading", level=1)).to_have_text("Создать комнату")
    ivan.get_by_label("Название", exact=True).fill("Сад")
    ivan.get_by_label("Открытая", exact=True).check()
    ivan.get_by_role("button", name="Создать комнату").click()
    expect(ivan.get_by_role("heading", level=1)).to_have_text("Сад")
    room = int(re.search(r"/chats/(\d+)/", ivan.url).group(1))  # type: ignore[union-attr]

    anna.goto(f"/chats/{room}/")
    anna.get_by_role("button", name="Join room").click()
    wait_for_socket(anna)

    # The unread count in words, live, with the plural that each number takes.
    ivan.goto("/chats/")
    wait_for_socket(ivan)
    link = entry_link(ivan, room)
    sent = 0
    plurals = (
        (1, "1 непрочитанное сообщение"),
        (3, "3 непрочитанных сообщения"),
        (5, "5 непрочитанных сообщений"),
    )
    for count, words in plurals:
        while sent < count:
            sent += 1
            send(anna, f"Привет {sent}", label="Message")
        expect(link).to_have_attribute("data-unread", str(count))
        expect(link.locator(".unread-words")).to_have_text(words)
        expect(link).to_have_accessible_name(re.compile(re.escape(words)))
    expect(ivan).to_have_title(re.compile(r"^\(5\) Ваши чаты · Чат$"))
    # The same words when the list is rendered by the server.
    ivan.reload()
    expect(entry_link(ivan, room).locator(".unread-words")).to_have_text("5 непрочитанных сообщений")

    # The room: Russian words, Russian dates, the pushed messages' words in Russian.
    ivan.goto(f"/chats/{room}/")
    wait_for_socket(ivan)
    expect(ivan.locator("html")).to_have_attribute("lang", "ru")
    expect(ivan.get_by_role("button", name="Отправить")).to_be_visible()
    expect(ivan.get_by_role("separator", name="Сегодня")).to_have_count(1)
    expect(ivan.get_by_role("separator", name="Новые сообщения")).to_have_count(1)
    # Typing signals pass at most every two seconds: signal until one gets through.
    typing = ivan.locator("#typing-status")
    for _ in range(5):
        anna.evaluate("() => document.body.dispatchEvent(new CustomEvent('chat:typing'))")
        try:
            expect(typing).to_contain_text("печатает…", timeout=2500)
            break
        except AssertionError:
            continue
    expect(typing).to_contain_text("печатает…")

    first = log(anna).locator("article").filter(has_text="Привет 1")
    first.hover()
    first.get_by_role("link", name="Edit").click()
    anna.get_by_role("textbox", name="Edit message").fill("Привет 1, исправлено")
    anna.get_by_role("button", name="Save").click()
    edited = log(ivan).locator("article").filter(has_text="Привет 1, исправлено")
    expect(edited.locator(".message-edited")).to_have_text("(изменено)")
    expect(log(anna).locator("article").filter(has_text="Привет 1, исправлено")).to_contain_text("(edited)")

    # Ivan's own message: its actions are named in Russian, and deleting asks in Russian.
    send(ivan, "Моё сообщение", label="Сообщение")
    mine = log(ivan).locator("article").filter(has_text="Моё сообщение")
    mine.hover()
    expect(mine.get_by_role("link", name="Изменить")).to_be_visible()
    questions: list[str] = []

    def answer(dialog: Dialog) -> None:
        questions.append(dialog.message)
        dialog.accept()

    ivan.once("dialog", answer)
    message_id = mine.get_attribute("id")
    mine.get_by_role("button", name="Удалить").click()
    expect(ivan.locator(f"#{message_id}")).to_contain_text("Это сообщение удалено.")
    expect(anna.locator(f"#{message_id}")).to_contain_text("This message was deleted.")
    assert questions == ["Удалить это сообщение для всех?"]

    # The room's menu and its members panel.
    expect(ivan.locator("details.room-menu summary")).to_have_text(re.compile(r"^Комната"))
    ivan.locator("details.room-menu summary").click()
    ivan.get_by_role("link", name="Участники").click()
    panel = ivan.locator("#members-panel")
    expect(panel.get_by_role("heading", name="Участники")).to_be_visible()
    expect(panel).to_contain_text("2 участника")
    # Settings and an error page.
    ivan.goto(f"/chats/{room}/settings/")
    expect(ivan.get_by_role("heading", level=2)).to_have_text("Настройки комнаты")
    # An error page (the server runs with DEBUG on, so a 404 is Django's own page; a 403 is ours).
    anna.goto(f"/chats/{room}/settings/")
    expect(anna.get_by_role("heading", level=1)).to_have_text("You can't do that here")
    ivan.goto("/chats/")
    general = ivan.get_by_role("navigation", name="Чаты").get_by_role("link", name=re.compile("^General"))
    ivan.goto(str(general.get_attribute("href")) + "settings/")
    expect(ivan.get_by_role("heading", level=1)).to_have_text("Здесь это сделать нельзя")
    expect(ivan.locator("main")).to_contain_text("Это может только владелец комнаты.")
    expect(ivan.locator("html")).to_have_attribute("lang", "ru")


def test_switcher_without_javascript_sticks(sign_up_in: SignUp) -> None:
    """With JavaScript off, the header's form switches a Russian browser to English, back to
    the same page, and every page after it stays English; switching back works alike."""
    page = sign_up_in("ru", "olga", java_script_enabled=False)
    expect(page.get_by_role("heading", level=1)).to_have_text("Ваши чаты")
    page.get_by_role("button", name="English").click()
    expect(page).to_have_url(re.compile(r"/chats/$"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your chats")
    for url, heading in (("/chats/new/", "Create a room"), ("/accounts/password/", "Change your password")):
        page.goto(url)
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    page.goto("/chats/")
    page.get_by_role("navigation", name="Chats").get_by_role("link", name=re.compile("^General")).click()
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    page.get_by_role("button", name="Русский").click()
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.get_by_role("button", name="Отправить")).to_be_visible()
