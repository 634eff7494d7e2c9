"""Reactions: the rule for an emoji, toggling, the page (with htmx and without JavaScript),
the API, the live push to open pages, the event stream, and what a page of them costs."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.template.loader import render_to_string
from django.test import TestCase, TransactionTestCase, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from chat import fragments, frames, services
from chat.limits import RateLimited
from chat.models import Chat, Event, Message, Reaction, with_extras
from chat.services import reactions
from chat.tests.factories import SocketListener, make_messages, make_room, make_user
from chat.tests.test_api import api
from chat.tests.test_consumers import open_socket
from chat.tests.test_events import receive, stream

HTMX = {"HX-Request": "true"}
PRIVATE = Chat.Visibility.PRIVATE


def rates(**changes: str) -> override_settings:
    return override_settings(CHAT_RATES={**settings.CHAT_RATES, **changes})


def post(chat: Chat, user: Any, text: str = "hello") -> Message:
    message, _ = services.post_message(chat=chat, user=user, text=text)
    return message


def fresh(message: Message) -> Message:
    """The message as a page loads it: with its reactions and pin."""
    return with_extras([Message.objects.with_author().get(pk=message.pk)])[0]


def rendered(message: Message) -> str:
    return render_to_string("chat/chat_detail.html#message", {"message": fresh(message)})


def event_of(message: Message) -> dict[str, Any]:
    """The stored event that last changed the message."""
    return json.loads(Event.objects.get(chat_id=message.chat_id, number=message.event).data)


class Room(TestCase):
    def setUp(self):
        self.alice, self.bob, self.carol = make_user("alice"), make_user("bob"), make_user("carol")
        self.room = make_room(self.alice, name="Team")
        services.add_member(chat=self.room, by=self.alice, user=self.bob)
        self.message = post(self.room, self.alice)


class EmojiRuleTests(TestCase):
    def test_one_emoji_of_any_kind_is_kept(self):
        """One emoji, with a skin tone, joined into one (a family), a flag, a keycap or a
        subdivision flag, is a reaction; an emoji with a text look is kept in its emoji style."""
        kept = {
            "👍": "👍",
            " 🎉 ": "🎉",
            "❤️": "❤️",
            "❤": "❤️",
            "☺︎": "☺️",
            "👍🏽": "👍🏽",
            "👨‍👩‍👧": "👨‍👩‍👧",
            "🧑🏻‍❤️‍💋‍🧑🏼": "🧑🏻‍❤️‍💋‍🧑🏼",
            "🇺🇦": "🇺🇦",
            "1️⃣": "1️⃣",
            "🏴󠁧󠁢󠁥󠁮󠁧󠁿": "🏴󠁧󠁢󠁥󠁮󠁧󠁿",
        }
        for given, emoji in kept.items():
            assert services.clean_emoji(given) == emoji, given

    def test_anything_else_is_refused_with_a_reason(self):
        """Letters, digits, spaces, markup, parts of an emoji alone, several emoji or too many
        code points are refused, each with words that say why."""
        refused = {
            "": "Choose an emoji.",
            "   ": "Choose an emoji.",
            None: "Choose an emoji.",
            5: "Choose an emoji.",
            "a": "letters, digits, spaces and markup",
            "ok": "letters, digits, spaces and markup",
            "<b>": "letters, digits, spaces and markup",
            "<script>alert(1)</script>": "too long",
            "&amp;": "letters, digits, spaces and markup",
            "1": "letters, digits, spaces and markup",
            "👍 👍": "letters, digits, spaces and markup",
            "\u200d": "letters, digits, spaces and markup",
            "👍\u200d": "letters, digits, spaces and markup",
            "🏻": "letters, digits, spaces and markup",
            "🇺": "letters, digits, spaces and markup",
            "👍👍": "one emoji, not several",
            "😂🎉": "one emoji, not several",
            "👍" * 11: "too long",
        }
        for given, reason in refused.items():
            with pytest.raises(ValidationError) as error:
                services.clean_emoji(given)
            assert reason in " ".join(error.value.messages), given
            assert list(error.value.message_dict) == ["emoji"]


class ReactionServiceTests(Room):
    def test_pressing_twice_adds_then_takes_back(self):
        """A reaction toggles: the first press adds the person's, the second takes it back;
        each is a chat event that moves the message to a new version."""
        start = self.message.event
        assert services.toggle_reaction(message=self.message, user=self.bob, emoji="👍") is True
        assert list(Reaction.objects.values_list("user__username", "emoji")) == [("bob", "👍")]
        self.message.refresh_from_db()
        assert self.message.event == start + 1
        assert services.toggle_reaction(message=self.message, user=self.bob, emoji="👍") is False
        assert not Reaction.objects.exists()
        self.message.refresh_from_db()
        assert self.message.event == start + 2
        assert Chat.objects.get(pk=self.room.pk).last_event == start + 2

    def test_events_say_who_what_and_the_counts(self):
        """reaction.added and reaction.removed carry the message's id, the emoji, who, the
        emoji's count and every emoji's count, in the order they came."""
        services.add_reaction(message=self.message, user=self.bob, emoji="🎉")
        services.add_reaction(message=self.message, user=self.alice, emoji="👍")
        services.add_reaction(message=self.message, user=self.bob, emoji="👍")
        added = event_of(self.message)
        assert added == {
            "type": "reaction.added",
            "chat": self.room.pk,
            "event": self.message.event,
            "message_id": self.message.pk,
            "emoji": "👍",
            "user": {"id": self.bob.pk, "username": "bob"},
            "count": 2,
            "reactions": [{"emoji": "🎉", "count": 1}, {"emoji": "👍", "count": 2}],
        }
        services.remove_reaction(message=self.message, user=self.bob, emoji="🎉")
        removed = event_of(self.message)
        assert removed["type"] == "reaction.removed"
        assert (removed["emoji"], removed["count"]) == ("🎉", 0)
        assert removed["reactions"] == [{"emoji": "👍", "count": 2}]

    def test_adding_again_or_removing_nothing_changes_nothing(self):
        """Adding a reaction one has, or taking back one one hasn't, takes no event."""
        services.add_reaction(message=self.message, user=self.bob, emoji="👍")
        self.message.refresh_from_db()
        event = self.message.event
        assert services.add_reaction(message=self.message, user=self.bob, emoji="👍") is False
        assert services.remove_reaction(message=self.message, user=self.bob, emoji="🎉") is False
        assert Chat.objects.get(pk=self.room.pk).last_event == event
        assert Reaction.objects.count() == 1

    def test_both_spellings_of_an_emoji_are_one_reaction(self):
        """❤ and ❤️ are the same reaction."""
        services.add_reaction(message=self.message, user=self.bob, emoji="❤")
        assert services.toggle_reaction(message=self.message, user=self.bob, emoji="❤️") is False
        assert not Reaction.objects.exists()

    def test_only_members_react_to_messages_that_are_not_deleted(self):
        """A non-member may not react (even in a public room); nobody reacts to a deleted message."""
        with pytest.raises(PermissionDenied):
            services.toggle_reaction(message=self.message, user=self.carol, emoji="👍")
        services.delete_message(message=self.message, user=self.alice)
        with pytest.raises(ValidationError, match="deleted"):
            services.toggle_reaction(message=self.message, user=self.bob, emoji="👍")
        assert not Reaction.objects.exists()

    def test_a_bad_emoji_changes_nothing(self):
        event = Chat.objects.get(pk=self.room.pk).last_event
        with pytest.raises(ValidationError):
            services.toggle_reaction(message=self.message, user=self.bob, emoji="<b>")
        assert not Reaction.objects.exists()
        assert Chat.objects.get(pk=self.room.pk).last_event == event

    @rates(reaction="2/minute")
    def test_reactions_are_rated(self):
        """Reacting counts against the person's reaction rate, adding and taking back alike."""
        services.toggle_reaction(message=self.message, user=self.bob, emoji="👍")
        services.toggle_reaction(message=self.message, user=self.bob, emoji="👍")
        with pytest.raises(RateLimited, match="reacting too fast"):
            services.toggle_reaction(message=self.message, user=self.bob, emoji="👍")

    def test_a_message_has_a_limited_number_of_different_emoji(self):
        """Past REACTIONS_PER_MESSAGE different emoji, a new one is refused; one already there
        may still be added."""
        emoji = [chr(0x1F600 + i) for i in range(reactions.REACTIONS_PER_MESSAGE)]
        Reaction.objects.bulk_create(Reaction(message=self.message, user=self.alice, emoji=e) for e in emoji)
        with pytest.raises(ValidationError, match="at most 20 different reactions"):
            services.add_reaction(message=self.message, user=self.bob, emoji="🦊")
        assert services.add_reaction(message=self.message, user=self.bob, emoji=emoji[0]) is True

    def test_pushed_after_commit_as_the_messages_new_version(self):
        """The message, rendered once with its reactions, reaches the chat's open pages after
        the commit, carrying its new event."""
        listener = SocketListener(self.room)
        with self.captureOnCommitCallbacks() as callbacks:
            services.toggle_reaction(message=self.message, user=self.bob, emoji="👍")
            assert listener.pending() == []
        for callback in callbacks:
            callback()
        [html] = listener.pending()
        self.message.refresh_from_db()
        assert html.lstrip().startswith(f'<article id="message-{self.message.pk}"')
        assert f'data-event="{self.message.event}"' in html
        assert f'data-reactors="{self.bob.pk}"' in html
        listener.close()


