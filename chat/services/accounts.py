"""Accounts, their API tokens and their sessions.

Signing in and signing up are rated before any password is hashed: each hash costs
about 0.7 s of CPU on purpose, so unmetered attempts would let a few clients slow every
page. Ending sessions (logging out, a new password, sign out everywhere, deactivation)
closes the user's open sockets on every process after commit; a socket whose session or
token is still valid reconnects, and the others are refused.
"""

from __future__ import annotations

import hashlib
import unicodedata
from functools import partial
from importlib import import_module

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from chat import broadcast, limits
from chat.models import Chat, Membership
from chat.services.membership import latest_message_id


@transaction.atomic
def create_account(*, username: str, password: str) -> User:
    """Create an account; like every account, it joins the auto-join rooms (join_auto_rooms)."""
    return User.objects.create_user(username=username, password=password)


def join_auto_rooms(*, user: User) -> None:
    """Make a new account a member of every auto-join room (General).

    Called for every new User row (chat.apps connects it to post_save), so that an account
    made by sign-up, the admin, `createsuperuser` or a script joins alike.
    """
    Membership.objects.bulk_create(
        [
            Membership(user=user, chat=chat, last_read_message_id=latest_message_id(chat.pk))
            for chat in Chat.objects.filter(auto_join=True)
        ],
        ignore_conflicts=True,
    )


# --- Attempts -----------------------------------------------------------------------


def login_key(username: str) -> str:
    """The account an attempt counts against: the name as typed, compatibility-normalized and
    case-folded (so "Ada" and "ada" share one count), hashed to keep cache keys short and plain."""
    name = unicodedata.normalize("NFKC", username).strip().casefold()
    return hashlib.sha256(name.encode()).hexdigest()[:32]


def check_login_attempt(*, username: str, address: str) -> None:
    """Count one attempt to sign in (the login page or a token request); RateLimited past the
    rate per address or per account. Call it before the password is checked.

    The address is counted first, so that one address past its limit no longer uses up the
    budget of the accounts it tries.
    """
    limits.hit("login_address", address)
    limits.hit("login", login_key(username))


def check_signup_attempt(*, address: str) -> None:
    """Count one attempt to sign up from the address; RateLimited past its rate."""
    limits.hit("signup_address", address)


# --- Tokens -------------------------------------------------------------------------


def issue_token(*, user: User) -> Token:
    """The user's API token, created on first use; the same one until it is revoked."""
    token, _ = Token.objects.get_or_create(user=user)
    return token


@transaction.atomic
def revoke_token(*, user: User) -> None:
    """The token stops working at once, and the sockets opened with it close."""
    Token.objects.filter(user=user).delete()
    _close_sockets(user)


# --- Sessions -----------------------------------------------------------------------


def close_sockets(*, user: User) -> None:
    """Close every open socket of the user on every process, once the current transaction
    commits (logging out calls this); those whose session or token is still valid reconnect."""
    _close_sockets(user)


@transaction.atomic
def change_password(*, user: User, password: str) -> None:
    """Set a new password. Every session signed in before ends (Django checks a hash of the
    password on each request); the door keeps its own session with update_session_auth_hash.
    The API token is a separate credential and goes on working."""
    user.set_password(password)
    user.save(update_fields=["password"])
    _close_sockets(user)


@transaction.atomic
def sign_out_everywhere(*, user: User) -> None:
    """End every session of the user, in every browser, and revoke their API token."""
    _delete_sessions(user)
    Token.objects.filter(user=user).delete()
    _close_sockets(user)


@transaction.atomic
def deactivate_user(*, user: User) -> None:
    """The account can no longer sign in: its sessions end, its token is revoked and its
    sockets close. Its messages and memberships stay."""
    user.is_active = False
    user.save(update_fields=["is_active"])
    _delete_sessions(user)
    Token.objects.filter(user=user).delete()
    _close_sockets(user)


def _close_sockets(user: User) -> None:
    # robust: a failed push is logged; the sessions are gone from the database all the same.
    transaction.on_commit(partial(broadcast.sessions_ended, user.pk), robust=True)


def _delete_sessions(user: User) -> None:
    """Delete every stored session signed in as the user.

    Sessions live in the database (settings leave Django's default engine), where they
    can be found; they are indexed by key, not by user, so this reads every unexpired
    session once. Deleting through the store also clears a cached_db session's cache.
    """
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    if not hasattr(store_class, "get_model_class"):
        raise ImproperlyConfigured(
            f"{settings.SESSION_ENGINE} keeps no list of sessions, so a user's sessions can't be ended; "
            "use the db or cached_db session engine."
        )
    store = store_class()
    sessions = store_class.get_model_class().objects.filter(expire_date__gt=timezone.now())
    user_id = str(user.pk)
    # The keys are gathered first: SQLite can't be relied on to iterate a table while
    # rows are deleted from it.
    keys = [
        session.session_key
        for session in sessions.only("session_key", "session_data").iterator()
        if str(store.decode(session.session_data).get(SESSION_KEY)) == user_id
    ]
    for key in keys:
        store.delete(key)
