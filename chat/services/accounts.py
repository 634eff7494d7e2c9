"""Accounts and their API tokens."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from rest_framework.authtoken.models import Token

from chat.models import Chat, Membership


@transaction.atomic
def create_account(*, username: str, password: str) -> User:
    """Create an account that is a member of every auto-join room (General)."""
    user = User.objects.create_user(username=username, password=password)
    for chat in Chat.objects.filter(auto_join=True):
        Membership.objects.create(user=user, chat=chat)
    return user


def issue_token(*, user: User) -> Token:
    """The user's API token, created on first use; the same one until it is revoked."""
    token, _ = Token.objects.get_or_create(user=user)
    return token


def revoke_token(*, user: User) -> None:
    """The token stops working at once."""
    Token.objects.filter(user=user).delete()
