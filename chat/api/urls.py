"""The REST API's routes, under /api/ (see chat.api.views for what each does)."""

from django.urls import path, re_path

from chat.api import errors, views

app_name = "api"

urlpatterns = [
    path("auth/token/", views.TokenView.as_view(), name="token"),
    path("users/", views.UserList.as_view(), name="users"),
    path("users/me/", views.Me.as_view(), name="me"),
    path("chats/", views.ChatList.as_view(), name="chats"),
    path("chats/direct/", views.DirectChat.as_view(), name="direct"),
    path("chats/<int:chat_id>/", views.ChatDetail.as_view(), name="chat"),
    path("chats/<int:chat_id>/join/", views.ChatJoin.as_view(), name="join"),
    path("chats/<int:chat_id>/leave/", views.ChatLeave.as_view(), name="leave"),
    path("chats/<int:chat_id>/members/", views.ChatMembers.as_view(), name="members"),
    path("chats/<int:chat_id>/members/<int:user_id>/", views.ChatMember.as_view(), name="member"),
    path("chats/<int:chat_id>/messages/", views.ChatMessages.as_view(), name="messages"),
    path("messages/<int:message_id>/", views.MessageDetail.as_view(), name="message"),
    path("schema/", views.SchemaView.as_view(), name="schema"),
    path("docs/", views.DocsView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", views.RedocView.as_view(url_name="api:schema"), name="redoc"),
    # Anything else under /api/ is a JSON 404, not the site's HTML page.
    re_path(r"^(?P<path>.*)$", errors.not_found),
]