class ReactionFragmentTests(Room):
    def test_counts_names_and_reactors_in_no_language(self):
        """Each emoji is a button named by the emoji, its count and who reacted, with the ids
        of who reacted for the page's CSS; the fragment is the same in every language."""
        services.add_reaction(message=self.message, user=self.bob, emoji="👍")
        services.add_reaction(message=self.message, user=self.alice, emoji="👍")
        services.add_reaction(message=self.message, user=self.alice, emoji="🎉")
        message = fresh(self.message)
        with translation.override("ru"):
            russian = render_to_string("chat/chat_detail.html#message", {"message": message})
        english = render_to_string("chat/chat_detail.html#message", {"message": message})
        assert russian == english
        assert 'aria-label="👍 2: bob, alice"' in english and 'title="bob, alice"' in english
        assert f'data-reactors="{self.bob.pk} {self.alice.pk}"' in english
        assert english.index('data-emoji="👍"') < english.index('data-emoji="🎉"')
        assert 'aria-labelledby="word-reactions"' in english and 'data-actions=""' in english
        for word in ("React", "Reactions", "Any emoji", "Pin", "Реакции"):
            assert f">{word}<" not in english and f'"{word}"' not in english
        # A pushed fragment carries no CSRF token: htmx sends the page's.
        assert "csrfmiddlewaretoken" not in english

    def test_a_new_message_costs_no_query_to_render(self):
        """As posted, a message has no reactions or pin, and reads nothing for them."""
        message = post(self.room, self.bob, "new")
        with self.assertNumQueries(0):
            html = render_to_string("chat/chat_detail.html#message_oob", {"message": message})
        assert '<div class="message-actions" data-actions=""></div>' in html and "message-extras" not in html


