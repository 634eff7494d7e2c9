"""Named API tokens (hashed, each revocable), DRF's old tokens carried over, and bot accounts."""

from __future__ import annotations

import hashlib
import importlib
import io
import logging
from datetime import timedelta
from unittest import mock

import pytest
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from chat import services
from chat.models import ApiToken, Bot, Membership
from chat.tests.factories import PASSWORD, general, make_room, make_user
from chat.tests.test_api import APITestCase, api, field_errors


def with_key(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def rates(**changes: str) -> override_settings:
    return override_settings(CHAT_RATES={**settings.CHAT_RATES, **changes})


class TokenServiceTests(APITestCase):
    def test_only_the_digest_is_stored(self):
        """A new token's key is long and random; the database holds its SHA-256 and a short
        prefix, never the key."""
        user = make_user()
        new = services.issue_token(user=user, name="  deploy  ")
        assert len(new.key) >= 40
        token = ApiToken.objects.get(pk=new.token.pk)
        assert (token.name, token.digest, token.prefix) == (
            "deploy",
            hashlib.sha256(new.key.encode()).hexdigest(),
            new.key[:8],
        )
        assert new.key not in str(list(ApiToken.objects.values()))
        assert services.issue_token(user=user).token.name == "API token"

    def test_user_for_token(self):
        """user_for_token gives the active user and the token's id, or None for an unknown key,
        a revoked token or a deactivated user."""
        user = make_user()
        new = services.issue_token(user=user)
        assert services.user_for_token(new.key) == (user, new.token.pk)
        assert services.user_for_token("nope") is None
        assert services.user_for_token("") is None
        assert services.user_for_token("x" * 10_000) is None
        other = services.issue_token(user=user)
        services.revoke_token(user=user, token_id=other.token.pk)
        assert services.user_for_token(other.key) is None
        services.deactivate_user(user=user)
        assert services.user_for_token(new.key) is None

    def test_last_used_is_written_at_most_once_a_minute(self):
        """Using a token notes when, but writes at most once a minute, not once a request."""
        new = services.issue_token(user=make_user())
        assert new.token.last_used_at is None
        services.user_for_token(new.key)
        first = ApiToken.objects.get(pk=new.token.pk).last_used_at
        assert first is not None
        with self.assertNumQueries(1):
            services.user_for_token(new.key)
        assert ApiToken.objects.get(pk=new.token.pk).last_used_at == first
        later = timezone.now() + timedelta(minutes=2)
        with mock.patch("django.utils.timezone.now", return_value=later), self.assertNumQueries(2):
            services.user_for_token(new.key)
        assert ApiToken.objects.get(pk=new.token.pk).last_used_at == later

    @override_settings(API_TOKENS_PER_USER=2)
    def test_a_user_holds_a_capped_number_of_tokens(self):
        """Past the cap a new token is refused with words that say what to do; revoking one makes room."""
        user = make_user()
        first = services.issue_token(user=user)
        services.issue_token(user=user)
        with pytest.raises(ValidationError) as refused:
            services.issue_token(user=user)
        assert refused.value.code == "too_many_tokens"
        assert "revoke one" in refused.value.messages[0]
        services.revoke_token(user=user, token_id=first.token.pk)
        services.issue_token(user=user)
        assert ApiToken.objects.filter(user=user).count() == 2

    def test_revoking_pushes_after_commit(self):
        """Revoking a token closes the sockets that signed in with it, after commit only."""
        user = make_user()
        new = services.issue_token(user=user)
        with (
            mock.patch("chat.broadcast.token_revoked") as token_revoked,
            self.captureOnCommitCallbacks(execute=True),
        ):
            services.revoke_token(user=user, token_id=new.token.pk)
            token_revoked.assert_not_called()
        token_revoked.assert_called_once_with(user.pk, new.token.pk)

    def test_nobody_revokes_anothers_token(self):
        """Another user's token id is unknown to you: 404, and it keeps working."""
        alice, bob = make_user(), make_user()
        theirs = services.issue_token(user=bob)
        with pytest.raises(Exception) as refused:
            services.revoke_token(user=alice, token_id=theirs.token.pk)
        assert "No such token" in str(refused.value)
        assert services.user_for_token(theirs.key) is not None

    def test_password_change_keeps_tokens_and_sign_out_everywhere_revokes_them(self):
        """A new password leaves the user's tokens working (bots go on); signing out everywhere
        and deactivation revoke every one."""
        user = make_user()
        keys = [services.issue_token(user=user).key for _ in range(2)]
        services.change_password(user=user, password="another-horse-battery-77")
        assert all(services.user_for_token(key) for key in keys)
        services.sign_out_everywhere(user=user)
        assert not any(services.user_for_token(key) for key in keys)


class TokenApiTests(APITestCase):
    def test_list_create_and_revoke(self):
        """GET /api/tokens/ lists names and prefixes (never keys) and marks the current one;
        POST makes one (201, Location, the key once); DELETE revokes that one only."""
        user = make_user("ada")
        signed_in = services.issue_token(user=user, name="laptop")
        client = with_key(signed_in.key)
        created = client.post("/api/tokens/", {"name": "weather bot"})
        assert created.status_code == 201
        body = created.json()
        assert set(body) == {"token", "id", "name", "prefix", "created_at", "last_used_at", "current"}
        assert (body["name"], body["prefix"], body["current"]) == ("weather bot", body["token"][:8], False)
        assert created["Location"] == f"http://testserver/api/tokens/{body['id']}/"
        listed = client.get("/api/tokens/").json()["results"]
        assert [(t["name"], t["current"]) for t in listed] == [("laptop", True), ("weather bot", False)]
        assert signed_in.key not in str(listed) and body["token"] not in str(listed)
        assert all(
            set(t) == {"id", "name", "prefix", "created_at", "last_used_at", "current"} for t in listed
        )
        one = client.get(created["Location"])
        assert one.status_code == 200 and "token" not in one.json()
        with self.captureOnCommitCallbacks(execute=True):
            assert client.delete(f"/api/tokens/{body['id']}/").status_code == 204
        assert with_key(body["token"]).get("/api/users/me/").status_code == 401
        assert client.get("/api/users/me/").status_code == 200
        assert client.delete(f"/api/tokens/{body['id']}/").status_code == 404

    def test_tokens_are_private(self):
        """Someone else's token can't be seen or revoked: 404, as if it did not exist."""
        alice, bob = make_user(), make_user()
        theirs = services.issue_token(user=bob, name="bob's")
        client = api(alice)
        assert "bob's" not in client.get("/api/tokens/").content.decode()
        assert client.get(f"/api/tokens/{theirs.token.pk}/").status_code == 404
        refused = client.delete(f"/api/tokens/{theirs.token.pk}/")
        assert (refused.status_code, refused.json()["code"]) == (404, "not_found")
        assert services.user_for_token(theirs.key) is not None

    @override_settings(API_TOKENS_PER_USER=1)
    def test_cap_is_a_clear_400(self):
        """Past the cap, POST /api/auth/token/ and POST /api/tokens/ answer 400 saying what to do,
        with the code `too_many_tokens`."""
        make_user("ada")
        first = APIClient().post("/api/auth/token/", {"username": "ada", "password": PASSWORD})
        assert first.status_code == 201
        for refused in (
            APIClient().post("/api/auth/token/", {"username": "ada", "password": PASSWORD}),
            with_key(first.json()["token"]).post("/api/tokens/", {}),
        ):
            assert refused.status_code == 400
            assert refused.json()["codes"] == {"non_field_errors": ["too_many_tokens"]}
            assert "revoke one you no longer use" in refused.json()["detail"]

    def test_token_name_too_long(self):
        """A name past 100 characters is a 400 on `name`; nothing is made."""
        user = make_user("ada")
        response = api(user).post("/api/tokens/", {"name": "n" * 101})
        assert response.status_code == 400
        assert list(field_errors(response)) == ["name"]
        assert ApiToken.objects.filter(user=user).count() == 1  # the test client's own

    def test_session_delete_of_auth_token_is_a_400(self):
        """DELETE /api/auth/token/ with the browser session has no token to revoke: a 400 that
        points to DELETE /api/tokens/{id}/, and every token stays."""
        user = make_user()
        new = services.issue_token(user=user)
        client = APIClient()
        client.force_login(user)
        response = client.delete("/api/auth/token/")
        assert response.status_code == 400
        assert "/api/tokens/" in response.json()["detail"]
        assert services.user_for_token(new.key) is not None

    def test_deactivated_user_token_is_refused(self):
        """A token of a deactivated account is a 401, in the words of an unknown one."""
        user = make_user()
        key = services.issue_token(user=user).key
        user.is_active = False
        user.save()
        response = with_key(key).get("/api/users/me/")
        assert response.status_code == 401
        assert response.json() == {"detail": "Invalid token.", "code": "authentication_failed"}

    def test_key_is_never_logged(self):
        """Neither the token request nor a request signed with the key logs the key."""
        make_user("ada")
        with self.assertLogs("chat", level=logging.DEBUG) as logs:
            key = (
                APIClient()
                .post("/api/auth/token/", {"username": "ada", "password": PASSWORD})
                .json()["token"]
            )
            with_key(key).get("/api/tokens/")
        assert key not in "\n".join(logs.output)
        assert key[:8] not in "\n".join(logs.output)


def hash_drf_tokens() -> object:
    return importlib.import_module("chat.migrations.0005_api_tokens_and_bots").hash_drf_tokens


class MigrationTests(APITestCase):
    def test_drf_tokens_keep_working(self):
        """The migration turns DRF's plain keys into hashed named tokens, with their dates, and
        deletes the plain keys."""
        user = make_user()
        key = "0123456789abcdef0123456789abcdef01234567"
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
                "created timestamp with time zone NOT NULL, user_id integer NOT NULL UNIQUE)"
            )
            cursor.execute(
                "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, %s, %s)",
                [key, "2025-01-02 03:04:05.000006", user.pk],
            )
        try:
            hash_drf_tokens()(apps, mock.Mock(connection=connection))  # type: ignore[operator]
            assert services.user_for_token(key)[0] == user  # type: ignore[index]
            token = ApiToken.objects.get(user=user)
            assert (token.name, token.prefix) == ("API token", key[:8])
            assert token.created_at.isoformat() == "2025-01-02T03:04:05.000006+00:00"
            with connection.cursor() as cursor:
                cursor.execute("SELECT COUNT(*) FROM authtoken_token")
                assert cursor.fetchone() == (0,)
            assert with_key(key).get("/api/users/me/").json()["id"] == user.pk
        finally:
            with connection.cursor() as cursor:
                cursor.execute("DROP TABLE authtoken_token")

    def test_fresh_database_has_nothing_to_copy(self):
        """Without DRF's table (a fresh database) the migration does nothing."""
        assert "authtoken_token" not in connection.introspection.table_names()
        hash_drf_tokens()(apps, mock.Mock(connection=connection))  # type: ignore[operator]
        assert not ApiToken.objects.exists()

    def test_drf_authtoken_is_not_installed(self):
        """One kind of token: DRF's plain-text tokens are gone from the project."""
        assert "rest_framework.authtoken" not in settings.INSTALLED_APPS
        assert settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"][0] == (
            "chat.api.authentication.ApiTokenAuthentication"
        )


