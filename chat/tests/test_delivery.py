"""Delivery across server processes and through faults.

Real daphne processes share a fresh PostgreSQL database and a Redis server of this
module's own (so that it can be restarted); real WebSocket clients (the `websockets`
library) behave as the chat page does: catch up on every connection, keep the newest
version of each message, and notice a missing event number. Runs are seeded: the seed is
printed, and CHAT_FAULT_SEED replays one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from chat.tests.conftest import GENEROUS_RATES, Processes, free_port, missing

pytestmark = pytest.mark.delivery

SEED = int(os.environ.get("CHAT_FAULT_SEED", random.SystemRandom().randrange(1_000_000)))
# Each fault is injected this many times, each time at another moment of the burst.
TRIALS = int(os.environ.get("CHAT_FAULT_TRIALS", 2))

ARTICLE = re.compile(r'<article id="message-(\d+)"[^>]*?data-seq="(\d+)" data-event="(\d+)"')
SYNC = re.compile(r'<div id="chat-sync" hidden data-last-event="(\d+)">')
ACK = re.compile(r'data-sent-id="(\d+)" data-sent-client-id="([0-9a-f-]*)"')
STALE = '<div id="messages" role="log" aria-label="Messages" hx-swap-oob="true"'
# How long the page waits before taking a missing event number for a lost push (chat.js).
GAP_WAIT = 0.3
ERROR = re.compile(r'<div id="composer-errors"[^>]*>(.*?)</div>', re.S)

SETUP = """
import json, sys
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from chat import services
from chat.models import Chat, Membership
general = Chat.objects.get(name="General")
people = {}
for name in sys.argv[-1].split(","):
    user = User.objects.create_user(name)
    # General is an auto-join room: the account may be a member already.
    Membership.objects.get_or_create(user=user, chat=general)
    session = SessionStore()
    session.update({
        "_auth_user_id": str(user.pk),
        "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
        "_auth_user_hash": user.get_session_auth_hash(),
    })
    session.create()
    people[name] = {"session": session.session_key, "token": services.issue_token(user=user).key}
print(json.dumps({"chat": general.pk, "people": people}))
"""


@pytest.fixture(autouse=True)
def replay_hint() -> None:
    """Printed at setup, so that a failing test's captured output says how to replay it."""
    print(f"seed {SEED}: CHAT_FAULT_SEED={SEED} replays this run's random choices")


def psycopg_connect(dbname: str = "postgres") -> Any:
    import psycopg

    return psycopg.connect(
        dbname=dbname, host="127.0.0.1", port=5432, user="postgres", autocommit=True, connect_timeout=3
    )


class RedisServer:
    """A redis-server of the test's own, so that a fault test can restart it."""

    def __init__(self, directory: str) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


class Cluster:
    """Daphne processes sharing a PostgreSQL database and a Redis server."""

    def __init__(self, directory: str, database: str, redis: RedisServer) -> None:
        self.redis = redis
        self.database = database
        self.env = Processes.env(
            DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{database}",
            REDIS_URL=f"redis://127.0.0.1:{redis.port}/0",
            # DEBUG serves static files without collectstatic; these tests are about sockets.
            DEBUG="true",
            ALLOWED_HOSTS="127.0.0.1",
            CHAT_LOG_LEVEL="WARNING",
            **GENEROUS_RATES,
        )
        self.ports: list[int] = []
        self.processes: list[subprocess.Popen[bytes] | None] = []
        self.chat_id = 0
        self.people: dict[str, dict[str, str]] = {}

    def add_people(self, *names: str) -> None:
        created = json.loads(Processes.python(self.env, SETUP, ",".join(names)))
        self.chat_id = created["chat"]
        self.people.update(created["people"])

    def start(self, index: int | None = None) -> int:
        """Start a daphne process (or restart the one at index) and return its index."""
        if index is None:
            self.ports.append(free_port())
            self.processes.append(None)
            index = len(self.ports) - 1
        port = self.ports[index]
        with open(os.environ.get("CHAT_DELIVERY_LOG", os.devnull), "a+") as log:
            self.processes[index] = Processes.start_daphne(self.env, port, log)
        return index

    def kill(self, index: int) -> None:
        process = self.processes[index]
        if process is not None:
            process.kill()
            process.wait(timeout=10)
            self.processes[index] = None

    def process(self, index: int) -> subprocess.Popen[bytes]:
        process = self.processes[index]
        assert process is not None
        return process

    def stored(self) -> dict[int, int]:
        """Every message of the chat in the database: id -> event of its latest version."""
        with psycopg_connect(self.database) as connection:
            rows = connection.execute(
                "SELECT id, event FROM chat_message WHERE chat_id = %s ORDER BY id", [self.chat_id]
            ).fetchall()
        return {int(pk): int(event) for pk, event in rows}

    def stored_client_ids(self) -> set[str]:
        with psycopg_connect(self.database) as connection:
            rows = connection.execute(
                "SELECT client_id FROM chat_message WHERE chat_id = %s AND client_id IS NOT NULL",
                [self.chat_id],
            ).fetchall()
        return {str(row[0]) for row in rows}

    def stop(self) -> None:
        for index in range(len(self.processes)):
            self.kill(index)


