"""Reactions: a member's emoji on a message, toggled on and off."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Min
from django.utils.translation import gettext, ngettext

from chat import broadcast, events, limits
from chat.models import Message, Reaction
from chat.services.membership import get_membership

# The picker's emoji; any other one can be typed.
QUICK_REACTIONS = ("👍", "❤️", "😂", "🎉", "😮", "😢")
# One emoji is at most this many code points: a couple with skin tones is ten.
EMOJI_MAX_CODE_POINTS = 10
# How many different emoji one message may carry.
REACTIONS_PER_MESSAGE = 20

ZWJ = "\u200d"
TEXT_STYLE = "\ufe0e"
EMOJI_STYLE = "\ufe0f"
KEYCAP = "\u20e3"
KEYCAP_BASES = frozenset("0123456789#*")


def is_skin_tone(char: str) -> bool:
    return 0x1F3FB <= ord(char) <= 0x1F3FF


def is_regional_indicator(char: str) -> bool:
    """Half of a flag: a flag is two of them."""
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def is_tag(char: str) -> bool:
    """Part of a subdivision flag's tag sequence (England, Scotland, Wales)."""
    return 0xE0020 <= ord(char) <= 0xE007F


def clean_emoji(value: object) -> str:
    """The emoji as it is kept, or ValidationError saying what is wrong with it.

    A reaction is one emoji: a pictographic symbol with what may modify it (a skin tone,
    the emoji style selector, a keycap), several joined into one (a family, with zero-width
    joiners), or a flag. Letters, digits, spaces, markup and several emoji side by side are
    refused. An emoji that has a plain-text look too (❤) is kept in its emoji style (❤️),
    so that both spellings count as one reaction.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValidationError({"emoji": gettext("Choose an emoji.")})
    emoji = value.strip().replace(TEXT_STYLE, "")
    if len(emoji) > EMOJI_MAX_CODE_POINTS:
        raise ValidationError({"emoji": gettext("A reaction is one emoji; this is too long for one.")})
    not_emoji = ValidationError(
        {"emoji": gettext("A reaction is an emoji: letters, digits, spaces and markup can't be used.")}
    )
    emoji_count = 0
    open_flag = False
    for index, char in enumerate(emoji):
        previous = emoji[index - 1] if index else ""
        following = emoji[index + 1 : index + 3]
        if char in (EMOJI_STYLE, KEYCAP) or is_skin_tone(char) or is_tag(char):
            # These change the character before them and stand for nothing alone.
            if not previous or previous == ZWJ:
                raise not_emoji
            continue
        if char == ZWJ:
            if not previous or index == len(emoji) - 1:
                raise not_emoji
            continue
        if char in KEYCAP_BASES:
            # A digit, # or * only as a keycap: "1️⃣".
            if not (following.startswith(KEYCAP) or following == EMOJI_STYLE + KEYCAP):
                raise not_emoji
        elif is_regional_indicator(char):
            if open_flag:
                open_flag = False
                continue
            open_flag = True
        elif unicodedata.category(char) != "So":
            raise not_emoji
        if previous != ZWJ:
            emoji_count += 1
    if open_flag:
        raise not_emoji
    if emoji_count != 1:
        raise ValidationError({"emoji": gettext("A reaction is one emoji, not several.")})
    if len(emoji) == 1 and ord(emoji) < 0x1F000:
        emoji += EMOJI_STYLE
    return emoji


@dataclass(frozen=True)
class ReactionGroup:
    """One emoji on a message, with who reacted with it, in the order they did."""

    emoji: str
    users: tuple[User, ...]

    @property
    def count(self) -> int:
        return len(self.users)

    @property
    def key(self) -> str:
        """The emoji's code points in hex ("1f44d"): a part of an HTML id."""
        return "-".join(f"{ord(char):x}" for char in self.emoji)

    @property
    def user_ids(self) -> str:
        """The ids of who reacted, separated by spaces: a page marks its own reactions by
        CSS (`[data-reactors~="<id>"]`)."""
        return " ".join(str(user.pk) for user in self.users)

    @property
    def names(self) -> str:
        """Who reacted, as names only: the same in every language."""
        return ", ".join(user.username for user in self.users)

    def as_data(self, viewer: User | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "emoji": self.emoji,
            "count": self.count,
            "users": [events.user_data(user) for user in self.users],
        }
        if viewer is not None:
            data["mine"] = any(user.pk == viewer.pk for user in self.users)
        return data


