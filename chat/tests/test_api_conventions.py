"""What bots expect of the REST API: 201 with Location, errors with codes, rate-limit headers,
CORS for listed origins, one room per client_id, and documentation with examples."""

from __future__ import annotations

import os
import runpy
import uuid
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.test import APIClient

from chat import services
from chat.api.errors import error_body
from chat.models import Chat, Membership
from chat.routing import origin_allowed
from chat.tests.factories import PASSWORD, general, make_room, make_user
from chat.tests.test_api import APITestCase, api, post
from config.settings import parse_origins

SPA = "http://localhost:3000"
STRANGER = "http://localhost:3001"
SETTINGS_FILE = Path(settings.BASE_DIR) / "config" / "settings.py"


def rates(**changes: str) -> override_settings:
    return override_settings(CHAT_RATES={**settings.CHAT_RATES, **changes})


class LocationTests(APITestCase):
    def test_every_create_is_201_with_location(self):
        """Messages (both routes), rooms, direct chats, members, tokens and bots: 201, and
        Location is the address that GETs what was made."""
        alice, bob = make_user("alice"), make_user("bob")
        client = api(alice)
        room = client.post("/api/chats/", {"name": "Plans"})
        chat_id = room.json()["id"]
        creates = {
            "room": room,
            "message": client.post(f"/api/chats/{chat_id}/messages/", {"text": "hi"}),
            "flat message": client.post("/api/messages/", {"chat": chat_id, "text": "hi"}),
            "direct chat": client.post("/api/chats/direct/", {"user": bob.pk}),
            "member": client.post(f"/api/chats/{chat_id}/members/", {"user": bob.pk}),
            "token": client.post("/api/tokens/", {"name": "x"}),
            "signed-in token": APIClient().post(
                "/api/auth/token/", {"username": "alice", "password": PASSWORD}
            ),
            "bot": client.post("/api/bots/", {"username": "helper"}),
        }
        for what, response in creates.items():
            assert response.status_code == 201, what
            location = response["Location"]
            assert location.startswith("http://testserver/api/"), what
            shown = client.get(location)
            assert shown.status_code == 200, what
            if what in ("member",):
                assert shown.json()["user"]["id"] == bob.pk
            else:
                assert shown.json()["id"] == response.json()["id"], what

    def test_replays_are_200_without_location(self):
        """An existing direct chat or member is a 200, without Location."""
        alice, bob = make_user(), make_user()
        room = make_room(alice)
        services.add_member(chat=room, by=alice, user=bob)
        services.open_direct_chat(user=alice, other=bob)
        for response in (
            api(alice).post("/api/chats/direct/", {"user": bob.pk}),
            api(alice).post(f"/api/chats/{room.pk}/members/", {"user": bob.pk}),
        ):
            assert response.status_code == 200 and "Location" not in response

    def test_room_client_id_makes_one_room(self):
        """A room created twice with the same client_id is one room: 201, then 200 with the
        same room (its participants added once); another user's same client_id is theirs."""
        alice, bob = make_user(), make_user()
        client_id = str(uuid.uuid4())
        body = {"name": "Plans", "participants": [bob.pk], "client_id": client_id}
        first = api(alice).post("/api/chats/", body, format="json")
        again = api(alice).post("/api/chats/", {**body, "name": "Plans!"}, format="json")
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json()["id"] == again.json()["id"]
        assert again.json()["participants"] == sorted([alice.pk, bob.pk])
        assert Chat.objects.filter(created_by=alice, client_id=client_id).count() == 1
        assert Membership.objects.filter(chat_id=first.json()["id"]).count() == 2
        theirs = api(bob).post("/api/chats/", {"name": "Plans", "client_id": client_id})
        assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
        bad = api(alice).post("/api/chats/", {"name": "Plans", "client_id": "nope"})
        assert (bad.status_code, bad.json()["codes"]) == (400, {"client_id": ["invalid"]})