@pytest.fixture
def cluster(tmp_path: Any) -> Iterator[Cluster]:
    if shutil.which("redis-server") is None:
        missing("redis-server is not installed (apt-get install -y redis-server)")
    import psycopg

    try:
        admin = psycopg_connect()
    except psycopg.OperationalError as error:
        missing(f"PostgreSQL is not reachable at 127.0.0.1:5432 ({error})")
    database = f"chat_delivery_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{database}"')
    redis = RedisServer(str(tmp_path))
    redis.start()
    cluster = Cluster(str(tmp_path), database, redis)
    try:
        migrated = Processes.manage(cluster.env, "migrate", "--noinput")
        assert migrated.returncode == 0, migrated.stderr
        yield cluster
    finally:
        cluster.stop()
        redis.stop()
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()


@dataclass
class PageClient:
    """A chat page's socket, as chat.js keeps it: catch-up, newest versions, gap detection."""

    cluster: Cluster
    name: str
    server: int
    shown: dict[int, int] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    last_event: int = 0
    seen: set[int] = field(default_factory=set)
    socket: Any = None
    reader: asyncio.Task[None] | None = None
    close_codes: list[int | None] = field(default_factory=list)
    # One more on every connection: frames sent on an earlier one may have died with it.
    epoch: int = 0
    gap_pending: bool = False

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.cluster.ports[self.server]}/ws/chats/{self.cluster.chat_id}/"

    async def connect(self, server: int | None = None) -> None:
        import websockets

        if server is not None:
            self.server = server
        port = self.cluster.ports[self.server]
        self.socket = await websockets.connect(
            self.url,
            additional_headers={
                "Cookie": f"sessionid={self.cluster.people[self.name]['session']}",
                "Origin": f"http://127.0.0.1:{port}",
            },
            open_timeout=10,
            max_size=None,
        )
        self.epoch += 1
        self.reader = asyncio.create_task(self.read(self.socket))
        await self.catch_up()

    async def reconnect(self, server: int | None = None, *, within: float = 30) -> None:
        """Connect again (to another server if given), retrying as the page does."""
        deadline = time.monotonic() + within
        while True:
            try:
                await self.connect(server)
                return
            except OSError:
                assert time.monotonic() < deadline, f"{self.name} could not reconnect"
                await asyncio.sleep(0.2)

    async def catch_up(self) -> None:
        frame = {
            "action": "catch_up",
            "after": max(self.shown, default=0),
            "first": min(self.shown, default=0),
            "since": self.last_event,
        }
        await self.socket.send(json.dumps(frame))

    async def send(self, text: str, client_id: str) -> None:
        await self.socket.send(json.dumps({"text": text, "client_id": client_id, "HEADERS": {}}))

    async def read(self, socket: Any) -> None:
        import websockets

        try:
            async for frame in socket:
                self.receive(frame)
        except websockets.ConnectionClosed:
            pass
        self.close_codes.append(socket.close_code)

    def receive(self, frame: str) -> None:
        if STALE in frame:
            # Too far behind: the page's list is replaced by the latest page, and what the
            # page had seen is forgotten (pushes that overtook the reply are gone with it).
            self.shown, self.seen, self.last_event = {}, set(), 0
        for pk, _seq, event in ARTICLE.findall(frame):
            pk, event = int(pk), int(event)
            self.shown[pk] = max(event, self.shown.get(pk, 0))
            if event > self.last_event:
                self.seen.add(event)
        if sync := SYNC.search(frame):
            self.last_event = max(self.last_event, int(sync.group(1)))
        while self.last_event + 1 in self.seen:
            self.last_event += 1
        self.seen = {event for event in self.seen if event > self.last_event}
        for _pk, client_id in ACK.findall(frame):
            self.acked.add(client_id)
        if (error := ERROR.search(frame)) and error.group(1).strip():
            self.errors.append(error.group(1).strip())
        if self.seen and SYNC.search(frame) is None and not self.gap_pending:
            # A missing event number: ask for what was missed, a moment later, as chat.js does.
            self.gap_pending = True
            asyncio.get_running_loop().call_later(GAP_WAIT, self.fill_gap)

    def fill_gap(self) -> None:
        self.gap_pending = False
        if self.seen:
            asyncio.get_running_loop().create_task(self.catch_up())

    def load_older(self) -> None:
        """Load older pages, as a reader clicking "Load older messages" does."""
        port = self.cluster.ports[self.server]
        while self.shown:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/chats/{self.cluster.chat_id}/messages/?before={min(self.shown)}",
                headers={
                    "Cookie": f"sessionid={self.cluster.people[self.name]['session']}",
                    "HX-Request": "true",
                },
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                page = response.read().decode()
            older = ARTICLE.findall(page)
            for pk, _seq, event in older:
                self.shown[int(pk)] = max(int(event), self.shown.get(int(pk), 0))
            if not older or 'id="load-older"' not in page:
                return

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
        if self.reader is not None:
            await self.reader


