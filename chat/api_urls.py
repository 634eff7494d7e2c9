"""The REST API's routes, under /api/ (see chat.api for what each does)."""

from django.urls import path, re_path

from chat import api

app_name = "api"

urlpatterns = [
    path("auth/token/", api.TokenView.as_view(), name="token"),
    path("users/", api.UserList.as_view(), name="users"),
    path("users/me/", api.Me.as_view(), name="me"),
    path("chats/", api.ChatList.as_view(), name="chats"),
    path("chats/direct/", api.DirectChat.as_view(), name="direct"),
    path("chats/<int:chat_id>/", api.ChatDetail.as_view(), name="chat"),
    path("chats/<int:chat_id>/join/", api.ChatJoin.as_view(), name="join"),
    path("chats/<int:chat_id>/leave/", api.ChatLeave.as_view(), name="leave"),
    path("chats/<int:chat_id>/members/", api.ChatMembers.as_view(), name="members"),
    path("chats/<int:chat_id>/members/<int:user_id>/", api.ChatMember.as_view(), name="member"),
    path("chats/<int:chat_id>/messages/", api.ChatMessages.as_view(), name="messages"),
    path("messages/<int:message_id>/", api.MessageDetail.as_view(), name="message"),
    path("schema/", api.SchemaView.as_view(), name="schema"),
    path("docs/", api.DocsView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", api.RedocView.as_view(url_name="api:schema"), name="redoc"),
    # Anything else under /api/ is a JSON 404, not the site's HTML page.
    re_path(r"^(?P<path>.*)$", api.not_found),
]
