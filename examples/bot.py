"""An example bot: it follows the chat's event stream and answers the messages that mention it.

    CHAT_URL=http://127.0.0.1:8000 CHAT_TOKEN=<key> python examples/bot.py

It needs Python 3.10+ and the `websockets` package (13 or later), nothing else: HTTP goes through urllib.

- It signs in on /ws/events/ with its API token as the first frame (never in the URL).
- For each `message.created` that mentions `@<its username>`, it replies in the same chat
  through the REST API (`POST /api/chats/<id>/messages/`). The reply's `client_id` is
  derived from the message's id, so the server keeps one reply per message even if the
  bot is stopped between replying and saving its cursor, and replies again after a restart.
- After each event it saves, for each chat, the number of the last event it handled in a
  JSON file (BOT_STATE, `bot-state.json` by default). After a restart it sends those
  cursors, and the server sends what happened meanwhile before anything new.
- It reconnects with backoff when the server restarts (1012), when it fell behind (4500)
  and on network errors; it stops for good when it is refused (4003: a revoked token).

Settings, from the environment:

| variable | meaning |
|---|---|
| CHAT_URL | the chat's address, e.g. `https://chat.example.org` (default `http://127.0.0.1:8000`) |
| CHAT_TOKEN | an API token's key (`POST /api/auth/token/`, or `manage.py create_bot`) |
| BOT_STATE | the file that keeps the cursors (default `bot-state.json`) |
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import re
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

logger = logging.getLogger("bot")

# Close codes that mean "stop": the server refused the bot (a bad or revoked token).
REFUSED = {4003}
# Backoff between reconnections: full jitter, doubling from BACKOFF_FIRST up to BACKOFF_MOST seconds.
BACKOFF_FIRST = 0.5
BACKOFF_MOST = 30.0
# The namespace of the replies' client ids: one reply per (this bot, message).
REPLY_NAMESPACE = uuid.UUID("0d5c1a39-5b8e-4a6f-9a34-6f4d7c2b8e10")


class Refused(Exception):
    """The server will not take this bot (4003): retrying would not help."""


class Api:
    """The REST API, with the bot's token."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One call; retried after the server's Retry-After when it answers 429."""
        url = path if path.startswith("http") else self.base_url + path
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        for _ in range(5):
            request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                    return json.loads(response.read() or b"null")
            except urllib.error.HTTPError as error:
                if error.code != 429:
                    raise
                wait = float(error.headers.get("Retry-After") or 5)
                logger.warning("Rate limited: waiting %.0f s", wait)
                time.sleep(min(wait, 60))
        raise RuntimeError(f"{method} {path}: still rate limited")

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        # urllib blocks: in a thread, so that the socket's keepalive goes on meanwhile.
        return await asyncio.to_thread(self.request, method, path, body)


class Cursors:
    """The last event handled per chat, kept in a JSON file (written whole, then renamed,
    so that a bot killed mid-write keeps the previous version)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.known = path.exists()
        self.numbers: dict[str, int] = {}
        if self.known:
            self.numbers = {str(chat): int(number) for chat, number in json.loads(path.read_text()).items()}

    def set(self, chat: int | str, number: int) -> None:
        self.numbers[str(chat)] = number
        self.save()

    def forget(self, chat: int | str) -> None:
        if self.numbers.pop(str(chat), None) is not None:
            self.save()

    def save(self) -> None:
        directory = self.path.parent
        with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, suffix=".tmp") as file:
            json.dump(self.numbers, file)
        os.replace(file.name, self.path)
        self.known = True


