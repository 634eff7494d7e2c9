"""The REST API: each route, who may use it, what it pushes, and how it refuses."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import transaction
from django.test import TestCase, override_settings
from rest_framework.test import APIClient

from chat import services
from chat.models import MESSAGE_MAX_LENGTH, ApiToken, Chat, Membership, Message
from chat.services.accounts import token_digest
from chat.tests.conftest import TEST_REDIS_URL, missing
from chat.tests.factories import PASSWORD, SocketListener, general, make_messages, make_room, make_user

PRIVATE = Chat.Visibility.PRIVATE
REDIS_URL = TEST_REDIS_URL


def api(user: User | None = None) -> APIClient:
    """A client that authenticates as a bot does, with a token of the user's (or not at all).

    The same token for every client of the user, so that a test makes as many as it likes.
    """
    client = APIClient()
    if user is not None:
        key = f"test-key-{user.pk}-{user.username}"
        ApiToken.objects.get_or_create(
            digest=token_digest(key), defaults={"user": user, "name": "test", "prefix": key[:8]}
        )
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


# What every error body has besides the messages by field (chat.api.errors).
ENVELOPE = {"detail", "code", "codes"}


def field_errors(response: Any) -> dict[str, Any]:
    """A 400's messages by field, without the envelope of every error."""
    body = response.json()
    assert body["code"] == "invalid"
    return {name: messages for name, messages in body.items() if name not in ENVELOPE}


def post(chat: Chat, user: User, text: str = "hello") -> Message:
    message, _ = services.post_message(chat=chat, user=user, text=text)
    return message


def snapshot() -> tuple[list[Any], ...]:
    """Everything a request could change, to compare before and after it."""
    return (
        list(Chat.objects.order_by("pk").values_list("pk", "name", "kind", "visibility")),
        list(Membership.objects.order_by("pk").values_list("pk", "user_id", "chat_id", "role")),
        list(
            Message.objects.order_by("pk").values_list(
                "pk", "chat_id", "user_id", "text", "edited_at", "deleted_at", "client_id"
            )
        ),
        list(ApiToken.objects.order_by("pk").values_list("user_id", "name", "digest")),
    )


class APITestCase(TestCase):
    def setUp(self) -> None:
        # Throttle counts live in the cache, which outlives each test's transaction.
        cache.clear()


class AuthenticationTests(APITestCase):
    def test_token_for_username_and_password(self):
        """POST /api/auth/token/ makes a new named token each time (201), which authenticates;
        only its digest is stored."""
        user = make_user("bot")
        first = APIClient().post("/api/auth/token/", {"username": "bot", "password": PASSWORD})
        again = APIClient().post("/api/auth/token/", {"username": "bot", "password": PASSWORD, "name": "CI"})
        assert first.status_code == again.status_code == 201
        assert first.json()["token"] != again.json()["token"]
        assert [(t.name, t.digest) for t in ApiToken.objects.filter(user=user)] == [
            ("API token", token_digest(first.json()["token"])),
            ("CI", token_digest(again.json()["token"])),
        ]
        assert first["Location"] == f"http://testserver/api/tokens/{first.json()['id']}/"
        for key in (first.json()["token"], again.json()["token"]):
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
            assert client.get("/api/users/me/").json() == {"id": user.pk, "username": "bot"}
        # A form works too, as `curl -d username=… -d password=…` sends it.
        form = client.post(
            "/api/auth/token/",
            urlencode({"username": "bot", "password": PASSWORD}),
            content_type="application/x-www-form-urlencoded",
        )
        assert form.status_code == 201 and "token" in form.json()

    def test_wrong_password_gets_no_token(self):
        """A wrong password is a 400 that says so, and no token is made."""
        make_user("bot")
        response = APIClient().post("/api/auth/token/", {"username": "bot", "password": "nope"})
        assert response.status_code == 400
        assert field_errors(response) == {"non_field_errors": ["Unable to log in with provided credentials."]}
        assert not ApiToken.objects.exists()

    def test_revoked_token_stops_working(self):
        """DELETE /api/auth/token/ revokes the token of the request at once; the user's other
        tokens go on, and the next POST makes a new one."""
        user = make_user("bot")
        keys = [
            APIClient().post("/api/auth/token/", {"username": "bot", "password": PASSWORD}).json()["token"]
            for _ in range(2)
        ]
        clients = [APIClient(), APIClient()]
        for client, key in zip(clients, keys, strict=True):
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        assert clients[0].delete("/api/auth/token/").status_code == 204
        assert list(ApiToken.objects.filter(user=user).values_list("digest", flat=True)) == [
            token_digest(keys[1])
        ]
        assert clients[0].get("/api/users/me/").status_code == 401
        assert clients[1].get("/api/users/me/").status_code == 200
        new = APIClient().post("/api/auth/token/", {"username": "bot", "password": PASSWORD}).json()["token"]
        assert new not in keys

    def test_every_route_requires_authentication(self):
        """Anonymous requests get 401 with `WWW-Authenticate: Token` and a JSON detail, and change nothing."""
        owner = make_user()
        chat = make_room(owner)
        message = post(chat, owner)
        routes = [
            ("delete", "/api/auth/token/"),
            ("get", "/api/users/"),
            ("get", "/api/users/me/"),
            ("get", "/api/chats/"),
            ("post", "/api/chats/"),
            ("post", "/api/chats/direct/"),
            ("get", f"/api/chats/{chat.pk}/"),
            ("post", f"/api/chats/{chat.pk}/join/"),
            ("post", f"/api/chats/{chat.pk}/leave/"),
            ("get", f"/api/chats/{chat.pk}/members/"),
            ("post", f"/api/chats/{chat.pk}/members/"),
            ("delete", f"/api/chats/{chat.pk}/members/{owner.pk}/"),
            ("get", f"/api/chats/{chat.pk}/messages/"),
            ("post", f"/api/chats/{chat.pk}/messages/"),
            ("get", f"/api/messages/{message.pk}/"),
            ("patch", f"/api/messages/{message.pk}/"),
            ("delete", f"/api/messages/{message.pk}/"),
            ("get", "/api/schema/"),
        ]
        client = APIClient()
        before = snapshot()
        for method, path in routes:
            response = getattr(client, method)(path, {"text": "x", "name": "x", "user": owner.pk})
            assert response.status_code == 401, (method, path)
            assert response["WWW-Authenticate"] == "Token"
            assert response.json() == {
                "detail": "Authentication credentials were not provided.",
                "code": "not_authenticated",
            }
        assert snapshot() == before

    def test_wrong_token_is_401(self):
        """A token that does not exist is refused like none at all."""
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef")
        response = client.get("/api/chats/")
        assert response.status_code == 401
        assert response.json() == {"detail": "Invalid token.", "code": "authentication_failed"}

    def test_session_needs_the_csrf_token(self):
        """The browser session authenticates too, and a write with it needs the CSRF token."""
        user = make_user("browser")
        client = APIClient(enforce_csrf_checks=True)
        client.get("/accounts/login/")
        assert client.login(username="browser", password=PASSWORD)
        assert client.get("/api/users/me/").json()["id"] == user.pk
        refused = client.post("/api/chats/", {"name": "Forged"})
        assert refused.status_code == 403
        assert refused.json()["detail"].startswith("CSRF Failed")
        assert not Chat.objects.filter(name="Forged").exists()
        csrf = client.cookies["csrftoken"].value
        created = client.post("/api/chats/", {"name": "Mine"}, HTTP_X_CSRFTOKEN=csrf)
        assert created.status_code == 201


