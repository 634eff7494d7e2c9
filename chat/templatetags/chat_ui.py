"""Filters for the chat's templates: the look of a person, the same for every viewer.

A pushed message is rendered once for everyone, so whatever it shows of its author
(initials, a colour) depends on the author alone.
"""

from __future__ import annotations

import re

from django import template

register = template.Library()

# Tailwind classes, written out whole so that Tailwind's scan of this file finds them.
# White text reads on each of them (contrast 4.5:1 or more).
AVATAR_COLOURS = (
    "bg-rose-700",
    "bg-orange-700",
    "bg-emerald-700",
    "bg-sky-700",
    "bg-violet-700",
    "bg-fuchsia-700",
    "bg-teal-700",
    "bg-indigo-700",
)
WORD_BREAKS = re.compile(r"[\s._-]+")


@register.filter
def avatar_colour(user_id: int | None) -> str:
    """One of eight background colours, chosen by the user's id."""
    return AVATAR_COLOURS[(user_id or 0) % len(AVATAR_COLOURS)]


@register.filter
def initials(username: str) -> str:
    """ "A" for alice, "MJ" for mary.jones: the first letters of the first two words."""
    words = [word for word in WORD_BREAKS.split(username or "") if word]
    if not words:
        return "?"
    letters = words[0][0]
    if len(words) > 1 and words[1][0].isalpha():
        letters += words[1][0]
    return letters.upper()
