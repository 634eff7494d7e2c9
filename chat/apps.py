from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_save, pre_save


def joined_auto_rooms(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if created and not raw:
        from chat.services.accounts import join_auto_rooms

        join_auto_rooms(user=instance)


def renaming(sender: Any, instance: Any, raw: bool = False, update_fields: Any = None, **kwargs: Any) -> None:
    if raw or instance.pk is None or (update_fields is not None and "username" not in update_fields):
        return
    from chat import fragments

    if sender.objects.filter(pk=instance.pk).values_list("username", flat=True).first() != instance.username:
        fragments.renamed()


class ChatConfig(AppConfig):
    name = "chat"

    def ready(self) -> None:
        # A state rule, not a push: however an account is created, it joins General.
        post_save.connect(joined_auto_rooms, sender=settings.AUTH_USER_MODEL, dispatch_uid="chat.auto_join")
        # Messages show their reactors' names: a rename makes every cached message HTML old.
        pre_save.connect(renaming, sender=settings.AUTH_USER_MODEL, dispatch_uid="chat.renaming")
