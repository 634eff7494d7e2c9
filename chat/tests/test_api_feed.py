"""The REST change feed (`?since=<event>`) and the original API's shapes: `participants`
on a new room, and the flat `/api/messages/`."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import override_settings
from rest_framework.test import APIClient

from chat import broadcast, services
from chat.models import Chat, Membership, Message
from chat.tests.factories import general, make_messages, make_room, make_user
from chat.tests.test_api import APITestCase, api, field_errors, post

PRIVATE = Chat.Visibility.PRIVATE


class ChangeFeedTests(APITestCase):
    def setUp(self) -> None:
        super().setUp()
        self.owner, self.member = make_user("owner"), make_user("member")
        self.chat = make_room(self.owner, name="Room")
        services.join_chat(user=self.member, chat=self.chat)

    def feed(self, client: APIClient, since: int, **query: Any) -> dict[str, Any]:
        response = client.get(f"/api/chats/{self.chat.pk}/messages/", {"since": since, **query})
        assert response.status_code == 200, response.content
        return response.json()

    def last_event(self) -> int:
        return api(self.owner).get(f"/api/chats/{self.chat.pk}/").json()["last_event"]

    def test_messages_show_seq_event_and_deleted(self):
        """A message carries its sequence number, its event and `deleted`; a chat its last event."""
        first, second = post(self.chat, self.member, "one"), post(self.chat, self.member, "two")
        body = api(self.owner).get(f"/api/messages/{second.pk}/").json()
        assert (body["seq"], body["event"], body["deleted"]) == (first.seq + 1, second.event, False)
        assert self.last_event() == second.event

    def test_feed_after_edits_and_deletes(self):
        """?since= gives every message posted, edited or deleted after that event, oldest event
        first, a deleted one as a tombstone; the default listing still leaves it out."""
        start = self.last_event()
        one, two, three = (post(self.chat, self.member, text) for text in ("one", "two", "three"))
        services.edit_message(message=one, user=self.member, text="one, edited")
        services.delete_message(message=two, user=self.member)
        body = self.feed(api(self.owner), start)
        assert [(m["id"], m["text"], m["deleted"]) for m in body["results"]] == [
            (three.pk, "three", False),
            (one.pk, "one, edited", False),
            (two.pk, "", True),
        ]
        events = [m["event"] for m in body["results"]]
        assert events == sorted(events) and events[-1] == self.last_event()
        assert body["results"][1]["edited_at"] is not None
        assert (body["next"], body["previous"]) == (None, None)
        # From the event of the edit on, only the deletion is left.
        later = self.feed(api(self.owner), events[1])
        assert [(m["id"], m["deleted"]) for m in later["results"]] == [(two.pk, True)]
        assert self.feed(api(self.owner), self.last_event())["results"] == []
        listing = api(self.owner).get(f"/api/chats/{self.chat.pk}/messages/").json()
        assert [m["id"] for m in listing["results"]] == [three.pk, one.pk]

    def test_feed_pages_follow_next(self):
        """The feed comes a page at a time; `next` continues from the page's last event, and a
        message changed meanwhile comes again at its new event."""
        start = self.last_event()
        messages = make_messages(self.chat, self.member, 5)
        client = api(self.owner)
        page1 = self.feed(client, start, page_size=2)
        assert [m["id"] for m in page1["results"]] == [m.pk for m in messages[:2]]
        assert page1["previous"] is None
        changed = Message.objects.get(pk=messages[0].pk)
        services.edit_message(message=changed, user=self.member, text="changed")
        page2 = client.get(page1["next"]).json()
        page3 = client.get(page2["next"]).json()
        seen = [m["id"] for page in (page2, page3) for m in page["results"]]
        assert seen == [m.pk for m in messages[2:]] + [changed.pk]
        assert page3["next"] is None
        assert page3["results"][-1]["text"] == "changed"

    def test_bad_since(self):
        """A `since` that is not a non-negative integer is a 400 on `since`; with `after` too, a 400."""
        client = api(self.owner)
        path = f"/api/chats/{self.chat.pk}/messages/"
        for value in ("x", "-1", "1.5"):
            response = client.get(path, {"since": value})
            assert response.status_code == 400, value
            assert list(field_errors(response)) == ["since"], value
        both = client.get(path, {"since": 0, "after": 0})
        assert both.status_code == 400
        assert list(field_errors(both)) == ["non_field_errors"]

    def test_feed_of_a_chat_you_may_not_see_is_a_404(self):
        """A private room's feed is a 404 for someone outside it."""
        private = make_room(self.owner, name="Hidden", visibility=PRIVATE)
        post(private, self.owner, "secret")
        response = api(self.member).get(f"/api/chats/{private.pk}/messages/", {"since": 0})
        assert response.status_code == 404
        assert "secret" not in response.content.decode()

    def test_replayed_client_id_of_a_deleted_message(self):
        """Posting again with the client_id of a message deleted since answers 200 with its tombstone."""
        client_id = str(uuid.uuid4())
        client = api(self.member)
        path = f"/api/chats/{self.chat.pk}/messages/"
        first = client.post(path, {"text": "oops", "client_id": client_id})
        assert first.status_code == 201
        assert client.delete(f"/api/messages/{first.json()['id']}/").status_code == 204
        again = client.post(path, {"text": "oops", "client_id": client_id})
        assert again.status_code == 200
        body = again.json()
        assert (body["id"], body["deleted"], body["text"], body["client_id"]) == (
            first.json()["id"],
            True,
            "",
            client_id,
        )
        assert Message.objects.filter(client_id=client_id).count() == 1


