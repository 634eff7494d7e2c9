"""English and Russian: pages, forms, notices, socket replies and API errors in the reader's
language; pushed fragments the same bytes in every language; a catalogue that is complete
and compiled."""

from __future__ import annotations

import ast
import gettext
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.template.loader import render_to_string
from django.test import Client, SimpleTestCase, TestCase, TransactionTestCase
from django.urls import reverse
from django.utils import translation

from chat import frames, services
from chat.i18n import language_of_scope, page_strings
from chat.models import Chat, Membership
from chat.templatetags.chat_i18n import css_string, json_data
from chat.tests.factories import general, make_messages, make_room, make_user
from config.asgi import application

RU = {"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.8"}
PROJECT_ROOT = Path(settings.BASE_DIR)
CATALOGUE = PROJECT_ROOT / "locale" / "ru" / "LC_MESSAGES" / "django.po"
COMPILED = CATALOGUE.with_suffix(".mo")
# What makemessages reads: the project's code and templates (see the Makefile's `messages`).
SOURCES = ("manage.py", "config", "chat", "templates", "static", "theme", "locale")
SOURCE_IGNORE = shutil.ignore_patterns(
    "node_modules", "static_src", "dist", "__pycache__", "tests", "*.pyc", "*.mo"
)


# ---- The catalogue ----------------------------------------------------------------------


class Entry:
    """One message of a PO file."""

    def __init__(self) -> None:
        self.flags: list[str] = []
        self.context: str | None = None
        self.msgid: str | None = None
        self.plural: str | None = None
        self.msgstr: dict[int | None, str] = {}

    @property
    def key(self) -> tuple[str | None, str, str | None]:
        return (self.context, self.msgid or "", self.plural)


def read_po(path: Path) -> list[Entry]:
    """The messages of a PO file as GNU gettext writes them (obsolete ones left out)."""
    entries: list[Entry] = []
    entry, field = Entry(), "msgid"

    def finish() -> Entry:
        if entry.msgid is not None:
            entries.append(entry)
        return Entry()

    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#~"):
            continue
        if line.startswith("#"):
            if entry.msgid is not None:
                entry = finish()
            if line.startswith("#,"):
                entry.flags += [flag.strip() for flag in line[2:].split(",")]
            continue
        if line.startswith('"'):
            value = ast.literal_eval(line)
            if field == "msgctxt":
                entry.context = (entry.context or "") + value
            elif field == "msgid":
                entry.msgid = (entry.msgid or "") + value
            elif field == "msgid_plural":
                entry.plural = (entry.plural or "") + value
            else:
                index = None if field == "msgstr" else int(field[7:-1])
                entry.msgstr[index] += value
            continue
        keyword, _, rest = line.partition(" ")
        value = ast.literal_eval(rest)
        if keyword in ("msgctxt", "msgid") and entry.msgid is not None:
            entry = finish()
        field = keyword
        if keyword == "msgctxt":
            entry.context = value
        elif keyword == "msgid":
            entry.msgid = value
        elif keyword == "msgid_plural":
            entry.plural = value
        else:
            entry.msgstr[None if keyword == "msgstr" else int(keyword[7:-1])] = value
    finish()
    return entries