class ErrorShapeTests(APITestCase):
    def test_every_error_has_detail_and_code(self):
        """401, 403, 404 (an object, and a path), 405, 415 and a body that can't be parsed: each
        is `{"detail", "code"}`."""
        owner, outsider = make_user(), make_user()
        room = make_room(owner, visibility="private")
        message = post(general(), owner)
        client = api(owner)
        cases = [
            (APIClient().get("/api/chats/"), 401, "not_authenticated"),
            (api(outsider).patch(f"/api/messages/{message.pk}/", {"text": "x"}), 403, "permission_denied"),
            (api(outsider).get(f"/api/chats/{room.pk}/"), 404, "not_found"),
            (client.get("/api/no/such/thing/"), 404, "not_found"),
            (client.put(f"/api/messages/{message.pk}/", {"text": "x"}), 405, "method_not_allowed"),
            (
                client.post("/api/chats/", "name=x", content_type="text/plain"),
                415,
                "unsupported_media_type",
            ),
            (client.post("/api/chats/", "{", content_type="application/json"), 400, "parse_error"),
        ]
        for response, status, code in cases:
            assert response.status_code == status, code
            body = response.json()
            assert set(body) == {"detail", "code"}, code
            assert body["code"] == code and isinstance(body["detail"], str) and body["detail"]

    def test_field_errors_keep_their_shape_and_add_codes(self):
        """A 400 keeps `{"field": ["message"]}` and adds `codes` of the same shape, the first
        message as `detail` and `invalid` as `code`."""
        response = api(make_user()).post("/api/chats/", {"name": "", "visibility": "secret"})
        assert response.status_code == 400
        body = response.json()
        assert body["visibility"] == ["Choose public or private."]
        assert body["codes"] == {"visibility": ["invalid_choice"]}
        assert (body["detail"], body["code"]) == ("Choose public or private.", "invalid")
        whole = api(make_user()).post("/api/chats/direct/", {})
        assert whole.json()["codes"] == {"user": ["required"]}
        assert whole.json()["user"] == ["This field is required."]

    def test_nested_errors_are_flattened(self):
        """A list field's or a nested object's errors stay a flat list of strings per field,
        naming the item; the codes line up with the messages."""
        error = ValidationError(
            {
                "files": {"0": [ErrorDetail("Not a file.", code="invalid")]},
                "owner": {"name": [ErrorDetail("Too long.", code="max_length")]},
                "text": [ErrorDetail("Write something.", code="blank")],
            }
        )
        assert error_body(error) == {
            "files": ["0: Not a file."],
            "owner": ["name: Too long."],
            "text": ["Write something."],
            "detail": "0: Not a file.",
            "code": "invalid",
            "codes": {"files": ["invalid"], "owner": ["max_length"], "text": ["blank"]},
        }

    def test_service_errors_carry_codes_too(self):
        """A rule of a service (Django's ValidationError) gets the same envelope."""
        user = make_user()
        response = api(user).post("/api/chats/direct/", {"user": user.pk})
        assert response.status_code == 400
        body = response.json()
        assert body["non_field_errors"] == ["A direct chat needs someone else."]
        assert set(body) == {"non_field_errors", "detail", "code", "codes"}
        assert body["detail"] == "A direct chat needs someone else."

    def test_conflict_is_409(self):
        """A client_id replayed with other text is a 409 with the code `conflict`; nothing changes."""
        user = make_user()
        path = f"/api/chats/{general().pk}/messages/"
        client_id = str(uuid.uuid4())
        assert api(user).post(path, {"text": "one", "client_id": client_id}).status_code == 201
        response = api(user).post(path, {"text": "two", "client_id": client_id})
        assert response.status_code == 409
        assert response.json()["code"] == "conflict" and response.json()["detail"]


class RateLimitHeaderTests(APITestCase):
    @rates(message="3/minute")
    def test_rated_routes_say_where_the_rate_stands(self):
        """A rated operation answers RateLimit-Limit, -Remaining and -Reset; past the rate a
        429 with Retry-After and nothing remaining. Unrated reads carry none."""
        client = api(make_user())
        path = f"/api/chats/{general().pk}/messages/"
        first = client.post(path, {"text": "a"})
        assert (first["RateLimit-Limit"], first["RateLimit-Remaining"]) == ("3", "2")
        assert 0 < int(first["RateLimit-Reset"]) <= 60
        client.post(path, {"text": "b"})
        client.post(path, {"text": "c"})
        refused = client.post("/api/messages/", {"chat": general().pk, "text": "d"})
        assert refused.status_code == 429
        assert refused.json()["code"] == "throttled"
        assert refused["RateLimit-Remaining"] == "0"
        assert refused["Retry-After"] == refused["RateLimit-Reset"]
        assert "RateLimit-Limit" not in client.get(path)

    @rates(message="3/minute")
    async def test_headers_under_asgi(self):
        """Under ASGI (the view in a thread of its own) the headers come through the same."""
        user = await sync_to_async(make_user)()
        key = (await sync_to_async(services.issue_token)(user=user)).key
        chat_id = (await sync_to_async(general)()).pk
        response = await self.async_client.post(
            f"/api/chats/{chat_id}/messages/",
            {"text": "a"},
            content_type="application/json",
            headers={"Authorization": f"Token {key}"},
        )
        assert response.status_code == 201
        assert (response["RateLimit-Limit"], response["RateLimit-Remaining"]) == ("3", "2")

    @rates(login="5/minute", login_address="100/minute")
    def test_the_tightest_rate_is_shown(self):
        """Signing in counts per account and per address: the headers show the tighter one."""
        make_user("ada")
        response = APIClient().post("/api/auth/token/", {"username": "ada", "password": PASSWORD})
        assert (response["RateLimit-Limit"], response["RateLimit-Remaining"]) == ("5", "4")

    @rates(room="1/hour")
    def test_room_creation_and_edits(self):
        """Creating and changing rooms are rated, and say so."""
        client = api(make_user())
        created = client.post("/api/chats/", {"name": "One"})
        assert created["RateLimit-Remaining"] == "0"
        assert client.post("/api/chats/", {"name": "Two"}).status_code == 429

    def test_pages_carry_no_headers(self):
        """Only the API adds them: a page's form post is rated without them."""
        user = make_user()
        self.client.force_login(user)
        response = self.client.post(f"/chats/{general().pk}/messages/", {"text": "hi"})
        assert "RateLimit-Limit" not in response


