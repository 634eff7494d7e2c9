"""Pins: pinning and unpinning, the Pinned panel (with htmx and without JavaScript), the
API, the live push to open pages and the event stream; deleting a message unpins it."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.loader import render_to_string
from django.test import TestCase, TransactionTestCase
from django.utils import translation

from chat import frames, services, views
from chat.models import Chat, Event, Message, Pin
from chat.services import pins
from chat.tests.factories import SocketListener, make_room, make_user
from chat.tests.test_api import api
from chat.tests.test_consumers import open_socket
from chat.tests.test_events import receive, stream
from chat.tests.test_reactions import HTMX, PRIVATE, fresh, post, rates


def last_event(chat: Chat) -> dict[str, Any]:
    chat.refresh_from_db()
    return json.loads(Event.objects.get(chat=chat, number=chat.last_event).data)


class Room(TestCase):
    def setUp(self):
        self.alice, self.bob, self.carol = make_user("alice"), make_user("bob"), make_user("carol")
        self.room = make_room(self.alice, name="Team")
        services.add_member(chat=self.room, by=self.alice, user=self.bob)
        self.first = post(self.room, self.alice, "the plan")
        self.second = post(self.room, self.bob, "the date")


class PinServiceTests(Room):
    def test_members_pin_and_unpin(self):
        """Any member pins a message (once), and any member unpins it; each is a chat event
        that moves the message to a new version."""
        start = self.first.event
        assert services.pin_message(message=self.first, user=self.bob) is True
        pin = Pin.objects.get()
        assert (pin.chat, pin.message, pin.pinned_by) == (self.room, self.first, self.bob)
        self.first.refresh_from_db()
        assert self.first.event == start + 2  # the second message came between
        assert services.pin_message(message=self.first, user=self.alice) is False
        assert services.unpin_message(message=self.first, user=self.alice) is True
        assert services.unpin_message(message=self.first, user=self.alice) is False
        assert not Pin.objects.exists()

    def test_events_say_which_message_and_who(self):
        services.pin_message(message=self.first, user=self.bob)
        pinned = last_event(self.room)
        pin = Pin.objects.get()
        assert pinned == {
            "type": "message.pinned",
            "chat": self.room.pk,
            "event": self.room.last_event,
            "message_id": self.first.pk,
            "by": {"id": self.bob.pk, "username": "bob"},
            "pinned_at": pin.pinned_at.isoformat().replace("+00:00", "Z"),
        }
        services.unpin_message(message=self.first, user=self.alice)
        unpinned = last_event(self.room)
        assert unpinned["type"] == "message.unpinned"
        assert (unpinned["message_id"], unpinned["by"]["username"]) == (self.first.pk, "alice")

    def test_only_members_pin_messages_that_are_not_deleted(self):
        with pytest.raises(PermissionDenied):
            services.pin_message(message=self.first, user=self.carol)
        services.pin_message(message=self.first, user=self.bob)
        with pytest.raises(PermissionDenied):
            services.unpin_message(message=self.first, user=self.carol)
        services.delete_message(message=self.second, user=self.bob)
        with pytest.raises(ValidationError, match="deleted"):
            services.pin_message(message=self.second, user=self.bob)
        assert list(Pin.objects.values_list("message", flat=True)) == [self.first.pk]

    def test_deleting_a_message_unpins_it(self):
        """The deletion's event comes first, then message.unpinned; the pin is gone."""
        services.pin_message(message=self.first, user=self.bob)
        services.delete_message(message=self.first, user=self.alice)
        assert not Pin.objects.exists()
        self.room.refresh_from_db()
        kinds = list(
            Event.objects.filter(chat=self.room).order_by("-number").values_list("kind", flat=True)[:2]
        )
        assert kinds == ["message.unpinned", "message.deleted"]
        assert last_event(self.room)["by"]["username"] == "alice"

    def test_the_latest_pin_first_and_a_limit(self):
        services.pin_message(message=self.first, user=self.bob)
        services.pin_message(message=self.second, user=self.bob)
        assert [pin.message for pin in services.pinned_messages(self.room)] == [self.second, self.first]
        third = post(self.room, self.alice, "third")
        with mock.patch.object(pins, "PINS_PER_CHAT", 2), pytest.raises(ValidationError, match="at most 2"):
            services.pin_message(message=third, user=self.bob)

    @rates(edit="1/minute")
    def test_pinning_is_rated(self):
        services.pin_message(message=self.first, user=self.bob)
        with pytest.raises(PermissionDenied, match="pinning too fast"):
            services.unpin_message(message=self.first, user=self.bob)

    def test_pushed_after_commit_with_the_count(self):
        """The message's new version (with its marker) and the chat's pin count reach the
        open pages after the commit; a deleted message's unpinning sends the count with
        its event."""
        listener = SocketListener(self.room)
        with self.captureOnCommitCallbacks() as callbacks:
            services.pin_message(message=self.first, user=self.bob)
            assert listener.pending() == []
        for callback in callbacks:
            callback()
        article, count = listener.pending()
        self.first.refresh_from_db()
        assert article.lstrip().startswith(f'<article id="message-{self.first.pk}"')
        assert f'data-event="{self.first.event}"' in article and 'class="message-pinned"' in article
        # Pushed, its actions are the page's: the fragment says it is pinned, for Unpin.
        assert '<div class="message-actions" data-actions="pinned"></div>' in article
        assert count.startswith('<span id="chat-pin-count"') and ">1</span>" in count
        assert "data-event" not in count
        with self.captureOnCommitCallbacks(execute=True):
            services.delete_message(message=self.first, user=self.alice)
        deleted, count = listener.pending()
        self.room.refresh_from_db()
        assert "data-deleted" in deleted
        assert f'data-event="{self.room.last_event}"' in count and "></span>" in count
        listener.close()


