"""The load generator: many WebSocket clients in one process, printing JSON results.

It runs apart from the servers, so that their CPU time and its own are counted apart,
and speaks just enough of RFC 6455 on bare asyncio protocols (no extensions, one
buffer per socket) to keep its own cost per received frame small next to the
servers' cost per sent frame.

Each message carries a token `tok<seq>z` in its text; every frame a socket receives
is searched for one (the chat's frames are HTML, the seed's JSON, the floor's the bare
text), and frames without one (the composer sent back to a sender) are ignored. Send
times and receive times are read from one clock, in this one process.

    python -m bench.client --plan plan.json --proto ours --url ws://127.0.0.1:8000 \
        --pid 1234 fanout --members 1000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import math
import os
import re
import resource
import sys
import time
import uuid
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the pure Python fallback, for a build without the C extension
    from websockets.utils import apply_mask

TOKEN = re.compile(rb"tok(\d+)z")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CONNECT_TIMEOUT = 30.0
# Opcodes of RFC 6455.
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def server_cpu_seconds(pids: Iterable[int]) -> float:
    """User plus system CPU time of the server processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as file:
            fields = file.read().rsplit(")", 1)[1].split()
        # Fields 14 and 15 of stat(5), counted after the command name's parenthesis.
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def server_rss_bytes(pids: Iterable[int]) -> int:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as file:
            for line in file:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float] | array[float], fraction: float) -> float | None:
    """The nearest-rank percentile of the values, None for none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        assert parts.hostname is not None and parts.port is not None, url
        return cls(parts.hostname, parts.port)


class Protocol:
    """How one kind of server names its rooms and what a client sends it."""

    def __init__(self, kind: str) -> None:
        if kind not in {"ours", "seed", "floor"}:
            raise ValueError(f"unknown protocol {kind}")
        self.kind = kind

    def path(self, chat_id: int) -> str:
        if self.kind == "ours":
            return f"/ws/chats/{chat_id}/"
        if self.kind == "seed":
            return f"/ws/seed/{chat_id}/"
        return f"/room/{chat_id}"

    def payload(self, seq: int) -> str:
        token = f"tok{seq}z"
        if self.kind == "ours":
            return json.dumps({"text": f"bench {token}", "client_id": str(uuid.uuid4())})
        if self.kind == "seed":
            return json.dumps({"message": f"bench {token}"})
        return f"bench {token}"


class Message:
    __slots__ = ("counts", "expected", "first", "last", "received", "room", "sender", "sent")

    def __init__(self, room: Room, sender: Socket, sent: float) -> None:
        self.room = room
        self.sender = sender
        self.sent = sent
        self.expected = len(room.sockets)
        self.counts = bytearray(len(room.sockets))
        self.received = 0
        self.first = 0.0
        self.last = 0.0


class Room:
    def __init__(self, chat_id: int) -> None:
        self.chat_id = chat_id
        self.sockets: list[Socket] = []
        self.turn = 0

    def next_sender(self) -> Socket | None:
        """The members take turns to send; a closed socket is passed over."""
        for _ in range(len(self.sockets)):
            socket = self.sockets[self.turn % len(self.sockets)]
            self.turn += 1
            if socket.is_open:
                return socket
        return None


class Socket(asyncio.Protocol):
    """One client connection: the opening handshake, then frames in and out."""

    def __init__(self, load: Load, room: Room | None, request: bytes) -> None:
        self.load = load
        self.room = room
        self.position = 0
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.is_open = False
        self.close_code: int | None = None
        self.buffer = b""
        self.fragments: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, only alike.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        was_open = self.is_open
        self.is_open = False
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed during the handshake"))
        elif was_open:
            self.load.lost_sockets += 1

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if self.buffer:
            data = self.buffer + data
            self.buffer = b""
        if not self.opened.done():
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = data
                return
            status = data[: data.find(b"\r\n")]
            if b" 101 " not in status + b" ":
                self.opened.set_exception(ConnectionError(status.decode("latin1")))
                assert self.transport is not None
                self.transport.close()
                return
            self.is_open = True
            self.opened.set_result(None)
            data = data[end + 4 :]
        position, size = 0, len(data)
        while size - position >= 2:
            first, second = data[position], data[position + 1]
            length, start = second & 0x7F, position + 2
            if length == 126:
                if size - position < 4:
                    break
                length, start = int.from_bytes(data[position + 2 : position + 4]), position + 4
            elif length == 127:
                if size - position < 10:
                    break
                length, start = int.from_bytes(data[position + 2 : position + 10]), position + 10
            if second & 0x80:
                start += 4  # A server must not mask; such a frame is skipped, not read.
            end = start + length
            if end > size:
                break
            self.frame(first, data[start:end], now)
            position = end
        if position < size:
            self.buffer = data[position:]

    def frame(self, first: int, payload: bytes, now: float) -> None:
        opcode = first & 0x0F
        if opcode in (TEXT, BINARY, CONTINUATION):
            if not first & 0x80:
                self.fragments.append(payload)
                return
            if self.fragments:
                payload = b"".join([*self.fragments, payload])
                self.fragments.clear()
            self.load.received(self, payload, now)
        elif opcode == PING:
            self.write(PONG, payload)
        elif opcode == CLOSE:
            self.close_code = int.from_bytes(payload[:2]) if len(payload) >= 2 else 1005
            self.load.close_codes[self.close_code] = self.load.close_codes.get(self.close_code, 0) + 1
            if self.is_open:
                self.write(CLOSE, payload[:2])
            self.is_open = False
            self.load.lost_sockets += 1
            assert self.transport is not None
            self.transport.close()

    def write(self, opcode: int, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        size = len(data)
        if size < 126:
            header = bytes((0x80 | opcode, 0x80 | size))
        elif size < 65536:
            header = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2)
        else:
            header = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8)
        mask = os.urandom(4)
        self.transport.write(header + mask + apply_mask(data, mask))

    def send_text(self, text: str) -> None:
        self.write(TEXT, text.encode())

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class Load:
    """The sockets of one run, the messages sent, and what each socket received."""

    def __init__(self, protocol: Protocol, endpoints: list[Endpoint], cookies: list[str], pids: list[int]):
        self.protocol = protocol
        self.endpoints = endpoints
        self.cookies = cookies
        self.pids = pids
        self.sockets: list[Socket] = []
        self.rooms: dict[int, Room] = {}
        self.messages: list[Message] = []
        self.latencies: array[float] = array("d")
        self.delivered = 0
        # Every first receipt since the start, never reset: whether a drain still progresses.
        self.receipts = 0
        self.duplicates = 0
        self.misrouted = 0
        self.lost_sockets = 0
        self.close_codes: dict[int, int] = {}
        self.pending = 0
        self.idle = asyncio.Event()
        self.on_complete: Callable[[Message], None] | None = None
        self.on_echo: Callable[[Message], None] | None = None

    # Connecting.

    def request(self, endpoint: Endpoint, path: str, cookie: str) -> bytes:
        key = base64.b64encode(os.urandom(16)).decode()
        origin = f"http://{endpoint.host}:{endpoint.port}"
        return (
            f"GET {path} HTTP/1.1\r\nHost: {endpoint.host}:{endpoint.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\nCookie: sessionid={cookie}\r\n\r\n"
        ).encode()

    async def connect(self, user: int, chat_id: int, *, in_room: bool) -> Socket:
        endpoint = self.endpoints[len(self.sockets) % len(self.endpoints)]
        room = self.rooms.setdefault(chat_id, Room(chat_id)) if in_room else None
        request = self.request(endpoint, self.protocol.path(chat_id), self.cookies[user])
        socket = Socket(self, room, request)
        self.sockets.append(socket)
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: socket, endpoint.host, endpoint.port)
        await socket.opened
        if room is not None:
            socket.position = len(room.sockets)
            room.sockets.append(socket)
        return socket

    async def connect_all(
        self,
        plan: list[tuple[int, int]],
        *,
        concurrency: int,
        in_room: bool = True,
        budget: float | None = None,
    ) -> dict[str, Any]:
        """Open a socket per (user, chat), at most `concurrency` handshakes at a time.

        No handshake starts after `budget` seconds: the rest are counted as skipped.
        """
        limit = asyncio.Semaphore(concurrency)
        failures: dict[str, int] = {}
        skipped = 0
        deadline = time.perf_counter() + budget if budget else None

        async def one(user: int, chat_id: int) -> None:
            nonlocal skipped
            async with limit:
                if deadline is not None and time.perf_counter() > deadline:
                    skipped += 1
                    return
                try:
                    await asyncio.wait_for(self.connect(user, chat_id, in_room=in_room), CONNECT_TIMEOUT)
                except (OSError, TimeoutError) as error:
                    reason = type(error).__name__ + (f": {error}" if str(error) else "")
                    failures[reason[:80]] = failures.get(reason[:80], 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(one(user, chat_id) for user, chat_id in plan))
        seconds = time.perf_counter() - started
        connected = len(plan) - sum(failures.values()) - skipped
        return {
            "sockets": connected,
            "failed": sum(failures.values()),
            "skipped": skipped,
            "failures": failures,
            "connect_s": round(seconds, 3),
            "connect_per_s": round(connected / seconds, 1) if seconds else None,
        }

    # Sending and receiving.

    def send(self, room: Room, sender: Socket | None = None) -> Message | None:
        if sender is None or not sender.is_open:
            sender = room.next_sender()
        if sender is None:
            return None
        seq = len(self.messages)
        text = self.protocol.payload(seq)
        message = Message(room, sender, time.perf_counter())
        self.messages.append(message)
        self.pending += 1
        self.idle.clear()
        sender.send_text(text)
        return message

    def received(self, socket: Socket, payload: bytes, now: float) -> None:
        # A frame may carry several messages (the chat writes a burst's new messages to a
        # page in one frame); each is a delivery. A message's token may appear twice in
        # one fragment: counted once.
        for number in dict.fromkeys(TOKEN.findall(payload)):
            self.receive_one(socket, self.messages[int(number)], now)

    def receive_one(self, socket: Socket, message: Message, now: float) -> None:
        if message.room is not socket.room:
            self.misrouted += 1
            return
        count = message.counts[socket.position]
        if count:
            self.duplicates += 1
            message.counts[socket.position] = min(255, count + 1)
            return
        message.counts[socket.position] = 1
        if not message.received:
            message.first = now
        message.received += 1
        message.last = now
        self.delivered += 1
        self.receipts += 1
        self.latencies.append(now - message.sent)
        if socket is message.sender and self.on_echo is not None:
            self.on_echo(message)
        if message.received == message.expected:
            self.pending -= 1
            if self.on_complete is not None:
                self.on_complete(message)
            if self.pending == 0:
                self.idle.set()

    async def drain(self, limit: float, stall: float) -> bool:
        """Wait until every message sent so far reached every socket of its room.

        Gives up after `limit` seconds, or sooner when nothing arrived for `stall` seconds.
        """
        deadline = time.perf_counter() + limit
        while self.pending:
            receipts = self.receipts
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self.idle.wait(), min(stall, remaining))
            except TimeoutError:
                if self.receipts == receipts:
                    return False
        return True

    def reset(self) -> None:
        """Forget what was measured so far (the sockets stay open)."""
        for message in self.messages:
            if message.received < message.expected:
                message.expected = -1  # Never complete: late receipts no longer count as pending.
        self.pending = 0
        self.latencies = array("d")
        self.delivered = self.duplicates = self.misrouted = 0

    def summary(self, messages: list[Message]) -> dict[str, Any]:
        expected = sum(message.expected for message in messages)
        delivered = sum(message.received for message in messages)
        complete = [
            message.last - message.sent for message in messages if message.received == message.expected
        ]
        first = [message.first - message.sent for message in messages if message.received]
        return {
            "messages": len(messages),
            "deliveries_expected": expected,
            "deliveries": delivered,
            "lost": expected - delivered,
            "duplicates": self.duplicates,
            "misrouted": self.misrouted,
            "incomplete_messages": len(messages) - len(complete),
            "p50_ms": ms(percentile(self.latencies, 0.50)),
            "p99_ms": ms(percentile(self.latencies, 0.99)),
            "max_ms": ms(max(self.latencies, default=None)),
            "first_recipient_p50_ms": ms(percentile(first, 0.50)),
            "last_recipient_p50_ms": ms(percentile(complete, 0.50)),
            "last_recipient_p99_ms": ms(percentile(complete, 0.99)),
            "sockets_closed": self.lost_sockets,
            "close_codes": {str(code): count for code, count in self.close_codes.items()},
        }

    def close(self) -> None:
        for socket in self.sockets:
            socket.abort()


def member_plan(chat_ids: list[int], members: int) -> list[tuple[int, int]]:
    """(user, chat) for `members` consecutive users per chat, as bench.setup_data made them."""
    return [
        (index * members + member, chat_id)
        for index, chat_id in enumerate(chat_ids)
        for member in range(members)
    ]


# Scenarios.


async def idle(load: Load, plan: dict[str, Any], arguments: argparse.Namespace) -> dict[str, Any]:
    """N idle sockets: the server's RSS per socket and how fast they connect."""
    chats = plan["idle"]
    users = min(arguments.sockets, len(plan["cookies"]))
    warmup = min(arguments.warmup, users // 10)
    sockets = [(user, chats[user % len(chats)]) for user in range(users)]
    await load.connect_all(sockets[:warmup], concurrency=arguments.concurrency, in_room=False)
    await asyncio.sleep(1.0)
    rss_before = server_rss_bytes(load.pids)
    cpu_before = server_cpu_seconds(load.pids)
    result = await load.connect_all(
        sockets[warmup:], concurrency=arguments.concurrency, in_room=False, budget=arguments.budget
    )
    cpu_connect = server_cpu_seconds(load.pids) - cpu_before
    # Refused sockets are accepted and then closed; give the closes time to arrive.
    await asyncio.sleep(arguments.settle)
    rss_after = server_rss_bytes(load.pids)
    added = result["sockets"]
    open_sockets = sum(1 for socket in load.sockets if socket.is_open)
    return {
        **result,
        "sockets": open_sockets,
        "requested": users,
        "warmup_sockets": warmup,
        "closed_after_connect": load.lost_sockets,
        "close_codes": {str(code): count for code, count in load.close_codes.items()},
        "rss_before_mb": round(rss_before / 2**20, 1),
        "rss_after_mb": round(rss_after / 2**20, 1),
        "rss_per_socket_kb": round((rss_after - rss_before) / added / 1024, 2) if added else None,
        "server_cpu_per_connect_us": round(cpu_connect / added * 1e6, 1) if added else None,
    }


async def fanout(load: Load, plan: dict[str, Any], arguments: argparse.Namespace) -> dict[str, Any]:
    """One big room: messages at a steady rate, then a burst."""
    members = min(arguments.members, plan["fanout_members"])
    connected = await load.connect_all(
        [(user, plan["fanout"]) for user in range(members)], concurrency=arguments.concurrency
    )
    if not connected["sockets"]:
        return {"connect": connected, "error": "no socket connected"}
    room = load.rooms[plan["fanout"]]
    await asyncio.sleep(arguments.settle)
    gc.freeze()
    senders = room.sockets[: arguments.senders]

    # Warm-up, not measured: a server's first messages load templates and code.
    for _ in range(arguments.warmup_messages):
        load.send(room, senders[0])
        await load.drain(arguments.drain, arguments.stall)
    load.reset()

    # Steady: one message every 1/rate seconds.
    first = len(load.messages)
    started = time.perf_counter()
    for index in range(arguments.messages):
        await asyncio.sleep(max(0.0, started + index / arguments.rate - time.perf_counter()))
        load.send(room, senders[index % len(senders)])
    await load.drain(arguments.drain, arguments.stall)
    steady = load.summary(load.messages[first:])

    # Burst: every message at once, from the senders in turn.
    await asyncio.sleep(arguments.settle)
    load.reset()
    first = len(load.messages)
    lost_before = load.lost_sockets
    cpu_before, own_before = server_cpu_seconds(load.pids), own_cpu_seconds()
    burst_started = time.perf_counter()
    for index in range(arguments.burst):
        load.send(room, senders[index % len(senders)])
    drained = await load.drain(arguments.drain, arguments.stall)
    burst_messages = load.messages[first:]
    finished = max((message.last for message in burst_messages if message.received), default=None)
    cpu_after, own_after = server_cpu_seconds(load.pids), own_cpu_seconds()
    burst = load.summary(burst_messages)
    burst["sockets_closed"] = load.lost_sockets - lost_before
    deliveries = burst["deliveries"]
    burst.update(
        drained=drained,
        drain_ms=ms(finished - burst_started) if drained and finished is not None else None,
        server_cpu_s=round(cpu_after - cpu_before, 3),
        server_cpu_per_delivery_us=round((cpu_after - cpu_before) / deliveries * 1e6, 2)
        if deliveries
        else None,
        client_cpu_per_delivery_us=round((own_after - own_before) / deliveries * 1e6, 2)
        if deliveries
        else None,
    )
    return {"connect": connected, "members": len(room.sockets), "steady": steady, "burst": burst}


async def connect_rooms(
    load: Load, plan: dict[str, Any], arguments: argparse.Namespace
) -> tuple[list[int], int, dict[str, Any]]:
    """Open every member socket of the small rooms, then let the server settle."""
    chat_ids = plan["rooms"][: arguments.rooms]
    members = min(arguments.members, plan["room_members"])
    connected = await load.connect_all(member_plan(chat_ids, members), concurrency=arguments.concurrency)
    if not connected["failed"]:
        await asyncio.sleep(arguments.settle)
        gc.freeze()
    return chat_ids, members, connected


async def rooms(load: Load, plan: dict[str, Any], arguments: argparse.Namespace) -> dict[str, Any]:
    """Many small rooms at a fixed total rate of messages (open loop)."""
    chat_ids, members, connected = await connect_rooms(load, plan, arguments)
    if connected["failed"]:
        return {"connect": connected, "error": "some sockets did not connect"}
    targets = [load.rooms[chat_id] for chat_id in chat_ids]
    total = int(arguments.rate * arguments.duration)
    cpu_before, own_before = server_cpu_seconds(load.pids), own_cpu_seconds()
    started = time.perf_counter()
    sent = 0
    while sent < total:
        due = min(total, int((time.perf_counter() - started) * arguments.rate) + 1)
        while sent < due:
            load.send(targets[sent % len(targets)])
            sent += 1
        await asyncio.sleep(0.002)
    send_seconds = time.perf_counter() - started
    drained = await load.drain(arguments.drain, arguments.stall)
    cpu_after, own_after = server_cpu_seconds(load.pids), own_cpu_seconds()
    result = load.summary(load.messages)
    deliveries = result["deliveries"]
    result.update(
        connect=connected,
        rooms=len(targets),
        members=members,
        offered_per_s=round(sent / send_seconds, 1),
        duration_s=round(send_seconds, 2),
        drained=drained,
        server_cpu_per_delivery_us=round((cpu_after - cpu_before) / deliveries * 1e6, 2)
        if deliveries
        else None,
        client_cpu_share=round((own_after - own_before) / (time.perf_counter() - started), 3),
    )
    return result


async def capacity(load: Load, plan: dict[str, Any], arguments: argparse.Namespace) -> dict[str, Any]:
    """Many small rooms, `window` messages in flight in each (closed loop): the most delivered per second."""
    chat_ids, members, connected = await connect_rooms(load, plan, arguments)
    if connected["failed"]:
        return {"connect": connected, "error": "some sockets did not connect"}
    warmup_end = time.perf_counter() + arguments.warmup_s
    deadline = warmup_end + arguments.duration
    window: dict[str, float] = {}

    def echo(message: Message) -> None:
        # The sender saw its message come back: the next one of that room goes out.
        if time.perf_counter() < deadline:
            load.send(message.room)

    def complete(message: Message) -> None:
        if warmup_end <= message.last < deadline:
            window["messages"] = window.get("messages", 0) + 1
            window["deliveries"] = window.get("deliveries", 0) + message.expected

    load.on_echo, load.on_complete = echo, complete
    for room in (load.rooms[chat_id] for chat_id in chat_ids):
        for _ in range(arguments.window):
            load.send(room)
    await asyncio.sleep(max(0.0, warmup_end - time.perf_counter()))
    cpu_before = server_cpu_seconds(load.pids)
    await asyncio.sleep(max(0.0, deadline - time.perf_counter()))
    cpu_after = server_cpu_seconds(load.pids)
    drained = await load.drain(arguments.drain, arguments.stall)
    result = load.summary(load.messages)
    deliveries = window.get("deliveries", 0)
    result.update(
        connect=connected,
        rooms=len(chat_ids),
        members=members,
        window=arguments.window,
        drained=drained,
        messages_per_s=round(window.get("messages", 0) / arguments.duration, 1),
        deliveries_per_s=round(deliveries / arguments.duration, 1),
        server_cpu_per_delivery_us=round((cpu_after - cpu_before) / deliveries * 1e6, 2)
        if deliveries
        else None,
        server_cpu_share=round((cpu_after - cpu_before) / arguments.duration, 3),
    )
    return result


SCENARIOS = {"idle": idle, "fanout": fanout, "rooms": rooms, "capacity": capacity}


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--plan", required=True, help="the JSON written by bench.setup_data")
    parser.add_argument("--proto", required=True, choices=["ours", "seed", "floor"])
    parser.add_argument(
        "--url", action="append", required=True, help="ws://host:port; repeat for several servers"
    )
    parser.add_argument("--pid", action="append", type=int, default=[], help="a server process to measure")
    parser.add_argument("--concurrency", type=int, default=100, help="handshakes in flight at once")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds to wait after connecting")
    parser.add_argument(
        "--drain", type=float, default=15.0, help="seconds to wait at most for the last deliveries"
    )
    parser.add_argument(
        "--stall", type=float, default=5.0, help="seconds without a delivery that end the wait"
    )
    scenarios = parser.add_subparsers(dest="scenario", required=True)
    scenario = scenarios.add_parser("idle")
    scenario.add_argument("--sockets", type=int, default=10_000)
    scenario.add_argument("--warmup", type=int, default=100)
    scenario.add_argument(
        "--budget", type=float, default=60.0, help="seconds after which no socket is opened"
    )
    scenario = scenarios.add_parser("fanout")
    scenario.add_argument("--members", type=int, default=1000)
    scenario.add_argument("--messages", type=int, default=20)
    scenario.add_argument("--rate", type=float, default=5.0)
    scenario.add_argument("--burst", type=int, default=100)
    scenario.add_argument("--senders", type=int, default=10)
    scenario.add_argument("--warmup-messages", type=int, default=3, help="sent one by one before measuring")
    for name in ("rooms", "capacity"):
        scenario = scenarios.add_parser(name)
        scenario.add_argument("--rooms", type=int, default=100)
        scenario.add_argument("--members", type=int, default=10)
        scenario.add_argument("--duration", type=float, default=60.0 if name == "rooms" else 15.0)
        if name == "rooms":
            scenario.add_argument("--rate", type=float, default=1000.0)
        else:
            scenario.add_argument("--window", type=int, default=2)
            scenario.add_argument("--warmup-s", type=float, default=2.0)
    return parser.parse_args(argv)


async def run(arguments: argparse.Namespace) -> dict[str, Any]:
    with open(arguments.plan) as file:
        plan = json.load(file)
    load = Load(
        Protocol(arguments.proto),
        [Endpoint.parse(url) for url in arguments.url],
        plan["cookies"],
        arguments.pid,
    )
    try:
        return await SCENARIOS[arguments.scenario](load, plan, arguments)
    finally:
        load.close()


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    # Thousands of sockets: take every file descriptor the hard limit allows.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in requirements.txt
        result = asyncio.run(run(arguments))
    else:
        result = asyncio.run(run(arguments), loop_factory=uvloop.new_event_loop)
    result["client_cpu_s"] = round(own_cpu_seconds(), 2)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