@override_settings(CORS_ALLOWED_ORIGINS=[SPA])
class CorsTests(APITestCase):
    def test_preflight_from_a_listed_origin(self):
        """A preflight from a listed origin may send the Authorization header, with credentials."""
        response = APIClient().options(
            "/api/chats/",
            HTTP_ORIGIN=SPA,
            HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
            HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
        )
        assert response.status_code == 200
        assert response["Access-Control-Allow-Origin"] == SPA
        assert response["Access-Control-Allow-Credentials"] == "true"
        assert "authorization" in response["Access-Control-Allow-Headers"]
        assert "POST" in response["Access-Control-Allow-Methods"]

    def test_request_from_a_listed_origin(self):
        """A real call from a listed origin gets its answer readable, with Location and the
        rate headers exposed."""
        client = api(make_user())
        response = client.post("/api/chats/", {"name": "From the SPA"}, HTTP_ORIGIN=SPA)
        assert response.status_code == 201
        assert response["Access-Control-Allow-Origin"] == SPA
        exposed = {name.strip() for name in response["Access-Control-Expose-Headers"].split(",")}
        assert {
            "Location",
            "Retry-After",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
        } <= exposed

    def test_unlisted_origin_gets_no_cors_headers(self):
        """Another origin (the same host at another port) gets no CORS headers, on a preflight
        or a call: the browser keeps the answer from its script."""
        preflight = APIClient().options(
            "/api/chats/", HTTP_ORIGIN=STRANGER, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
        )
        call = api(make_user()).get("/api/chats/", HTTP_ORIGIN=STRANGER)
        for response in (preflight, call):
            assert "Access-Control-Allow-Origin" not in response
            assert "Access-Control-Allow-Credentials" not in response

    def test_only_the_api(self):
        """Pages answer no CORS, even to a listed origin."""
        response = self.client.get("/accounts/login/", HTTP_ORIGIN=SPA)
        assert "Access-Control-Allow-Origin" not in response


class OriginSettingTests(APITestCase):
    def test_parse_origins(self):
        """Origins are normalised as browsers send them; anything that is not an origin stops the start."""
        assert parse_origins(
            " http://LOCALHOST:3000/ , https://app.example.com:443,https://app.example.com"
        ) == [
            "http://localhost:3000",
            "https://app.example.com",
        ]
        assert parse_origins("") == []
        assert parse_origins("http://[::1]:8080") == ["http://[::1]:8080"]
        for bad in (
            "localhost:3000",
            "ftp://x.org",
            "https://app.example.com/path",
            "https://*.example.com",
            "http://x:y",
        ):
            with pytest.raises(ImproperlyConfigured, match="CORS_ALLOWED_ORIGINS"):
                parse_origins(bad)

    def test_environment_reaches_cors_and_csrf(self):
        """CORS_ALLOWED_ORIGINS sets the CORS list and extends CSRF_TRUSTED_ORIGINS, so that
        form posts and the WebSocket origin check trust the same origins."""
        env = {
            "DEBUG": "true",
            "CORS_ALLOWED_ORIGINS": f"{SPA},https://app.example.com",
            "CSRF_TRUSTED_ORIGINS": "https://admin.example.com",
        }
        with mock.patch.dict(os.environ, env):
            values: dict[str, Any] = runpy.run_path(str(SETTINGS_FILE))
        assert values["CORS_ALLOWED_ORIGINS"] == [SPA, "https://app.example.com"]
        assert values["CSRF_TRUSTED_ORIGINS"] == ["https://admin.example.com", SPA, "https://app.example.com"]
        assert values["CORS_ALLOW_CREDENTIALS"] is True
        assert values["CORS_URLS_REGEX"] == r"^/api/.*$"

    def test_websocket_origin_check_honours_the_list(self):
        """chat.routing.origin_allowed accepts a listed origin and refuses the same host at
        another port."""

        def scope(origin: str) -> dict[str, Any]:
            return {
                "type": "websocket",
                "headers": [(b"host", b"chat.example.com"), (b"origin", origin.encode())],
            }

        with override_settings(ALLOWED_HOSTS=["chat.example.com"], CSRF_TRUSTED_ORIGINS=[SPA]):
            assert origin_allowed(scope(SPA))
            assert not origin_allowed(scope(STRANGER))
            assert not origin_allowed(scope("https://localhost:3000"))


