"""The REST API against real daphne processes: a message posted by a bot reaches a real
WebSocket, and schemathesis fuzzes every operation as two users who share nothing.

Both go through HTTP and WebSocket only, as clients do: accounts are made through the
signup form, tokens through /api/auth/token/.
"""

from __future__ import annotations

import html
import http.cookiejar
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect
from websockets.typing import Origin

from chat.tests.conftest import GENEROUS_RATES, PASSWORD, Processes, missing, unique_username

pytestmark = pytest.mark.process

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Cases per operation and phase: enough to find what it finds here in about a minute.
MAX_EXAMPLES = 25
CHECKS = "not_a_server_error,response_schema_conformance,object_level_authorization"
# schemathesis's random choices; CHAT_FUZZ_SEED replays a run (every failure names its seed).
FUZZ_SEED = int(os.environ.get("CHAT_FUZZ_SEED", random.SystemRandom().randrange(2**32)))

# schemathesis's object-level authorization check takes every object the first user can
# read and the second can read too for a leak. Chats are shared on purpose, though: public
# rooms, rooms the owner adds someone to, direct chats. The fuzzing server therefore starts
# without General, and this hook keeps the fuzzed user from sharing with the peer on purpose
# (rooms are created private; the peer is never added or written to directly), so that
# anything the peer can still read is a leak.
SHARE_NOTHING_HOOKS = r"""
import os
import re

import schemathesis

OWNER = os.environ["CHAT_FUZZ_OWNER_ID"]
PEER = re.compile(rf"\b{os.environ['CHAT_FUZZ_PEER_ID']}\b")
SHARING_WITH_SOMEONE = {"POST /api/chats/direct/", "POST /api/chats/{chat_id}/members/"}


@schemathesis.hook
def before_call(context, case, **kwargs):
    body = case.body
    if not isinstance(body, dict):
        return
    operation = f"{case.method.upper()} {case.operation.path}"
    # A form body turns a list into repeated fields and drops what is not text, so a value
    # that is not plain text may still reach the server as "public" or the peer's id, or
    # vanish (a room is public by default): only text other than those is left to fuzz.
    visibility = body.get("visibility")
    if operation == "POST /api/chats/":
        # Participants become members: the peer among them would share the room.
        if PEER.search(repr(body.get("participants"))):
            body.pop("participants")
        if not (isinstance(visibility, str) and visibility != "public"):
            body["visibility"] = "private"
    elif operation == "PATCH /api/chats/{chat_id}/" and "visibility" in body:
        # Making one's room public shares it with everyone, the peer included.
        body["visibility"] = "private"
    elif operation in SHARING_WITH_SOMEONE and PEER.search(repr(body.get("user"))):
        body["user"] = int(OWNER)
"""


@dataclass
class Account:
    username: str
    id: int
    token: str
    session: str


