"""The benchmark's `events` scenario: token clients on the event stream (/ws/events/).

One chat of N members (the fan-out room of bench.setup_data), each member following it
with an API token on /ws/events/, as programs do: the first frame is
`{"type": "auth", "token": ...}`, and every new message reaches each of them as a JSON
`message.created` event. Messages are sent as in the fan-out scenario (bench.client), by
10 members through the chat page's socket (/ws/chats/<id>/, session cookie), at a steady
rate and then in a burst; the measures are the fan-out's: latency (the last recipient's
p50 and p99) and the server's CPU time per delivered event. Each recipient of an event
must get it exactly once, and every recipient the same bytes.

    python -m bench.events tokens --plan plan.json --members 1000    # with the server's DATABASE_URL
    python -m bench.events --plan plan.json --url ws://127.0.0.1:8000 --pid 1234 \
        events --members 1000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import time
from typing import Any

from bench import client
from bench.client import CONNECT_TIMEOUT, TOKEN, Endpoint, Load, Message, Protocol, Room, Socket

EVENTS_PATH = "/ws/events/"


class EventLoad(Load):
    """The fan-out's load, with event-stream sockets as the room's members.

    The members are token clients of /ws/events/; the senders are separate chat-page
    sockets, outside the room, whose HTML frames are ignored.
    """

    def __init__(self, tokens: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tokens = tokens
        self.senders: list[Socket] = []
        self.greeted: dict[Socket, asyncio.Future[None]] = {}
        # Per message, the distinct frames its recipients got: 1 when every one got the same bytes.
        self.frames: dict[int, set[bytes]] = {}

    def stream_request(self, endpoint: Endpoint) -> bytes:
        """A program's handshake: no cookie and no Origin (the token comes in the first frame)."""
        key = base64.b64encode(os.urandom(16)).decode()
        return (
            f"GET {EVENTS_PATH} HTTP/1.1\r\nHost: {endpoint.host}:{endpoint.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()

    async def connect(self, user: int, chat_id: int, *, in_room: bool) -> Socket:
        """A member: an event-stream socket, signed in with the user's token, once `hello` came."""
        if not in_room:
            return await super().connect(user, chat_id, in_room=False)
        endpoint = self.endpoints[len(self.sockets) % len(self.endpoints)]
        room = self.rooms.setdefault(chat_id, Room(chat_id))
        socket = Socket(self, room, self.stream_request(endpoint))
        self.sockets.append(socket)
        loop = asyncio.get_running_loop()
        self.greeted[socket] = loop.create_future()
        await loop.create_connection(lambda: socket, endpoint.host, endpoint.port)
        await socket.opened
        socket.send_text(json.dumps({"type": "auth", "token": self.tokens[user]}))
        await self.greeted[socket]
        socket.position = len(room.sockets)
        room.sockets.append(socket)
        return socket

    def received(self, socket: Socket, payload: bytes, now: float) -> None:
        if socket.room is None:
            return  # A sender's chat page: its HTML is not what is measured.
        if payload.startswith(b'{"type":"hello"'):
            greeted = self.greeted.get(socket)
            if greeted is not None and not greeted.done():
                greeted.set_result(None)
            return
        found = TOKEN.search(payload)
        if found is not None:
            self.frames.setdefault(int(found.group(1)), set()).add(payload)
        super().received(socket, payload, now)

    def send(self, room: Room, sender: Socket | None = None) -> Message | None:
        """Send from the chat page of the member whose turn it is (the fan-out picks a member)."""
        index = sender.position if sender is not None else len(self.messages)
        page = self.senders[index % len(self.senders)]
        if not page.is_open:
            return None
        seq = len(self.messages)
        message = Message(room, page, time.perf_counter())
        self.messages.append(message)
        self.pending += 1
        self.idle.clear()
        page.send_text(self.protocol.payload(seq))
        return message


async def events(load: EventLoad, plan: dict[str, Any], arguments: argparse.Namespace) -> dict[str, Any]:
    """The fan-out scenario (bench.client.fanout), with token clients of the event stream."""
    members = min(arguments.members, plan["fanout_members"])
    senders = min(arguments.senders, members)
    for user in range(senders):
        page = await asyncio.wait_for(load.connect(user, plan["fanout"], in_room=False), CONNECT_TIMEOUT)
        load.senders.append(page)
    result = await client.fanout(load, plan, arguments)
    result["transport"] = "token clients on /ws/events/; senders on the chat page's socket"
    result["distinct_frames_per_event"] = max((len(frames) for frames in load.frames.values()), default=None)
    return result


def create_tokens(plan_path: str, members: int) -> None:
    """One API token for each of the first `members` users of the plan, made by the token
    service, added to the plan as `tokens`."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, os.getcwd())
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.contrib.sessions.models import Session
    from django.db import transaction

    from chat import services

    with open(plan_path) as file:
        plan = json.load(file)
    started = time.monotonic()
    sessions = plan["cookies"][:members]
    user_ids = {
        session.session_key: int(session.get_decoded()["_auth_user_id"])
        for session in Session.objects.filter(session_key__in=sessions)
    }
    users = User.objects.in_bulk(list(user_ids.values()))
    with transaction.atomic():
        plan["tokens"] = [
            services.issue_token(user=users[user_ids[session]], name="bench").key for session in sessions
        ]
    with open(plan_path, "w") as file:
        json.dump(plan, file)
    print(f"created {members} tokens in {time.monotonic() - started:.1f} s", file=sys.stderr)


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--plan", required=True, help="the JSON written by bench.setup_data")
    parser.add_argument("--url", action="append", default=[], help="ws://host:port of the server")
    parser.add_argument("--pid", action="append", type=int, default=[], help="a server process to measure")
    parser.add_argument("--proto", default="ours", help="ignored: the event stream is the chat's own")
    parser.add_argument("--concurrency", type=int, default=100, help="handshakes in flight at once")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds to wait after connecting")
    parser.add_argument(
        "--drain", type=float, default=45.0, help="seconds to wait at most for the last deliveries"
    )
    parser.add_argument(
        "--stall", type=float, default=5.0, help="seconds without a delivery that end the wait"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    tokens = commands.add_parser("tokens", help="add API tokens to the plan (run with the server's database)")
    tokens.add_argument("--members", type=int, default=1000)
    scenario = commands.add_parser("events", help="run the scenario against a server")
    scenario.add_argument("--members", type=int, default=1000)
    scenario.add_argument("--messages", type=int, default=20)
    scenario.add_argument("--rate", type=float, default=5.0)
    scenario.add_argument("--burst", type=int, default=100)
    scenario.add_argument("--senders", type=int, default=10)
    scenario.add_argument("--warmup-messages", type=int, default=3, help="sent one by one before measuring")
    return parser.parse_args(argv)


async def run(arguments: argparse.Namespace) -> dict[str, Any]:
    with open(arguments.plan) as file:
        plan = json.load(file)
    load = EventLoad(
        plan["tokens"],
        protocol=Protocol("ours"),
        endpoints=[Endpoint.parse(url) for url in arguments.url],
        cookies=plan["cookies"],
        pids=arguments.pid,
    )
    try:
        return await events(load, plan, arguments)
    finally:
        load.close()


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    if arguments.command == "tokens":
        create_tokens(arguments.plan, arguments.members)
        return
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in requirements.txt
        result = asyncio.run(run(arguments))
    else:
        result = asyncio.run(run(arguments), loop_factory=uvloop.new_event_loop)
    result["client_cpu_s"] = round(client.own_cpu_seconds(), 2)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