class UserTests(APITestCase):
    def test_users_are_id_and_username_only(self):
        """/api/users/ lists active accounts by id, paginated, with nothing but id and username."""
        alice, bob = make_user("alice"), make_user("bob")
        body = api(alice).get("/api/users/").json()
        assert body["count"] == 2
        assert body["results"] == [{"id": alice.pk, "username": "alice"}, {"id": bob.pk, "username": "bob"}]

    def test_users_by_username(self):
        """?username= finds one user, to write to them directly."""
        alice, bob = make_user("alice"), make_user("bob")
        body = api(alice).get("/api/users/", {"username": "bob"}).json()
        assert body["results"] == [{"id": bob.pk, "username": "bob"}]

    def test_users_page_size(self):
        """?page_size= picks the size of a page, and a page past the end is a 404."""
        users = [make_user() for _ in range(3)]
        body = api(users[0]).get("/api/users/", {"page_size": 2}).json()
        assert len(body["results"]) == 2
        assert body["next"].endswith("page=2&page_size=2")
        assert api(users[0]).get("/api/users/", {"page": 9}).status_code == 404

    def test_me(self):
        """/api/users/me/ is the caller."""
        user = make_user("me")
        assert api(user).get("/api/users/me/").json() == {"id": user.pk, "username": "me"}


