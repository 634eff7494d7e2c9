"""The HTTP benchmark's load generators (bench/http.py runs them).

- `drive`: N clients, each a thread with one kept-alive HTTP/1.1 connection and a cookie jar
  of its own, sending one request after another (closed loop) for some seconds. What each
  sends is a `Request` made per request by the scenario, so the same generator drives the
  chat, the bare hello and a peer server.
- `drive_sockets`: the chat page's socket (/ws/chats/<id>/, session cookie and Origin), on
  bench.client's RFC 6455 protocol under asyncio. `send`: each client keeps one composer
  frame in flight, as htmx sends it, and waits for the reply that acknowledges it (the
  composer with `data-sent-client-id`); `connect`: each client opens a socket (TCP, the
  handshake, the 101 that follows the server's checks), closes it and waits for the close.

The load generator runs in the benchmark's process, apart from the servers, so that their
CPU time and its own are counted apart.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.client import CLOSE, CONNECT_TIMEOUT, Endpoint, Load, Protocol, Socket, percentile

# How long a request or a socket frame may take before it counts as unanswered.
TIMEOUT = 60.0
# The composer's acknowledgement of a stored message (chat/chat_detail.html#composer_errors).
SENT = re.compile(rb'data-sent-client-id="([0-9a-f-]*)"')
COMPOSER_ERRORS = b'id="composer-errors"'


@dataclass
class Client:
    """One load client's identity: its cookie jar (updated from Set-Cookie) and an API token."""

    cookies: dict[str, str]
    token: str = ""

    @classmethod
    def parse(cls, cookie_header: str, token: str = "") -> Client:
        """A client from a Cookie header's text (`name=value; name=value`)."""
        cookies = {}
        for part in cookie_header.split(";"):
            name, _, value = part.strip().partition("=")
            if name:
                cookies[name] = value
        return cls(cookies, token)

    def cookie_header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())

    def remember(self, response: http.client.HTTPResponse) -> None:
        for header in response.headers.get_all("Set-Cookie") or ():
            name, _, value = header.split(";", 1)[0].strip().partition("=")
            if name:
                self.cookies[name] = value


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None = None
    expected: int = 200
    # A write's idempotency key: acknowledged when the answer is the expected one.
    client_id: str | None = None


@dataclass
class Measure:
    latencies: list[float] = field(default_factory=list)
    unexpected: int = 0
    # Answers other than the expected one, by status (0: no answer, or no acknowledgement).
    statuses: Counter[int] = field(default_factory=Counter)
    sent: list[str] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, elapsed: float, status: int, ok: bool, client_id: str | None = None) -> None:
        with self.lock:
            self.latencies.append(elapsed)
            if not ok:
                self.unexpected += 1
                self.statuses[status] += 1
            if client_id is not None:
                self.sent.append(client_id)
                if ok:
                    self.acked.append(client_id)

    def summary(self, wall: float) -> dict[str, Any]:
        count = len(self.latencies)
        p50, p99 = percentile(self.latencies, 0.50), percentile(self.latencies, 0.99)
        return {
            "requests": count,
            "per_s": round(count / wall, 1) if wall else None,
            "p50_ms": None if p50 is None else round(p50 * 1000, 1),
            "p99_ms": None if p99 is None else round(p99 * 1000, 1),
            "unexpected": self.unexpected,
            "unexpected_statuses": {str(status): n for status, n in self.statuses.items()},
        }


Maker = Callable[[Client, int], Request]
# The CPU seconds used so far by the server and by the services it talks to (PostgreSQL, Redis).
CpuClock = Callable[[], tuple[float, float]]


@dataclass
class Run:
    """What one measurement gives: the measure, its wall time, and the CPU seconds the
    server and its services used meanwhile."""

    measure: Measure
    wall: float
    server_cpu: float
    services_cpu: float


def cpu_since(clock: CpuClock, before: tuple[float, float]) -> tuple[float, float]:
    after = clock()
    return after[0] - before[0], after[1] - before[1]


def drive(host: str, port: int, clients: list[Client], make: Maker, seconds: float, clock: CpuClock) -> Run:
    """Each client in a thread of its own, on a kept-alive connection, for `seconds`."""
    measure = Measure()
    until = time.monotonic() + seconds

    def run(client: Client) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
        sequence = 0
        while time.monotonic() < until:
            request = make(client, sequence)
            sequence += 1
            started = time.perf_counter()
            try:
                connection.request(request.method, request.path, body=request.body, headers=request.headers)
                response = connection.getresponse()
                response.read()
                client.remember(response)
                status = response.status
                if response.will_close:
                    connection.close()
            except (OSError, http.client.HTTPException):
                status = 0
                connection.close()
            elapsed = time.perf_counter() - started
            measure.record(elapsed, status, status == request.expected, request.client_id)
        connection.close()

    threads = [threading.Thread(target=run, args=(client,)) for client in clients]
    before, started = clock(), time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    return Run(measure, wall, *cpu_since(clock, before))


# The chat page's socket.