class PinFragmentTests(Room):
    def test_marker_and_action_carry_no_words(self):
        services.pin_message(message=self.first, user=self.bob)
        message = fresh(self.first)
        english = render_to_string("chat/chat_detail.html#message", {"message": message})
        with translation.override("ru"):
            assert render_to_string("chat/chat_detail.html#message", {"message": message}) == english
        assert 'data-actions="pinned"' in english
        assert '<span class="message-pinned"></span>' in english
        other = render_to_string("chat/chat_detail.html#message", {"message": fresh(self.second)})
        assert 'data-actions=""' in other
        # The page's template of the actions, which chat.js fills in, has Pin (its Unpin is
        # made by chat.js from data-actions="pinned").
        template = render_to_string(
            "chat/chat_detail.html#message_actions", {"message": views.actions_template(self.room)}
        )
        assert 'aria-labelledby="word-pin"' in template and 'name="pinned" value="1"' in template
        assert "message-pinned" not in other


class PinPageTests(Room):
    def setUp(self):
        super().setUp()
        self.client.force_login(self.bob)
        self.pin_url = f"/chats/{self.room.pk}/messages/{self.first.pk}/pin/"
        self.pins_url = f"/chats/{self.room.pk}/pins/"

    def test_plain_forms_pin_and_unpin(self):
        """Without JavaScript: pin from the message (back to it), unpin from the Pinned page
        (back to it)."""
        response = self.client.post(self.pin_url, {"pinned": "1"})
        at = f"/chats/{self.room.pk}/?around={self.first.pk}#message-{self.first.pk}"
        assert (response.status_code, response["Location"]) == (302, at)
        page = self.client.get(self.pins_url)
        assert page.status_code == 200 and "<h1" in page.text
        assert f'href="/chats/{self.room.pk}/?around={self.first.pk}#message-{self.first.pk}"' in page.text
        assert "the plan" in page.text and "Pinned by bob" in page.text
        response = self.client.post(self.pin_url, {"pinned": "0", "next": "pins"})
        assert response["Location"] == self.pins_url
        assert "Nothing is pinned yet." in self.client.get(self.pins_url).text

    def test_htmx_answers_the_message_or_the_panel(self):
        response = self.client.post(self.pin_url, {"pinned": "1"}, headers=HTMX)
        assert response.text.lstrip().startswith(f'<article id="message-{self.first.pk}"')
        assert "data-pinned" in response.text
        panel = self.client.get(self.pins_url, headers=HTMX)
        assert panel.text.lstrip().startswith('<section id="pins-panel"') and "<h1" not in panel.text
        assert 'hx-trigger="chat:pins from:body"' in panel.text
        unpinned = self.client.post(
            self.pin_url, {"pinned": "0"}, headers={**HTMX, "HX-Target": "pins-panel"}
        )
        assert unpinned.text.lstrip().startswith('<section id="pins-panel"')
        assert "Nothing is pinned yet." in unpinned.text and not Pin.objects.exists()

    def test_the_chat_page_links_to_the_panel_with_its_count(self):
        services.pin_message(message=self.first, user=self.alice)
        services.pin_message(message=self.second, user=self.alice)
        page = self.client.get(f"/chats/{self.room.pk}/").text
        assert f'href="{self.pins_url}" hx-get="{self.pins_url}" hx-target="#side-panel-body"' in page
        assert (
            '<span id="chat-pin-count" class="rounded-full bg-slate-100 px-1.5 text-xs empty:hidden">2</span>'
            in page
        )

    def test_who_may_pin_and_see_pins(self):
        """A non-member of a public room sees the pins but may not pin (403); a chat one
        can't see is a 404."""
        services.pin_message(message=self.first, user=self.alice)
        self.client.force_login(self.carol)
        page = self.client.get(self.pins_url)
        assert page.status_code == 200 and "the plan" in page.text and 'name="pinned"' not in page.text
        assert self.client.post(self.pin_url, {"pinned": "0"}).status_code == 403
        secret = make_room(self.alice, name="Secret", visibility=PRIVATE)
        hidden = post(secret, self.alice)
        assert self.client.get(f"/chats/{secret.pk}/pins/").status_code == 404
        assert self.client.post(f"/chats/{secret.pk}/messages/{hidden.pk}/pin/").status_code == 404
        assert Pin.objects.count() == 1

    @rates(edit="1/minute")
    def test_too_fast_is_explained(self):
        self.client.post(self.pin_url, {"pinned": "1"})
        response = self.client.post(self.pin_url, {"pinned": "0"}, headers=HTMX)
        assert response["HX-Retarget"] == "#chat-notice" and "You are pinning too fast." in response.text
        panel = self.client.post(self.pin_url, {"pinned": "0", "next": "pins"}, headers=HTMX)
        assert 'role="alert"' in panel.text and "You are pinning too fast." in panel.text
        assert Pin.objects.count() == 1