class Bot:
    def __init__(self, base_url: str, token: str, state: Path) -> None:
        self.api = Api(base_url, token)
        parts = urllib.parse.urlsplit(base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        self.socket_url = urllib.parse.urlunsplit(
            (scheme, parts.netloc, parts.path.rstrip("/") + "/ws/events/", "", "")
        )
        self.token = token
        self.cursors = Cursors(state)
        self.me: dict[str, Any] = {}
        self.mention: re.Pattern[str] | None = None
        # Whether the current connection got as far as `hello` (then the backoff starts over).
        self.greeted = False

    async def run(self) -> None:
        """Follow the stream for ever, reconnecting with backoff; return when refused."""
        failures = 0
        while True:
            try:
                await self.follow()
            except Refused as refused:
                logger.error("Refused by the server (%s): stopping.", refused)
                raise
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else 1006
                if code in REFUSED:
                    logger.error("Refused by the server (closed with %s): stopping.", code)
                    raise Refused(f"closed with {code}") from None
                logger.warning("The socket closed with %s; reconnecting", code)
            except (OSError, InvalidHandshake, TimeoutError, urllib.error.URLError) as error:
                logger.warning("Connection failed (%s); reconnecting", error)
            failures = 1 if self.greeted else failures + 1
            delay = random.uniform(0, min(BACKOFF_MOST, BACKOFF_FIRST * 2**failures))  # noqa: S311
            await asyncio.sleep(delay)

    async def follow(self) -> None:
        """One connection: sign in, say where the bot was, then handle every event."""
        self.greeted = False
        async with connect(self.socket_url, open_timeout=20) as socket:
            first: dict[str, Any] = {"type": "auth", "token": self.token}
            if self.cursors.known:
                first["cursors"] = self.cursors.numbers
            await socket.send(json.dumps(first))
            async for text in socket:
                await self.handle(json.loads(text))

    async def handle(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "hello":
            self.me = frame["user"]
            self.greeted = True
            self.mention = re.compile(rf"(?<![\w@.+-])@{re.escape(self.me['username'])}(?![\w@.+-])")
            # Where each chat starts: the cursors sent, or now for a first start.
            self.cursors.numbers = {chat: number for chat, number in frame["chats"].items()}
            self.cursors.save()
            logger.info("Signed in as %s, following %d chats", self.me["username"], len(frame["chats"]))
        elif kind == "error":
            if frame.get("code") in ("invalid_token", "not_authenticated", "auth_timeout"):
                raise Refused(frame.get("detail", frame.get("code")))
            logger.warning("The server says: %s", frame.get("detail"))
        elif kind == "chat.removed":
            self.cursors.forget(frame["chat"])
        elif kind == "resync":
            await self.resync(frame["chat"], frame["after"])
            self.cursors.set(frame["chat"], frame["event"])
        elif "event" in frame:
            await self.on_event(frame)
            if kind == "member.removed" and frame["user"]["id"] == self.me.get("id"):
                self.cursors.forget(frame["chat"])
            else:
                self.cursors.set(frame["chat"], frame["event"])

    async def on_event(self, event: dict[str, Any]) -> None:
        if event["type"] == "message.created":
            await self.answer(event["message"])

    async def resync(self, chat: int, after: int) -> None:
        """Too much was missed for the stream: read the chat's change feed instead."""
        logger.info("Reading chat %s's changes since event %s", chat, after)
        page: str | None = f"/api/chats/{chat}/messages/?since={after}"
        while page:
            found = await self.api.call("GET", page)
            for message in found["results"]:
                if not message.get("deleted"):
                    await self.answer(message)
            page = found.get("next")

    def mentions_me(self, message: dict[str, Any]) -> bool:
        return (
            self.mention is not None
            and message["user"]["id"] != self.me.get("id")
            and bool(self.mention.search(message["text"]))
        )

    async def answer(self, message: dict[str, Any]) -> None:
        if not self.mentions_me(message):
            return
        author = message["user"]["username"]
        reply = {
            "text": f"@{author} Hello! I saw your message #{message['id']}.",
            "client_id": str(uuid.uuid5(REPLY_NAMESPACE, f"{self.me['id']}:{message['id']}")),
        }
        try:
            await self.api.call("POST", f"/api/chats/{message['chat']}/messages/", reply)
        except urllib.error.HTTPError as error:
            if error.code >= 500:
                raise OSError(f"the server answered {error.code}") from error
            # 403, 404: the bot may no longer post there; nothing to retry.
            logger.warning("Could not reply to message %s: HTTP %s", message["id"], error.code)
            return
        logger.info("Replied to message %s in chat %s", message["id"], message["chat"])


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    token = os.environ.get("CHAT_TOKEN", "")
    if not token:
        print("Set CHAT_TOKEN to an API token's key.", file=sys.stderr)
        return 2
    bot = Bot(
        os.environ.get("CHAT_URL", "http://127.0.0.1:8000"),
        token,
        Path(os.environ.get("BOT_STATE", "bot-state.json")).resolve(),
    )
    try:
        asyncio.run(bot.run())
    except Refused:
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