class ChatTests(APITestCase):
    def test_list_is_yours_and_public_rooms(self):
        """/api/chats/ has your chats and public rooms, with your role, and never others' private rooms."""
        owner, other = make_user(), make_user()
        public = make_room(owner, name="Lobby")
        private = make_room(owner, name="Secret", visibility=PRIVATE)
        mine = api(owner).get("/api/chats/").json()
        theirs = api(other).get("/api/chats/").json()
        assert [(c["id"], c["role"]) for c in mine["results"]] == [
            (general().pk, "member"),
            (public.pk, "owner"),
            (private.pk, "owner"),
        ]
        assert [(c["id"], c["role"]) for c in theirs["results"]] == [
            (general().pk, "member"),
            (public.pk, None),
        ]
        assert "Secret" not in str(theirs)

    def test_chat_shape(self):
        """A chat keeps the seed's id and name, and adds kind, visibility, topic, created_at and your role."""
        user = make_user()
        body = api(user).get(f"/api/chats/{general().pk}/").json()
        assert set(body) == {"id", "name", "kind", "visibility", "topic", "created_at", "role", "last_event"}
        assert body["id"] == general().pk
        assert (body["name"], body["kind"], body["visibility"], body["role"]) == (
            "General",
            "room",
            "public",
            "member",
        )

    def test_create_room(self):
        """POST /api/chats/ creates a room you own; server-decided fields in the body are ignored."""
        user = make_user()
        response = api(user).post(
            "/api/chats/",
            {
                "name": " Design ",
                "visibility": "private",
                "id": 999,
                "kind": "direct",
                "created_at": "2000-01-01",
            },
        )
        assert response.status_code == 201
        chat = Chat.objects.get(pk=response.json()["id"])
        assert chat.pk != 999
        assert (chat.name, chat.kind, chat.visibility, chat.created_by) == ("Design", "room", "private", user)
        assert response.json()["role"] == "owner"
        assert Membership.objects.get(chat=chat, user=user).role == Membership.Role.OWNER

    def test_create_room_refusals(self):
        """A blank name or an unknown visibility is a 400 naming the field, and creates nothing."""
        client = api(make_user())
        before = snapshot()
        blank = client.post("/api/chats/", {"name": "   "})
        secret = client.post("/api/chats/", {"name": "Room", "visibility": "secret"})
        long = client.post("/api/chats/", {"name": "x" * 101})
        assert (blank.status_code, secret.status_code, long.status_code) == (400, 400, 400)
        assert list(field_errors(blank)) == ["name"]
        assert list(field_errors(secret)) == ["visibility"]
        assert list(field_errors(long)) == ["name"]
        assert snapshot() == before

    def test_hidden_chat_is_like_a_missing_one(self):
        """Another's private room answers exactly as a chat that does not exist."""
        owner, other = make_user(), make_user()
        private = make_room(owner, name="Secret", visibility=PRIVATE)
        hidden = api(other).get(f"/api/chats/{private.pk}/")
        missing_chat = api(other).get("/api/chats/999999/")
        assert hidden.status_code == missing_chat.status_code == 404
        assert hidden.json() == missing_chat.json() == {"detail": "No such chat.", "code": "not_found"}

    def test_join_and_leave_public_room(self):
        """Anyone joins a public room (twice is harmless) and leaves it."""
        owner, user = make_user(), make_user()
        room = make_room(owner)
        client = api(user)
        joined = client.post(f"/api/chats/{room.pk}/join/")
        assert joined.status_code == 200
        assert joined.json()["role"] == "member"
        assert client.post(f"/api/chats/{room.pk}/join/").status_code == 200
        assert Membership.objects.filter(chat=room, user=user).count() == 1
        assert client.post(f"/api/chats/{room.pk}/leave/").status_code == 204
        assert not Membership.objects.filter(chat=room, user=user).exists()

    def test_leaving_a_room_you_are_not_in(self):
        """Leaving a public room you have not joined is a 403 that says so."""
        room = make_room(make_user())
        response = api(make_user()).post(f"/api/chats/{room.pk}/leave/")
        assert response.status_code == 403
        assert response.json() == {"detail": "Join this chat first.", "code": "permission_denied"}

    def test_owner_who_leaves_hands_over(self):
        """An owner who leaves hands the room to its longest-standing member."""
        owner, member = make_user(), make_user()
        room = make_room(owner, visibility=PRIVATE)
        services.add_member(chat=room, by=owner, user=member)
        assert api(owner).post(f"/api/chats/{room.pk}/leave/").status_code == 204
        assert Membership.objects.get(chat=room, user=member).role == Membership.Role.OWNER

    def test_members(self):
        """Members are listed with their role; the owner adds (201, then 200) and removes them."""
        owner, user = make_user("owner"), make_user("user")
        room = make_room(owner, visibility=PRIVATE)
        client = api(owner)
        added = client.post(f"/api/chats/{room.pk}/members/", {"user": user.pk})
        assert added.status_code == 201
        assert added.json()["user"] == {"id": user.pk, "username": "user"}
        assert added.json()["role"] == "member"
        assert client.post(f"/api/chats/{room.pk}/members/", {"user": user.pk}).status_code == 200
        listed = api(user).get(f"/api/chats/{room.pk}/members/").json()
        assert [(m["user"]["username"], m["role"]) for m in listed["results"]] == [
            ("owner", "owner"),
            ("user", "member"),
        ]
        assert client.delete(f"/api/chats/{room.pk}/members/{user.pk}/").status_code == 204
        assert not Membership.objects.filter(chat=room, user=user).exists()
        assert client.delete(f"/api/chats/{room.pk}/members/{user.pk}/").status_code == 404

    def test_only_the_owner_manages_members(self):
        """A member who is not the owner can't add or remove anyone: 403, nothing changes."""
        owner, member, other = make_user(), make_user(), make_user()
        room = make_room(owner, visibility=PRIVATE)
        services.add_member(chat=room, by=owner, user=member)
        client = api(member)
        before = snapshot()
        adding = client.post(f"/api/chats/{room.pk}/members/", {"user": other.pk})
        removing = client.delete(f"/api/chats/{room.pk}/members/{owner.pk}/")
        assert adding.status_code == removing.status_code == 403
        assert adding.json() == {"detail": "Only the room's owner can do that.", "code": "permission_denied"}
        assert snapshot() == before

    def test_member_refusals(self):
        """An unknown user is a 400 on the field; the owner removing themselves is told to leave instead."""
        owner = make_user()
        room = make_room(owner)
        client = api(owner)
        unknown = client.post(f"/api/chats/{room.pk}/members/", {"user": 999999})
        assert unknown.status_code == 400
        assert list(field_errors(unknown)) == ["user"]
        yourself = client.delete(f"/api/chats/{room.pk}/members/{owner.pk}/")
        assert yourself.status_code == 400
        assert field_errors(yourself) == {"non_field_errors": ["To leave the room yourself, leave it."]}
        assert client.delete(f"/api/chats/{room.pk}/members/999999/").status_code == 404

    def test_direct_chat(self):
        """POST /api/chats/direct/ opens the pair's one direct chat: 201 the first time, then 200."""
        alice, bob = make_user("alice"), make_user("bob")
        first = api(alice).post("/api/chats/direct/", {"user": bob.pk})
        again = api(bob).post("/api/chats/direct/", {"user": alice.pk})
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json()["id"] == again.json()["id"]
        assert (first.json()["kind"], first.json()["visibility"]) == ("direct", "private")
        chat = Chat.objects.get(pk=first.json()["id"])
        assert set(chat.members.all()) == {alice, bob}
        assert api(make_user()).get(f"/api/chats/{chat.pk}/").status_code == 404

    def test_direct_chat_refusals(self):
        """A direct chat with yourself or with nobody is a 400; a direct chat can't be left."""
        alice, bob = make_user(), make_user()
        yourself = api(alice).post("/api/chats/direct/", {"user": alice.pk})
        assert yourself.status_code == 400
        assert field_errors(yourself) == {"non_field_errors": ["A direct chat needs someone else."]}
        assert list(field_errors(api(alice).post("/api/chats/direct/", {"user": 999999}))) == ["user"]
        chat, _ = services.open_direct_chat(user=alice, other=bob)
        left = api(alice).post(f"/api/chats/{chat.pk}/leave/")
        assert left.status_code == 403
        assert left.json() == {"detail": "A direct chat can't be left.", "code": "permission_denied"}

    def test_no_deleting_chats(self):
        """Chats are not deleted through the API, whoever asks (the seed let anyone)."""
        owner = make_user()
        room = make_room(owner)
        response = api(owner).delete(f"/api/chats/{room.pk}/")
        assert response.status_code == 405
        assert Chat.objects.filter(pk=room.pk).exists()


