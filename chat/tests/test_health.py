"""/healthz and /readyz: in-process for the happy path, and against real processes whose
database or Redis is gone."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import TestCase, override_settings

from chat import health
from chat.tests.conftest import PROJECT_ROOT, Processes, free_port, missing
from chat.tests.test_delivery import RedisServer, psycopg_connect


class HealthTests(TestCase):
    def test_healthz_answers_ok_without_the_database(self) -> None:
        """/healthz answers 200 "ok" without a query, a session or a cookie."""
        with self.assertNumQueries(0):
            response = self.client.get("/healthz")
        assert response.status_code == 200
        assert response.content == b"ok"
        assert "Set-Cookie" not in response.headers
        assert "Cookie" not in response.headers.get("Vary", "")

    def test_readyz_reports_the_database(self) -> None:
        """/readyz answers 200 with the database's state, with one query and no session."""
        with override_settings(REDIS_URL=""), self.assertNumQueries(1):
            response = self.client.get("/readyz")
        assert response.status_code == 200
        assert response.json() == {"database": "ok"}
        assert "Set-Cookie" not in response.headers

    def test_readyz_reports_redis_when_it_is_used(self) -> None:
        """With REDIS_URL set, /readyz checks Redis too."""
        url = "redis://127.0.0.1:6379/15"
        try:
            health.redis_client(url).ping()
        except Exception as error:
            missing(f"Redis is not reachable at 127.0.0.1:6379 ({error})")
        with override_settings(REDIS_URL=url):
            response = self.client.get("/readyz")
        assert response.status_code == 200
        assert response.json() == {"database": "ok", "redis": "ok"}

    def test_anonymous_and_without_csrf(self) -> None:
        """The checks need no sign-in; anything but GET (or HEAD) is refused."""
        assert self.client.head("/healthz").status_code == 200
        assert self.client.post("/healthz").status_code == 405


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@contextlib.contextmanager
def server(env: dict[str, str]) -> Iterator[str]:
    """A daphne process, ready once /healthz answers (its database may be down)."""
    port = free_port()
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(OSError):
                    if get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"daphne did not answer /healthz:\n{log.read()}")
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            Processes.stop(process)


@pytest.fixture
def redis_server(tmp_path: Any) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        missing("redis-server is not installed (apt-get install -y redis-server)")
    redis = RedisServer(str(tmp_path))
    redis.start()
    yield redis
    redis.stop()


def ready(url: str) -> tuple[int, dict[str, str]]:
    status, body = get(f"{url}/readyz")
    return status, json.loads(body)


@pytest.mark.process
def test_readyz_names_redis_when_it_stops(redis_server: RedisServer) -> None:
    """With PostgreSQL up and the process's Redis stopped, /readyz answers 503 naming Redis;
    /healthz still answers 200."""
    try:
        psycopg_connect().close()
    except Exception as error:
        missing(f"PostgreSQL is not reachable at 127.0.0.1:5432 ({error})")
    env = Processes.env(
        DEBUG="true",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres",
        REDIS_URL=f"redis://127.0.0.1:{redis_server.port}/0",
        CHAT_LOG_LEVEL="ERROR",
    )
    with server(env) as url:
        assert ready(url) == (200, {"database": "ok", "redis": "ok"})
        redis_server.stop()
        status, report = ready(url)
        assert status == 503
        assert report["database"] == "ok"
        assert report["redis"].startswith("error")
        assert get(f"{url}/healthz") == (200, b"ok")


@pytest.mark.process
def test_readyz_names_the_database_when_nothing_listens(redis_server: RedisServer) -> None:
    """With the database's port closed and Redis stopped, /readyz answers 503 naming both."""
    redis_port = redis_server.port
    redis_server.stop()
    env = Processes.env(
        DEBUG="true",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/chat",
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        DB_POOL_TIMEOUT="2",
        CHAT_LOG_LEVEL="ERROR",
    )
    with server(env) as url:
        status, report = ready(url)
        assert get(f"{url}/healthz") == (200, b"ok")
    assert status == 503
    assert report["database"].startswith("error")
    assert report["redis"].startswith("error")
