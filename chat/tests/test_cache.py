"""The Redis cache backend of REDIS_URL (config/cache.py): one client per process, however
many cache objects Django makes."""

import asyncio

from asgiref.sync import sync_to_async
from django.core.cache import caches
from django.test import SimpleTestCase, override_settings

from chat.tests.test_api import REDIS_URL, reachable_redis
from config.cache import SharedRedisCache

SHARED = {"default": {"BACKEND": "config.cache.SharedRedisCache", "LOCATION": REDIS_URL}}


class SharedRedisCacheTests(SimpleTestCase):
    def setUp(self) -> None:
        reachable_redis()

    def test_instances_with_the_same_servers_share_one_client(self):
        first = SharedRedisCache(REDIS_URL, {})
        second = SharedRedisCache(REDIS_URL, {})
        other = SharedRedisCache(REDIS_URL.rsplit("/", 1)[0] + "/14", {})
        assert first._cache is second._cache
        assert other._cache is not first._cache
        first.set("shared-cache-test", "seen", 30)
        assert second.get("shared-cache-test") == "seen"
        assert other.get("shared-cache-test") is None
        first.delete("shared-cache-test")

    @override_settings(CACHES=SHARED)
    def test_each_request_s_context_uses_the_process_client(self):
        """Django gives each async context (each request, each socket) a cache object of its
        own; they all use the one client, and so one pool of connections to Redis."""

        async def in_a_context_of_its_own() -> object:
            return await sync_to_async(lambda: caches["default"]._cache)()  # type: ignore[attr-defined]

        async def main() -> list[object]:
            return list(
                await asyncio.gather(*(asyncio.create_task(in_a_context_of_its_own()) for _ in range(4)))
            )

        clients = asyncio.run(main())
        assert len({id(client) for client in clients}) == 1
        objects = asyncio.run(self.cache_objects())
        assert len(objects) > 1  # Django's per-context cache objects, for the record

    async def cache_objects(self) -> set[int]:
        async def one() -> int:
            return await sync_to_async(lambda: id(caches["default"]))()

        return set(await asyncio.gather(*(asyncio.create_task(one()) for _ in range(4))))