async def converged(clients: list[PageClient], cluster: Cluster, *, within: float = 30) -> float:
    """Seconds until every client shows exactly the database's messages (and versions)."""
    started = time.monotonic()
    while True:
        stored = cluster.stored()
        for client in clients:
            if client.shown and stored and min(client.shown) > min(stored):
                await asyncio.to_thread(client.load_older)
        if all(client.shown == stored for client in clients):
            return time.monotonic() - started
        if time.monotonic() - started > within:
            for client in clients:
                missing_ids = sorted(set(stored) - set(client.shown))
                extra_ids = sorted(set(client.shown) - set(stored))
                print(f"{client.name}: {len(client.shown)} shown, missing {missing_ids[:9]}")
                print(f"{client.name}: extra {extra_ids[:9]}")
            pytest.fail(
                f"clients did not converge to the database's {len(stored)} messages "
                f"in {within} s (seed {SEED})"
            )
        await asyncio.sleep(0.2)


def post_form(cluster: Cluster, server: int, name: str, text: str) -> int:
    """The composer's plain form post (no JavaScript), with the session and CSRF token."""
    base = f"http://127.0.0.1:{cluster.ports[server]}"
    token = uuid.uuid4().hex
    cookie = f"sessionid={cluster.people[name]['session']}; csrftoken={token}"
    body = urllib.parse.urlencode({"text": text, "csrfmiddlewaretoken": token}).encode()
    request = urllib.request.Request(
        f"{base}/chats/{cluster.chat_id}/messages/",
        data=body,
        headers={"Cookie": cookie, "Referer": f"{base}/", "Origin": base},
    )
    opener = urllib.request.build_opener(NoRedirect)
    with contextlib.suppress(urllib.error.HTTPError):
        opener.open(request, timeout=10)
    return NoRedirect.last_status


class NoRedirect(urllib.request.HTTPRedirectHandler):
    last_status = 0

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        NoRedirect.last_status = code
        return None