class MessageTests(APITestCase):
    def setUp(self) -> None:
        super().setUp()
        self.owner, self.member = make_user("owner"), make_user("member")
        self.chat = make_room(self.owner, name="Room")
        services.join_chat(user=self.member, chat=self.chat)

    def messages(self, client: APIClient, query: dict[str, Any] | None = None) -> dict[str, Any]:
        response = client.get(f"/api/chats/{self.chat.pk}/messages/", query or {})
        assert response.status_code == 200
        return response.json()

    def test_message_shape(self):
        """A message keeps the seed's id, user {id, username}, text and timestamp, and adds the rest."""
        message = post(self.chat, self.member, "hi")
        body = api(self.owner).get(f"/api/messages/{message.pk}/").json()
        assert set(body) == {
            "id",
            "chat",
            "user",
            "text",
            "html",
            "reply_to",
            "timestamp",
            "edited_at",
            "client_id",
            "seq",
            "event",
            "deleted",
            "attachments",
        }
        assert body["id"] == message.pk
        assert body["chat"] == self.chat.pk
        assert body["user"] == {"id": self.member.pk, "username": "member"}
        assert body["text"] == "hi"
        assert body["html"] == "<p>hi</p>"
        assert body["edited_at"] is None

    def test_post(self):
        """POST makes a message of the caller's in the chat: 201, with the stored values."""
        response = api(self.member).post(f"/api/chats/{self.chat.pk}/messages/", {"text": "  hello  "})
        assert response.status_code == 201
        message = Message.objects.get(pk=response.json()["id"])
        assert (message.chat, message.user, message.text) == (self.chat, self.member, "hello")
        assert response.json()["text"] == "hello"

    def test_server_decides_user_chat_id_and_timestamp(self):
        """user, chat, id and timestamp sent in a body are ignored: the stored values come from the server."""
        other_chat = make_room(self.owner, name="Other")
        forged = {
            "text": "mine",
            "user": self.owner.pk,
            "chat": other_chat.pk,
            "id": 424242,
            "timestamp": "2000-01-01T00:00:00Z",
            "edited_at": "2000-01-01T00:00:00Z",
        }
        response = api(self.member).post(f"/api/chats/{self.chat.pk}/messages/", forged, format="json")
        assert response.status_code == 201
        message = Message.objects.get(pk=response.json()["id"])
        assert message.pk != 424242
        assert (message.user, message.chat, message.edited_at) == (self.member, self.chat, None)
        assert message.timestamp.year > 2000
        edited = api(self.member).patch(f"/api/messages/{message.pk}/", {**forged, "text": "changed"})
        assert edited.status_code == 200
        message.refresh_from_db()
        assert (message.text, message.user, message.chat, message.pk) == (
            "changed",
            self.member,
            self.chat,
            edited.json()["id"],
        )

    def test_post_is_idempotent_by_client_id(self):
        """The same client_id from the same user returns the first message: 201 with its
        Location, then 200, one row; the same client_id with other text is a 409."""
        client_id = str(uuid.uuid4())
        client = api(self.member)
        path = f"/api/chats/{self.chat.pk}/messages/"
        first = client.post(path, {"text": "once", "client_id": client_id})
        again = client.post(path, {"text": "once", "client_id": client_id})
        changed = client.post(path, {"text": "twice?", "client_id": client_id})
        assert (first.status_code, again.status_code, changed.status_code) == (201, 200, 409)
        assert first["Location"] == f"http://testserver/api/messages/{first.json()['id']}/"
        assert "Location" not in again
        assert first.json() == again.json()
        assert changed.json()["code"] == "conflict"
        assert first.json()["client_id"] == client_id
        assert Message.objects.filter(client_id=client_id).count() == 1
        other = api(self.owner).post(path, {"text": "mine", "client_id": client_id})
        assert other.status_code == 201

    def test_post_refusals(self):
        """Blank, too long or non-text messages and bad client ids are 400s on the field; nothing is saved."""
        client = api(self.member)
        path = f"/api/chats/{self.chat.pk}/messages/"
        before = snapshot()
        for body, field in [
            ({"text": "   "}, "text"),
            ({}, "text"),
            ({"text": "x" * (MESSAGE_MAX_LENGTH + 1)}, "text"),
            ({"text": ["a list"]}, "text"),
            ({"text": "nul \x00 byte"}, "text"),
            ({"text": "ok", "client_id": "not-a-uuid"}, "client_id"),
        ]:
            response = client.post(path, body, format="json")
            assert response.status_code == 400, body
            assert list(field_errors(response)) == [field], body
        assert snapshot() == before

    def test_malformed_json_is_a_400(self):
        """A body that is not JSON is a 400 with a detail, not a 500."""
        response = api(self.member).post(
            f"/api/chats/{self.chat.pk}/messages/", "{not json", content_type="application/json"
        )
        assert response.status_code == 400
        assert "JSON parse error" in response.json()["detail"]

    def test_non_member_cannot_post_in_a_public_room(self):
        """Someone who has not joined a public room reads it but gets a 403 on posting."""
        outsider = make_user()
        post(self.chat, self.member, "visible")
        client = api(outsider)
        assert self.messages(client)["results"][0]["text"] == "visible"
        response = client.post(f"/api/chats/{self.chat.pk}/messages/", {"text": "hi"})
        assert response.status_code == 403
        assert response.json() == {"detail": "Join this chat first.", "code": "permission_denied"}

    def test_newest_first_without_deleted(self):
        """The list is newest first, and deleted messages are left out."""
        first, second, third = (post(self.chat, self.member, text) for text in ("one", "two", "three"))
        services.delete_message(message=second, user=self.member)
        body = self.messages(api(self.owner))
        assert [m["id"] for m in body["results"]] == [third.pk, first.pk]
        assert body["next"] is None

    def test_cursor_pages_are_stable_while_messages_arrive(self):
        """Following `next` after new messages arrived gives the older page: no duplicates, no gaps."""
        make_messages(self.chat, self.member, 7)
        expected = list(Message.objects.filter(chat=self.chat).order_by("-pk").values_list("pk", flat=True))
        client = api(self.owner)
        page1 = self.messages(client, {"page_size": 3})
        for text in ("new 1", "new 2", "new 3", "new 4"):
            post(self.chat, self.owner, text)
        page2 = client.get(page1["next"]).json()
        page3 = client.get(page2["next"]).json()
        seen = [m["id"] for page in (page1, page2, page3) for m in page["results"]]
        assert seen == expected
        assert page3["next"] is None
        back = client.get(page2["previous"]).json()
        assert [m["id"] for m in back["results"]] == [m["id"] for m in page1["results"]]

    def test_page_size_has_a_maximum(self):
        """A page holds 50 messages by default and at most 200, whatever is asked."""
        make_messages(self.chat, self.member, 210)
        client = api(self.owner)
        assert len(self.messages(client)["results"]) == 50
        assert len(self.messages(client, {"page_size": 1000})["results"]) == 200

    def test_after_for_polling(self):
        """?after=<id> gives the messages after that id, oldest first; `next` goes on while there are more."""
        make_messages(self.chat, self.member, 5)
        ids = list(Message.objects.filter(chat=self.chat).order_by("pk").values_list("pk", flat=True))
        client = api(self.owner)
        body = self.messages(client, {"after": ids[1], "page_size": 2})
        assert [m["id"] for m in body["results"]] == ids[2:4]
        assert body["previous"] is None
        rest = client.get(body["next"]).json()
        assert [m["id"] for m in rest["results"]] == ids[4:]
        assert rest["next"] is None
        assert self.messages(client, {"after": ids[-1]})["results"] == []

    def test_bad_after_and_cursor(self):
        """A bad ?after= is a 400 on that parameter; a cursor the API never made is a 404."""
        client = api(self.owner)
        path = f"/api/chats/{self.chat.pk}/messages/"
        for value in ("x", "-1", "1.5"):
            response = client.get(path, {"after": value})
            assert response.status_code == 400
            assert list(field_errors(response)) == ["after"]
        for cursor in ("garbage", "cD1hYmM="):  # the second is base64 of "p=abc"
            response = client.get(path, {"cursor": cursor})
            assert response.status_code == 404
            assert response.json() == {"detail": "Invalid cursor", "code": "not_found"}

    def test_edit(self):
        """The author edits a message: 200 with the new text and edited_at."""
        message = post(self.chat, self.member, "draft")
        response = api(self.member).patch(f"/api/messages/{message.pk}/", {"text": "final"})
        assert response.status_code == 200
        assert response.json()["text"] == "final"
        assert response.json()["edited_at"] is not None
        message.refresh_from_db()
        assert message.text == "final"

    def test_only_the_author_edits(self):
        """Nobody else edits a message, not even the room's owner: 403, nothing changes."""
        message = post(self.chat, self.member, "mine")
        client = api(self.owner)
        before = snapshot()
        response = client.patch(f"/api/messages/{message.pk}/", {"text": "theirs"})
        assert response.status_code == 403
        assert response.json() == {
            "detail": "Only the author can edit a message.",
            "code": "permission_denied",
        }
        assert snapshot() == before

    def test_edit_needs_text(self):
        """An edit without text, or with blank text, is a 400 on `text`."""
        message = post(self.chat, self.member, "mine")
        client = api(self.member)
        for body in ({}, {"text": " "}):
            response = client.patch(f"/api/messages/{message.pk}/", body)
            assert response.status_code == 400
            assert list(field_errors(response)) == ["text"]

    def test_delete_by_author_or_owner(self):
        """The author or the room's owner deletes a message; then it is gone (404)."""
        by_author, by_owner = post(self.chat, self.member, "a"), post(self.chat, self.member, "b")
        assert api(self.member).delete(f"/api/messages/{by_author.pk}/").status_code == 204
        assert api(self.owner).delete(f"/api/messages/{by_owner.pk}/").status_code == 204
        assert Message.objects.filter(deleted_at__isnull=False).count() == 2
        assert api(self.member).get(f"/api/messages/{by_author.pk}/").status_code == 404
        assert api(self.member).delete(f"/api/messages/{by_author.pk}/").status_code == 404
        assert self.messages(api(self.member))["results"] == []

    def test_others_do_not_delete(self):
        """A member who is neither the author nor the owner can't delete: 403, nothing changes."""
        message = post(self.chat, self.owner, "owner's")
        client = api(self.member)
        before = snapshot()
        response = client.delete(f"/api/messages/{message.pk}/")
        assert response.status_code == 403
        assert response.json() == {
            "detail": "Only the author or the room's owner can delete a message.",
            "code": "permission_denied",
        }
        assert snapshot() == before

    def test_no_put(self):
        """Messages are changed with PATCH; PUT is a 405 in JSON."""
        message = post(self.chat, self.member)
        response = api(self.member).put(f"/api/messages/{message.pk}/", {"text": "x"})
        assert response.status_code == 405
        assert response.json() == {"detail": 'Method "PUT" not allowed.', "code": "method_not_allowed"}


