from django.urls import path

from chat import attachment_views, export, reaction_views, search_views, theme_views, views

app_name = "chat"

urlpatterns = [
    path("", views.home, name="home"),
    path("theme/", theme_views.set_theme, name="theme"),
    path("chats/", views.chat_list, name="list"),
    path("search/", search_views.search_page, name="search"),
    path("chats/new/", views.chat_create, name="new"),
    path("chats/sidebar/", views.chat_sidebar, name="sidebar"),
    path("chats/<int:chat_id>/", views.chat_detail, name="detail"),
    path("chats/<int:chat_id>/messages/", views.chat_messages, name="messages"),
    path("chats/<int:chat_id>/read/", views.chat_read, name="read"),
    path("chats/<int:chat_id>/mentions/", views.mention_suggestions, name="mentions"),
    path("chats/<int:chat_id>/export/", export.export_chat, name="export"),
    path("chats/direct/", views.direct_chat, name="direct"),
    path("files/<int:attachment_id>/", attachment_views.download, name="attachment"),
    path("files/<int:attachment_id>/thumbnail/", attachment_views.thumbnail, name="attachment_thumbnail"),
    path("chats/<int:chat_id>/join/", views.chat_join, name="join"),
    path("chats/<int:chat_id>/leave/", views.chat_leave, name="leave"),
    path("chats/<int:chat_id>/messages/<int:message_id>/edit/", views.message_edit, name="message_edit"),
    path(
        "chats/<int:chat_id>/messages/<int:message_id>/delete/", views.message_delete, name="message_delete"
    ),
    path("chats/<int:chat_id>/pins/", reaction_views.pins, name="pins"),
    path(
        "chats/<int:chat_id>/messages/<int:message_id>/reactions/", reaction_views.react, name="message_react"
    ),
    path("chats/<int:chat_id>/messages/<int:message_id>/pin/", reaction_views.pin, name="message_pin"),
    path(
        "chats/<int:chat_id>/messages/<int:message_id>/react/", reaction_views.picker, name="message_picker"
    ),
]