def post_api(cluster: Cluster, server: int, name: str, text: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{cluster.ports[server]}/api/chats/{cluster.chat_id}/messages/",
        data=json.dumps({"text": text}).encode(),
        headers={
            "Authorization": f"Token {cluster.people[name]['token']}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        return dict(json.loads(response.read()))


async def wait_for(condition: Any, *, within: float = 10, what: str = "") -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what} (seed {SEED})"
        await asyncio.sleep(0.05)


def test_messages_cross_processes(cluster):
    """A message posted on one process (socket, form post or API) reaches sockets on the other."""
    a, b = cluster.start(), cluster.start()
    cluster.add_people("ann", "ben")

    async def scenario() -> None:
        ann, ben = PageClient(cluster, "ann", a), PageClient(cluster, "ben", b)
        await ann.connect()
        await ben.connect()
        await ann.send("over the socket on A", str(uuid.uuid4()))
        await wait_for(lambda: len(ben.shown) == 1, what="the socket message on B")
        assert post_form(cluster, a, "ann", "form post on A") == 302
        await wait_for(lambda: len(ben.shown) == 2, what="the form post on B")
        created = post_api(cluster, b, "ben", "API on B")
        await wait_for(lambda: created["id"] in ann.shown, what="the API message on A")
        await converged([ann, ben], cluster)
        await ann.close()
        await ben.close()

    asyncio.run(scenario())


@dataclass
class Burst:
    """Messages sent by several clients at once, and what became of them."""

    sent: int = 0
    client_ids: list[str] = field(default_factory=list)
    # (sender, connection epoch, client id) of every send.
    sends: list[tuple[PageClient, int, str]] = field(default_factory=list)
    # What each client id was sent with: a page sends the same text again.
    texts: dict[str, str] = field(default_factory=dict)

    async def send(self, sender: PageClient, count: int, rng: random.Random) -> None:
        import websockets

        for i in range(count):
            client_id = str(uuid.uuid4())
            self.texts[client_id] = f"{sender.name} {i}"
            while True:
                try:
                    await sender.send(self.texts[client_id], client_id)
                    break
                except websockets.ConnectionClosed:
                    # The page keeps the message in its composer until it is acknowledged;
                    # this one is sent again once the socket is back.
                    await asyncio.sleep(0.1)
            self.sent += 1
            self.client_ids.append(client_id)
            self.sends.append((sender, sender.epoch, client_id))
            await asyncio.sleep(rng.uniform(0, 0.004))

    async def resend_unacknowledged(self) -> None:
        for i, (sender, _epoch, client_id) in enumerate(self.sends):
            if client_id not in sender.acked:
                # The same text: the same client id with other text is refused as a conflict.
                await sender.send(self.texts[client_id], client_id)
                self.sends[i] = (sender, sender.epoch, client_id)

    def answered(self) -> bool:
        """Every send on a connection that is still open has had its acknowledgement."""
        return all(
            client_id in sender.acked for sender, epoch, client_id in self.sends if epoch == sender.epoch
        )

    def settled(self) -> bool:
        """Every send on a connection that is still open has had its answer: its acknowledgement,
        or an error (which names no message) that asks to send it again."""
        unacknowledged: dict[str, int] = {}
        errors: dict[str, int] = {}
        for sender, epoch, client_id in self.sends:
            errors[sender.name] = len(sender.errors)
            if epoch == sender.epoch and client_id not in sender.acked:
                unacknowledged[sender.name] = unacknowledged.get(sender.name, 0) + 1
        return all(count <= errors[name] for name, count in unacknowledged.items())


def report(fault: str, burst: Burst, clients: list[PageClient], cluster: Cluster, seconds: float) -> None:
    acked = set().union(*(client.acked for client in clients)) & set(burst.client_ids)
    stored = cluster.stored_client_ids() & set(burst.client_ids)
    shown = min(len(client.shown) for client in clients)
    refused = sum(len(client.errors) for client in clients)
    print(
        f"\n[{fault}] seed {SEED}: sent {burst.sent}, refused {refused} (sent again), "
        f"acknowledged {len(acked)}, "
        f"stored {len(stored)}, shown by every client {shown} of {len(cluster.stored())} in the database, "
        f"converged {seconds:.2f} s after the burst"
    )
    assert acked <= stored, f"acknowledged but not stored: {sorted(acked - stored)[:5]} (seed {SEED})"


@pytest.mark.parametrize("trial", range(TRIALS))
def test_kill_one_of_two_processes_during_a_burst(cluster, trial):
    """kill -9 of one of two daphne processes during a burst of 500 messages: every acknowledged
    message is stored, and every client, reconnected to the survivor, shows the database's list."""
    rng = random.Random(SEED + trial)
    a, b = cluster.start(), cluster.start()
    names = [f"k{i}" for i in range(6)]
    cluster.add_people(*names)

    async def scenario() -> tuple[Burst, list[PageClient], float]:
        clients = [PageClient(cluster, name, a if i < 3 else b) for i, name in enumerate(names)]
        for client in clients:
            await client.connect()
        burst = Burst()
        trigger = rng.randrange(100, 400)

        async def kill_b() -> None:
            await wait_for(lambda: burst.sent >= trigger, within=60, what="the burst to get going")
            cluster.kill(b)
            for client in clients[3:]:
                await client.reader  # type: ignore[misc]
                await client.reconnect(a)

        await asyncio.gather(burst.send(clients[0], 250, rng), burst.send(clients[3], 250, rng), kill_b())
        await wait_for(burst.answered, within=120, what="acknowledgements")
        # What died unacknowledged with B is sent again, as the page keeps it in its composer.
        await burst.resend_unacknowledged()
        await wait_for(burst.answered, within=120, what="acknowledgements of the resent messages")
        seconds = await converged(clients, cluster)
        for client in clients:
            await client.close()
        return burst, clients, seconds

    burst, clients, seconds = asyncio.run(scenario())
    report(f"kill -9 one of two processes, trial {trial + 1}", burst, clients, cluster, seconds)


@pytest.mark.parametrize("trial", range(TRIALS))
def test_redis_restart_during_a_burst(cluster, trial):
    """Redis restarted during a burst: every acknowledged message is stored, and every client,
    after reconnecting, shows the database's list."""
    rng = random.Random(SEED + 1000 + trial)
    a, b = cluster.start(), cluster.start()
    names = [f"r{i}" for i in range(4)]
    cluster.add_people(*names)

    async def scenario() -> tuple[Burst, list[PageClient], float]:
        clients = [PageClient(cluster, name, (a, b)[i % 2]) for i, name in enumerate(names)]
        for client in clients:
            await client.connect()
        burst = Burst()
        trigger = rng.randrange(100, 400)

        async def restart_redis() -> None:
            await wait_for(lambda: burst.sent >= trigger, within=60, what="the burst to get going")
            cluster.redis.stop()
            await asyncio.sleep(1)
            cluster.redis.start()

        await asyncio.gather(
            burst.send(clients[0], 250, rng), burst.send(clients[1], 250, rng), restart_redis()
        )
        await wait_for(burst.settled, within=120, what="an answer to every send")
        for client in clients:
            await client.close()
            await client.reconnect()
        # A send may be refused while Redis is down (it holds the rate limits' counts): the
        # sender is told so, and the page sends the message again.
        await burst.resend_unacknowledged()
        await wait_for(burst.answered, within=120, what="acknowledgements")
        seconds = await converged(clients, cluster)
        # The processes subscribe again: a message after the restart reaches the other process live.
        before = len(clients[1].shown)
        await clients[0].send("after the restart", str(uuid.uuid4()))
        await wait_for(
            lambda: len(clients[1].shown) > before, within=15, what="a live push after the restart"
        )
        for client in clients:
            await client.close()
        return burst, clients, seconds

    burst, clients, seconds = asyncio.run(scenario())
    report(f"Redis restarted, trial {trial + 1}", burst, clients, cluster, seconds)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def stalled_socket(cluster: Cluster, server: int, name: str) -> socket.socket:
    """A WebSocket that completes its handshake and then never reads again."""
    port = cluster.ports[server]
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", port))
    raw.sendall(
        (
            f"GET /ws/chats/{cluster.chat_id}/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n"
            f"Cookie: sessionid={cluster.people[name]['session']}\r\n\r\n"
        ).encode()
    )
    assert b"101 Switching Protocols" in raw.recv(1024)
    return raw


def test_a_reader_that_stops_reading(cluster):
    """A socket that stops reading is let go once its buffer is full: the server's memory stays
    bounded, the others get everything, and the reader catches up when it reconnects."""
    cluster.env["CHAT_SEND_BUFFER_BYTES"] = str(256 * 1024)
    a = cluster.start()
    cluster.add_people("writer", "reader", "staller")

    async def scenario() -> None:
        writer, reader = PageClient(cluster, "writer", a), PageClient(cluster, "reader", a)
        await writer.connect()
        await reader.connect()
        staller = stalled_socket(cluster, a, "staller")
        rss_before = rss_kib(cluster.process(a).pid)
        text = "x" * 3900
        count = 1500
        for i in range(count):
            await writer.send(f"{i} {text}", str(uuid.uuid4()))
            if i % 50 == 49:
                await wait_for(lambda sent=i: len(writer.acked) >= sent - 10, within=30, what="acks")
        await wait_for(lambda: len(reader.shown) == count, within=60, what="the reader's messages")
        rss_growth = rss_kib(cluster.process(a).pid) - rss_before
        # About 6 MB went to the staller's socket: the kernel holds a few, the server at most
        # its buffer; the rest was never queued, since the socket was let go.
        print(f"\n[stalled reader] {count} messages of 4 KB, server RSS grew {rss_growth} KiB")
        assert rss_growth < 64 * 1024
        staller.settimeout(10)
        received, ended = 0, False
        try:
            while chunk := staller.recv(1 << 20):
                received += len(chunk)
            ended = True
        except ConnectionResetError:
            ended = True
        except TimeoutError:
            pass
        # The server let the socket go (a close with 4500, then the connection dropped when
        # the close handshake timed out): the page reconnects and catches up.
        print(f"[stalled reader] it received {received} of about {count * 4300} bytes before being let go")
        assert ended and received < count * 4000
        staller.close()
        late = PageClient(cluster, "staller", a)
        await late.connect()
        await converged([writer, reader, late], cluster)
        for client in (writer, reader, late):
            await client.close()

    asyncio.run(scenario())


def test_database_connection_dropped(cluster):
    """With its PostgreSQL connections terminated, the server saves the next messages
    without a restart; a send that failed said so and is safe to send again."""
    a = cluster.start()
    cluster.add_people("pat")
    daphne = cluster.process(a)

    async def scenario() -> None:
        pat = PageClient(cluster, "pat", a)
        await pat.connect()
        await pat.send("before", str(uuid.uuid4()))
        await wait_for(lambda: len(pat.acked) == 1, what="the first acknowledgement")
        with psycopg_connect() as admin:
            terminated = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s",
                [cluster.database],
            ).fetchone()
        assert terminated is not None and terminated[0] >= 1
        client_ids = [str(uuid.uuid4()) for _ in range(5)]
        for i, client_id in enumerate(client_ids):
            await pat.send(f"after {i}", client_id)
        await wait_for(lambda: len(pat.acked) + len(pat.errors) >= 6, what="answers to the sends")
        for client_id in client_ids:
            if client_id not in pat.acked:
                await pat.send("again", client_id)
        await wait_for(lambda: set(client_ids) <= pat.acked, what="every message acknowledged")
        assert set(client_ids) <= cluster.stored_client_ids()
        print(f"\n[database connection dropped] 5 sent, {len(pat.errors)} asked to send again, 5 stored")
        await converged([pat], cluster)
        # The one socket stayed open through the fault: the process that accepted it saved
        # the messages after it.
        assert pat.close_codes == []
        await pat.close()

    asyncio.run(scenario())
    assert daphne.poll() is None, f"daphne exited with {daphne.returncode}"
    assert cluster.process(a) is daphne


def test_idle_sockets_survive_on_redis(cluster):
    """Sockets idle for over two minutes on two processes sharing Redis still get every push
    (redis-py 8's 5 s read timeout would have dropped their subscriptions)."""
    a, b = cluster.start(), cluster.start()
    cluster.add_people("ida", "ivo")

    async def scenario() -> None:
        ida, ivo = PageClient(cluster, "ida", a), PageClient(cluster, "ivo", b)
        await ida.connect()
        await ivo.connect()
        await asyncio.sleep(IDLE_SECONDS)
        await ida.send("still there?", str(uuid.uuid4()))
        await wait_for(lambda: len(ivo.shown) == 1, within=10, what="the push after idling")
        assert ida.close_codes == [] and ivo.close_codes == []
        await ida.close()
        await ivo.close()

    asyncio.run(scenario())


IDLE_SECONDS = float(os.environ.get("CHAT_IDLE_SECONDS", 125))