class PageSocket(Socket):
    """A chat page's socket that says when it has ended."""

    def __init__(self, load: Load, request: bytes) -> None:
        super().__init__(load, None, request)
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # The acknowledgement awaited for the one frame in flight: its client id, and the
        # future that gets True (stored) or False (an error fragment instead).
        self.awaiting: tuple[bytes, asyncio.Future[bool]] | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.ended.done():
            self.ended.set_result(None)
        if self.awaiting is not None and not self.awaiting[1].done():
            self.awaiting[1].set_result(False)

    async def close_and_wait(self) -> None:
        """The closing handshake, as a page that navigates away makes it."""
        if self.is_open:
            self.is_open = False
            self.write(CLOSE, (1000).to_bytes(2, "big"))
        try:
            await asyncio.wait_for(self.ended, 10)
        except TimeoutError:
            self.abort()


class PageSockets(Load):
    """bench.client's Load, reading the composer's acknowledgements instead of message tokens."""

    def __init__(self, host: str, port: int, cookies: list[str]) -> None:
        super().__init__(Protocol("ours"), [Endpoint(host, port)], cookies, [])

    async def open(self, user: int, chat_id: int) -> PageSocket:
        endpoint = self.endpoints[0]
        request = self.request(endpoint, self.protocol.path(chat_id), self.cookies[user])
        socket = PageSocket(self, request)
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: socket, endpoint.host, endpoint.port)
        await socket.opened
        return socket

    def received(self, socket: Socket, payload: bytes, now: float) -> None:
        awaiting = getattr(socket, "awaiting", None)
        if awaiting is None or awaiting[1].done():
            return  # Other senders' messages, pushed to every page of the chat.
        client_id, done = awaiting
        found = SENT.search(payload)
        if found is not None and found.group(1) == client_id:
            done.set_result(True)
        elif found is None and COMPOSER_ERRORS in payload and b"<p" in payload:
            done.set_result(False)  # The composer came back with an error instead.


def composer_frame(client_id: str, sequence: int, origin: str, chat_id: int) -> str:
    """The composer's fields as htmx's ws extension sends them (`ws-send`)."""
    return json.dumps(
        {
            "text": f"A message from the socket benchmark, number {sequence}.",
            "reply_to": "",
            "client_id": client_id,
            "HEADERS": {
                "HX-Request": "true",
                "HX-Trigger": "composer",
                "HX-Trigger-Name": None,
                "HX-Target": "composer",
                "HX-Current-URL": f"{origin}/chats/{chat_id}/",
            },
        }
    )


async def socket_send(load: PageSockets, chat_id: int, clients: int, seconds: float, clock: CpuClock) -> Run:
    """Each client's socket keeps one composer frame in flight; the sockets are opened before
    the measurement and closed after it."""
    sockets = [await load.open(user % len(load.cookies), chat_id) for user in range(clients)]
    origin = f"http://{load.endpoints[0].host}:{load.endpoints[0].port}"
    loop = asyncio.get_running_loop()
    measure = Measure()
    until = time.monotonic() + seconds

    async def run(socket: PageSocket) -> None:
        sequence = 0
        while time.monotonic() < until and socket.is_open:
            client_id = str(uuid.uuid4())
            done: asyncio.Future[bool] = loop.create_future()
            socket.awaiting = (client_id.encode(), done)
            started = time.perf_counter()
            socket.send_text(composer_frame(client_id, sequence, origin, chat_id))
            sequence += 1
            try:
                ok = await asyncio.wait_for(done, TIMEOUT)
            except TimeoutError:
                ok = False
            socket.awaiting = None
            measure.record(time.perf_counter() - started, 101 if ok else 0, ok, client_id)

    try:
        before, started = clock(), time.monotonic()
        await asyncio.gather(*(run(socket) for socket in sockets))
        wall = time.monotonic() - started
        return Run(measure, wall, *cpu_since(clock, before))
    finally:
        await asyncio.gather(*(socket.close_and_wait() for socket in sockets))


async def socket_connect(
    load: PageSockets, chat_id: int, clients: int, seconds: float, clock: CpuClock
) -> Run:
    """Each client opens a socket, closes it and waits for it to end, again and again; the
    latency is the opening's (connection, handshake, the server's checks, its 101)."""
    measure = Measure()
    until = time.monotonic() + seconds

    async def run(user: int) -> None:
        while time.monotonic() < until:
            started = time.perf_counter()
            try:
                socket = await asyncio.wait_for(load.open(user, chat_id), CONNECT_TIMEOUT)
            except (OSError, TimeoutError):
                measure.record(time.perf_counter() - started, 0, False)
                await asyncio.sleep(0.01)
                continue
            elapsed = time.perf_counter() - started
            await socket.close_and_wait()
            # The server's close, if it came first, says why (4003: the socket was not allowed).
            code = socket.close_code
            ok = code in (None, 1000, 1005)
            measure.record(elapsed, 101 if ok else code or 0, ok)

    before, started = clock(), time.monotonic()
    await asyncio.gather(*(run(user % len(load.cookies)) for user in range(clients)))
    wall = time.monotonic() - started
    return Run(measure, wall, *cpu_since(clock, before))


def drive_sockets(
    host: str,
    port: int,
    cookies: list[str],
    chat_id: int,
    kind: str,
    clients: int,
    seconds: float,
    clock: CpuClock,
) -> Run:
    """`send` or `connect` on the chat page's socket, `clients` at once, for `seconds`."""
    scenario = socket_send if kind == "send" else socket_connect

    async def main() -> Run:
        load = PageSockets(host, port, cookies)
        try:
            return await scenario(load, chat_id, clients, seconds, clock)
        finally:
            load.close()

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in requirements.txt
        return asyncio.run(main())
    return asyncio.run(main(), loop_factory=uvloop.new_event_loop)