class BotServiceTests(APITestCase):
    def test_create_bot(self):
        """A bot has no usable password, an owner, General, and a first token that signs it in."""
        owner = make_user("ada")
        bot, new = services.create_bot(username="weather-bot", owner=owner)
        assert not bot.has_usable_password()
        assert Bot.objects.get(user=bot).owner == owner
        assert Membership.objects.filter(user=bot, chat=general()).exists()
        assert services.user_for_token(new.key) == (bot, new.token.pk)
        assert new.token.name == "Bot token"
        assert not APIClient().login(username="weather-bot", password="")

    def test_username_rules_are_the_sign_up_forms(self):
        """A taken name (in any case), a blank one or one with spaces is refused on `username`."""
        make_user("ada")
        for name, code in [
            ("ADA", "unique"),
            ("", "blank"),
            ("two words", "invalid"),
            ("x" * 151, "max_length"),
        ]:
            with pytest.raises(ValidationError) as refused:
                services.create_bot(username=name)
            assert refused.value.error_dict["username"][0].code == code, name

    def test_management_command(self):
        """`create_bot <username> --owner --token-name` prints the key alone on stdout."""
        owner = make_user("ada")
        out, err = io.StringIO(), io.StringIO()
        call_command("create_bot", "helper", "--owner", "ada", "--token-name", "prod", stdout=out, stderr=err)
        key = out.getvalue().strip()
        user, token_id = services.user_for_token(key)  # type: ignore[misc]
        assert user.username == "helper" and Bot.objects.get(user=user).owner == owner
        assert ApiToken.objects.get(pk=token_id).name == "prod"
        assert "helper" in err.getvalue() and key not in err.getvalue()
        with pytest.raises(CommandError, match="already exists"):
            call_command("create_bot", "Helper", stdout=io.StringIO(), stderr=io.StringIO())
        with pytest.raises(CommandError, match="nobody"):
            call_command(
                "create_bot", "other", "--owner", "nobody", stdout=io.StringIO(), stderr=io.StringIO()
            )

    def test_management_command_ignores_bot_signup(self):
        """An administrator makes bots even where the API may not."""
        with override_settings(BOT_SIGNUP=False):
            call_command("create_bot", "ops", stdout=io.StringIO(), stderr=io.StringIO())
        assert Bot.objects.filter(user__username="ops", owner=None).exists()


