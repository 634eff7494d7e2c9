"""The ASGI handler (config/handlers.py): Django's, with the middleware chain and the view run
in one hop to the thread of synchronous code."""

import asyncio
from unittest import skipUnless

from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.db import connection
from django.db.backends.signals import connection_created
from django.test import TestCase, TransactionTestCase

from config.handlers import HTTP_THREADS, SyncChainASGIHandler
from config.middleware import StaticFilesMiddleware


def get(path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    """One GET through the ASGI handler, as daphne sends it."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }

    async def exchange() -> tuple[int, dict[bytes, bytes], bytes]:
        communicator = ApplicationCommunicator(SyncChainASGIHandler(), scope)
        await communicator.send_input({"type": "http.request", "body": b""})
        start = await communicator.receive_output(5)
        body = b""
        while True:
            part = await communicator.receive_output(5)
            body += part.get("body", b"")
            if not part.get("more_body"):
                break
        await communicator.wait()
        return start["status"], dict(start["headers"]), body

    return asyncio.run(exchange())


class SyncChainTests(TestCase):
    def test_no_middleware_is_adapted(self):
        """Django logs each middleware it wraps to run in the other mode: none here, so the
        whole chain runs in the one hop that get_response_async makes. (It logs with DEBUG on.)"""
        with self.settings(DEBUG=True), self.assertNoLogs("django.request", "DEBUG"):
            handler = SyncChainASGIHandler()
        assert not asyncio.iscoroutinefunction(handler._middleware_chain)  # type: ignore[attr-defined]

    def test_an_async_only_middleware_would_be_adapted(self):
        """What the test above would see: servestatic's own middleware is async-only, which is
        why StaticFilesMiddleware stands in for it."""
        middleware = [
            "servestatic.middleware.ServeStaticMiddleware"
            if name.endswith(StaticFilesMiddleware.__name__)
            else name
            for name in settings.MIDDLEWARE
        ]
        with (
            self.settings(DEBUG=True, MIDDLEWARE=middleware),
            self.assertLogs("django.request", "DEBUG") as logs,
        ):
            SyncChainASGIHandler()
        assert any("handler adapted for middleware servestatic" in line for line in logs.output)

    def test_a_page_goes_through_the_whole_chain(self):
        status, headers, body = get("/accounts/login/")
        assert status == 200
        names = {name.lower() for name in headers}
        assert {b"permissions-policy", b"content-security-policy", b"x-frame-options"} <= names
        assert b'name="password"' in body

    def test_a_missing_static_file_is_the_chain_s_404(self):
        status, _, body = get("/static/no-such-file.css")
        assert status == 404
        assert b"Not Found" in body or b"not found" in body.lower()


class KeptConnectionTests(TransactionTestCase):
    @skipUnless(
        connection.vendor == "sqlite", "PostgreSQL's connections go back to the pool after each request"
    )
    def test_the_http_threads_keep_their_database_connection(self):
        """Requests one after another reuse their thread's connection: Django's own handler
        opened and closed one per request."""
        opened: list[object] = []

        def count(connection: object, **kwargs: object) -> None:
            opened.append(connection)

        connection_created.connect(count)
        try:
            for _ in range(HTTP_THREADS + 4):
                status, _, body = get("/readyz")
                assert status == 200, body
        finally:
            connection_created.disconnect(count)
        assert 1 <= len(opened) < HTTP_THREADS