def call(base_url: str, method: str, path: str, *, token: str = "", body: Any = None) -> tuple[int, Any]:
    """One API request; returns the status and the decoded JSON body."""
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(f"{base_url}{path}", data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    return status, json.loads(raw) if raw else None


def sign_up(base_url: str, prefix: str) -> Account:
    """Sign up through the form, as a person does, then get a token as a bot does."""
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    browser.open(f"{base_url}/accounts/signup/", timeout=10).close()
    username = unique_username(prefix)
    form = {
        "csrfmiddlewaretoken": cookie(jar, "csrftoken"),
        "username": username,
        "password1": PASSWORD,
        "password2": PASSWORD,
    }
    with browser.open(
        f"{base_url}/accounts/signup/", urllib.parse.urlencode(form).encode(), timeout=10
    ) as page:
        assert page.url == f"{base_url}/chats/"
    # The token request goes without the session: a session-authenticated POST needs the CSRF token.
    status, body = call(
        base_url, "POST", "/api/auth/token/", body={"username": username, "password": PASSWORD}
    )
    assert status == 201, body
    status, me = call(base_url, "GET", "/api/users/me/", token=body["token"])
    assert status == 200, me
    return Account(username=username, id=me["id"], token=body["token"], session=cookie(jar, "sessionid"))


def cookie(jar: http.cookiejar.CookieJar, name: str) -> str:
    return next(item.value for item in jar if item.name == name and item.value is not None)


def test_api_message_reaches_an_open_socket(server: str) -> None:
    """A message a bot posts with its token arrives, escaped, on another member's open WebSocket."""
    alice, bob = sign_up(server, "alice"), sign_up(server, "bob")
    status, chats = call(server, "GET", "/api/chats/?page_size=200", token=alice.token)
    assert status == 200
    general = next(chat for chat in chats["results"] if chat["name"] == "General")
    url = f"{server.replace('http://', 'ws://')}/ws/chats/{general['id']}/"
    with connect(
        url, origin=Origin(server), additional_headers={"Cookie": f"sessionid={bob.session}"}
    ) as socket:
        # The consumer handles frames only once it has connected (and subscribed to the
        # chat), so the reply to a blank message means the push can't be missed.
        socket.send(json.dumps({"text": ""}))
        assert "Write a message first." in str(socket.recv(timeout=10))
        text = f"Hello from a bot <{uuid.uuid4().hex[:8]}> & friends"
        status, message = call(
            server, "POST", f"/api/chats/{general['id']}/messages/", token=alice.token, body={"text": text}
        )
        assert status == 201, message
        frame = ""
        deadline = time.monotonic() + 10
        while f'id="message-{message["id"]}"' not in frame:
            frame = str(socket.recv(timeout=max(deadline - time.monotonic(), 0.01)))
    assert html.escape(text) in frame
    assert text not in frame


@pytest.fixture(scope="module")
def fuzz_server(processes: type[Processes]) -> Iterator[str]:
    """A daphne of its own for schemathesis, which fills its database with junk.

    It starts without General (a public room every account joins), so that the two
    fuzzing users share no chat.
    """
    with tempfile.TemporaryDirectory(prefix="chat-fuzz-") as directory:
        env = processes.env(
            DATABASE_URL=f"sqlite:///{directory}/db.sqlite3",
            DEBUG="true",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            **GENEROUS_RATES,
        )
        for command in (
            ["migrate", "--noinput"],
            ["shell", "-c", "from chat.models import Chat; Chat.objects.filter(auto_join=True).delete()"],
        ):
            done = processes.manage(env, *command)
            if done.returncode != 0:
                pytest.fail(f"{command[0]} failed:\n{done.stdout}{done.stderr}")
        with processes.daphne(env) as base_url:
            yield base_url


def test_schemathesis(fuzz_server: str, tmp_path: Path) -> None:
    """schemathesis finds no server error, no response off the schema, and no leak of one user's objects."""
    if not SCHEMATHESIS.exists():
        missing("schemathesis is not installed (pip install -r requirements-dev.txt)")
    alice, bob = sign_up(fuzz_server, "alice"), sign_up(fuzz_server, "bob")
    status, schema = call(fuzz_server, "GET", "/api/schema/", token=alice.token)
    assert status == 200
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    # Two users in Web Fuzzing Commons form; alice makes every request, bob is the peer
    # that must not get her objects.
    users = [
        {"name": name, "fixedHeaders": [{"name": "Authorization", "value": f"Token {account.token}"}]}
        for name, account in (("alice", alice), ("bob", bob))
    ]
    (tmp_path / "auth.json").write_text(json.dumps({"auth": users}))
    (tmp_path / "schemathesis.toml").write_text(
        f'[auth.wfc]\npath = "{tmp_path / "auth.json"}"\nuser = "alice"\npeers = ["alice", "bob"]\n'
    )
    (tmp_path / "share_nothing.py").write_text(SHARE_NOTHING_HOOKS)
    report = tmp_path / "report.json"
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(tmp_path / "schemathesis.toml"),
        "run",
        str(tmp_path / "schema.json"),
        "--url",
        fuzz_server,
        "--checks",
        CHECKS,
        "--max-examples",
        str(MAX_EXAMPLES),
        # Revoking alice's token would end the run: test_api.py and test_api_tokens.py cover it.
        "--exclude-operation-id",
        "auth_token_revoke",
        "--exclude-operation-id",
        "tokens_revoke",
        "--generation-database",
        "none",
        "--seed",
        str(FUZZ_SEED),
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "SCHEMATHESIS_HOOKS": "share_nothing",
        "CHAT_FUZZ_OWNER_ID": str(alice.id),
        "CHAT_FUZZ_PEER_ID": str(bob.id),
    }
    run = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280, check=False
    )
    replay = f"(replay with CHAT_FUZZ_SEED={FUZZ_SEED})"
    assert report.exists(), f"{replay}\n{run.stdout}{run.stderr}"
    summary = json.loads(report.read_text())
    failures = sum(failure["count"] for failure in summary["failures"])
    print(
        f"\nschemathesis: {summary['operations']['tested']} operations, "
        f"{summary['test_cases']['generated']} test cases generated, {failures} failures, "
        f"{len(summary['errors'])} errors (seed {summary['seed']})"
    )
    assert run.returncode == 0, f"{replay}\n{run.stdout[-8000:]}{run.stderr[-2000:]}"
    # Every operation but the two excluded above.
    operations = sum(len(item) for item in schema["paths"].values())
    assert summary["operations"]["tested"] == summary["operations"]["selected"] == operations - 2, replay
    assert failures == 0, replay
    # The run kept to its premise: the peer still shares no chat with the fuzzed user.
    status, chats = call(fuzz_server, "GET", "/api/chats/", token=bob.token)
    assert (status, chats["count"]) == (200, 0), f"{replay}: bob sees {chats}"
