"""Rate limits: how often one person (or one address) may do an action, over every door.

The counts live in the default cache, which is Redis when REDIS_URL is set, so every
process and every door (page, socket, API) shares them. Each rate is a setting read from
the environment (see config/settings.py), so that a benchmark or a large room can raise it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.utils.translation import ngettext
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# Whether the last count failed: the outage is logged once, and its end once.
_cache_down = False

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Usage:
    """Where one rate stands after a hit: what a client needs to pace itself."""

    limit: int
    remaining: int
    # Seconds until the window ends and the count starts afresh.
    reset: int


# The rates counted while handling the current request, when its door asked (recording()).
_usages: ContextVar[list[Usage] | None] = ContextVar("rate_usages", default=None)


@contextmanager
def recording() -> Iterator[list[Usage]]:
    """Note every rate counted inside the block, for the API's RateLimit-* headers.

    The list is made here and filled by hit(), so that code running in a copy of this
    context (a view run in a thread under ASGI) fills the same list.
    """
    usages: list[Usage] = []
    token = _usages.set(usages)
    try:
        yield usages
    finally:
        _usages.reset(token)


def tightest(usages: list[Usage]) -> Usage | None:
    """The rate closest to refusing: the fewest attempts left, then the latest reset."""
    return min(usages, key=lambda usage: (usage.remaining, -usage.reset), default=None)


class RateLimited(PermissionDenied):
    """Too many attempts: `retry_after` says how many seconds to wait."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def parse_rate(rate: str) -> tuple[int, int]:
    """ "120/minute" as (120, 60)."""
    count, _, period = rate.partition("/")
    return int(count), PERIODS[period.strip().rstrip("s")]


def count_hit(key: str, period: int) -> int:
    # add() is a no-op when the key exists, so concurrent first hits don't reset the count.
    cache.add(key, 0, timeout=period + 1)
    try:
        return int(cache.incr(key))
    except ValueError:
        # The key expired between add() and incr(): this is the first hit of a new window.
        cache.set(key, 1, timeout=period + 1)
        return 1


def hit(action: str, who: object, *, message: str | None = None) -> None:
    """Count one attempt at `action` by `who` (a user id or an address); RateLimited past its rate.

    A fixed window per rate period: cheap (one cache round trip) and shared by every
    process through the cache.
    """
    allowed, period = parse_rate(settings.CHAT_RATES[action])
    now = int(time.time())
    window = now // period
    key = f"rate:{action}:{who}:{window}"
    global _cache_down
    try:
        count = count_hit(key, period)
    except (OSError, RedisError):
        # Limits protect the service; they must not stop it. While the cache (Redis) is
        # unreachable, attempts pass unlimited, and the outage is logged once.
        if not _cache_down:
            _cache_down = True
            logger.exception("Rate limits are off until the cache answers again")
        return
    if _cache_down:
        _cache_down = False
        logger.warning("Rate limits are on again: the cache answers")
    reset = max(1, (window + 1) * period - now)
    usages = _usages.get()
    if usages is not None:
        usages.append(Usage(limit=allowed, remaining=max(0, allowed - count), reset=reset))
    if count > allowed:
        retry_after = reset
        raise RateLimited(
            message
            or ngettext(
                "Too many attempts. Try again in %(seconds)s second.",
                "Too many attempts. Try again in %(seconds)s seconds.",
                retry_after,
            )
            % {"seconds": retry_after},
            retry_after=retry_after,
        )
