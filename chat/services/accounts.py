"""Accounts, bots, their API tokens and their sessions.

Signing in and signing up are rated before any password is hashed: each hash costs
about 0.7 s of CPU on purpose, so unmetered attempts would let a few clients slow every
page. Ending sessions (logging out, a new password, sign out everywhere, deactivation)
closes the user's open sockets on every process after commit; a socket whose session or
token is still valid reconnects, and the others are refused.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from importlib import import_module

from django.conf import settings
from django.contrib.auth import SESSION_KEY, authenticate
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from chat import broadcast, limits
from chat.models import ApiToken, Bot, Chat, Membership
from chat.services.membership import latest_message_id, member_added


@transaction.atomic
def create_account(*, username: str, password: str) -> User:
    """Create an account; like every account, it joins the auto-join rooms (join_auto_rooms)."""
    return User.objects.create_user(username=username, password=password)


def join_auto_rooms(*, user: User) -> None:
    """Make a new account a member of every auto-join room (General).

    Called for every new User row (chat.apps connects it to post_save), so that an account
    made by sign-up, the admin, `createsuperuser` or a script joins alike.
    """
    for chat in Chat.objects.filter(auto_join=True):
        membership, created = Membership.objects.get_or_create(
            user=user, chat=chat, defaults={"last_read_message_id": latest_message_id(chat.pk)}
        )
        if created:
            member_added(membership, by=None)


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

TOKEN_NAME_MAX_LENGTH = ApiToken._meta.get_field("name").max_length or 100
DEFAULT_TOKEN_NAME = "API token"  # noqa: S105 (a name, not a secret)
# last_used_at is written at most this often per token: one UPDATE a minute, not one a request.
LAST_USED_PRECISION = timedelta(minutes=1)
# A key is 43 characters (32 random bytes); anything much longer is not one, and isn't hashed.
KEY_MAX_LENGTH = 256


@dataclass(frozen=True)
class NewToken:
    """A token just made, with its key: the only time the key is known, since only its
    digest is stored."""

    token: ApiToken
    key: str


def token_digest(key: str) -> str:
    """What is stored of a key: its SHA-256. A key has 256 random bits, so a fast hash is
    as safe as a slow one, and every request can afford it."""
    return hashlib.sha256(key.encode()).hexdigest()


def clean_token_name(name: str) -> str:
    """A token's name, trimmed; a blank one is the default name."""
    name = name.strip() or DEFAULT_TOKEN_NAME
    if len(name) > TOKEN_NAME_MAX_LENGTH:
        raise ValidationError(
            {
                "name": [
                    ValidationError(
                        ngettext(
                            "A token name has at most %(limit)s character.",
                            "A token name has at most %(limit)s characters.",
                            TOKEN_NAME_MAX_LENGTH,
                        )
                        % {"limit": TOKEN_NAME_MAX_LENGTH},
                        code="max_length",
                    )
                ]
            }
        )
    return name


@transaction.atomic
def issue_token(*, user: User, name: str = "") -> NewToken:
    """A new named token for the user, beside the ones they have; its key is returned this once.

    One account holds at most settings.API_TOKENS_PER_USER tokens: past that, revoke one first.
    """
    name = clean_token_name(name)
    # The account's row is locked, so that two requests at once can't both pass the cap.
    list(User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))
    cap = settings.API_TOKENS_PER_USER
    if ApiToken.objects.filter(user=user).count() >= cap:
        raise ValidationError(
            f"You have {cap} API tokens, the most one account may hold: revoke one you no longer "
            "use (DELETE /api/tokens/{id}/) and try again.",
            code="too_many_tokens",
        )
    key = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, digest=token_digest(key), prefix=key[:8])
    return NewToken(token=token, key=key)


def token_for_credentials(
    *, request: HttpRequest | None, username: str, password: str, address: str, name: str = ""
) -> NewToken:
    """A new token for the account that the username and password sign in. The attempt is
    counted first (RateLimited past the login rates), before any password is hashed."""
    name = clean_token_name(name)
    check_login_attempt(username=username, address=address)
    user = authenticate(request, username=username, password=password)
    if not isinstance(user, User):
        # DRF's words, which clients of its authtoken view know.
        raise ValidationError(gettext("Unable to log in with provided credentials."), code="authorization")
    return issue_token(user=user, name=name)


def authenticate_token(key: str) -> ApiToken | None:
    """The token with this key, with its user, if that user is active; None otherwise.

    Notes when the token was last used, at most once a minute.
    """
    if not key or len(key) > KEY_MAX_LENGTH:
        return None
    token = ApiToken.objects.select_related("user").filter(digest=token_digest(key)).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_PRECISION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def user_for_token(key: str) -> tuple[User, int] | None:
    """The active user a token key signs in, and the token's id (sockets note it, so that
    revoking the token closes them); None for a key that is not a valid token's."""
    token = authenticate_token(key)
    return None if token is None else (token.user, token.pk)


