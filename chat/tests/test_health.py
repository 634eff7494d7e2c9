"""What operators rely on: /healthz and /readyz (in-process for the happy path, and
against real processes whose database or Redis is gone), and the access log."""

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

from chat import health, services
from chat.access_log import JsonFormatter, socket_session
from chat.tests.conftest import DJANGO_SETUP, PROJECT_ROOT, Processes, free_port, missing
from chat.tests.factories import general, make_user
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


class AccessLogTests(TestCase):
    def test_one_line_per_request_without_query_or_text(self) -> None:
        """A request logs one line: method, path without its query string, status, duration
        and user id; never the message's text, the query string or a token."""
        user = make_user("lena")
        chat = general()
        self.client.force_login(user)
        with self.assertLogs("chat.access", level="INFO") as logs:
            response = self.client.post(
                f"/chats/{chat.pk}/messages/?secret=query", {"text": "very private words"}
            )
        assert response.status_code == 302
        (record,) = logs.records
        assert record.__dict__["event"] == "http"
        assert record.__dict__["method"] == "POST"
        assert record.__dict__["path"] == f"/chats/{chat.pk}/messages/"
        assert record.__dict__["status"] == 302
        assert record.__dict__["user_id"] == user.pk
        assert record.__dict__["duration_ms"] >= 0
        line = record.getMessage()
        assert line.startswith(f"POST /chats/{chat.pk}/messages/ 302 ")
        assert f"user={user.pk}" in line
        assert "private" not in line and "secret" not in line

    def test_token_requests_log_the_user_but_not_the_token(self) -> None:
        """An API request authenticated by a token logs its user id, never the token."""
        user = make_user("tom")
        token = services.issue_token(user=user)
        key = token.key
        with self.assertLogs("chat.access", level="INFO") as logs:
            response = self.client.get("/api/users/me/", headers={"Authorization": f"Token {key}"})
        assert response.status_code == 200
        (record,) = logs.records
        assert record.__dict__["user_id"] == user.pk
        assert key not in JsonFormatter().format(record)

    def test_anonymous_request_does_not_load_a_session(self) -> None:
        """The log reads the user only if the request did: /healthz stays free of queries."""
        with self.assertLogs("chat.access", level="INFO") as logs, self.assertNumQueries(0):
            self.client.get("/healthz", headers={"Cookie": "sessionid=abc"})
        assert logs.records[0].__dict__["user_id"] is None

    async def test_logs_under_asgi_too(self) -> None:
        """Under an ASGI server (the async middleware chain) a request logs its line as well."""
        with self.assertLogs("chat.access", level="INFO") as logs:
            response = await self.async_client.get("/healthz")
        assert response.status_code == 200
        assert logs.records[0].getMessage().startswith("GET /healthz 200 ")

    def test_socket_session_line(self) -> None:
        """A socket session logs its user, chat, close code and length, as text or JSON."""
        with self.assertLogs("chat.access", level="INFO") as logs:
            socket_session(user_id=7, chat_id=3, code=1012, duration=2.5)
        (record,) = logs.records
        assert record.getMessage() == "socket chat=3 code=1012 2.5s user=7"
        line = json.loads(JsonFormatter().format(record))
        assert line["event"] == "socket"
        assert (line["user_id"], line["chat_id"], line["code"], line["duration_ms"]) == (7, 3, 1012, 2500.0)

    def test_json_lines(self) -> None:
        """With the JSON formatter every line is one JSON object with the access fields."""
        with self.assertLogs("chat.access", level="INFO") as logs:
            self.client.get("/healthz?probe=1")
        line = JsonFormatter().format(logs.records[0])
        assert "\n" not in line
        document = json.loads(line)
        assert document["logger"] == "chat.access"
        assert document["level"] == "INFO"
        assert (document["method"], document["path"], document["status"]) == ("GET", "/healthz", 200)
        assert document["user_id"] is None
        assert "time" in document and "duration_ms" in document


@pytest.mark.process
def test_log_format_json_makes_every_line_json() -> None:
    """LOG_FORMAT=json: a process's log lines (its access lines among them) are JSON objects."""
    env = Processes.env(DEBUG="true", LOG_FORMAT="json", DATABASE_URL="sqlite:///:memory:")
    code = "import logging; logging.getLogger('chat.access').info('x', extra={'status': 200})"
    output = subprocess.run(
        [sys.executable, "-c", DJANGO_SETUP + code],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (line,) = output.stderr.strip().splitlines()
    assert json.loads(line)["status"] == 200