class CatalogueTests(SimpleTestCase):
    def test_every_message_is_translated(self):
        """The Russian catalogue has a translation for every message and every plural form,
        and none left fuzzy (a guess by msgmerge that nobody checked)."""
        entries = read_po(CATALOGUE)
        header = entries[0]
        assert header.msgid == "" and "fuzzy" not in header.flags
        assert "Language: ru\n" in header.msgstr[None]
        nplurals = int(re.search(r"nplurals=(\d+)", header.msgstr[None]).group(1))  # type: ignore[union-attr]
        problems = []
        for entry in entries[1:]:
            if "fuzzy" in entry.flags:
                problems.append(f"fuzzy: {entry.msgid!r}")
            forms = (
                [entry.msgstr.get(i, "") for i in range(nplurals)] if entry.plural else [entry.msgstr[None]]
            )
            if not all(forms):
                problems.append(f"not translated: {entry.msgid!r}")
        assert not problems, f"{CATALOGUE.relative_to(PROJECT_ROOT)}: " + "; ".join(problems)

    def test_compiled_catalogue_is_current(self):
        """The committed .mo says what the .po says, so that `make run` needs no gettext tools."""
        with COMPILED.open("rb") as compiled:
            catalogue = gettext.GNUTranslations(compiled)._catalog  # type: ignore[attr-defined]
        expected: dict[object, str] = {}
        for entry in read_po(CATALOGUE)[1:]:
            msgid = entry.msgid if entry.context is None else f"{entry.context}\x04{entry.msgid}"
            if entry.plural is None:
                expected[msgid] = entry.msgstr[None]
            else:
                expected.update({(msgid, i): text for i, text in entry.msgstr.items()})
        compiled_messages = {key: value for key, value in catalogue.items() if key != ""}
        assert compiled_messages == expected, "locale/ru/LC_MESSAGES/django.mo is stale: run `make messages`"

    def test_every_string_in_the_code_is_in_the_catalogue(self):
        """makemessages over the code finds exactly the catalogue's messages: none missing
        (a new string nobody translated), none left over."""
        if shutil.which("xgettext") is None or shutil.which("msgmerge") is None:
            message = "GNU gettext is not installed (apt-get install -y gettext)"
            if os.environ.get("CI") == "true":
                pytest.fail(message, pytrace=False)
            pytest.skip(message)
        with tempfile.TemporaryDirectory(prefix="chat-messages-") as directory:
            copy = Path(directory)
            for name in SOURCES:
                source = PROJECT_ROOT / name
                if source.is_dir():
                    shutil.copytree(source, copy / name, ignore=SOURCE_IGNORE)
                else:
                    shutil.copy2(source, copy / name)
            result = subprocess.run(
                [sys.executable, "manage.py", *MAKEMESSAGES],
                cwd=copy,
                env={**os.environ, "DEBUG": "true"},
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert result.returncode == 0, result.stderr
            found = {entry.key for entry in read_po(copy / CATALOGUE.relative_to(PROJECT_ROOT))[1:]}
        committed = {entry.key for entry in read_po(CATALOGUE)[1:]}
        assert not found - committed, (
            f"not in the catalogue (run `make messages`): {sorted(found - committed, key=str)}"
        )
        assert not committed - found, (
            f"no longer in the code (run `make messages`): {sorted(committed - found, key=str)}"
        )


# The options of `make messages` (the Makefile says the same).
MAKEMESSAGES = ["makemessages", "--locale", "ru", "--add-location", "file", "--no-obsolete"]


# ---- A socket's language ----------------------------------------------------------------


def scope(accept: str | None = None, cookie: str | None = None) -> dict[str, object]:
    headers = []
    if accept is not None:
        headers.append((b"accept-language", accept.encode()))
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    return {"type": "websocket", "headers": headers}


class LanguageOfScopeTests(SimpleTestCase):
    def test_accept_language(self):
        """The handshake's Accept-Language picks the language, as it does for a page."""
        assert language_of_scope(scope("ru-RU,ru;q=0.9,en;q=0.8")) == "ru"
        assert language_of_scope(scope("en-US,en;q=0.9")) == "en"
        assert language_of_scope(scope("de-DE,ru;q=0.5")) == "ru"

    def test_the_switchers_cookie_wins(self):
        """The language chosen with the switcher (its cookie) beats the browser's."""
        cookie = f"sessionid=abc; {settings.LANGUAGE_COOKIE_NAME}=en"
        assert language_of_scope(scope("ru", cookie)) == "en"
        assert language_of_scope({**scope("en"), "cookies": {settings.LANGUAGE_COOKIE_NAME: "ru"}}) == "ru"

    def test_unknown_languages_fall_back(self):
        """A language the chat does not speak, a bad cookie or no header at all: English."""
        assert language_of_scope(scope("de, fr;q=0.5")) == settings.LANGUAGE_CODE == "en"
        assert language_of_scope(scope(None, f"{settings.LANGUAGE_COOKIE_NAME}=xx")) == "en"
        assert language_of_scope(scope("ru", f"{settings.LANGUAGE_COOKIE_NAME}=xx")) == "ru"
        assert language_of_scope({"type": "websocket"}) == "en"
        assert language_of_scope(scope("*;q=0.5, ***")) == "en"


# ---- Pages ------------------------------------------------------------------------------


def html_lang(text: str) -> str:
    match = re.search(r'<html lang="([^"]+)"', text)
    assert match is not None
    return match.group(1)


class RussianPageTests(TestCase):
    def setUp(self):
        self.me = make_user("ivan")
        self.room = make_room(self.me, name="Plans")

    def get(self, url: str):
        response = self.client.get(url, headers=RU)
        assert response.status_code in (200, 403, 404), (url, response.status_code)
        return response

    def test_accounts_pages(self):
        """Login and sign-up follow Accept-Language: Russian words, <html lang="ru">."""
        login = self.get("/accounts/login/")
        assert html_lang(login.text) == "ru" and login["Content-Language"] == "ru"
        assert "Впервые здесь?" in login.text and ">Войти</button>" in login.text
        signup = self.get("/accounts/signup/")
        assert "Создайте учётную запись" in signup.text and "Подтверждение пароля" in signup.text
        english = self.client.get("/accounts/login/", headers={"Accept-Language": "en-US,en;q=0.9"})
        assert html_lang(english.text) == "en" and "New here?" in english.text

    def test_workspace_pages(self):
        """The chat list, a room, its members panel and its settings are Russian."""
        self.client.force_login(self.me)
        pages = {
            "/chats/": ["Ваши чаты", "Начать разговор", "Новая комната"],
            self.room.get_absolute_url(): ["Отправить", "Сообщений пока нет. Поздоровайтесь!", "Участники"],
            reverse("rooms:members", args=[self.room.pk]): ["1 участник, 0 сейчас в сети", "владелец"],
            reverse("rooms:settings", args=[self.room.pk]): ["Настройки комнаты", "Открытая", "Закрытая"],
            "/chats/new/": ["Создать комнату", "Название", "Доступ"],
            "/accounts/password/": ["Смена пароля", "Выйти везде"],
        }
        for url, words in pages.items():
            text = self.get(url).text
            assert html_lang(text) == "ru", url
            for word in words:
                assert word in text, (url, word)
            # The header: the switcher offers English, named in English.
            assert '<button type="submit" name="language" value="en" lang="en"' in text, url

    def test_error_pages(self):
        """404 and 403 pages speak Russian too."""
        self.client.force_login(self.me)
        missing = self.get("/chats/999999/")
        assert missing.status_code == 404 and "Здесь ничего нет" in missing.text
        assert html_lang(missing.text) == "ru"
        other = make_room(make_user(), name="Theirs")
        forbidden = self.get(reverse("rooms:settings", args=[other.pk]))
        assert forbidden.status_code == 403
        assert (
            "Здесь это сделать нельзя" in forbidden.text and "Сначала вступите в этот чат." in forbidden.text
        )

    def test_validation_errors_and_notices(self):
        """A form's errors (ours and Django's) and a notice after a redirect are Russian."""
        response = self.client.post("/accounts/signup/", {"username": "x", "password1": "a"}, headers=RU)
        assert "Обязательное поле." in response.text
        self.client.force_login(self.me)
        response = self.client.post("/chats/new/", {"name": " ", "visibility": "public"}, headers=RU)
        assert "Дайте комнате название." in response.text
        response = self.client.post(f"/chats/{general().pk}/leave/", follow=True, headers=RU)
        assert "Вы покинули «General»." in response.text

    def test_unread_count_in_russian_plurals(self):
        """The chat list says each unread count in words with Russian plural forms; the
        count itself (data-unread, the title's "(n) ") stays as the contract says."""
        self.client.force_login(self.me)
        other = make_user()
        expected = {1: "непрочитанное сообщение", 3: "непрочитанных сообщения", 5: "непрочитанных сообщений"}
        for count, words in expected.items():
            chat = make_room(other, name=f"Room {count}")
            Membership.objects.create(user=self.me, chat=chat)
            make_messages(chat, other, count)
            text = self.get("/chats/").text
            assert f'data-chat-id="{chat.pk}" data-unread="{count}"' in text
            assert f'<span class="unread-words sr-only">{count} {words}</span>' in text
        assert "<title>(9) Ваши чаты · Чат</title>" in self.get("/chats/").text

    def test_page_words_for_script_and_styles(self):
        """Each page says, in its language, the words its pushed fragments leave out: CSS
        for what is seen, hidden names for screen readers, and JSON for chat.js."""
        self.client.force_login(self.me)
        text = self.get(self.room.get_absolute_url()).text
        assert '.message-edited:empty::before { content: "\\28 изменено\\29 "; }' in text
        assert '<span id="word-edit">Изменить</span>' in text
        found = re.search(r'<script id="page-strings" type="application/json" nonce="[^"]+">(.*?)<', text)
        assert found is not None
        strings = json.loads(found.group(1))
        assert strings["today"] == "Сегодня" and strings["yesterday"] == "Вчера"
        assert strings["unread"] == {
            "one": "{n} непрочитанное сообщение",
            "few": "{n} непрочитанных сообщения",
            "many": "{n} непрочитанных сообщений",
            "other": "{n} непрочитанных сообщений",
        }
        assert strings["typing_one"] == "{name} печатает…"

    def test_messages_rendered_for_the_page_say_their_words(self):
        """Rendered for a page (not pushed), a message says "edited", "Edit" and "deleted"
        itself, in the reader's language: it reads whole without JavaScript."""
        self.client.force_login(self.me)
        message, _ = services.post_message(chat=self.room, user=self.me, text="hello")
        services.edit_message(message=message, user=self.me, text="hello again")
        gone, _ = services.post_message(chat=self.room, user=self.me, text="oops")
        services.delete_message(message=gone, user=self.me)
        text = self.get(self.room.get_absolute_url()).text
        assert re.search(r'<span class="message-edited[^"]*">\(изменено\)</span>', text)
        assert 'aria-labelledby="word-edit">Изменить</a>' in text
        assert ">Это сообщение удалено.</p>" in text
        assert '<span class="entry-preview" data-deleted>Сообщение удалено.</span>' in text

    def test_export_archive_in_the_owners_language(self):
        """The HTML archive is written in the language of the request that asked for it."""
        self.client.force_login(self.me)
        message, _ = services.post_message(chat=self.room, user=self.me, text="hello")
        services.edit_message(message=message, user=self.me, text="hello again")
        response = self.client.get(f"/chats/{self.room.pk}/export/?format=html", headers=RU)
        text = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
        assert html_lang(text) == "ru" and "(изменено)" in text and "(владелец)" in text


class LanguageSwitcherTests(TestCase):
    def test_switching_sticks_across_pages(self):
        """The header's form sets the language, comes back to the page, and the choice
        beats Accept-Language from then on."""
        self.client.force_login(make_user())
        page = self.client.get("/chats/", headers=RU)
        assert 'action="/i18n/setlang/"' in page.text and 'name="next" value="/chats/"' in page.text
        response = self.client.post("/i18n/setlang/", {"language": "en", "next": "/chats/"}, headers=RU)
        assert response.status_code == 302 and response["Location"] == "/chats/"
        cookie = response.cookies[settings.LANGUAGE_COOKIE_NAME]
        assert cookie.value == "en" and cookie["max-age"] == settings.LANGUAGE_COOKIE_AGE
        for url in ["/chats/", "/chats/new/", "/accounts/password/"]:
            assert html_lang(self.client.get(url, headers=RU).text) == "en", url
        self.client.post("/i18n/setlang/", {"language": "ru", "next": "/chats/"})
        assert html_lang(self.client.get("/chats/").text) == "ru"


# ---- Pushed fragments: the same bytes in every language ---------------------------------


class PushedFragmentTests(TestCase):
    def setUp(self):
        self.alice = make_user("alice")
        self.room = make_room(self.alice, name="Plans")
        self.direct, _ = services.open_direct_chat(user=self.alice, other=make_user("bob"))

    def render_in(self, language: str, template: str, context: dict[str, object]) -> str:
        with translation.override(language):
            return render_to_string(template, context)

    def assert_same_in_every_language(self, template: str, context: dict[str, object]) -> str:
        english = self.render_in("en", template, context)
        assert self.render_in("ru", template, context) == english, template
        return english

    def test_every_pushed_fragment_is_language_free(self):
        """chat/broadcast.py's fragments (a message, its new version, a chat-list entry,
        typing, a chat's title) render to the same bytes with Russian or English active."""
        message, _ = services.post_message(chat=self.room, user=self.alice, text="hello")
        edited = services.edit_message(message=message, user=self.alice, text="hello again")
        deleted, _ = services.post_message(chat=self.room, user=self.alice, text="oops")
        services.delete_message(message=deleted, user=self.alice)
        deleted.refresh_from_db()
        reply, _ = services.post_message(chat=self.room, user=self.alice, text="yes", reply_to=message.pk)
        for version in (message, edited, deleted, reply):
            self.assert_same_in_every_language("chat/chat_detail.html#message", {"message": version})
            self.assert_same_in_every_language("chat/chat_detail.html#message_oob", {"message": version})
        for chat, last in ((self.room, edited), (self.room, deleted), (self.direct, None)):
            chat.last_message = last  # type: ignore[attr-defined]
            for action, unread in (("message", 0), ("add", 4), ("update", 0)):
                context = {"chat": chat, "action": action, "unread": unread}
                self.assert_same_in_every_language("chat/sidebar.html#update", context)
        self.assert_same_in_every_language(
            "chat/sidebar.html#update", {"chat": {"pk": self.room.pk}, "action": "remove"}
        )
        self.assert_same_in_every_language("chat/sidebar.html#typing", {"chat_id": 1, "typist": self.alice})
        self.room.visibility = Chat.Visibility.PRIVATE
        for chat in (self.room, self.direct):
            self.assert_same_in_every_language("chat/room_settings.html#chat_title", {"chat": chat})

    def test_pushed_fragments_carry_no_words(self):
        """A deleted or edited message, its actions and a chat-list entry say nothing in any
        language: their words come from the page."""
        message, _ = services.post_message(chat=self.room, user=self.alice, text="hello")
        edited = services.edit_message(message=message, user=self.alice, text="hello again")
        html = render_to_string("chat/chat_detail.html#message", {"message": edited})
        assert 'class="message-edited' in html and 'class="message-actions" data-actions' in html
        for word in ("edited", "Edit", "Delete", "Message actions", "изменено", "Изменить"):
            assert f">{word}" not in html and f'"{word}' not in html, word
        services.delete_message(message=edited, user=self.alice)
        edited.refresh_from_db()
        self.room.last_message = edited  # type: ignore[attr-defined]
        entry = render_to_string(
            "chat/sidebar.html#update", {"chat": self.room, "action": "add", "unread": 2}
        )
        assert '<span class="entry-preview" data-deleted></span>' in entry
        assert '<span class="unread-words sr-only"></span>' in entry and " unread" not in entry

    def test_times_are_digits_for_the_script_to_localize(self):
        """Message times in pushed fragments are an ISO timestamp and digits only: the page's
        script writes them (and day separators) in the page's language with Intl."""
        message, _ = services.post_message(chat=self.room, user=self.alice, text="hello")
        with translation.override("ru"):
            html = render_to_string("chat/chat_detail.html#message", {"message": message})
        assert re.search(r'<time datetime="[0-9T:+.-]+"[^>]*>\d\d:\d\d</time>', html)


# ---- Socket replies and API errors ------------------------------------------------------


class SocketReplyTests(TestCase):
    def test_error_fragments_follow_the_active_language(self):
        """A frame's error reply is in the socket's language (the consumer activates it)."""
        user = make_user()
        chat = general()
        with translation.override("ru"):
            reply = frames.handle(user=user, chat=chat, text_data=json.dumps({"text": "   "}))
            assert "Сначала напишите сообщение." in reply
            reply = frames.handle(user=user, chat=chat, text_data="{not json")
            assert "Кадр не является корректным JSON." in reply
            assert "Вы отправляете слишком часто." in frames.too_fast()
        with translation.override("en"):
            reply = frames.handle(user=user, chat=chat, text_data=json.dumps({"text": "   "}))
            assert "Write a message first." in reply


class SocketLanguageTests(TransactionTestCase):
    async def test_socket_replies_in_the_pages_language(self):
        """A socket opened by a Russian page gets its error fragments in Russian, whatever
        language the process spoke last; an English one's stay English."""
        user = await sync_to_async(make_user)()
        # Not General: a transactional test may run after another one flushed it.
        chat = await sync_to_async(make_room)(user, name="Plans")
        client = Client()
        await sync_to_async(client.force_login)(user)
        cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
        replies = {}
        for accept in ("ru-RU,ru;q=0.9", "en-US,en;q=0.9"):
            headers = [
                (b"origin", b"http://127.0.0.1:8000"),
                (b"host", b"127.0.0.1:8000"),
                (b"cookie", cookie),
                (b"accept-language", accept.encode()),
            ]
            socket = WebsocketCommunicator(application, f"/ws/chats/{chat.pk}/", headers=headers)
            connected, _ = await socket.connect()
            assert connected
            await socket.send_to(text_data=json.dumps({"text": "   "}))
            replies[accept[:2]] = await socket.receive_from(timeout=5)
            await socket.disconnect()
        assert "Сначала напишите сообщение." in replies["ru"]
        assert "Write a message first." in replies["en"]


class ApiErrorTests(TestCase):
    def setUp(self):
        self.me = make_user()
        self.client.force_login(self.me)

    def test_service_errors_in_russian(self):
        """The services' words in the API's error bodies follow Accept-Language."""
        response = self.client.post(
            "/api/chats/", {"name": " ", "visibility": "public"}, content_type="application/json", headers=RU
        )
        assert response.status_code == 400
        assert "Дайте комнате название." in json.dumps(response.json(), ensure_ascii=False)
        response = self.client.post(
            f"/api/chats/{general().pk}/messages/", {"text": ""}, content_type="application/json", headers=RU
        )
        assert response.status_code == 400
        assert "Сначала напишите сообщение." in json.dumps(response.json(), ensure_ascii=False)
        english = self.client.post(
            f"/api/chats/{general().pk}/messages/", {"text": ""}, content_type="application/json"
        )
        assert "Write a message first." in json.dumps(english.json())

    def test_not_found_and_drf_errors_in_russian(self):
        """Our 404s and DRF's own messages are Russian too."""
        response = self.client.get("/api/nowhere/", headers=RU)
        assert response.status_code == 404 and response.json()["detail"] == "Такого адреса в API нет."
        self.client.logout()
        response = self.client.get("/api/chats/", headers=RU)
        assert response.status_code in (401, 403)
        assert response.json()["detail"] == "Учетные данные не были предоставлены."


class PageWordsFilterTests(SimpleTestCase):
    def test_css_string_cannot_end_its_string_or_element(self):
        """A translation is written into a <style> element as a CSS string: quotes,
        backslashes and "</style>" become CSS escapes; letters (Cyrillic too) stay."""
        assert css_string("Это (ok)") == '"Это \\28 ok\\29 "'
        written = css_string('a"; } </style><script>x\\')
        assert '"' not in written[1:-1] and "<" not in written and "\\\\" not in written

    def test_json_data_cannot_end_its_script(self):
        """The page's words as JSON in a <script type="application/json">: no "</script>"."""
        written = json_data({"word": "</script><b>&"})
        assert "<" not in written and ">" not in written and "&" not in written
        assert json.loads(written) == {"word": "</script><b>&"}


class PageStringsTests(SimpleTestCase):
    def test_english_strings(self):
        """chat.js's words in English: the plural categories English has, "{n}" for the number."""
        with translation.override("en"):
            strings = page_strings()
        assert strings["unread"]["one"] == "{n} unread message"
        assert strings["unread"]["other"] == "{n} unread messages"
        assert strings["new_below"]["one"] == "({n} new)"
