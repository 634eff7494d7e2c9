"""Database connections that hold under load: a production process on a PostgreSQL of its own.

The cluster is started here with `max_connections` low (30), so that a process that
opened a connection per request (as daphne did with CONN_MAX_AGE above 0) would be
refused within seconds. Sixteen clients view pages, post the form, post through the API
and send over sockets at once; the server must answer no 5xx, store every message it
acknowledged, and never hold more connections than its pool's size.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chat.tests.conftest import Processes, free_port, missing
from chat.tests.test_delivery import ACK, ERROR, SETUP

pytestmark = pytest.mark.process

CLIENTS = 16
SECONDS = float(os.environ.get("CHAT_LOAD_SECONDS", 15))
POOL_SIZE = 8
MAX_CONNECTIONS = 30
DATABASE = "chat"


def postgres_binaries() -> Path | None:
    """The newest PostgreSQL's binaries (Debian keeps them under /usr/lib/postgresql/<version>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


class PrivateCluster:
    """A PostgreSQL cluster of this test's own, in a temporary directory, on a free port."""

    def __init__(self, binaries: Path, max_connections: int) -> None:
        self.binaries = binaries
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="chat-pg-"))
        self.data = self.directory / "data"
        self.max_connections = max_connections
        # PostgreSQL refuses to run as root: as root, the cluster belongs to `postgres`.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.directory, "postgres")

    def run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [*self.as_user, str(self.binaries / tool), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{tool} failed:\n{done.stdout}{done.stderr}"

    def start(self) -> None:
        self.run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.directory}"
            f" -c max_connections={self.max_connections} -c fsync=off"
        )
        self.run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.directory / "log"), "-w", "start"
        )

    def stop(self) -> None:
        with contextlib.suppress(AssertionError):
            self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)

    def connect(self, dbname: str = "postgres") -> Any:
        import psycopg

        return psycopg.connect(
            dbname=dbname,
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            autocommit=True,
            connect_timeout=3,
        )

    def connections(self, dbname: str) -> int:
        """The server's connections to the database (this monitor's own is to another one)."""
        with self.connect() as connection:
            row = connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [dbname]
            ).fetchone()
        assert row is not None
        return int(row[0])


@dataclass
class Production:
    url: str
    cluster: PrivateCluster
    chat_id: int
    people: dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def production() -> Iterator[Production]:
    binaries = postgres_binaries()
    if binaries is None:
        missing("PostgreSQL's server binaries are not installed (apt-get install -y postgresql)")
    cluster = PrivateCluster(binaries, MAX_CONNECTIONS)
    try:
        cluster.start()
        with cluster.connect() as admin:
            admin.execute(f'CREATE DATABASE "{DATABASE}"')
        env = Processes.env(
            DEBUG="false",
            SECRET_KEY=secrets.token_urlsafe(50),
            ALLOWED_HOSTS="127.0.0.1",
            DATABASE_URL=f"postgres://postgres@127.0.0.1:{cluster.port}/{DATABASE}",
            DB_POOL_SIZE=str(POOL_SIZE),
            # Limits are not what this test is about.
            MESSAGE_RATE="100000/minute",
            FRAME_RATE="10000/second",
            CHAT_LOG_LEVEL="WARNING",
        )
        for command in (("collectstatic", "--noinput"), ("migrate", "--noinput")):
            done = Processes.manage(env, *command)
            assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}"
        names = [f"load{i}" for i in range(CLIENTS)]
        created = json.loads(Processes.python(env, SETUP, ",".join(names)))
        with Processes.daphne(env) as url:
            yield Production(url, cluster, created["chat"], created["people"])
    finally:
        cluster.stop()