class DocumentationTests(APITestCase):
    def schema(self) -> dict[str, Any]:
        response = api(make_user()).get("/api/schema/")
        assert response.status_code == 200
        return response.json()

    def test_every_operation_has_examples(self):
        """Every operation shows an example of its request body and of each answer with a body."""
        missing = []
        for path, item in self.schema()["paths"].items():
            for method, operation in item.items():
                name = f"{method.upper()} {path}"
                for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
                    if "examples" not in media:
                        missing.append(f"{name} request {media_type}")
                for status, answer in operation["responses"].items():
                    for media_type, media in answer.get("content", {}).items():
                        if "examples" not in media:
                            missing.append(f"{name} {status} {media_type}")
        assert missing == []

    def test_examples_have_the_fields_of_their_schema(self):
        """Each example of an answer has exactly the fields its schema requires and allows, so
        that the examples keep up with the serializers."""
        schema = self.schema()
        components = schema["components"]["schemas"]

        def resolve(node: dict[str, Any]) -> dict[str, Any]:
            while "$ref" in node:
                node = components[node["$ref"].rsplit("/", 1)[1]]
            return node

        def check(value: Any, node: dict[str, Any], where: str) -> list[str]:
            node = resolve(node)
            if isinstance(value, dict) and "properties" in node:
                problems = [
                    f"{where}: lacks {name}" for name in node.get("required", []) if name not in value
                ]
                if node.get("additionalProperties") is None:
                    problems += [f"{where}: has {name}" for name in value if name not in node["properties"]]
                for name, item in value.items():
                    if name in node["properties"]:
                        problems += check(item, node["properties"][name], f"{where}.{name}")
                return problems
            if isinstance(value, list) and "items" in node:
                return [problem for item in value for problem in check(item, node["items"], f"{where}[]")]
            return []

        problems = []
        for path, item in schema["paths"].items():
            for method, operation in item.items():
                for status, answer in operation["responses"].items():
                    for media in answer.get("content", {}).values():
                        for name, example in media.get("examples", {}).items():
                            where = f"{method.upper()} {path} {status} {name}"
                            problems += check(example["value"], media["schema"], where)
        assert problems == []

    def test_errors_and_headers_are_documented(self):
        """The error envelope, 409 and the rate headers are in the schema."""
        schema = self.schema()
        error = schema["components"]["schemas"]["Error"]
        assert {"detail", "code"} <= set(error["properties"])
        post_message = schema["paths"]["/api/chats/{chat_id}/messages/"]["post"]
        assert "409" in post_message["responses"]
        created = post_message["responses"]["201"]
        assert {"Location", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(
            created["headers"]
        )
        field_errors = post_message["responses"]["400"]["content"]["application/json"]["schema"]
        assert {"detail", "code", "codes"} <= set(field_errors["properties"])

    def test_asyncapi_document_is_served_and_linked(self):
        """/api/asyncapi.yaml is the AsyncAPI 3 document, as YAML, for signed-in callers; the
        docs page links to it."""
        user = make_user()
        response = api(user).get("/api/asyncapi.yaml")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("application/yaml")
        assert response.content.decode().startswith("asyncapi: 3.")
        assert APIClient().get("/api/asyncapi.yaml").status_code == 401
        self.client.force_login(user)
        docs = self.client.get("/api/docs/").content.decode()
        assert 'href="/api/asyncapi.yaml"' in docs


class HugeIdTests(APITestCase):
    def test_ids_past_any_range_are_404s(self):
        """An id larger than any the database holds is a 404 on every new route, not a 500."""
        owner = make_user()
        room = make_room(owner)
        huge = 2**100
        client = api(owner)
        for path in (
            f"/api/bots/{huge}/",
            f"/api/tokens/{huge}/",
            f"/api/chats/{room.pk}/members/{huge}/",
        ):
            assert client.get(path).status_code == 404, path
            if "members" not in path:
                assert client.delete(path).status_code == 404, path
