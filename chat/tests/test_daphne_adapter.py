"""The one adapter that reaches into daphne: it must find what it needs under the pinned
daphne (or say so loudly), and a stopping daphne tells every page to come back (1012)."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import tempfile
import uuid
from typing import TYPE_CHECKING
from unittest import mock

import pytest
import websockets

from chat import daphne_adapter
from chat.tests.conftest import free_port

if TYPE_CHECKING:
    from chat.tests.conftest import Processes

pytestmark = pytest.mark.process

SETUP_USER = """
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from chat import services
user = services.create_account(username="adapter", password="correct-horse-battery-staple-42")
chat = services.create_room(user=user, name="Adapter", visibility="public")
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(session.session_key, chat.pk)
"""


def test_finds_nothing_outside_daphne_quietly_and_inside_loudly() -> None:
    """Under another server the adapter finds nothing and says nothing; under daphne, a send
    it can't see through is an error in the log, once."""

    async def send(message: object) -> None:
        pass

    with mock.patch.object(daphne_adapter.logger, "error") as logged:
        assert daphne_adapter.find_protocol(send) is None
        assert not logged.called
        with (
            mock.patch.object(daphne_adapter, "under_daphne", return_value=True),
            mock.patch.object(daphne_adapter, "_warned", False),
        ):
            assert daphne_adapter.find_protocol(functools.partial(send)) is None
            assert daphne_adapter.find_protocol(send) is None
    logged.assert_called_once()
    assert "falls back to ASGI sends" in logged.call_args.args[0]


def test_under_the_pinned_daphne_the_fast_path_is_found_and_stopping_says_come_back(
    processes: type[Processes],
) -> None:
    """A real daphne: pushes go through the adapter (no fallback error in the log), and on
    SIGTERM every socket is closed with 1012, which htmx retries."""
    with tempfile.TemporaryDirectory(prefix="chat-adapter-") as directory:
        env = processes.env(DATABASE_URL=f"sqlite:///{directory}/db.sqlite3", DEBUG="true")
        migrated = processes.manage(env, "migrate", "--noinput")
        assert migrated.returncode == 0, migrated.stderr
        session_key, chat_id = processes.python(env, SETUP_USER).split()
        port = free_port()
        with tempfile.TemporaryFile(mode="w+") as log:
            daphne = processes.start_daphne(env, port, log)
            try:
                code = asyncio.run(converse(port, session_key, int(chat_id), daphne.pid))
                daphne.wait(timeout=20)
            finally:
                if daphne.poll() is None:
                    daphne.kill()
                    daphne.wait(timeout=10)
            log.seek(0)
            output = log.read()
    assert "falls back to ASGI sends" not in output, output
    assert code == 1012, output


async def converse(port: int, session_key: str, chat_id: int, pid: int) -> int | None:
    """Send a message and see it pushed back; then stop the server and return the close code."""
    url = f"ws://127.0.0.1:{port}/ws/chats/{chat_id}/"
    headers = {"Origin": f"http://127.0.0.1:{port}", "Cookie": f"sessionid={session_key}"}
    async with websockets.connect(url, additional_headers=headers) as socket:
        text = f"through the adapter {uuid.uuid4()}"
        await socket.send(json.dumps({"text": text, "client_id": str(uuid.uuid4())}))
        pushed = False
        while not pushed:
            frame = await asyncio.wait_for(socket.recv(), timeout=10)
            pushed = text in str(frame) and "<article" in str(frame)

        os.kill(pid, signal.SIGTERM)
        try:
            while True:
                await asyncio.wait_for(socket.recv(), timeout=10)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