class PushTests(APITestCase):
    """Writes through the API reach open sockets after commit, as writes in the page do."""

    def setUp(self) -> None:
        super().setUp()
        self.owner, self.member = make_user(), make_user()
        self.chat = make_room(self.owner)
        services.join_chat(user=self.member, chat=self.chat)
        self.listener = SocketListener(self.chat)
        self.addCleanup(self.listener.close)

    def test_posted_message_is_pushed_after_commit(self):
        """A message posted through the API is pushed to the chat's sockets once the transaction commits."""
        with self.captureOnCommitCallbacks(execute=False) as callbacks:
            response = api(self.member).post(f"/api/chats/{self.chat.pk}/messages/", {"text": "<b>live</b>"})
        assert response.status_code == 201
        assert self.listener.pending() == []
        for callback in callbacks:
            callback()
        [html] = self.listener.pending()
        assert f'id="message-{response.json()["id"]}"' in html
        assert "&lt;b&gt;live&lt;/b&gt;" in html

    def test_replay_pushes_nothing(self):
        """An idempotent replay pushes nothing more."""
        body = {"text": "once", "client_id": str(uuid.uuid4())}
        client = api(self.member)
        with self.captureOnCommitCallbacks(execute=True):
            client.post(f"/api/chats/{self.chat.pk}/messages/", body)
        assert len(self.listener.pending()) == 1
        with self.captureOnCommitCallbacks(execute=True):
            assert client.post(f"/api/chats/{self.chat.pk}/messages/", body).status_code == 200
        assert self.listener.pending() == []

    def test_edit_and_delete_are_pushed(self):
        """Edits and deletions through the API are pushed too."""
        message = post(self.chat, self.member, "draft")
        self.listener.pending()
        with self.captureOnCommitCallbacks(execute=True):
            api(self.member).patch(f"/api/messages/{message.pk}/", {"text": "final"})
        [edited] = self.listener.pending()
        assert f'id="message-{message.pk}"' in edited
        assert "final" in edited
        with self.captureOnCommitCallbacks(execute=True):
            api(self.owner).delete(f"/api/messages/{message.pk}/")
        [deleted] = self.listener.pending()
        assert f'id="message-{message.pk}"' in deleted
        assert "final" not in deleted


