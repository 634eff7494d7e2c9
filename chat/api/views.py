"""The REST API: thin adapters from HTTP to the services.

Reads use the QuerySets of chat.models; every change of chat state goes through
chat.services, which pushes it to open browsers after commit, exactly as a message typed
in the page is pushed. The services raise Django's exceptions, and the exception handler
below maps them: ValidationError to 400 with DRF's error body, PermissionDenied to 403
(services raise it only about a chat the caller can see) and Http404 to 404 (a chat the
caller may not see does not exist for them).
"""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404
from django.utils.decorators import method_decorator
from django.views.decorators.csp import csp_override
from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.utils import OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework import generics, status
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chat import services
from chat.account_views import client_address
from chat.api.errors import BODY, RETRY_AFTER, errors, validated
from chat.api.pagination import MessagePages, Pages
from chat.models import Chat, Membership, Message
from chat.serializers import (
    VIEWER_ROLE,
    ChatSerializer,
    MemberSerializer,
    MessageCreateSerializer,
    MessageEditSerializer,
    MessageQuerySerializer,
    MessageSerializer,
    RoomCreateSerializer,
    RoomUpdateSerializer,
    TokenSerializer,
    UserChoiceSerializer,
    UserQuerySerializer,
    UserSerializer,
)

# --- Helpers ------------------------------------------------------------------------


def signed_in(request: Request) -> User:
    """The caller; every view but the token's requires authentication before it runs."""
    return cast(User, request.user)