class ReactionPageTests(Room):
    def setUp(self):
        super().setUp()
        self.client.force_login(self.bob)
        self.url = f"/chats/{self.room.pk}/messages/{self.message.pk}/reactions/"

    def test_plain_form_post_redirects_back_to_the_message(self):
        """Without JavaScript the form posts and comes back to the chat at the message, which
        shows the reaction (its form with the page's CSRF token)."""
        response = self.client.post(self.url, {"emoji": "👍"})
        at = f"/chats/{self.room.pk}/?around={self.message.pk}#message-{self.message.pk}"
        assert (response.status_code, response["Location"]) == (302, at)
        page = self.client.get(f"/chats/{self.room.pk}/").text
        assert f'data-reactors="{self.bob.pk}"' in page
        assert re.search(r'name="emoji" value="👍">\s*<button', page)
        reactions_form = page[page.index(f'id="message-{self.message.pk}-reactions"') :]
        assert "csrfmiddlewaretoken" in reactions_form.split("</form>")[0]
        self.client.post(self.url, {"emoji": "👍"})
        assert not Reaction.objects.exists()

    def test_htmx_gets_the_messages_new_version(self):
        response = self.client.post(self.url, {"emoji": "🎉"}, headers=HTMX)
        assert response.status_code == 200
        assert response.text.lstrip().startswith(f'<article id="message-{self.message.pk}"')
        assert f'id="reaction-{self.message.pk}-1f389"' in response.text
        self.message.refresh_from_db()
        assert f'data-event="{self.message.event}"' in response.text

    def test_a_bad_emoji_is_explained(self):
        """A bad emoji: the chat's notice says why (htmx), or a notice after going back."""
        response = self.client.post(self.url, {"emoji": "hello"}, headers=HTMX)
        assert response.status_code == 200
        assert (response["HX-Retarget"], response["HX-Reswap"]) == ("#chat-notice", "outerHTML")
        assert 'id="chat-notice" role="alert"' in response.text
        assert "letters, digits, spaces and markup" in response.text
        followed = self.client.post(self.url, {"emoji": "👍👍"}, follow=True)
        assert "A reaction is one emoji, not several." in followed.text
        assert not Reaction.objects.exists()

    @rates(reaction="1/minute")
    def test_too_fast_is_explained(self):
        self.client.post(self.url, {"emoji": "👍"})
        response = self.client.post(self.url, {"emoji": "👍"}, headers=HTMX)
        assert "You are reacting too fast." in response.text
        assert Reaction.objects.count() == 1

    def test_who_may_react(self):
        """A non-member of a public room: 403; a chat one can't see, or a message of another
        chat: 404; only POST."""
        self.client.force_login(self.carol)
        assert self.client.post(self.url, {"emoji": "👍"}).status_code == 403
        secret = make_room(self.alice, name="Secret", visibility=PRIVATE)
        hidden = post(secret, self.alice)
        assert (
            self.client.post(
                f"/chats/{secret.pk}/messages/{hidden.pk}/reactions/", {"emoji": "👍"}
            ).status_code
            == 404
        )
        self.client.force_login(self.bob)
        assert (
            self.client.post(f"/chats/{secret.pk}/messages/{self.message.pk}/reactions/").status_code == 404
        )
        other = make_room(self.bob, name="Other")
        assert self.client.post(f"/chats/{other.pk}/messages/{self.message.pk}/reactions/").status_code == 404
        assert self.client.get(self.url).status_code == 405
        assert not Reaction.objects.exists()

    def test_the_page_marks_my_reactions_and_offers_the_picker(self):
        """The page's own CSS presses this person's reactions; members get the picker and the
        Pin action, non-members neither."""
        page = self.client.get(f"/chats/{self.room.pk}/").text
        assert f'.reaction[data-reactors~="{self.bob.pk}"]' in page
        # The message's own, and the template of the actions that pushed messages get.
        assert page.count('class="reaction-picker relative') == 2
        assert '<span id="word-react">React</span>' in page
        # The picker's forms come when its menu is opened (htmx), or as a page without JavaScript.
        picker_url = f"/chats/{self.room.pk}/messages/{self.message.pk}/react/"
        assert f'hx-get="{picker_url}" hx-trigger="toggle once"' in page and f'href="{picker_url}"' in page
        for answer in (
            self.client.get(picker_url, headers={"HX-Request": "true"}),
            self.client.get(picker_url),
        ):
            for emoji in reactions.QUICK_REACTIONS:
                assert f'value="{emoji}"' in answer.text
            assert 'name="csrfmiddlewaretoken"' in answer.text
        self.client.force_login(self.carol)
        assert ".message-actions { display: none; }" in self.client.get(f"/chats/{self.room.pk}/").text
        assert self.client.get(picker_url).status_code == 200  # a public room: carol may read it