def rates(**changes: str) -> dict[str, str]:
    return {**settings.CHAT_RATES, **changes}


class ThrottleTests(APITestCase):
    def setUp(self) -> None:
        cache.clear()

    def test_burst_over_the_rate_gets_429(self):
        """Posting faster than the rate gets 429 with Retry-After, saves nothing; reading is not rated."""
        user = make_user()
        chat = general()
        client = api(user)
        path = f"/api/chats/{chat.pk}/messages/"
        with override_settings(CHAT_RATES=rates(message="3/minute")):
            statuses = [client.post(path, {"text": f"burst {i}"}).status_code for i in range(3)]
            before = snapshot()
            refused = client.post(path, {"text": "one too many"})
            assert client.get(path).status_code == 200
        assert statuses == [201, 201, 201]
        assert refused.status_code == 429
        assert 0 < int(refused["Retry-After"]) <= 60
        assert refused.json()["detail"].startswith("You are sending messages too fast.")
        assert snapshot() == before

    def test_rate_is_per_user(self):
        """One user's burst does not hold back another."""
        alice, bob = make_user(), make_user()
        path = f"/api/chats/{general().pk}/messages/"
        with override_settings(CHAT_RATES=rates(message="1/minute")):
            assert api(alice).post(path, {"text": "a"}).status_code == 201
            assert api(alice).post(path, {"text": "a"}).status_code == 429
            assert api(bob).post(path, {"text": "b"}).status_code == 201


def reachable_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        missing("Redis is not running at 127.0.0.1:6379 (redis-server --daemonize yes)")


