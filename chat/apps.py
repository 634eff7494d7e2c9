from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_save


def joined_auto_rooms(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if created and not raw:
        from chat.services.accounts import join_auto_rooms

        join_auto_rooms(user=instance)


class ChatConfig(AppConfig):
    name = "chat"

    def ready(self) -> None:
        # A state rule, not a push: however an account is created, it joins General.
        post_save.connect(joined_auto_rooms, sender=settings.AUTH_USER_MODEL, dispatch_uid="chat.auto_join")