@dataclass
class Load:
    """What the clients did and what the server answered."""

    statuses: Counter[str] = field(default_factory=Counter)
    acknowledged: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, status: int, client_id: str | None = None) -> None:
        with self.lock:
            self.statuses[f"{kind} {status}"] += 1
            if client_id is not None:
                self.acknowledged.add(client_id)

    def server_errors(self) -> int:
        return sum(count for key, count in self.statuses.items() if key.split()[-1].startswith("5"))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def request(url: str, *, data: bytes | None = None, headers: dict[str, str]) -> int:
    try:
        with OPENER.open(urllib.request.Request(url, data=data, headers=headers), timeout=30) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def acknowledged(socket: Any, client_id: str, load: Load) -> bool:
    """Read the socket's frames until the server acknowledges the send (or refuses it)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        frame = str(socket.recv(timeout=30))
        if client_id in {acked for _pk, acked in ACK.findall(frame)}:
            return True
        if (error := ERROR.search(frame)) and error.group(1).strip():
            load.failures.append(error.group(1).strip())
            return False
    raise AssertionError("no acknowledgement of a socket send within 30 s")


def client(production: Production, name: str, until: float, load: Load) -> None:
    """One client: a page view, a form post, an API post and a socket send, over and over."""
    from websockets.sync.client import connect

    person = production.people[name]
    chat_url = f"{production.url}/chats/{production.chat_id}/"
    csrf = uuid.uuid4().hex
    cookie = {"Cookie": f"sessionid={person['session']}; csrftoken={csrf}"}
    socket_url = production.url.replace("http://", "ws://") + f"/ws/chats/{production.chat_id}/"
    with connect(
        socket_url, additional_headers={**cookie, "Origin": production.url}, open_timeout=30, max_size=None
    ) as socket:
        while time.monotonic() < until:
            load.record("page", request(chat_url, headers=cookie))

            client_id = str(uuid.uuid4())
            body = urllib.parse.urlencode({"text": f"form {name}", "client_id": client_id})
            status = request(
                f"{chat_url}messages/",
                data=f"{body}&csrfmiddlewaretoken={csrf}".encode(),
                headers={**cookie, "Origin": production.url, "Referer": chat_url},
            )
            load.record("form", status, client_id if status == 302 else None)

            client_id = str(uuid.uuid4())
            status = request(
                f"{production.url}/api/chats/{production.chat_id}/messages/",
                data=json.dumps({"text": f"api {name}", "client_id": client_id}).encode(),
                headers={"Authorization": f"Token {person['token']}", "Content-Type": "application/json"},
            )
            load.record("api", status, client_id if status == 201 else None)

            client_id = str(uuid.uuid4())
            socket.send(json.dumps({"text": f"socket {name}", "client_id": client_id, "HEADERS": {}}))
            ok = acknowledged(socket, client_id, load)
            load.record("socket", 200 if ok else 400, client_id if ok else None)


def test_sixteen_clients_stay_within_the_pool(production: Production) -> None:
    """Sixteen clients viewing pages, posting forms, posting to the API and sending over sockets
    at once get no 5xx; every acknowledged message is stored; the process never holds more
    PostgreSQL connections than its pool's size."""
    load = Load()
    peaks: list[int] = []
    stop = threading.Event()

    def monitor() -> None:
        while not stop.is_set():
            peaks.append(production.cluster.connections(DATABASE))
            time.sleep(0.05)

    watcher = threading.Thread(target=monitor)
    watcher.start()
    until = time.monotonic() + SECONDS
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            client(production, name, until, load)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(name,)) for name in production.people]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    stop.set()
    watcher.join()

    with production.cluster.connect(DATABASE) as connection:
        stored = {
            str(row[0])
            for row in connection.execute(
                "SELECT client_id FROM chat_message WHERE client_id IS NOT NULL"
            ).fetchall()
        }
    print(
        f"\n[connections] {CLIENTS} clients for {elapsed:.1f} s: {dict(sorted(load.statuses.items()))}; "
        f"{load.server_errors()} answers 5xx; {len(load.acknowledged)} acknowledged, "
        f"{len(load.acknowledged & stored)} of them stored; PostgreSQL connections peaked at "
        f"{max(peaks)} (pool {POOL_SIZE}, max_connections {MAX_CONNECTIONS}, {len(peaks)} samples)"
    )
    assert not errors, errors[:3]
    assert not load.failures, load.failures[:3]
    assert load.server_errors() == 0
    assert all(key.split()[-1] in {"200", "201", "302"} for key in load.statuses), load.statuses
    assert load.acknowledged <= stored, sorted(load.acknowledged - stored)[:5]
    assert max(peaks) <= POOL_SIZE
