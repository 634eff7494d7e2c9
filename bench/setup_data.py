"""Create the benchmark's users, chats, memberships and sessions, and write them as JSON.

Run with the server's DATABASE_URL, after `manage.py migrate`:

    python -m bench.setup_data --users 10000 --out plan.json

User i is a member of: idle room i % idle_rooms (the idle sockets), the fan-out room
if i < fanout_members, and traffic room i // room_members if i < rooms * room_members.
The JSON gives each user's session cookie and each scenario's chat ids, which the
seed and the floor use as room names too.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import secrets
import sys
import time
from typing import Any


def create(
    *, users: int, idle_rooms: int, fanout_members: int, rooms: int, room_members: int
) -> dict[str, Any]:
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.db import transaction
    from django.utils import timezone

    from chat.models import Chat, Membership

    needed = max(fanout_members, rooms * room_members)
    if users < needed:
        raise SystemExit(f"--users must be at least {needed}")
    prefix = f"bench{int(time.time() * 1000) % 10**9}"
    # One hash for everybody: hashing is slow on purpose, and nobody signs in with it.
    password = make_password("bench-password-not-secret")
    with transaction.atomic():
        accounts = User.objects.bulk_create(
            [User(username=f"{prefix}_{i}", password=password) for i in range(users)], batch_size=1000
        )
        if any(account.pk is None for account in accounts):
            accounts = list(User.objects.filter(username__startswith=f"{prefix}_").order_by("pk"))
        idle = [
            Chat.objects.create(name=f"{prefix} idle {r}", kind="room", visibility="public")
            for r in range(idle_rooms)
        ]
        fanout = Chat.objects.create(name=f"{prefix} fan-out", kind="room", visibility="public")
        traffic = [
            Chat.objects.create(name=f"{prefix} room {r}", kind="room", visibility="public")
            for r in range(rooms)
        ]
        memberships = [
            Membership(user=account, chat=idle[i % idle_rooms]) for i, account in enumerate(accounts)
        ]
        memberships += [Membership(user=account, chat=fanout) for account in accounts[:fanout_members]]
        memberships += [
            Membership(user=account, chat=traffic[i // room_members])
            for i, account in enumerate(accounts[: rooms * room_members])
        ]
        Membership.objects.bulk_create(memberships, batch_size=2000)
        store = SessionStore()
        expires = timezone.now() + datetime.timedelta(days=1)
        auth_hash = accounts[0].get_session_auth_hash()
        sessions = []
        for account in accounts:
            data = {
                "_auth_user_id": str(account.pk),
                "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
                "_auth_user_hash": auth_hash,
            }
            sessions.append(
                Session(
                    session_key=secrets.token_hex(16), session_data=store.encode(data), expire_date=expires
                )
            )
        Session.objects.bulk_create(sessions, batch_size=1000)
    return {
        "cookies": [session.session_key for session in sessions],
        "idle": [chat.pk for chat in idle],
        "fanout": fanout.pk,
        "rooms": [chat.pk for chat in traffic],
        "room_members": room_members,
        "fanout_members": fanout_members,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--idle-rooms", type=int, default=100)
    parser.add_argument("--fanout-members", type=int, default=1000)
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--room-members", type=int, default=10)
    parser.add_argument("--out", required=True)
    arguments = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, os.getcwd())
    import django

    django.setup()
    started = time.monotonic()
    plan = create(
        users=arguments.users,
        idle_rooms=arguments.idle_rooms,
        fanout_members=arguments.fanout_members,
        rooms=arguments.rooms,
        room_members=arguments.room_members,
    )
    with open(arguments.out, "w") as file:
        json.dump(plan, file)
    print(
        f"created {arguments.users} users and sessions in {time.monotonic() - started:.1f} s", file=sys.stderr
    )


if __name__ == "__main__":
    main()
