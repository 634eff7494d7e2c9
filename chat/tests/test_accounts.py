"""Accounts: sign-in and sign-up rates, who is listed, and sessions that end everywhere."""

from __future__ import annotations

from typing import Any
from unittest import mock

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import connection
from django.test import Client, TestCase, override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from chat import limits, services
from chat.models import ApiToken, Membership
from chat.tests.factories import PASSWORD, make_room, make_user
from chat.tests.test_api import REDIS_URL, reachable_redis

NEW_PASSWORD = "another-horse-battery-77"
# Thirty seconds into a minute (and into an hour): the rates count in fixed windows, and a
# test that straddled a window's end would start counting afresh halfway through.
NOW = 500_000 * 3600 + 30


def rates(**changes: str) -> override_settings:
    """The project's rates, with some of them changed."""
    return override_settings(CHAT_RATES={**settings.CHAT_RATES, **changes})


def counting_password_checks() -> Any:
    """Counts the calls of the backend that checks passwords (and so hashes one)."""
    return mock.patch.object(
        ModelBackend, "authenticate", autospec=True, side_effect=ModelBackend.authenticate
    )


def token_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {services.issue_token(user=user).key}")
    return client


class AccountTestCase(TestCase):
    def setUp(self) -> None:
        # Attempt counts live in the cache, which outlives each test's transaction.
        cache.clear()
        clock = mock.patch.object(limits, "time", mock.Mock(time=mock.Mock(return_value=float(NOW))))
        clock.start()
        self.addCleanup(clock.stop)

    def login(self, username: str, password: str = PASSWORD, address: str = "10.0.0.1") -> Any:
        return self.client.post(
            "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address
        )

    def token(self, username: str, password: str = PASSWORD, address: str = "10.0.0.1") -> Any:
        return APIClient().post(
            "/api/auth/token/", {"username": username, "password": password}, REMOTE_ADDR=address
        )


@rates(login="3/minute", login_address="100/minute")
class LoginPerAccountTests(AccountTestCase):
    def test_login_page_refuses_past_the_rate_without_checking_the_password(self):
        """Past the rate for one account, the login page answers 429 with Retry-After and a clear
        error, and does not check even the right password."""
        make_user("ada")
        with counting_password_checks() as checks:
            for _ in range(3):
                assert self.login("ada", "wrong").status_code == 200
            assert checks.call_count == 3
            response = self.login("ada")
        assert checks.call_count == 3
        assert response.status_code == 429
        assert response["Retry-After"] == "30"
        assert "Too many attempts. Try again in 30 seconds." in response.content.decode()
        assert "_auth_user_id" not in self.client.session

    def test_token_api_refuses_past_the_rate_without_checking_the_password(self):
        """POST /api/auth/token/ counts with the login page: past the rate it answers 429 with
        Retry-After and the page's words in `detail`, without checking the password."""
        make_user("ada")
        with counting_password_checks() as checks:
            assert self.login("ada", "wrong").status_code == 200
            assert self.token("ada", "wrong").status_code == 400
            assert self.token("ada", "wrong").status_code == 400
            response = self.token("ada")
        assert checks.call_count == 3
        assert response.status_code == 429
        assert response["Retry-After"] == "30"
        assert response.json() == {
            "detail": "Too many attempts. Try again in 30 seconds.",
            "code": "throttled",
        }
        assert not ApiToken.objects.exists()

    def test_the_account_is_the_name_in_any_case(self):
        """The names "Ada" and "ada" count against the same account, from any address."""
        make_user("ada")
        for address, name in [("10.0.0.1", "Ada"), ("10.0.0.2", "ADA"), ("10.0.0.3", "ada")]:
            assert self.login(name, "wrong", address=address).status_code == 200
        assert self.login("ada", address="10.0.0.4").status_code == 429

    def test_other_accounts_are_not_affected(self):
        """One account past its rate leaves the others alone."""
        make_user("ada")
        make_user("grace")
        for _ in range(4):
            self.login("ada", "wrong")
        assert self.login("grace").status_code == 302

    def test_an_unknown_account_is_counted_too(self):
        """Attempts at a name nobody has are counted and refused like any other."""
        for _ in range(3):
            assert self.token("nobody", "wrong").status_code == 400
        assert self.token("nobody", "wrong").status_code == 429

    def test_empty_fields_are_not_counted(self):
        """A request without a password hashes nothing and uses up nothing."""
        make_user("ada")
        for _ in range(5):
            assert self.token("ada", "").status_code == 400
            assert self.login("ada", "").status_code == 200
        assert self.token("ada").status_code == 201