class BotApiTests(APITestCase):
    def test_create_list_and_deactivate(self):
        """POST /api/bots/ makes a bot you own (201, Location, its token once); it is listed for
        you alone; DELETE deactivates it and its token stops working."""
        owner, other = make_user("ada"), make_user("grace")
        client = api(owner)
        created = client.post("/api/bots/", {"username": "weather-bot"})
        assert created.status_code == 201
        body = created.json()
        assert set(body) == {"id", "username", "token"}
        assert created["Location"] == f"http://testserver/api/bots/{body['id']}/"
        bot_client = with_key(body["token"])
        assert bot_client.get("/api/users/me/").json() == {"id": body["id"], "username": "weather-bot"}
        assert [b["username"] for b in client.get("/api/bots/").json()["results"]] == ["weather-bot"]
        assert client.get(created["Location"]).json()["active"] is True
        assert api(other).get("/api/bots/").json()["results"] == []
        assert api(other).get(created["Location"]).status_code == 404
        assert api(other).delete(created["Location"]).status_code == 404
        with self.captureOnCommitCallbacks(execute=True):
            assert client.delete(created["Location"]).status_code == 204
        assert bot_client.get("/api/users/me/").status_code == 401
        assert client.get(created["Location"]).json()["active"] is False

    def test_bad_username_is_a_400(self):
        """A taken name is a 400 on `username` with the code `unique`; nothing is made."""
        make_user("taken")
        response = api(make_user()).post("/api/bots/", {"username": "taken"})
        assert response.status_code == 400
        assert field_errors(response) == {"username": ["A user with that username already exists."]}
        assert response.json()["codes"] == {"username": ["unique"]}
        assert not Bot.objects.exists()

    @rates(bot="2/hour")
    def test_rated_per_person(self):
        """Past BOT_RATE a 429 with Retry-After and the RateLimit headers; others are not affected."""
        client = api(make_user())
        first = client.post("/api/bots/", {"username": "b1"})
        assert (first["RateLimit-Limit"], first["RateLimit-Remaining"]) == ("2", "1")
        assert client.post("/api/bots/", {"username": "b2"}).status_code == 201
        refused = client.post("/api/bots/", {"username": "b3"})
        assert refused.status_code == 429
        assert refused.json() == {"detail": "You are creating bots too fast.", "code": "throttled"}
        assert int(refused["Retry-After"]) > 0 and refused["RateLimit-Remaining"] == "0"
        assert api(make_user()).post("/api/bots/", {"username": "b3"}).status_code == 201

    @override_settings(BOT_SIGNUP=False)
    def test_switched_off(self):
        """With BOT_SIGNUP off the route answers 403 with a clear message and its own code;
        listing goes on."""
        client = api(make_user())
        response = client.post("/api/bots/", {"username": "weather-bot"})
        assert response.status_code == 403
        assert response.json()["code"] == "bot_signup_closed"
        assert "create_bot" in response.json()["detail"]
        assert not Bot.objects.exists()
        assert client.get("/api/bots/").status_code == 200

    def test_bots_do_not_make_bots(self):
        """A bot's token can't make more bots."""
        _, new = services.create_bot(username="first-bot", owner=make_user())
        response = with_key(new.key).post("/api/bots/", {"username": "second-bot"})
        assert (response.status_code, response.json()["detail"]) == (403, "A bot can't create bots.")

    def test_anonymous_is_refused(self):
        """Bots and tokens need a signed-in caller."""
        for method, path in [("get", "/api/bots/"), ("post", "/api/bots/"), ("get", "/api/tokens/")]:
            assert getattr(APIClient(), method)(path, {"username": "x"}).status_code == 401

    def test_bot_joins_rooms_like_anyone(self):
        """Its owner adds the bot to a room and it posts there with its token."""
        owner = make_user()
        room = make_room(owner, visibility="private")
        created = api(owner).post("/api/bots/", {"username": "helper"}).json()
        assert api(owner).post(f"/api/chats/{room.pk}/members/", {"user": created["id"]}).status_code == 201
        posted = with_key(created["token"]).post(f"/api/chats/{room.pk}/messages/", {"text": "beep"})
        assert posted.status_code == 201