@override_settings(
    CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
)
class RedisThrottleTests(TestCase):
    def setUp(self) -> None:
        reachable_redis()
        cache.clear()
        self.addCleanup(cache.clear)

    def test_processes_share_the_counts(self):
        """With REDIS_URL the counts live in Redis, where every process sees them."""
        user = make_user()
        path = f"/api/chats/{general().pk}/messages/"
        with override_settings(CHAT_RATES=rates(message="2/minute")):
            assert [api(user).post(path, {"text": "x"}).status_code for _ in range(2)] == [201, 201]
            # Another server process: a Redis connection of its own reads the same count.
            elsewhere = redis.Redis.from_url(REDIS_URL)
            [key] = [key for key in elsewhere.keys("*") if b"rate:message:" in key]
            assert elsewhere.get(key) == b"2"
            assert api(user).post(path, {"text": "x"}).status_code == 429


class ErrorTests(APITestCase):
    def test_unknown_api_path_is_a_json_404(self):
        """Any other path under /api/ is a JSON 404; a missing trailing slash is pointed out."""
        user = make_user()
        unknown = api(user).get("/api/nothing/here/")
        assert unknown.status_code == 404
        assert unknown.json() == {"detail": "No such API endpoint.", "code": "not_found"}
        slashless = api(user).post("/api/chats", {"name": "x"})
        assert slashless.status_code == 404
        assert "Did you mean /api/chats/" in slashless.json()["detail"]


class SchemaTests(APITestCase):
    def test_schema_documents_every_route_and_its_errors(self):
        """/api/schema/ is OpenAPI 3 JSON with every route, each with 401 and its other errors."""
        response = api(make_user()).get("/api/schema/")
        assert response.status_code == 200
        schema = response.json()
        assert schema["openapi"].startswith("3.")
        operations = {
            (method.upper(), path): operation
            for path, item in schema["paths"].items()
            for method, operation in item.items()
        }
        assert set(operations) == {
            ("POST", "/api/auth/token/"),
            ("DELETE", "/api/auth/token/"),
            ("GET", "/api/tokens/"),
            ("POST", "/api/tokens/"),
            ("GET", "/api/tokens/{token_id}/"),
            ("DELETE", "/api/tokens/{token_id}/"),
            ("GET", "/api/bots/"),
            ("POST", "/api/bots/"),
            ("GET", "/api/bots/{bot_id}/"),
            ("DELETE", "/api/bots/{bot_id}/"),
            ("GET", "/api/users/"),
            ("GET", "/api/users/me/"),
            ("GET", "/api/chats/"),
            ("POST", "/api/chats/"),
            ("POST", "/api/chats/direct/"),
            ("GET", "/api/chats/{chat_id}/"),
            ("PATCH", "/api/chats/{chat_id}/"),
            ("POST", "/api/chats/{chat_id}/join/"),
            ("POST", "/api/chats/{chat_id}/leave/"),
            ("GET", "/api/chats/{chat_id}/members/"),
            ("POST", "/api/chats/{chat_id}/members/"),
            ("GET", "/api/chats/{chat_id}/members/{user_id}/"),
            ("DELETE", "/api/chats/{chat_id}/members/{user_id}/"),
            ("GET", "/api/chats/{chat_id}/messages/"),
            ("POST", "/api/chats/{chat_id}/messages/"),
            ("GET", "/api/messages/"),
            ("POST", "/api/messages/"),
            ("GET", "/api/messages/{message_id}/"),
            ("PATCH", "/api/messages/{message_id}/"),
            ("DELETE", "/api/messages/{message_id}/"),
            ("GET", "/api/messages/{message_id}/reactions/"),
            ("POST", "/api/messages/{message_id}/reactions/"),
            ("GET", "/api/messages/{message_id}/reactions/{emoji}/"),
            ("DELETE", "/api/messages/{message_id}/reactions/{emoji}/"),
            ("GET", "/api/messages/{message_id}/pin/"),
            ("POST", "/api/messages/{message_id}/pin/"),
            ("DELETE", "/api/messages/{message_id}/pin/"),
            ("GET", "/api/chats/{chat_id}/pins/"),
            ("GET", "/api/search/"),
        }
        for (method, path), operation in operations.items():
            assert {"401", "403"} <= set(operation["responses"]), (method, path)
            if "{" in path:
                assert "404" in operation["responses"], (method, path)
            if "requestBody" in operation:
                assert "400" in operation["responses"], (method, path)
        assert "429" in operations[("POST", "/api/chats/{chat_id}/messages/")]["responses"]
        assert "429" in operations[("POST", "/api/messages/")]["responses"]

    def test_docs_are_served_locally(self):
        """/api/docs/ is Swagger UI from this server's static files, with no CDN."""
        client = APIClient()
        client.force_login(make_user())
        response = client.get("/api/docs/")
        assert response.status_code == 200
        html = response.content.decode()
        assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
        assert "cdn" not in html.lower()
        assert client.get("/api/redoc/")["Location"] == "/api/docs/"

    def test_docs_send_visitors_to_sign_in(self):
        """A visitor who is not signed in is sent from the docs to the login page."""
        response = APIClient().get("/api/docs/")
        assert response.status_code == 302
        assert response["Location"] == "/accounts/login/?next=/api/docs/"


ANONYMOUS, OUTSIDER, MEMBER, OWNER = "anonymous", "non-member", "member", "owner"
CALLERS = (ANONYMOUS, OUTSIDER, MEMBER, OWNER)
ROOM_NAME = "Skunkworks 7f3a"
MEMBER_TEXT = "the member's secret: swordfish"
OWNER_TEXT = "the owner's secret: marlin"