class ReactionApiTests(Room):
    def path(self, message: Message | None = None) -> str:
        return f"/api/messages/{(message or self.message).pk}/reactions/"

    def test_add_list_read_and_take_back(self):
        """POST adds (201 with Location, then 200), GET lists and reads one, DELETE takes back (204)."""
        client = api(self.bob)
        added = client.post(self.path(), {"emoji": "👍"}, format="json")
        assert added.status_code == 201
        assert added.json() == {
            "emoji": "👍",
            "count": 1,
            "users": [{"id": self.bob.pk, "username": "bob"}],
            "mine": True,
        }
        one = client.get(added["Location"])
        assert one.status_code == 200 and one.json() == added.json()
        assert added["Location"].endswith(f"{self.path()}{quote('👍')}/")
        again = client.post(self.path(), {"emoji": "👍"})
        assert again.status_code == 200 and "Location" not in again
        api(self.alice).post(self.path(), {"emoji": "❤"})
        listed = api(self.alice).get(self.path()).json()
        assert [(r["emoji"], r["count"], r["mine"]) for r in listed] == [("👍", 1, False), ("❤️", 1, True)]
        assert client.delete(f"{self.path()}{quote('👍')}/").status_code == 204
        assert client.delete(f"{self.path()}{quote('👍')}/").status_code == 204
        assert client.get(f"{self.path()}{quote('👍')}/").status_code == 404
        assert list(Reaction.objects.values_list("emoji", flat=True)) == ["❤️"]

    def test_bad_emoji_is_a_400_naming_the_field(self):
        client = api(self.bob)
        for emoji in ("", "hi", "<img src=x>", "👍👍"):
            response = client.post(self.path(), {"emoji": emoji}, format="json")
            assert response.status_code == 400, emoji
            assert list(response.json()["codes"]) == ["emoji"], emoji
        assert client.post(self.path(), {}, format="json").json()["codes"] == {"emoji": ["required"]}
        assert client.get(f"{self.path()}{quote('abc')}/").status_code == 400
        assert not Reaction.objects.exists()

    def test_who_may_react(self):
        """A non-member of a public room: 403 (reading is fine); a private chat: 404; no
        credentials: 401."""
        assert api(self.carol).post(self.path(), {"emoji": "👍"}).status_code == 403
        assert api(self.carol).get(self.path()).status_code == 200
        assert api(self.carol).delete(f"{self.path()}{quote('👍')}/").status_code == 403
        secret = make_room(self.alice, name="Secret", visibility=PRIVATE)
        hidden = post(secret, self.alice)
        for response in (
            api(self.bob).post(self.path(hidden), {"emoji": "👍"}),
            api(self.bob).get(self.path(hidden)),
            api(self.bob).delete(f"{self.path(hidden)}{quote('👍')}/"),
        ):
            assert response.status_code == 404
        assert api().post(self.path(), {"emoji": "👍"}).status_code == 401
        assert not Reaction.objects.exists()

    @rates(reaction="1/minute")
    def test_rated_with_headers(self):
        client = api(self.bob)
        first = client.post(self.path(), {"emoji": "👍"})
        assert (first["RateLimit-Limit"], first["RateLimit-Remaining"]) == ("1", "0")
        refused = client.post(self.path(), {"emoji": "🎉"})
        assert refused.status_code == 429 and refused.json()["detail"] == "You are reacting too fast."

    def test_the_message_shape_is_unchanged(self):
        """Reactions are their own resource: the message's shape has no reactions field."""
        services.add_reaction(message=self.message, user=self.bob, emoji="👍")
        assert "reactions" not in api(self.bob).get(f"/api/messages/{self.message.pk}/").json()