@rates(login="100/minute", login_address="3/minute")
class LoginPerAddressTests(AccountTestCase):
    def test_login_page_per_address(self):
        """One address trying many accounts is refused past its rate; another address is not."""
        make_user("ada")
        with counting_password_checks() as checks:
            for name in ["a", "b", "c"]:
                assert self.login(name, "wrong").status_code == 200
            response = self.login("ada")
        assert checks.call_count == 3
        assert response.status_code == 429
        assert "Retry-After" in response
        assert self.login("ada", address="10.0.0.2").status_code == 302

    def test_token_api_per_address(self):
        """The token API shares the address's count with the login page."""
        make_user("ada")
        self.login("a", "wrong")
        self.token("b", "wrong")
        self.token("c", "wrong")
        response = self.token("ada")
        assert response.status_code == 429
        assert "Retry-After" in response
        assert self.token("ada", address="10.0.0.2").status_code == 201


class LoginErrorTests(AccountTestCase):
    def test_errors_never_tell_whether_the_account_exists(self):
        """A wrong password, an unknown name and an inactive account get the same words."""
        make_user("ada")
        inactive = make_user("old")
        inactive.is_active = False
        inactive.save()
        page_errors = {
            str(self.login(name, password).context["form"].non_field_errors())
            for name, password in [("ada", "wrong"), ("nobody", "wrong"), ("old", PASSWORD)]
        }
        assert len(page_errors) == 1
        api_errors = {
            str(self.token(name, password).json())
            for name, password in [("ada", "wrong"), ("nobody", "wrong"), ("old", PASSWORD)]
        }
        assert len(api_errors) == 1

    def test_login_still_works(self):
        """The right name and password sign in."""
        user = make_user("ada")
        assert self.login("ada").status_code == 302
        assert self.client.session["_auth_user_id"] == str(user.pk)


@rates(signup_address="2/hour")
class SignupTests(AccountTestCase):
    def signup(self, username: str, address: str = "10.0.0.1") -> Any:
        return self.client.post(
            "/accounts/signup/",
            {"username": username, "password1": PASSWORD, "password2": PASSWORD},
            REMOTE_ADDR=address,
        )

    def test_signups_per_address(self):
        """Past the rate, sign-ups from one address are refused with 429 and no account is made;
        another address may still sign up."""
        assert self.signup("a").status_code == 302
        self.client.logout()
        assert self.signup("a").status_code == 200  # taken: still an attempt
        with mock.patch.object(services, "create_account", wraps=services.create_account) as create:
            response = self.signup("b")
        assert response.status_code == 429
        assert response["Retry-After"] == "3570"
        assert "Too many attempts" in response.content.decode()
        assert create.call_count == 0
        assert not User.objects.filter(username="b").exists()
        assert self.signup("b", address="10.0.0.2").status_code == 302

    def test_an_empty_post_shows_the_form(self):
        """A sign-up posted with no fields shows what is missing."""
        response = self.client.post("/accounts/signup/", {})
        assert response.status_code == 200
        assert response.context["form"].errors


