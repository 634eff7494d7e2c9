"""Health checks for load balancers and process supervisors.

`/healthz` says the process answers (it touches nothing else); `/readyz` says whether it
can serve: its database and, with REDIS_URL set, its Redis are reachable. Both are
unauthenticated and cheap: they read no session, set no cookie and render no template.
"""

from __future__ import annotations

import logging
from functools import cache

import redis
from django.conf import settings
from django.db import Error as DatabaseFailure
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)

# A check waits at most this long for Redis; the database waits DB_POOL_TIMEOUT at most.
REDIS_TIMEOUT = 2.0


@require_safe
@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """The process is up and answering."""
    return HttpResponse("ok", content_type="text/plain")


@cache
def redis_client(url: str) -> redis.Redis:
    """One client (and its connection pool) per process, so that a check costs one round trip."""
    return redis.Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT)


def check_database() -> str:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def check_redis() -> str:
    redis_client(settings.REDIS_URL).ping()
    return "ok"


@require_safe
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when every part this process needs answers; 503 naming the parts that do not."""
    checks = {"database": check_database}
    if settings.REDIS_URL:
        checks["redis"] = check_redis
    report: dict[str, str] = {}
    for name, check in checks.items():
        try:
            report[name] = check()
        # However a part fails (refused, timed out, bad credentials), the answer is the same:
        # not ready, and which part. The error's class is enough for an operator; its text
        # may carry addresses or credentials.
        except (DatabaseFailure, redis.RedisError, OSError) as error:
            logger.warning("Readiness check of the %s failed: %r", name, error)
            report[name] = f"error: {type(error).__name__}"
    ready = all(state == "ok" for state in report.values())
    return JsonResponse(report, status=200 if ready else 503)
