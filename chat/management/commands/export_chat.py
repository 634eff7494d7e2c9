"""manage.py export_chat --chat <id> | --user <username> [--output DIR] [--format json,html]

Writes the chat (or every chat the user is a member of) as JSON and as a self-contained
static HTML archive into the output directory, with a progress bar on stderr for long
exports. Only reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chat.export import chats_of, chunks, count_messages
from chat.models import Chat

# A bar appears for exports of at least this many messages (per format).
PROGRESS_FROM = 1000


class ProgressBar:
    """`[#####.....]  52% 5,200/10,000 messages` on one line of stderr, redrawn at most ten
    times a second."""

    WIDTH = 30

    def __init__(self, total: int, label: str, write: Callable[[str], None]) -> None:
        self.total = total
        self.label = label
        self.write = write
        self.done = 0
        self.drawn = 0.0
        self.shown = total >= PROGRESS_FROM

    def __call__(self) -> None:
        self.done += 1
        if self.shown and time.monotonic() - self.drawn >= 0.1:
            self.draw()

    def draw(self) -> None:
        self.drawn = time.monotonic()
        share = self.done / self.total if self.total else 1.0
        filled = int(share * self.WIDTH)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.write(f"\r{self.label} [{bar}] {share:4.0%} {self.done:,}/{self.total:,} messages")

    def finish(self) -> None:
        if self.shown:
            self.draw()
            self.write("\n")


class Command(BaseCommand):
    help = "Export a chat, or every chat of a user, as JSON and as a static HTML archive."

    def progress_write(self, text: str) -> None:
        self.stderr.write(text, ending="")
        self.stderr.flush()

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--chat", type=int, help="the chat's id")
        which.add_argument("--user", help="a username: every chat they are a member of")
        parser.add_argument("--output", default="export", help="the directory to write to (default: export)")
        parser.add_argument(
            "--format", default="json,html", help="json, html or both, comma-separated (default: both)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        formats = [fmt.strip() for fmt in options["format"].split(",") if fmt.strip()]
        if not formats or set(formats) - {"json", "html"}:
            raise CommandError("--format takes json, html or json,html.")
        if options["chat"] is not None:
            try:
                chat = Chat.objects.get(pk=options["chat"])
            except Chat.DoesNotExist:
                raise CommandError(f"No chat with id {options['chat']}.") from None
            chats, name, title = [chat], f"chat-{chat.pk}", chat.name
        else:
            try:
                user = User.objects.get(username=options["user"])
            except User.DoesNotExist:
                raise CommandError(f"No user named {options['user']!r}.") from None
            chats, name, title = chats_of(user), f"user-{user.username}", f"Chats of {user.username}"
        output = Path(options["output"])
        output.mkdir(parents=True, exist_ok=True)
        total = count_messages(chats)
        for fmt in formats:
            path = output / f"{name}.{fmt}"
            bar = ProgressBar(total, path.name, self.progress_write)
            with path.open("w", encoding="utf-8") as file:
                for chunk in chunks(fmt, chats, title, bar):
                    file.write(chunk)
            bar.finish()
            self.stdout.write(f"Wrote {path} ({len(chats)} chats, {bar.done:,} messages).")
