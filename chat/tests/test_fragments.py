"""Cached message HTML (chat.fragments): a page from the cache is the page rendered afresh,
after every kind of change, in every language, and the cache never carries one viewer's
CSRF token to another."""

import re
from pathlib import Path

from django.core.cache import caches
from django.core.files.uploadedfile import SimpleUploadedFile
from django.middleware.csrf import _unmask_cipher_token  # type: ignore[attr-defined]
from django.test import TestCase, override_settings

from chat import fragments, frames, services
from chat.models import Message
from chat.tests.factories import make_messages, make_room, make_user

# A page's CSRF tokens are masked afresh on every render; nonces too.
VARYING = re.compile(
    r'(name="csrfmiddlewaretoken" value=|"X-CSRFToken": |nonce=|name="client_id" value=)"[^"]*"'
)


def normalized(html: bytes) -> str:
    return VARYING.sub(r"\1", html.decode())


class FragmentTests(TestCase):
    def setUp(self):
        self.owner = make_user("owner")
        self.reader = make_user("reader")
        self.room = make_room(self.owner)
        services.join_chat(user=self.reader, chat=self.room)

        def post(**fields) -> Message:
            return services.post_message(chat=self.room, **fields)[0]

        self.first = post(user=self.owner, text="The *first* message")
        self.reply = post(user=self.reader, text="An answer", reply_to=self.first.pk)
        self.filed = post(
            user=self.reader,
            text="With a file",
            files=[SimpleUploadedFile("notes.txt", b"some notes", content_type="text/plain")],
        )
        self.doomed = post(user=self.owner, text="Soon gone")
        services.toggle_reaction(message=self.first, user=self.reader, emoji="👍")
        self.client.force_login(self.reader)
        self.url = f"/chats/{self.room.pk}/"

    def page(self, **headers) -> str:
        response = self.client.get(self.url, headers=headers)
        assert response.status_code == 200
        return normalized(response.content)

    def assert_cached_page_is_fresh(self, **headers):
        """The page from a warm cache is the page rendered with an empty one."""
        warm = self.page(**headers)
        caches[fragments.CACHE].clear()
        assert self.page(**headers) == warm

    def test_a_cached_page_is_the_page_rendered_afresh_after_every_change(self):
        self.assert_cached_page_is_fresh()
        changes = [
            lambda: services.edit_message(message=self.first, user=self.owner, text="The first, edited"),
            lambda: services.toggle_reaction(message=self.reply, user=self.owner, emoji="🎉"),
            lambda: services.toggle_reaction(message=self.first, user=self.reader, emoji="👍"),
            lambda: services.pin_message(message=self.filed, user=self.owner),
            lambda: services.delete_message(message=self.doomed, user=self.owner),
            lambda: services.unpin_message(message=self.filed, user=self.owner),
        ]
        for change in changes:
            before = self.page()
            change()
            after = self.page()
            assert after != before
            self.assert_cached_page_is_fresh()

    def test_the_reply_quote_follows_the_answered_message(self):
        self.page()
        services.edit_message(message=self.first, user=self.owner, text="Quoted, then edited")
        assert "Quoted, then edited" in self.page().split(f'id="message-{self.reply.pk}"')[1]
        services.delete_message(message=self.first, user=self.owner)
        self.assert_cached_page_is_fresh()

    def test_each_language_has_its_own_words(self):
        services.edit_message(message=self.first, user=self.owner, text="Edited")
        edited = '<span class="message-edited text-xs text-slate-500">{}</span>'
        for language, word in (("en", "(edited)"), ("ru", "(изменено)"), ("en", "(edited)")):
            assert edited.format(word) in self.page(accept_language=language)
        self.assert_cached_page_is_fresh(accept_language="ru")

    def test_a_renamed_author_is_shown_by_the_new_name(self):
        self.page()
        self.reader.username = "renamed"
        self.reader.save()
        assert self.page().count(">renamed<") >= 2  # the author of two messages
        self.assert_cached_page_is_fresh()

    def test_the_page_carries_its_own_csrf_token_and_no_placeholder(self):
        self.client.get(self.url)
        other = self.client_class()
        other.force_login(self.owner)
        for client in (self.client, other):
            html = client.get(self.url).content.decode()
            assert fragments.PLACEHOLDER not in html
            tokens = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
            assert len(tokens) > 4  # the messages' forms, beside the composer's
            secret = client.cookies["csrftoken"].value
            assert {_unmask_cipher_token(token) for token in tokens} == {secret}

    def test_text_shaped_like_the_placeholder_stays_text(self):
        services.post_message(chat=self.room, user=self.owner, text=fragments.PLACEHOLDER_INPUT)
        html = self.client.get(self.url).content.decode()
        assert "&lt;input type=&quot;hidden&quot; name=&quot;csrfmiddlewaretoken&quot;" in html
        assert fragments.PLACEHOLDER_INPUT not in html
        # Still the text itself, in the message and in its chat's preview in the chat list.
        assert html.count(f'value="{fragments.PLACEHOLDER}"&gt;') == 1
        assert html.count(f"value=&quot;{fragments.PLACEHOLDER}&quot;&gt;") == 1

    def test_a_stale_page_over_the_socket_has_the_pushed_fragments(self):
        """The socket's catch-up renders fragments as pushed: no words, no token, no actions."""
        make_messages(self.room, self.owner, frames.CATCH_UP_LIMIT + 1)
        html = frames.catch_up(chat=self.room, after=self.first.pk, since=0)
        assert 'hx-swap-oob="true"' in html
        assert "csrfmiddlewaretoken" not in html
        assert 'class="message-actions" data-actions=""' in html
        assert html.count('class="message ') == len(Message.objects.latest_page(self.room))

    def test_the_templates_are_part_of_the_key(self):
        message = Message.objects.with_author().get(pk=self.first.pk)
        key = fragments.key(message, (1, 1), "push")
        fragments.templates_version.cache_clear()
        try:
            with override_settings(BASE_DIR=Path(__file__).resolve().parent):
                assert fragments.key(message, (1, 1), "push") != key
        finally:
            fragments.templates_version.cache_clear()
        assert fragments.key(message, (1, 1), "push") == key