def group_reactions(reactions: list[Reaction]) -> list[ReactionGroup]:
    """Reactions (with their users, oldest first) by emoji, in the order each emoji came."""
    groups: dict[str, list[User]] = {}
    for reaction in reactions:
        groups.setdefault(reaction.emoji, []).append(reaction.user)
    return [ReactionGroup(emoji, tuple(users)) for emoji, users in groups.items()]


def reactions_of(message: Message) -> list[ReactionGroup]:
    """The message's reactions by emoji; from what a page loaded (chat.models.with_extras)
    when it did, else in one query."""
    return group_reactions(list(message.reactions.all()))


def counts(message: Message) -> list[dict[str, Any]]:
    """How many reacted with each emoji, in the order the emoji came: what events say."""
    rows = (
        Reaction.objects.filter(message=message)
        .values("emoji")
        .annotate(count=Count("pk"), first=Min("pk"))
        .order_by("first")
    )
    return [{"emoji": row["emoji"], "count": row["count"]} for row in rows]


def check_can_react(*, message: Message, user: User) -> None:
    """Members of its chat react to a message that is not deleted."""
    get_membership(user=user, chat=message.chat)
    if message.is_deleted:
        raise ValidationError(gettext("A deleted message can't have reactions."))


def react(*, message: Message, user: User, emoji: object) -> str:
    """Check and count an attempt to add or take back a reaction; the emoji as it is kept."""
    check_can_react(message=message, user=user)
    cleaned = clean_emoji(emoji)
    limits.hit("reaction", user.pk, message=gettext("You are reacting too fast."))
    return cleaned


@transaction.atomic
def add_reaction(*, message: Message, user: User, emoji: object) -> bool:
    """React to a message with an emoji and push its new reactions; whether it was added
    now (False: the user had already reacted with it, and nothing changes)."""
    return _add(message, user, react(message=message, user=user, emoji=emoji))


@transaction.atomic
def remove_reaction(*, message: Message, user: User, emoji: object) -> bool:
    """Take back one's reaction and push the message's new reactions; whether there was
    one to take back."""
    return _remove(message, user, react(message=message, user=user, emoji=emoji))


@transaction.atomic
def toggle_reaction(*, message: Message, user: User, emoji: object) -> bool:
    """Add the reaction, or take it back if the user had it: what pressing it does.
    Whether the user has it now."""
    cleaned = react(message=message, user=user, emoji=emoji)
    if Reaction.objects.filter(message=message, user=user, emoji=cleaned).exists():
        _remove(message, user, cleaned)
        return False
    _add(message, user, cleaned)
    return True


def _add(message: Message, user: User, emoji: str) -> bool:
    if Reaction.objects.filter(message=message, user=user, emoji=emoji).exists():
        return False
    on_message = Reaction.objects.filter(message=message)
    if (
        not on_message.filter(emoji=emoji).exists()
        and on_message.values("emoji").distinct().count() >= REACTIONS_PER_MESSAGE
    ):
        raise ValidationError(
            {
                "emoji": ngettext(
                    "A message can have at most %(limit)s different reaction.",
                    "A message can have at most %(limit)s different reactions.",
                    REACTIONS_PER_MESSAGE,
                )
                % {"limit": REACTIONS_PER_MESSAGE}
            }
        )
    try:
        # A savepoint: the same reaction racing itself fails the unique constraint, and
        # the event number taken with it is given back.
        with transaction.atomic():
            Reaction.objects.create(message=message, user=user, emoji=emoji)
            record(message, user, emoji, events.REACTION_ADDED)
    except IntegrityError:
        return False
    return True


def _remove(message: Message, user: User, emoji: str) -> bool:
    removed, _ = Reaction.objects.filter(message=message, user=user, emoji=emoji).delete()
    if not removed:
        return False
    record(message, user, emoji, events.REACTION_REMOVED)
    return True


def record(message: Message, user: User, emoji: str, kind: str) -> None:
    """Take the chat's next event for a change of the message's reactions and push it after commit.

    The message's `event` moves to it: the page's copy of the message (with its reactions)
    is a new version, which a page that missed the push catches up like an edit.
    """
    reactions = counts(message)
    count = next((row["count"] for row in reactions if row["emoji"] == emoji), 0)
    number, frame = events.chat_event(
        message.chat,
        kind,
        message_id=message.pk,
        emoji=emoji,
        user=events.user_data(user),
        count=count,
        reactions=reactions,
    )
    Message.objects.filter(pk=message.pk).update(event=number)
    message.event = number
    transaction.on_commit(partial(broadcast.message_redrawn, message.pk, number, frame), robust=True)