class AuthorizationMatrixTests(TestCase):
    """Every route and method of a private room and its messages, for each kind of caller.

    18 requests x 4 callers (anonymous, non-member, member, owner) = 72 cells. Each cell
    starts from the same database and is rolled back after. In every cell the anonymous
    caller and the non-member learn nothing (neither the room's name nor a message's
    text), every refusal is a JSON object with a `detail` and a `code`, and a refused request or a
    read leaves the database exactly as it was.
    """

    def setUp(self) -> None:
        cache.clear()
        self.owner, self.member, self.outsider = (
            make_user("owner"),
            make_user("member"),
            make_user("outsider"),
        )
        self.room = make_room(self.owner, name=ROOM_NAME, visibility=PRIVATE)
        services.add_member(chat=self.room, by=self.owner, user=self.member)
        self.member_message = post(self.room, self.member, MEMBER_TEXT)
        self.owner_message = post(self.room, self.owner, OWNER_TEXT)

    def requests(self) -> list[tuple[str, str, dict[str, Any] | None, tuple[int, int, int, int]]]:
        """(method, path, body, expected status for anonymous, non-member, member, owner)."""
        room, mine, owners = self.room.pk, self.member_message.pk, self.owner_message.pk
        return [
            ("GET", "/api/chats/", None, (401, 200, 200, 200)),
            ("GET", f"/api/chats/{room}/", None, (401, 404, 200, 200)),
            ("DELETE", f"/api/chats/{room}/", None, (401, 405, 405, 405)),
            ("POST", f"/api/chats/{room}/join/", None, (401, 404, 403, 403)),
            ("POST", f"/api/chats/{room}/leave/", None, (401, 404, 204, 204)),
            ("GET", f"/api/chats/{room}/members/", None, (401, 404, 200, 200)),
            ("POST", f"/api/chats/{room}/members/", {"user": self.outsider.pk}, (401, 404, 403, 201)),
            ("DELETE", f"/api/chats/{room}/members/{self.member.pk}/", None, (401, 404, 403, 204)),
            ("GET", f"/api/chats/{room}/messages/", None, (401, 404, 200, 200)),
            ("GET", f"/api/chats/{room}/messages/?after=0", None, (401, 404, 200, 200)),
            ("POST", f"/api/chats/{room}/messages/", {"text": "hello", "chat": room}, (401, 404, 201, 201)),
            ("GET", f"/api/messages/{mine}/", None, (401, 404, 200, 200)),
            ("PATCH", f"/api/messages/{mine}/", {"text": "changed"}, (401, 404, 200, 403)),
            ("PUT", f"/api/messages/{mine}/", {"text": "changed"}, (401, 405, 405, 405)),
            ("DELETE", f"/api/messages/{mine}/", None, (401, 404, 204, 204)),
            ("GET", f"/api/messages/{owners}/", None, (401, 404, 200, 200)),
            ("PATCH", f"/api/messages/{owners}/", {"text": "changed"}, (401, 404, 403, 200)),
            ("DELETE", f"/api/messages/{owners}/", None, (401, 404, 403, 204)),
        ]

    def test_matrix(self):
        """Each caller gets the expected status on every route; nothing leaks or changes when refused."""
        requests = self.requests()
        users = {ANONYMOUS: None, OUTSIDER: self.outsider, MEMBER: self.member, OWNER: self.owner}
        # One client per caller: a test client loads the middleware on its first request.
        clients = {caller: api(user) for caller, user in users.items()}
        cells = 0
        for method, path, body, expected in requests:
            for caller, status in zip(CALLERS, expected, strict=True):
                with self.subTest(caller=caller, method=method, path=path):
                    client = clients[caller]
                    with transaction.atomic():
                        before = snapshot()
                        data = "" if body is None else json.dumps(body)
                        response = client.generic(method, path, data, content_type="application/json")
                        after = snapshot()
                        # Every cell starts from the same database.
                        transaction.set_rollback(True)
                    cells += 1
                    assert response.status_code == status
                    content = response.content.decode()
                    if caller in (ANONYMOUS, OUTSIDER):
                        for secret in (ROOM_NAME, MEMBER_TEXT, OWNER_TEXT):
                            assert secret not in content
                    if status >= 400:
                        assert list(response.json()) == ["detail", "code"]
                        assert MEMBER_TEXT not in content and OWNER_TEXT not in content
                    if status >= 400 or method == "GET":
                        assert after == before
                    else:
                        assert after != before
        assert cells == len(requests) * len(CALLERS) == 72


class RoomSettingsTests(APITestCase):
    def test_owner_changes_settings_others_cannot(self):
        """PATCH /api/chats/<id>/: the owner renames; a member gets 403, an outsider of a private room 404;
        bad input gets the service's words; fields left out stay."""
        owner, member, outsider = make_user(), make_user(), make_user()
        room = make_room(owner, "Plans", Chat.Visibility.PRIVATE)
        services.add_member(chat=room, by=owner, user=member)
        path = f"/api/chats/{room.pk}/"
        with self.captureOnCommitCallbacks(execute=True):
            changed = api(owner).patch(path, {"topic": "Q3 <roadmap>"})
        assert changed.status_code == 200
        assert changed.json()["topic"] == "Q3 <roadmap>" and changed.json()["name"] == "Plans"
        assert changed.json()["visibility"] == "private"
        assert api(member).patch(path, {"name": "Mine"}).status_code == 403
        assert api(outsider).patch(path, {"name": "Mine"}).status_code == 404
        too_long = api(owner).patch(path, {"name": "n" * 101})
        assert too_long.status_code == 400
        assert field_errors(too_long) == {"name": ["A room name has at most 100 characters."]}
        room.refresh_from_db()
        assert room.name == "Plans" and room.topic == "Q3 <roadmap>"