def get_token(*, user: User, token_id: int) -> ApiToken:
    """One of the user's own tokens; anyone else's does not exist for them."""
    token = ApiToken.objects.filter(user=user, pk=token_id).first()
    if token is None:
        raise Http404(gettext("No such token."))
    return token


@transaction.atomic
def revoke_token(*, user: User, token_id: int) -> None:
    """One of the user's tokens stops working at once; the sockets that signed in with it
    close after commit, on every process. The user's other tokens and sessions go on."""
    deleted, _ = ApiToken.objects.filter(user=user, pk=token_id).delete()
    if not deleted:
        raise Http404(gettext("No such token."))
    # robust: a failed push is logged; the token is gone from the database all the same.
    transaction.on_commit(partial(broadcast.token_revoked, user.pk, token_id), robust=True)


# --- Bots ---------------------------------------------------------------------------


class BotSignupClosed(PermissionDenied):
    """Bot accounts can't be made through the API here (settings.BOT_SIGNUP is off)."""

    code = "bot_signup_closed"


DEFAULT_BOT_TOKEN_NAME = "Bot token"  # noqa: S105 (a name, not a secret)


def is_bot(user: User) -> bool:
    return Bot.objects.filter(user=user).exists()


def check_bot_signup(*, owner: User) -> None:
    """May this person make a bot through the API now? Counts the attempt; RateLimited past
    settings.CHAT_RATES["bot"]. An administrator's `manage.py create_bot` skips this."""
    if not settings.BOT_SIGNUP:
        raise BotSignupClosed(
            "Bot accounts can't be created through the API on this server (BOT_SIGNUP is off); "
            "an administrator can create one with `python manage.py create_bot`."
        )
    if is_bot(owner):
        # Otherwise every bot could make more bots, each with a rate of its own.
        raise PermissionDenied(gettext("A bot can't create bots."))
    limits.hit("bot", owner.pk, message=gettext("You are creating bots too fast."))


def clean_username(username: str) -> str:
    """A new account's username, by the same rules and in the same words as the sign-up form."""
    field = User._meta.get_field("username")
    username = User.normalize_username(username.strip())
    try:
        field.clean(username, None)
    except ValidationError as error:
        raise ValidationError({"username": error.error_list}) from None
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": [ValidationError(field.error_messages["unique"], code="unique")]})
    return username


@transaction.atomic
def create_bot(*, username: str, owner: User | None = None, token_name: str = "") -> tuple[User, NewToken]:
    """An account for a program, owned by a person (or by nobody, when an administrator makes
    it): no password, so it signs in with API tokens only; it joins General like every account.
    Returns the account and its first token."""
    username = clean_username(username)
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=username)
    except IntegrityError:
        # Taken between the check and the insert.
        field = User._meta.get_field("username")
        raise ValidationError(
            {"username": [ValidationError(field.error_messages["unique"], code="unique")]}
        ) from None
    Bot.objects.create(user=user, owner=owner)
    return user, issue_token(user=user, name=token_name or DEFAULT_BOT_TOKEN_NAME)


def get_own_bot(*, owner: User, bot_id: int) -> Bot:
    """One of the person's bots; anyone else's does not exist for them."""
    # user__pk, not pk: a lookup on the user's own id field refuses an id past its range
    # (no match) instead of overflowing, as one on the foreign key would.
    bot = Bot.objects.select_related("user").filter(owner=owner, user__pk=bot_id).first()
    if bot is None:
        raise Http404(gettext("No such bot."))
    return bot


# --- Sessions -----------------------------------------------------------------------


def close_sockets(*, user: User) -> None:
    """Close every open socket of the user on every process, once the current transaction
    commits (logging out calls this); those whose session or token is still valid reconnect."""
    _close_sockets(user)


@transaction.atomic
def change_password(*, user: User, password: str) -> None:
    """Set a new password. Every session signed in before ends (Django checks a hash of the
    password on each request); the door keeps its own session with update_session_auth_hash.
    API tokens are separate credentials, each revoked on its own (or all of them by signing
    out everywhere), and go on working: a new password must not stop the user's bots."""
    user.set_password(password)
    user.save(update_fields=["password"])
    _close_sockets(user)


@transaction.atomic
def sign_out_everywhere(*, user: User) -> None:
    """End every session of the user, in every browser, and revoke all their API tokens."""
    _delete_sessions(user)
    ApiToken.objects.filter(user=user).delete()
    _close_sockets(user)


@transaction.atomic
def deactivate_user(*, user: User) -> None:
    """The account can no longer sign in: its sessions end, its tokens are revoked and its
    sockets close. Its messages and memberships stay."""
    user.is_active = False
    user.save(update_fields=["is_active"])
    _delete_sessions(user)
    ApiToken.objects.filter(user=user).delete()
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