def created_or_replayed(data: Any, created: bool) -> Response:
    return Response(data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


# --- Tokens -------------------------------------------------------------------------


class TokenView(APIView):
    def get_permissions(self) -> list[Any]:
        if self.request.method == "POST":
            return [AllowAny()]
        return list(super().get_permissions())

    @extend_schema(
        operation_id="auth_token_obtain",
        summary="Obtain your API token",
        description=(
            "Send `username` and `password`; the answer's token goes in `Authorization: Token <key>`. "
            "The same token is returned until it is revoked. Attempts are rated per account and per "
            "address, together with the login page's; past the rate the answer is 429, without "
            "checking the password."
        ),
        request=AuthTokenSerializer,
        parameters=[RETRY_AFTER],
        responses={200: TokenSerializer, **errors(*BODY, 429)},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        serializer = AuthTokenSerializer(data=request.data, context={"request": request})
        # The fields' types first (a 400), then the attempt is counted, before any password is hashed.
        credentials = serializer.to_internal_value(request.data)
        # Past the rate: RateLimited, a 429 in the login page's words (chat.api.errors).
        services.check_login_attempt(username=credentials["username"], address=client_address(request))
        serializer.is_valid(raise_exception=True)
        return Response({"token": services.issue_token(user=serializer.validated_data["user"]).key})

    @extend_schema(
        operation_id="auth_token_revoke",
        summary="Revoke your API token",
        description="The token stops working at once; POST again for a new one.",
        request=None,
        responses={204: None, **errors()},
    )
    def delete(self, request: Request) -> Response:
        services.revoke_token(user=signed_in(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Users --------------------------------------------------------------------------


@extend_schema(
    summary="List users",
    description=(
        "You and the active accounts you share a chat with, by id. With `username`, the active "
        "account of exactly that name, whether or not you share a chat: how to find someone to "
        "add to a room or to write to directly. Nobody else is listed, so that the list does "
        "not reveal who has an account."
    ),
    parameters=[UserQuerySerializer],
    responses={200: UserSerializer(many=True), **errors(400, 404)},
)
class UserList(generics.ListAPIView[User]):
    serializer_class = UserSerializer
    pagination_class = Pages

    def get_queryset(self) -> QuerySet[User]:
        users = User.objects.filter(is_active=True)
        username = validated(UserQuerySerializer, self.request.query_params).get("username")
        if username is not None:
            return users.filter(username=username).order_by("pk")
        user = signed_in(self.request)
        my_chats = Membership.objects.filter(user=user).values("chat")
        companions = Membership.objects.filter(chat__in=my_chats).values("user")
        return (users.filter(pk__in=companions) | users.filter(pk=user.pk)).order_by("pk")


class Me(APIView):
    @extend_schema(summary="Who you are", responses={200: UserSerializer, **errors()})
    def get(self, request: Request) -> Response:
        return Response(UserSerializer(signed_in(request)).data)


# --- Chats --------------------------------------------------------------------------


class ChatList(generics.GenericAPIView[Chat]):
    serializer_class = ChatSerializer
    pagination_class = Pages

    def get_queryset(self) -> QuerySet[Chat]:
        user = signed_in(self.request)
        role = Membership.objects.filter(chat=OuterRef("pk"), user=user).values("role")[:1]
        return Chat.objects.visible_to(user).annotate(**{VIEWER_ROLE: Subquery(role)}).order_by("name", "pk")

    @extend_schema(
        summary="List your chats and the public rooms",
        responses={200: ChatSerializer(many=True), **errors(404)},
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        summary="Create a room that you own",
        request=RoomCreateSerializer,
        responses={201: ChatSerializer, **errors(*BODY)},
    )
    def post(self, request: Request) -> Response:
        chat = services.create_room(user=signed_in(request), **validated(RoomCreateSerializer, request.data))
        return Response(self.get_serializer(chat).data, status=status.HTTP_201_CREATED)


class ChatDetail(generics.GenericAPIView[Chat]):
    serializer_class = ChatSerializer

    @extend_schema(summary="A chat", responses={200: ChatSerializer, **errors(404)})
    def get(self, request: Request, chat_id: int) -> Response:
        chat = services.get_visible_chat(user=signed_in(request), chat_id=chat_id)
        return Response(self.get_serializer(chat).data)

    @extend_schema(
        summary="Change a room's name, topic or visibility (its owner)",
        description="Fields left out stay as they are. Members' pages and chat lists show the change live.",
        request=RoomUpdateSerializer,
        parameters=[RETRY_AFTER],
        responses={200: ChatSerializer, **errors(*BODY, 404, 429)},
    )
    def patch(self, request: Request, chat_id: int) -> Response:
        user = signed_in(request)
        chat = services.get_visible_chat(user=user, chat_id=chat_id)
        data = validated(RoomUpdateSerializer, request.data)
        chat = services.update_room(
            chat=chat,
            by=user,
            name=data.get("name", chat.name),
            topic=data.get("topic", chat.topic),
            visibility=data.get("visibility", chat.visibility),
        )
        return Response(self.get_serializer(chat).data)


class ChatJoin(generics.GenericAPIView[Chat]):
    serializer_class = ChatSerializer

    @extend_schema(
        summary="Join a public room",
        description="Joining a room twice is harmless. Private rooms and direct chats can't be joined.",
        request=None,
        responses={200: ChatSerializer, **errors(404)},
    )
    def post(self, request: Request, chat_id: int) -> Response:
        user = signed_in(request)
        chat = services.get_visible_chat(user=user, chat_id=chat_id)
        services.join_chat(user=user, chat=chat)
        return Response(self.get_serializer(chat).data)


class ChatLeave(APIView):
    @extend_schema(
        summary="Leave a room",
        description=(
            "An owner who leaves hands the room to its longest-standing member. A direct chat can't be left."
        ),
        request=None,
        responses={204: None, **errors(404)},
    )
    def post(self, request: Request, chat_id: int) -> Response:
        user = signed_in(request)
        services.leave_chat(user=user, chat=services.get_visible_chat(user=user, chat_id=chat_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChatMembers(generics.GenericAPIView[Membership]):
    serializer_class = MemberSerializer
    pagination_class = Pages

    @extend_schema(
        summary="List a chat's members",
        responses={200: MemberSerializer(many=True), **errors(404)},
    )
    def get(self, request: Request, chat_id: int) -> Response:
        chat = services.get_visible_chat(user=signed_in(request), chat_id=chat_id)
        members = Membership.objects.filter(chat=chat).select_related("user").order_by("joined_at", "pk")
        page = self.paginate_queryset(members)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        summary="Add someone to a room (its owner)",
        description="201 when the user joins now, 200 when they were already a member.",
        request=UserChoiceSerializer,
        responses={201: MemberSerializer, 200: MemberSerializer, **errors(*BODY, 404)},
    )
    def post(self, request: Request, chat_id: int) -> Response:
        user = signed_in(request)
        chat = services.get_visible_chat(user=user, chat_id=chat_id)
        other = validated(UserChoiceSerializer, request.data)["user"]
        already = services.is_member(user=other, chat=chat)
        membership = services.add_member(chat=chat, by=user, user=other)
        return created_or_replayed(self.get_serializer(membership).data, created=not already)


class ChatMember(APIView):
    @extend_schema(
        summary="Remove someone from a room (its owner)",
        description="The owner leaves by themselves instead (POST .../leave/).",
        request=None,
        responses={204: None, **errors(400, 404)},
    )
    def delete(self, request: Request, chat_id: int, user_id: int) -> Response:
        user = signed_in(request)
        chat = services.get_visible_chat(user=user, chat_id=chat_id)
        member = User.objects.filter(pk=user_id).first()
        if member is None:
            raise Http404("No such member.")
        services.remove_member(chat=chat, by=user, user=member)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DirectChat(generics.GenericAPIView[Chat]):
    serializer_class = ChatSerializer

    @extend_schema(
        summary="Open your direct chat with someone",
        description="201 when the chat is created now, 200 when it already existed.",
        request=UserChoiceSerializer,
        responses={201: ChatSerializer, 200: ChatSerializer, **errors(*BODY)},
    )
    def post(self, request: Request) -> Response:
        other = validated(UserChoiceSerializer, request.data)["user"]
        chat, created = services.open_direct_chat(user=signed_in(request), other=other)
        return created_or_replayed(self.get_serializer(chat).data, created)


# --- Messages -----------------------------------------------------------------------


class ChatMessages(generics.GenericAPIView[Message]):
    serializer_class = MessageSerializer
    pagination_class = MessagePages

    @extend_schema(
        summary="Read a chat's messages",
        tags=["messages"],
        description=(
            "Newest first, a page at a time: follow `next` for older messages. With `after`, the "
            "messages after that id instead, oldest first; `next` continues while there are more."
        ),
        parameters=[MessageQuerySerializer],
        responses={200: MessageSerializer(many=True), **errors(400, 404)},
    )
    def get(self, request: Request, chat_id: int) -> Response:
        chat = services.get_visible_chat(user=signed_in(request), chat_id=chat_id)
        page = self.paginate_queryset(Message.objects.not_deleted().filter(chat=chat).with_author())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        summary="Post a message",
        tags=["messages"],
        description=(
            "The message reaches every open browser in the chat. Posting is rated per user, over "
            "the page, the socket and the API together; "
            "a replay of a `client_id` you used before returns the first message with 200."
        ),
        request=MessageCreateSerializer,
        parameters=[RETRY_AFTER],
        responses={
            201: MessageSerializer,
            200: OpenApiResponse(MessageSerializer, "A replay: the message first sent with this client_id."),
            **errors(*BODY, 404, 429),
        },
    )
    def post(self, request: Request, chat_id: int) -> Response:
        user = signed_in(request)
        chat = services.get_visible_chat(user=user, chat_id=chat_id)
        data = validated(MessageCreateSerializer, request.data)
        message, created = services.post_message(
            chat=chat, user=user, text=data["text"], client_id=data.get("client_id")
        )
        return created_or_replayed(self.get_serializer(message).data, created)


class MessageDetail(generics.GenericAPIView[Message]):
    serializer_class = MessageSerializer
    http_method_names = ["get", "patch", "delete", "options"]

    @extend_schema(summary="A message", responses={200: MessageSerializer, **errors(404)})
    def get(self, request: Request, message_id: int) -> Response:
        message = services.get_visible_message(user=signed_in(request), message_id=message_id)
        return Response(self.get_serializer(message).data)

    @extend_schema(
        summary="Edit your message",
        request=MessageEditSerializer,
        responses={200: MessageSerializer, **errors(*BODY, 404)},
    )
    def patch(self, request: Request, message_id: int) -> Response:
        user = signed_in(request)
        message = services.get_visible_message(user=user, message_id=message_id)
        text = validated(MessageEditSerializer, request.data)["text"]
        return Response(
            self.get_serializer(services.edit_message(message=message, user=user, text=text)).data
        )

    @extend_schema(
        summary="Delete a message (its author or the room's owner)",
        request=None,
        responses={204: None, **errors(404)},
    )
    def delete(self, request: Request, message_id: int) -> Response:
        user = signed_in(request)
        services.delete_message(
            message=services.get_visible_message(user=user, message_id=message_id), user=user
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Documentation ------------------------------------------------------------------


class SchemaView(SpectacularAPIView):
    """The OpenAPI document, JSON unless YAML is asked for (Accept or ?format=yaml)."""

    renderer_classes = [OpenApiJsonRenderer, OpenApiJsonRenderer2, OpenApiYamlRenderer, OpenApiYamlRenderer2]


class SignInFirst(APIView):
    """A documentation page sends a visitor who is not signed in to the login page."""

    def handle_exception(self, exc: Exception) -> Any:
        if isinstance(exc, NotAuthenticated | AuthenticationFailed):
            return redirect_to_login(self.request.get_full_path())
        return super().handle_exception(exc)


# The documentation pages run the docs' own inline scripts with the page's nonce; each has
# a policy of its own (config/settings.py), and every other page keeps the strict one.
@method_decorator(csp_override(settings.API_DOCS_CSP), name="dispatch")
class DocsView(SignInFirst, SpectacularSwaggerView):
    pass


@method_decorator(csp_override(settings.API_REDOC_CSP), name="dispatch")
class RedocView(SignInFirst, SpectacularRedocView):
    pass