class CatchUpAndCostTests(Room):
    def test_a_page_that_missed_the_push_catches_up(self):
        """A reaction moves the message's event on: a page that asks for what changed since
        gets the message again, with its reactions."""
        since = Chat.objects.get(pk=self.room.pk).last_event
        services.add_reaction(message=self.message, user=self.bob, emoji="🎉")
        html = frames.catch_up(chat=self.room, after=self.message.pk, since=since, first=self.message.pk)
        assert f'id="message-{self.message.pk}"' in html and 'data-emoji="🎉"' in html

    def test_a_page_costs_the_same_queries_whatever_its_reactions(self):
        """The room page reads reactions and pins in a fixed number of queries: 50 messages
        with many reactions and pins cost what 3 without any do."""
        self.client.force_login(self.alice)
        url = f"/chats/{self.room.pk}/"
        self.client.get(url)
        # Both views first views: every message's HTML made afresh (chat.fragments).
        caches[fragments.CACHE].clear()
        with CaptureQueriesContext(connection) as few:
            assert self.client.get(url).status_code == 200
        messages = make_messages(self.room, self.bob, 60)
        people = [self.alice, self.bob] + [make_user() for _ in range(3)]
        for person in people[2:]:
            services.add_member(chat=self.room, by=self.alice, user=person)
        Reaction.objects.bulk_create(
            Reaction(message=message, user=person, emoji=emoji)
            for message in messages[-50:]
            for person in people
            for emoji in ("👍", "🎉")
        )
        for message in messages[-5:]:
            services.pin_message(message=message, user=self.alice)
        caches[fragments.CACHE].clear()
        with CaptureQueriesContext(connection) as many:
            page = self.client.get(url)
        assert page.text.count('class="reaction ') == 100
        assert page.text.count('class="message-pinned"') == 5
        assert len(many) == len(few), [query["sql"] for query in many.captured_queries]