class PinApiTests(Room):
    def test_pin_read_list_and_unpin(self):
        client = api(self.bob)
        path = f"/api/messages/{self.first.pk}/pin/"
        pinned = client.post(path)
        assert pinned.status_code == 201 and pinned["Location"].endswith(path)
        body = pinned.json()
        assert body["message"]["id"] == self.first.pk and body["pinned_by"] == {
            "id": self.bob.pk,
            "username": "bob",
        }
        assert client.get(path).json() == body
        assert client.post(path).status_code == 200
        client.post(f"/api/messages/{self.second.pk}/pin/")
        listed = client.get(f"/api/chats/{self.room.pk}/pins/").json()
        assert [pin["message"]["id"] for pin in listed["results"]] == [self.second.pk, self.first.pk]
        assert client.delete(path).status_code == 204
        assert client.delete(path).status_code == 204
        assert client.get(path).status_code == 404

    def test_who_may_pin(self):
        path = f"/api/messages/{self.first.pk}/pin/"
        assert api(self.carol).post(path).status_code == 403
        assert api(self.carol).get(f"/api/chats/{self.room.pk}/pins/").status_code == 200
        secret = make_room(self.alice, name="Secret", visibility=PRIVATE)
        hidden = post(secret, self.alice)
        assert api(self.bob).post(f"/api/messages/{hidden.pk}/pin/").status_code == 404
        assert api(self.bob).get(f"/api/chats/{secret.pk}/pins/").status_code == 404
        services.delete_message(message=self.second, user=self.bob)
        assert api(self.bob).post(f"/api/messages/{self.second.pk}/pin/").status_code == 404
        assert not Pin.objects.exists()


class PinCatchUpTests(Room):
    def test_a_page_that_missed_the_pin_catches_up(self):
        since = Chat.objects.get(pk=self.room.pk).last_event
        services.pin_message(message=self.first, user=self.bob)
        html = frames.catch_up(chat=self.room, after=self.second.pk, since=since, first=self.first.pk)
        assert f'id="message-{self.first.pk}"' in html and 'class="message-pinned"' in html


class LivePinTests(TransactionTestCase):
    def setUp(self):
        Chat.objects.get_or_create(name="General", auto_join=True)
        self.alice, self.bob = make_user("alice"), make_user("bob")
        self.room = make_room(self.alice, name="Team")
        services.add_member(chat=self.room, by=self.alice, user=self.bob)
        self.message = post(self.room, self.alice, "pin me")

    async def test_everyone_with_the_chat_open_sees_the_pin(self):
        alice = await open_socket(self.room, self.alice)
        response = await sync_to_async(lambda: api(self.bob).post(f"/api/messages/{self.message.pk}/pin/"))()
        assert response.status_code == 201
        article, count = await alice.receive_from(timeout=5), await alice.receive_from(timeout=5)
        assert f'<article id="message-{self.message.pk}"' in article and "message-pinned" in article
        assert count.startswith('<span id="chat-pin-count"') and ">1<" in count
        await alice.disconnect()

    async def test_the_event_stream_hears_pinned_and_unpinned(self):
        socket, hello = await stream(self.alice)
        start = hello["chats"][str(self.room.pk)]
        message = await Message.objects.aget(pk=self.message.pk)
        await sync_to_async(services.pin_message)(message=message, user=self.bob)
        await sync_to_async(services.delete_message)(message=message, user=self.alice)
        received = [await receive(socket) for _ in range(3)]
        assert [(event["type"], event["event"]) for event in received] == [
            ("message.pinned", start + 1),
            ("message.deleted", start + 2),
            ("message.unpinned", start + 3),
        ]
        assert received[2]["message_id"] == self.message.pk
        await socket.disconnect()
