"""A room's members and settings: /chats/<id>/members/ and /chats/<id>/settings/."""

from django.urls import path

from chat import room_views

app_name = "rooms"

urlpatterns = [
    path("chats/<int:chat_id>/members/", room_views.members, name="members"),
    path("chats/<int:chat_id>/members/suggest/", room_views.suggest, name="suggest"),
    path("chats/<int:chat_id>/members/<int:user_id>/remove/", room_views.remove_member, name="remove_member"),
    path("chats/<int:chat_id>/settings/", room_views.room_settings, name="settings"),
]