class LiveReactionTests(TransactionTestCase):
    def setUp(self):
        Chat.objects.get_or_create(name="General", auto_join=True)
        self.alice, self.bob = make_user("alice"), make_user("bob")
        self.room = make_room(self.alice, name="Team")
        services.add_member(chat=self.room, by=self.alice, user=self.bob)
        self.message = post(self.room, self.alice, "react to me")

    async def test_everyone_with_the_chat_open_sees_it(self):
        """Bob's reaction through the API reaches Alice's open page as the message's new version."""
        alice = await open_socket(self.room, self.alice)
        response = await sync_to_async(
            lambda: api(self.bob).post(f"/api/messages/{self.message.pk}/reactions/", {"emoji": "👍"})
        )()
        assert response.status_code == 201
        frame = await alice.receive_from(timeout=5)
        assert frame.lstrip().startswith(f'<article id="message-{self.message.pk}"')
        assert f'data-reactors="{self.bob.pk}"' in frame and 'aria-label="👍 1: bob"' in frame
        await alice.disconnect()

    async def test_the_event_stream_hears_added_and_removed(self):
        socket, hello = await stream(self.alice)
        start = hello["chats"][str(self.room.pk)]
        await sync_to_async(services.toggle_reaction)(message=self.message, user=self.bob, emoji="🎉")
        await sync_to_async(services.toggle_reaction)(message=self.message, user=self.bob, emoji="🎉")
        added, removed = await receive(socket), await receive(socket)
        assert (added["type"], added["event"], added["emoji"], added["count"]) == (
            "reaction.added",
            start + 1,
            "🎉",
            1,
        )
        assert added["message_id"] == self.message.pk and added["user"]["username"] == "bob"
        assert (removed["type"], removed["event"], removed["count"], removed["reactions"]) == (
            "reaction.removed",
            start + 2,
            0,
            [],
        )
        await socket.disconnect()
