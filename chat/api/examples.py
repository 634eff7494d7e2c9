"""Examples of the REST API's requests and answers, for the OpenAPI document (/api/docs/).

One example per shape, reused by every operation that sends or returns it; the examples of
errors are with their responses in chat.api.errors. A list's example is one item: the
schema generator wraps it in the list's page.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample

WHEN = "2026-11-28T12:00:00Z"
LATER = "2026-11-28T12:05:00Z"
CLIENT_ID = "5b0e7a52-6f9e-4a57-9d4c-2f0cba3c61a7"
# What a key looks like (secrets.token_urlsafe(32)); not a real one.
KEY = "Xk3f9Q2aV7mLr0tW8yBn4cJ1sD6hG5uE2pK9zA3qT0o"

USER = {"id": 2, "username": "ada"}
CHAT = {
    "id": 7,
    "name": "Planning",
    "kind": "room",
    "visibility": "public",
    "topic": "What ships next",
    "created_at": WHEN,
    "role": "owner",
    "last_event": 15,
}
MESSAGE = {
    "id": 42,
    "chat": 7,
    "user": USER,
    "text": "Hello, **everyone**",
    "html": "<p>Hello, <strong>everyone</strong></p>",
    "reply_to": None,
    "timestamp": WHEN,
    "edited_at": None,
    "client_id": CLIENT_ID,
    "seq": 12,
    "event": 15,
    "deleted": False,
    "attachments": [],
}
MEMBER = {"user": {"id": 5, "username": "grace"}, "role": "member", "joined_at": WHEN}
TOKEN = {
    "id": 3,
    "name": "weather bot",
    "prefix": KEY[:8],
    "created_at": WHEN,
    "last_used_at": LATER,
    "current": False,
}
BOT = {"id": 9, "username": "weather-bot", "active": True, "created_at": WHEN}


# Bodies come as JSON or as a form (chat.api.parsers), and some as multipart (with files):
# the example is shown for each an operation takes.
BODY_TYPES = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")


def request(name: str, value: Any, summary: str = "") -> list[OpenApiExample]:
    return [
        OpenApiExample(name, value=value, summary=summary or name, request_only=True, media_type=media_type)
        for media_type in BODY_TYPES
    ]


def response(name: str, value: Any, status: int = 200, summary: str = "") -> OpenApiExample:
    return OpenApiExample(
        name, value=value, summary=summary or name, response_only=True, status_codes=[str(status)]
    )


# --- Tokens and bots ----------------------------------------------------------------

CREDENTIALS = request(
    "Username and password",
    {"username": "ada", "password": "correct-horse-battery-42", "name": "deploy script"},
)
NEW_TOKEN = response(
    "A new token",
    {"token": KEY, **TOKEN, "name": "deploy script", "last_used_at": None, "current": False},
    201,
)
TOKEN_NAME = request("A named token", {"name": "weather bot"})
TOKENS = response("Your tokens", {**TOKEN, "current": True})
ONE_TOKEN = response("A token", TOKEN)
BOT_REQUEST = request("A bot", {"username": "weather-bot", "token_name": "production"})
BOT_CREATED = response("A new bot", {"id": 9, "username": "weather-bot", "token": KEY}, 201)
BOTS = response("Your bots", BOT)
ONE_BOT = response("A bot", BOT)

# --- Users --------------------------------------------------------------------------

USERS = response("Users", USER)
ME = response("You", USER)

# --- Chats --------------------------------------------------------------------------

CHATS = response("Chats", CHAT)
ONE_CHAT = response("A chat", CHAT)
ROOM_REQUEST = request(
    "A private room with members",
    {"name": "Planning", "visibility": "private", "participants": [5], "client_id": CLIENT_ID},
)
ROOM_CREATED = response(
    "A new room", {**CHAT, "visibility": "private", "last_event": 1, "participants": [2, 5]}, 201
)
ROOM_REPLAYED = response(
    "A replayed client_id", {**CHAT, "visibility": "private", "participants": [2, 5]}, 200
)
ROOM_UPDATE = request("A new topic", {"topic": "What ships next"})
ANOTHER_USER = request("Someone", {"user": 5})
DIRECT_CHAT = {
    **CHAT,
    "id": 8,
    "name": "ada & grace",
    "kind": "direct",
    "visibility": "private",
    "topic": "",
    "role": "member",
}
DIRECT_CREATED = response("A new direct chat", DIRECT_CHAT, 201)
DIRECT_EXISTING = response("The direct chat you already had", DIRECT_CHAT, 200)
JOINED = response("The room you joined", {**CHAT, "role": "member"})
MEMBERS = response("Members", MEMBER)
MEMBER_ADDED = response("A new member", MEMBER, 201)
ALREADY_MEMBER = response("Someone already a member", MEMBER, 200)
ONE_MEMBER = response("A member", MEMBER)

# --- Messages -----------------------------------------------------------------------

MESSAGES = response("Messages", MESSAGE)
ONE_MESSAGE = response("A message", MESSAGE)
MESSAGE_REQUEST = request("A message", {"text": "Hello, **everyone**", "client_id": CLIENT_ID})
FLAT_MESSAGE_REQUEST = request(
    "A message to chat 7", {"chat": 7, "text": "Hello, **everyone**", "client_id": CLIENT_ID}
)
MESSAGE_POSTED = response("A new message", MESSAGE, 201)
MESSAGE_REPLAYED = response("A replayed client_id", MESSAGE, 200)
EDIT_REQUEST = request("New text", {"text": "Hello, **everyone** (edited)"})
EDITED = response(
    "The edited message",
    {
        **MESSAGE,
        "text": "Hello, **everyone** (edited)",
        "html": "<p>Hello, <strong>everyone</strong> (edited)</p>",
        "edited_at": LATER,
    },
)
