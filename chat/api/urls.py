"""The REST API's routes, under /api/ (chat.api.views, chats and messages say what each does)."""

from django.urls import path, re_path
from django.views.generic import RedirectView

from chat.api import bots, chats, errors, messages, reactions, search, tokens, views

app_name = "api"

urlpatterns = [
    path("auth/token/", tokens.TokenView.as_view(), name="token"),
    path("tokens/", tokens.TokenList.as_view(), name="tokens"),
    path("tokens/<int:token_id>/", tokens.TokenDetail.as_view(), name="token_detail"),
    path("bots/", bots.BotList.as_view(), name="bots"),
    path("bots/<int:bot_id>/", bots.BotDetail.as_view(), name="bot"),
    path("users/", views.UserList.as_view(), name="users"),
    path("users/me/", views.Me.as_view(), name="me"),
    path("chats/", chats.ChatList.as_view(), name="chats"),
    path("chats/direct/", chats.DirectChat.as_view(), name="direct"),
    path("chats/<int:chat_id>/", chats.ChatDetail.as_view(), name="chat"),
    path("chats/<int:chat_id>/join/", chats.ChatJoin.as_view(), name="join"),
    path("chats/<int:chat_id>/leave/", chats.ChatLeave.as_view(), name="leave"),
    path("chats/<int:chat_id>/members/", chats.ChatMembers.as_view(), name="members"),
    path("chats/<int:chat_id>/members/<int:user_id>/", chats.ChatMember.as_view(), name="member"),
    path("chats/<int:chat_id>/messages/", messages.ChatMessages.as_view(), name="messages"),
    path("messages/", messages.FlatMessages.as_view(), name="flat_messages"),
    path("messages/<int:message_id>/", messages.MessageDetail.as_view(), name="message"),
    path("messages/<int:message_id>/reactions/", reactions.MessageReactions.as_view(), name="reactions"),
    path(
        "messages/<int:message_id>/reactions/<str:emoji>/",
        reactions.MessageReaction.as_view(),
        name="reaction",
    ),
    path("messages/<int:message_id>/pin/", reactions.MessagePin.as_view(), name="pin"),
    path("chats/<int:chat_id>/pins/", reactions.ChatPins.as_view(), name="pins"),
    path("search/", search.Search.as_view(), name="search"),
    path("schema/", views.SchemaView.as_view(), name="schema"),
    path("asyncapi.yaml", views.AsyncApiView.as_view(), name="asyncapi"),
    path("docs/", views.DocsView.as_view(url_name="api:schema"), name="docs"),
    # Redoc loaded its logo from a CDN and needed inline styles: its old address leads here.
    path("redoc/", RedirectView.as_view(pattern_name="api:docs", permanent=True), name="redoc"),
    # Anything else under /api/ is a JSON 404, not the site's HTML page.
    re_path(r"^(?P<path>.*)$", errors.not_found),
]
