"""What the HTTP benchmark's clients send (bench/http.py), and the scripts that prepare the
database for them and audit what they wrote."""

from __future__ import annotations

import argparse
import json
import urllib.parse
import uuid

from bench.http_load import Client, Maker, Request

# What each request type is, as printed. The chat's run on one daphne measures OURS.
LABELS = {
    "hello": "bare Django hello (the floor)",
    "socket-hello": "bare socket connect + close",
    "stack": "middleware stack, empty view",
    "page": "room page, 50 messages",
    "form": "form post (302)",
    "api": "API post (201)",
    "send": "socket send (acknowledged)",
    "connect": "socket connect + close",
    "peer-page": "peer: page",
    "peer-post": "peer: form post",
}
OURS = ("stack", "page", "form", "api", "send", "connect")
ON_LAYOUTS = ("stack", "page", "form")
WRITES = ("form", "api", "send")

# Two rooms and two groups of people: the readers load the room of 50 messages (and open
# sockets to it), the writers post to a room of their own. The page's cost then stays that
# of 50 messages whatever was posted before it, and its chat list counts no unread posts.
SETUP = """
import json, sys
import django
django.setup()
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from chat.models import Chat, Membership
from chat import services
from chat.services.accounts import issue_token
def person(name, room):
    user = User.objects.create_user(name)
    Membership.objects.get_or_create(user=user, chat=room)
    # Signed in as Django's login does it (the session engine's own store).
    client = Client()
    client.force_login(user)
    return user, client.cookies[settings.SESSION_COOKIE_NAME].value
page_room = Chat.objects.create(name="HTTP bench", kind="room", visibility="public")
write_room = Chat.objects.create(name="HTTP bench posts", kind="room", visibility="public")
readers = [person(f"http_bench_reader_{i}", page_room) for i in range(int(sys.argv[1]))]
writers = [person(f"http_bench_writer_{i}", write_room) for i in range(int(sys.argv[1]))]
for i in range(50):
    services.post_message(chat=page_room, user=readers[i % len(readers)][0],
                          text=f"A message of ordinary length, number {i}, to fill the page.")
print(json.dumps({
    "page_chat": page_room.pk,
    "write_chat": write_room.pk,
    "readers": [session for _, session in readers],
    "writers": [session for _, session in writers],
    "tokens": [issue_token(user=user, name="bench").key for user, _ in writers],
}))
"""

# Per write scenario, how many of the client ids it sent are stored (and in how many rows).
# Then the writers' room is emptied, so that each layout is measured on the same database.
# (The room page's chat list used to read every message of the database to find each chat's
# last one, and each layout's page paid for the posts of the layouts measured before it.)
AUDIT = """
import json, sys
import django
django.setup()
from chat.models import Message
def stored(ids):
    found, rows = set(), 0
    for start in range(0, len(ids), 500):
        chunk = Message.objects.filter(client_id__in=ids[start:start + 500])
        for value in chunk.values_list("client_id", flat=True):
            rows += 1
            found.add(str(value))
    return len(found), rows
out = {}
for key, sent in json.load(open(sys.argv[1])).items():
    acked_stored, rows = stored(sent["acked"])
    unacked_stored, _ = stored(sent["unacked"])
    out[key] = {"stored": acked_stored, "rows": rows, "unacked_stored": unacked_stored}
Message.objects.filter(chat_id=int(sys.argv[2])).delete()
print(json.dumps(out))
"""


def ours(kind: str, chat: int, origin: str) -> Maker:
    """What the chat's clients send for one request type, to the chat `chat` of the server at
    `origin`."""

    def make(client: Client, sequence: int) -> Request:
        headers = {"Cookie": client.cookie_header()}
        if kind in ("hello", "stack"):
            return Request("GET", "/bench-hello/", headers)
        if kind == "page":
            return Request("GET", f"/chats/{chat}/", headers)
        client_id = str(uuid.uuid4())
        text = f"A message from the HTTP benchmark, number {sequence}."
        if kind == "api":
            headers = {"Authorization": f"Token {client.token}", "Content-Type": "application/json"}
            body = json.dumps({"text": text, "client_id": client_id})
            return Request("POST", f"/api/chats/{chat}/messages/", headers, body.encode(), 201, client_id)
        # The composer's plain post, as a browser sends it without JavaScript (multipart: the
        # form takes files; none chosen).
        fields = {"csrfmiddlewaretoken": client.cookies["csrftoken"], "reply_to": ""}
        fields.update(text=text, client_id=client_id)
        boundary = uuid.uuid4().hex
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{n}"\r\n\r\n{v}\r\n'
            for n, v in fields.items()
        ]
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename=""\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n\r\n--{boundary}--\r\n"
        )
        headers.update(
            {
                "Origin": origin,
                "Referer": f"{origin}/chats/{chat}/",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            }
        )
        return Request("POST", f"/chats/{chat}/messages/", headers, "".join(parts).encode(), 302, client_id)

    return make


def peer(kind: str, arguments: argparse.Namespace) -> Maker:
    """What the clients send a peer: its page, or its form post with the CSRF token from the
    `csrftoken` cookie (the page sets it if the given cookies lack it)."""
    origin = arguments.peer_url.rstrip("/")
    fields = urllib.parse.parse_qsl(arguments.peer_fields, keep_blank_values=True)

    def make(client: Client, sequence: int) -> Request:
        headers = {"Cookie": client.cookie_header()}
        if kind == "peer-page":
            return Request("GET", arguments.peer_page, headers, expected=arguments.peer_page_status)
        marker = str(uuid.uuid4())
        values = [
            (name, value.replace("{n}", str(sequence)).replace("{uuid}", marker)) for name, value in fields
        ]
        csrf = client.cookies.get("csrftoken")
        if csrf:
            values.append((arguments.peer_csrf_field, csrf))
            headers["X-CSRFToken"] = csrf
        headers.update(
            {
                "Origin": origin,
                "Referer": origin + (arguments.peer_page or arguments.peer_post),
                "Content-Type": "application/x-www-form-urlencoded",
            }
        )
        body = urllib.parse.urlencode(values).encode()
        return Request("POST", arguments.peer_post, headers, body, arguments.peer_post_status)

    return make