class ParticipantsTests(APITestCase):
    def setUp(self) -> None:
        super().setUp()
        self.owner, self.alice, self.bob = make_user("owner"), make_user("alice"), make_user("bob")

    def test_participants_become_members(self):
        """POST /api/chats/ with participants: they are members, the creator owns the room, each
        gets the room in their chat list after commit, and the answer lists every member."""
        with self.captureOnCommitCallbacks(execute=False) as pushes:
            response = api(self.owner).post(
                "/api/chats/",
                {"name": "Plans", "visibility": "private", "participants": [self.alice.pk, self.bob.pk]},
                format="json",
            )
        assert response.status_code == 201
        body = response.json()
        assert (body["name"], body["visibility"], body["role"]) == ("Plans", "private", "owner")
        assert body["participants"] == sorted([self.owner.pk, self.alice.pk, self.bob.pk])
        roles = dict(Membership.objects.filter(chat_id=body["id"]).values_list("user__username", "role"))
        assert roles == {"owner": "owner", "alice": "member", "bob": "member"}
        # The room reaches the chat list of each of its members.
        added = {
            push.args[1] for push in pushes if isinstance(push, partial) and push.func is broadcast.chat_added
        }
        assert added == {self.owner.pk, self.alice.pk, self.bob.pk}
        assert api(self.alice).get(f"/api/chats/{body['id']}/").status_code == 200

    def test_without_participants_the_creator_alone(self):
        """Without participants a room has its creator only, as before; a repeated id, or the
        creator's own, is harmless."""
        alone = api(self.owner).post("/api/chats/", {"name": "Solo"}, format="json")
        assert alone.status_code == 201
        assert (alone.json()["participants"], alone.json()["visibility"]) == ([self.owner.pk], "public")
        repeated = api(self.owner).post(
            "/api/chats/",
            {"name": "Twice", "participants": [self.alice.pk, self.alice.pk, self.owner.pk]},
            format="json",
        )
        assert repeated.status_code == 201
        assert repeated.json()["participants"] == sorted([self.owner.pk, self.alice.pk])
        assert Membership.objects.get(chat_id=repeated.json()["id"], user=self.owner).role == "owner"

    def test_unknown_participants_are_named(self):
        """Ids that are not active users are a 400 naming each of them, and no room is created."""
        services.deactivate_user(user=self.bob)
        rooms = Chat.objects.count()
        response = api(self.owner).post(
            "/api/chats/",
            {"name": "Plans", "participants": [self.alice.pk, 987654, self.bob.pk]},
            format="json",
        )
        assert response.status_code == 400
        assert field_errors(response) == {"participants": [f"No such users: 987654, {self.bob.pk}."]}
        assert Chat.objects.count() == rooms
        for bad in ("nobody", [0], ["x"]):
            refused = api(self.owner).post(
                "/api/chats/", {"name": "Plans", "participants": bad}, format="json"
            )
            assert refused.status_code == 400, bad
            assert list(field_errors(refused)) == ["participants"], bad
        assert Chat.objects.count() == rooms


