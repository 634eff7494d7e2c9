from django.contrib import admin

from chat.models import Chat, Membership, Message


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user", "last_read_message"]


@admin.register(Chat)
class ChatAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "visibility", "auto_join", "created_by", "created_at"]
    list_filter = ["kind", "visibility", "auto_join"]
    search_fields = ["name"]
    raw_id_fields = ["created_by"]
    inlines = [MembershipInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "chat", "user", "text", "timestamp", "edited_at"]
    list_filter = ["chat"]
    search_fields = ["text", "user__username"]
    raw_id_fields = ["chat", "user"]
    list_select_related = ["chat", "user"]
