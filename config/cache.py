"""Django's Redis cache backend, with one client per process."""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property

_clients: dict[tuple[str, ...], RedisCacheClient] = {}
_lock = threading.Lock()


class SharedRedisCache(RedisCache):
    """RedisCache, whose instances with the same servers and options share one client, and
    so one connection pool.

    Django keeps a cache object per async context: under daphne every request and every
    socket had its own, which made its own client, its own pool and a new connection to
    Redis (and had redis-py read its own version from the installed package's metadata on
    the way): a tenth of a socket connect's CPU. redis-py's pools are thread-safe.
    """

    # Set by RedisCache.__init__ (not in Django's type stubs).
    _servers: list[str]
    _options: dict[str, Any]
    _class: type[RedisCacheClient]

    @cached_property
    def _cache(self) -> Any:
        key = (*self._servers, repr(sorted(self._options.items())))
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(self._servers, **self._options)
        return client