class FlatMessagesTests(APITestCase):
    def setUp(self) -> None:
        super().setUp()
        self.owner, self.outsider = make_user("owner"), make_user("outsider")
        self.private = make_room(self.owner, name="Hidden", visibility=PRIVATE)
        self.public = make_room(self.owner, name="Open")
        self.secret = post(self.private, self.owner, "secret")
        self.hello = post(self.public, self.owner, "hello")
        self.welcome = post(general(), self.owner, "welcome")

    def listing(self, user: User, query: dict[str, Any] | None = None) -> dict[str, Any]:
        response = api(user).get("/api/messages/", query or {})
        assert response.status_code == 200, response.content
        return response.json()

    def test_lists_what_the_caller_may_see(self):
        """GET /api/messages/: your chats' and public rooms' messages, newest first, none deleted."""
        gone = post(self.public, self.owner, "gone")
        services.delete_message(message=gone, user=self.owner)
        assert [m["id"] for m in self.listing(self.owner)["results"]] == [
            self.welcome.pk,
            self.hello.pk,
            self.secret.pk,
        ]
        assert [m["id"] for m in self.listing(self.outsider)["results"]] == [self.welcome.pk, self.hello.pk]

    def test_pages_by_cursor(self):
        """The flat list is paged like a chat's: `next` gives the older messages."""
        make_messages(self.public, self.owner, 3)
        expected = list(
            Message.objects.visible_to(self.owner).not_deleted().order_by("-pk").values_list("pk", flat=True)
        )
        client = api(self.owner)
        first = client.get("/api/messages/", {"page_size": 4}).json()
        second = client.get(first["next"]).json()
        assert [m["id"] for m in first["results"] + second["results"]] == expected
        assert second["next"] is None

    def test_filter_by_chat(self):
        """?chat=<id> keeps to one chat; a chat you may not see is a 404, one that is not a number a 400."""
        only = self.listing(self.owner, {"chat": self.public.pk})
        assert [m["id"] for m in only["results"]] == [self.hello.pk]
        feed = self.listing(self.owner, {"chat": self.private.pk, "since": 0})
        assert [m["id"] for m in feed["results"]] == [self.secret.pk]
        hidden = api(self.outsider).get("/api/messages/", {"chat": self.private.pk})
        assert hidden.status_code == 404
        assert "secret" not in hidden.content.decode()
        assert api(self.outsider).get("/api/messages/", {"chat": 987654}).status_code == 404
        bad = api(self.owner).get("/api/messages/", {"chat": "x"})
        assert (bad.status_code, list(field_errors(bad))) == (400, ["chat"])
        unanchored = api(self.owner).get("/api/messages/", {"since": 0})
        assert (unanchored.status_code, list(field_errors(unanchored))) == (400, ["since"])

    def test_post_with_chat_in_the_body(self):
        """POST /api/messages/ {chat, text} posts as the chat's own route does: 201, 200 on a replay,
        pushed after commit; 404 for a chat you may not see, 403 before joining, 400 without a chat."""
        client = api(self.owner)
        client_id = str(uuid.uuid4())
        with self.captureOnCommitCallbacks(execute=False) as pushes:
            created = client.post(
                "/api/messages/",
                {"chat": self.public.pk, "text": " hi ", "client_id": client_id},
                format="json",
            )
        assert created.status_code == 201
        assert len(pushes) == 1
        message = Message.objects.get(pk=created.json()["id"])
        assert (message.chat, message.user, message.text) == (self.public, self.owner, "hi")
        replay = client.post("/api/messages/", {"chat": self.public.pk, "text": "hi", "client_id": client_id})
        assert (replay.status_code, replay.json()["id"]) == (200, message.pk)
        before = Message.objects.count()
        hidden = api(self.outsider).post("/api/messages/", {"chat": self.private.pk, "text": "hi"})
        assert hidden.status_code == 404
        not_joined = api(self.outsider).post("/api/messages/", {"chat": self.public.pk, "text": "hi"})
        assert (not_joined.status_code, not_joined.json()) == (
            403,
            {"detail": "Join this chat first.", "code": "permission_denied"},
        )
        for body, field in [({"text": "hi"}, "chat"), ({"chat": self.public.pk, "text": "  "}, "text")]:
            refused = client.post("/api/messages/", body, format="json")
            assert (refused.status_code, list(field_errors(refused))) == (400, [field]), body
        assert Message.objects.count() == before

    def test_post_shares_the_rate(self):
        """Posting through the flat route counts against the same rate as every other door."""
        rates = {**settings.CHAT_RATES, "message": "2/minute"}
        # setUp's messages counted too.
        cache.clear()
        with override_settings(CHAT_RATES=rates):
            client = api(self.owner)
            assert client.post(f"/api/chats/{self.public.pk}/messages/", {"text": "a"}).status_code == 201
            assert client.post("/api/messages/", {"chat": self.public.pk, "text": "b"}).status_code == 201
            refused = client.post("/api/messages/", {"chat": self.public.pk, "text": "c"})
        assert refused.status_code == 429
        assert "Retry-After" in refused


class NumberRangeTests(APITestCase):
    def test_ids_beyond_64_bits_are_a_400(self):
        """A number the database can't hold is refused as a bad request, never a server error."""
        client = APIClient()
        client.force_authenticate(make_user())
        huge = 2**112
        assert (
            client.post("/api/chats/", {"name": "x", "participants": [huge]}, format="json").status_code
            == 400
        )
        assert client.post("/api/messages/", {"chat": huge, "text": "x"}, format="json").status_code == 400
        assert client.get(f"/api/messages/?chat={huge}").status_code == 400
        assert client.get(f"/api/messages/?after={huge}").status_code == 400