class UserListTests(AccountTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.alice, self.bob, self.carol = make_user("alice"), make_user("bob"), make_user("carol")
        # Everyone starts in General: leave it, so that only the rooms below are shared.
        Membership.objects.all().delete()
        make_room(self.alice, "Ours").members.add(self.bob)

    def usernames(self, user: User, **query: str) -> list[str]:
        response = token_client(user).get("/api/users/", query)
        assert response.status_code == 200
        return [row["username"] for row in response.json()["results"]]

    def test_lists_you_and_people_you_share_a_chat_with(self):
        """/api/users/ lists the caller and the people in their chats, nobody else."""
        assert self.usernames(self.alice) == ["alice", "bob"]
        assert self.usernames(self.carol) == ["carol"]

    def test_exact_name_finds_anyone_active(self):
        """?username= finds any active account by exact name, shared chat or not."""
        assert self.usernames(self.carol, username="alice") == ["alice"]
        assert self.usernames(self.carol, username="ALICE") == []
        assert self.usernames(self.carol, username="ali") == []
        services.deactivate_user(user=self.alice)
        assert self.usernames(self.carol, username="alice") == []

    def test_inactive_companions_are_not_listed(self):
        """A deactivated account drops out of the list."""
        services.deactivate_user(user=self.bob)
        assert self.usernames(self.alice) == ["alice"]


@mock.patch("chat.broadcast.sessions_ended")
class SessionEndTests(AccountTestCase):
    def signed_in(self, user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client

    def is_signed_in(self, client: Client) -> bool:
        return client.get("/chats/").status_code == 200

    def test_password_change(self, sessions_ended):
        """Changing one's password keeps this session signed in, signs out the others and closes
        the user's sockets after commit; the new password works, the old one doesn't."""
        user = make_user("ada")
        here, elsewhere = self.signed_in(user), self.signed_in(user)
        assert here.get("/accounts/password/").status_code == 200
        with self.captureOnCommitCallbacks(execute=True):
            response = here.post(
                "/accounts/password/",
                {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
            )
            assert sessions_ended.call_count == 0
        assert response["Location"] == "/accounts/password/done/"
        sessions_ended.assert_called_once_with(user.pk)
        assert self.is_signed_in(here)
        assert not self.is_signed_in(elsewhere)
        user.refresh_from_db()
        assert user.check_password(NEW_PASSWORD)
        assert here.get("/accounts/password/done/").status_code == 200

    def test_password_change_errors(self, sessions_ended):
        """A wrong old password changes nothing and ends nothing."""
        user = make_user("ada")
        here = self.signed_in(user)
        response = here.post(
            "/accounts/password/",
            {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        )
        assert response.status_code == 200
        assert response.context["form"].errors["old_password"]
        sessions_ended.assert_not_called()
        user.refresh_from_db()
        assert user.check_password(PASSWORD)

    def test_password_page_needs_sign_in(self, sessions_ended):
        """Visitors are sent to the login page."""
        assert self.client.get("/accounts/password/")["Location"].startswith("/accounts/login/")

    def test_sign_out_everywhere(self, sessions_ended):
        """Sign out everywhere ends every session of the user (this one too), revokes the API
        token, closes the sockets after commit and says so on the login page."""
        user, other = make_user("ada"), make_user("grace")
        here, elsewhere, someone_else = self.signed_in(user), self.signed_in(user), self.signed_in(other)
        api = token_client(user)
        with self.captureOnCommitCallbacks(execute=True):
            response = here.post("/accounts/sign-out-everywhere/", follow=True)
        assert response.redirect_chain == [("/accounts/login/", 302)]
        assert "You are signed out everywhere" in response.content.decode()
        sessions_ended.assert_called_once_with(user.pk)
        assert not self.is_signed_in(here)
        assert not self.is_signed_in(elsewhere)
        assert self.is_signed_in(someone_else)
        assert api.get("/api/users/me/").status_code == 401
        assert not ApiToken.objects.filter(user=user).exists()
        assert Session.objects.count() == 1

    def test_sign_out_everywhere_is_a_post(self, sessions_ended):
        """A GET signs nobody out."""
        here = self.signed_in(make_user())
        assert here.get("/accounts/sign-out-everywhere/").status_code == 405
        assert self.is_signed_in(here)

    def test_logout_closes_sockets(self, sessions_ended):
        """Logging out ends this session and closes the user's sockets; their other sessions
        stay signed in (and their sockets reconnect)."""
        user = make_user()
        here, elsewhere = self.signed_in(user), self.signed_in(user)
        with self.captureOnCommitCallbacks(execute=True):
            assert here.post("/accounts/logout/")["Location"] == "/accounts/login/"
        sessions_ended.assert_called_once_with(user.pk)
        assert not self.is_signed_in(here)
        assert self.is_signed_in(elsewhere)

    def test_revoking_the_token_closes_sockets(self, sessions_ended):
        """DELETE /api/auth/token/ closes the sockets opened with that token after commit; the
        user's other sockets stay."""
        user = make_user()
        token = services.issue_token(user=user)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        with (
            mock.patch("chat.broadcast.token_revoked") as token_revoked,
            self.captureOnCommitCallbacks(execute=True),
        ):
            assert client.delete("/api/auth/token/").status_code == 204
        token_revoked.assert_called_once_with(user.pk, token.token.pk)
        sessions_ended.assert_not_called()

    def test_deactivation(self, sessions_ended):
        """A deactivated user's sessions and token end, their sockets close after commit, and
        they can't sign in again."""
        user, other = make_user("ada"), make_user("grace")
        here, someone_else = self.signed_in(user), self.signed_in(other)
        api = token_client(user)
        with self.captureOnCommitCallbacks(execute=True):
            services.deactivate_user(user=user)
            assert sessions_ended.call_count == 0
        sessions_ended.assert_called_once_with(user.pk)
        assert not self.is_signed_in(here)
        assert self.is_signed_in(someone_else)
        assert api.get("/api/users/me/").status_code == 401
        assert self.login("ada").status_code == 200
        assert self.token("ada").status_code == 400


@override_settings(
    SESSION_ENGINE="django.contrib.sessions.backends.cached_db",
    CACHES={"default": {"BACKEND": "config.cache.SharedRedisCache", "LOCATION": REDIS_URL}},
)
class CachedSessionEndTests(SessionEndTests):
    """The same with REDIS_URL's sessions, read from Redis, where every process reads them: a
    session that was ended is gone from the cache too, not only from the database."""

    def setUp(self) -> None:
        reachable_redis()
        super().setUp()
        self.addCleanup(cache.clear)

    def test_a_signed_in_request_reads_its_session_from_the_cache(self):
        here = self.signed_in(make_user("ada"))
        assert self.is_signed_in(here)
        with CaptureQueriesContext(connection) as queries:
            assert self.is_signed_in(here)
        assert not [query for query in queries if "django_session" in query["sql"]]
