"""manage.py create_bot <username> [--owner <username>] [--token-name NAME]

Creates a bot account (no password: it signs in with API tokens only; it joins General like
every account) and prints its first token's key, alone on stdout, so that a script can
capture it: `TOKEN=$(python manage.py create_bot weather-bot)`. The key is shown this once.
Works whatever BOT_SIGNUP says, which governs the API only.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chat import services


class Command(BaseCommand):
    help = "Create a bot account and print its API token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="The bot's username (the sign-up form's rules).")
        parser.add_argument("--owner", help="The username of the person who looks after the bot.")
        parser.add_argument("--token-name", default="", help='The token\'s name ("Bot token" if left out).')

    def handle(self, *args: Any, **options: Any) -> None:
        owner = None
        if options["owner"]:
            owner = User.objects.filter(username=options["owner"], is_active=True).first()
            if owner is None:
                raise CommandError(f"No active account is called {options['owner']}.")
        try:
            bot, new = services.create_bot(
                username=options["username"], owner=owner, token_name=options["token_name"]
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stderr.write(
            f"Created the bot {bot.username} (id {bot.pk}). Its token, shown this once, "
            "goes in `Authorization: Token <key>`:"
        )
        self.stdout.write(new.key)
