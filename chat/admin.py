"""The admin: a window on the chats, changing state only through the services.

Messages and chats are read-only here: a message saved by the admin would skip its
sequence and event numbers and its push, and a deletion would leave no tombstone.
What the admin may change (deleting messages, deactivating people, setting a password)
goes through the same service functions as the page, the socket and the API.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy, ngettext

from chat import services
from chat.models import ApiToken, Bot, Chat, Membership, Message


class ReadOnly:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MembershipInline(ReadOnly, admin.TabularInline):
    model = Membership
    extra = 0
    fields = ["user", "role", "joined_at", "last_read_message"]


@admin.register(Chat)
class ChatAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["name", "kind", "visibility", "auto_join", "created_by", "created_at"]
    list_filter = ["kind", "visibility", "auto_join"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(Message)
class MessageAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["id", "chat", "user", "text", "timestamp", "edited_at", "deleted_at"]
    list_filter = ["chat"]
    search_fields = ["text", "user__username"]
    list_select_related = ["chat", "user"]
    actions = ["delete_leaving_tombstones"]

    @admin.action(
        description=gettext_lazy("Delete the selected messages (each leaves a tombstone, pushed live)")
    )
    def delete_leaving_tombstones(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        user = request.user
        assert isinstance(user, User)
        deleted = 0
        for message in queryset.select_related("chat"):
            try:
                services.delete_message(message=message, user=user)
            except PermissionDenied as error:
                self.message_user(request, str(error), messages.ERROR)
                return
            deleted += 1
        self.message_user(
            request,
            ngettext("Deleted %(count)s message.", "Deleted %(count)s messages.", deleted)
            % {"count": deleted},
            messages.SUCCESS,
        )


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnly, admin.ModelAdmin):
    """Only digests are stored: a token is seen by its name and prefix, and revoked here."""

    list_display = ["name", "prefix", "user", "created_at", "last_used_at"]
    search_fields = ["name", "prefix", "user__username"]
    list_select_related = ["user"]
    actions = ["revoke"]

    @admin.action(description=gettext_lazy("Revoke the selected tokens (their sockets close)"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        tokens = list(queryset.select_related("user"))
        for token in tokens:
            services.accounts.revoke_token(user=token.user, token_id=token.pk)
        self.message_user(
            request,
            ngettext("Revoked %(count)s token.", "Revoked %(count)s tokens.", len(tokens))
            % {"count": len(tokens)},
            messages.SUCCESS,
        )


@admin.register(Bot)
class BotAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["user", "owner", "created_at"]
    search_fields = ["user__username", "owner__username"]
    list_select_related = ["user", "owner"]


class ServicePasswordForm(AdminPasswordChangeForm):
    """The admin's "change password" form, through the service: the user's sockets close."""

    def save(self, commit: bool = True) -> Any:
        password = self.cleaned_data.get("password1")
        if password:
            services.change_password(user=self.user, password=password)
            return self.user
        return super().save(commit)


admin.site.unregister(User)


@admin.register(User)
class AccountAdmin(UserAdmin):
    change_password_form = ServicePasswordForm

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        deactivated = change and "is_active" in form.changed_data and not obj.is_active
        super().save_model(request, obj, form, change)
        if deactivated:
            # Sessions, token and open sockets end with the account.
            services.deactivate_user(user=obj)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.close_sockets(user=obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for user in queryset:
            services.close_sockets(user=user)
        super().delete_queryset(request, queryset)
