"""manage.py prune_events [--days N]

Forgets the event stream's stored events older than N days (30 by default). The record of
the chats is the messages themselves; a program that comes back after longer than that is
told to resync each chat from the REST change feed. Run it daily (cron, a timer).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from chat import events


class Command(BaseCommand):
    help = "Forget the event stream's events older than --days (30 by default)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=30, help="keep this many days of events")

    def handle(self, *args: Any, days: int, **options: Any) -> None:
        deleted = events.prune(before=timezone.now() - timedelta(days=days))
        self.stdout.write(f"{deleted} event(s) older than {days} day(s) forgotten.")
