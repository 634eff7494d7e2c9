import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import Http404
from django.test import TestCase, TransactionTestCase

from chat import services
from chat.models import MESSAGE_MAX_LENGTH, Chat, Membership, Message
from chat.tests.factories import SocketListener, general, make_messages, make_room, make_user, unread_count


class AccountTests(TestCase):
    def test_new_account_joins_general(self):
        """Every new account is a member of General, which exists from the migrations."""
        user = make_user()
        assert Membership.objects.filter(user=user, chat=general(), role=Membership.Role.MEMBER).exists()


class RoomTests(TestCase):
    def test_creator_owns_the_room(self):
        """The creator of a room is its owner."""
        owner = make_user()
        chat = make_room(owner, name="  Design  ", visibility=Chat.Visibility.PRIVATE)
        assert chat.name == "Design"
        assert chat.kind == Chat.Kind.ROOM
        assert chat.created_by == owner
        assert Membership.objects.get(chat=chat).role == Membership.Role.OWNER

    def test_room_needs_a_name_and_a_known_visibility(self):
        """A blank name or an unknown visibility is refused, and nothing is created."""
        owner = make_user()
        rooms = Chat.objects.count()
        with pytest.raises(ValidationError):
            services.create_room(user=owner, name="   ", visibility="public")
        with pytest.raises(ValidationError):
            services.create_room(user=owner, name="Room", visibility="secret")
        assert Chat.objects.count() == rooms

    def test_join_public_room_once(self):
        """Joining a public room twice makes one membership."""
        chat = make_room(make_user())
        user = make_user()
        services.join_chat(user=user, chat=chat)
        services.join_chat(user=user, chat=chat)
        assert Membership.objects.filter(user=user, chat=chat).count() == 1

    def test_private_room_cannot_be_joined(self):
        """Nobody joins a private room by themselves."""
        chat = make_room(make_user(), visibility=Chat.Visibility.PRIVATE)
        with pytest.raises(PermissionDenied):
            services.join_chat(user=make_user(), chat=chat)

    def test_visible_chats(self):
        """A user sees the chats they are in and public rooms, never others' private rooms."""
        owner, other = make_user(), make_user()
        public = make_room(owner, visibility=Chat.Visibility.PUBLIC)
        private = make_room(owner, visibility=Chat.Visibility.PRIVATE)
        assert set(Chat.objects.visible_to(owner)) == {general(), public, private}
        assert set(Chat.objects.visible_to(other)) == {general(), public}
        with pytest.raises(Http404, match="No such chat"):
            services.get_visible_chat(user=other, chat_id=private.pk)


class PostMessageTests(TestCase):
    def setUp(self):
        self.user = make_user()
        self.chat = general()

    def test_message_is_pushed_after_commit(self):
        """The message is pushed to the chat's sockets only once its transaction commits."""
        listener = SocketListener(self.chat)
        with self.captureOnCommitCallbacks() as callbacks:
            message, created = services.post_message(chat=self.chat, user=self.user, text="  hello  ")
            assert listener.pending() == []
        assert created
        assert message.text == "hello"
        for callback in callbacks:
            callback()
        [html] = listener.pending()
        assert f'id="message-{message.pk}"' in html
        assert 'hx-swap-oob="beforeend"' in html

    def test_pushed_text_is_escaped(self):
        """User text in the pushed fragment is escaped, so it can't add elements to anyone's page."""
        listener = SocketListener(self.chat)
        text = '<div id="messages" hx-swap-oob="true">x</div>'
        with self.captureOnCommitCallbacks(execute=True):
            services.post_message(chat=self.chat, user=self.user, text=text)
        [html] = listener.pending()
        assert text not in html
        assert '&lt;div id="messages" hx-swap-oob="true"&gt;x&lt;/div&gt;' in html

    def test_same_client_id_makes_one_message(self):
        """A send repeated with the same client id returns the first message and pushes nothing more."""
        client_id = uuid.uuid4()
        listener = SocketListener(self.chat)
        with self.captureOnCommitCallbacks(execute=True):
            first, created = services.post_message(
                chat=self.chat, user=self.user, text="once", client_id=client_id
            )
        with self.captureOnCommitCallbacks(execute=True):
            again, created_again = services.post_message(
                chat=self.chat, user=self.user, text="once", client_id=client_id
            )
        assert created and not created_again
        assert again.pk == first.pk
        assert Message.objects.filter(client_id=client_id).count() == 1
        assert len(listener.pending()) == 1

    def test_other_users_may_reuse_a_client_id(self):
        """Client ids are per user: another user's message with the same id is a new message."""
        client_id = uuid.uuid4()
        services.post_message(chat=self.chat, user=self.user, text="mine", client_id=client_id)
        _, created = services.post_message(
            chat=self.chat, user=make_user(), text="theirs", client_id=client_id
        )
        assert created

    def test_client_id_of_another_chat_is_refused(self):
        """Replaying a client id in another chat is an error, not the first chat's message."""
        client_id = uuid.uuid4()
        services.post_message(chat=self.chat, user=self.user, text="here", client_id=client_id)
        room = make_room(self.user)
        with pytest.raises(ValidationError, match="another chat"):
            services.post_message(chat=room, user=self.user, text="there", client_id=client_id)
        assert not Message.objects.filter(chat=room).exists()

    def test_invalid_text_saves_nothing(self):
        """Empty, blank, too long or non-string text is refused with a message, and nothing is saved."""
        for text in ["", "   \n ", "x" * (MESSAGE_MAX_LENGTH + 1), "nul \x00 inside", None, 42]:
            with self.subTest(text=text), pytest.raises(ValidationError):
                services.post_message(chat=self.chat, user=self.user, text=text)  # type: ignore[arg-type]
        assert not Message.objects.exists()

    def test_longest_message_is_accepted(self):
        """A message of exactly the maximum length is saved."""
        message, _ = services.post_message(chat=self.chat, user=self.user, text="y" * MESSAGE_MAX_LENGTH)
        assert len(message.text) == MESSAGE_MAX_LENGTH

    def test_non_member_cannot_post(self):
        """Only members post; a public room must be joined first."""
        room = make_room(make_user())
        with pytest.raises(PermissionDenied):
            services.post_message(chat=room, user=self.user, text="hi")
        assert not Message.objects.exists()


class ReadTests(TestCase):
    def test_unread_counts(self):
        """Unread counts others' messages after the last read one, and reading clears them."""
        reader, writer = make_user(), make_user()
        chat = general()
        make_messages(chat, writer, 3)
        make_messages(chat, reader, 2)
        assert unread_count(reader, chat) == 3
        services.mark_read(user=reader, chat=chat)
        assert unread_count(reader, chat) == 0
        make_messages(chat, writer, 1)
        assert unread_count(reader, chat) == 1
        assert unread_count(writer, chat) == 2

    def test_pages_of_messages(self):
        """The latest page is the newest 50, oldest first; before and after page by id."""
        chat, user = general(), make_user()
        messages = make_messages(chat, user, 120)
        ids = [message.pk for message in messages]
        assert [m.pk for m in Message.objects.latest_page(chat)] == ids[-50:]
        assert [m.pk for m in Message.objects.latest_page(chat, before=ids[70])] == ids[20:70]
        assert [m.pk for m in Message.objects.after(chat, ids[100])] == ids[101:]


class EditAndDeleteTests(TestCase):
    def setUp(self):
        self.owner, self.author, self.other = make_user(), make_user(), make_user()
        self.chat = make_room(self.owner)
        for user in (self.author, self.other):
            services.join_chat(user=user, chat=self.chat)
        self.message, _ = services.post_message(chat=self.chat, user=self.author, text="first")

    def test_author_edits_and_the_edit_is_pushed(self):
        """The author's edit changes the text, marks it edited, and pushes the new version after commit."""
        listener = SocketListener(self.chat)
        with self.captureOnCommitCallbacks(execute=True):
            services.edit_message(message=self.message, user=self.author, text=" second ")
        self.message.refresh_from_db()
        assert self.message.text == "second" and self.message.edited_at is not None
        [html] = listener.pending()
        assert html.strip().startswith(f'<article id="message-{self.message.pk}"')
        assert "second" in html and 'class="message-edited' in html

    def test_only_the_author_edits(self):
        """Nobody else edits a message, not even the room's owner."""
        for user in (self.owner, self.other):
            with pytest.raises(PermissionDenied):
                services.edit_message(message=self.message, user=user, text="hijacked")
        with pytest.raises(ValidationError):
            services.edit_message(message=self.message, user=self.author, text="  ")
        self.message.refresh_from_db()
        assert self.message.text == "first" and self.message.edited_at is None

    def test_author_or_owner_deletes(self):
        """The author or the room's owner deletes; a tombstone without the text is pushed."""
        with pytest.raises(PermissionDenied):
            services.delete_message(message=self.message, user=self.other)
        listener = SocketListener(self.chat)
        with self.captureOnCommitCallbacks(execute=True):
            services.delete_message(message=self.message, user=self.owner)
        self.message.refresh_from_db()
        assert self.message.is_deleted and self.message.text == ""
        [html] = listener.pending()
        assert 'class="message-deleted' in html and "first" not in html
        with pytest.raises(ValidationError):
            services.edit_message(message=self.message, user=self.author, text="back")
        with pytest.raises(Http404):
            services.get_visible_message(user=self.author, message_id=self.message.pk)

    def test_deleted_messages_are_not_unread(self):
        """A deleted message no longer counts as unread."""
        assert unread_count(self.other, self.chat) == 1
        services.delete_message(message=self.message, user=self.author)
        assert unread_count(self.other, self.chat) == 0


class MembershipTests(TestCase):
    def setUp(self):
        self.owner, self.member, self.outsider = make_user(), make_user(), make_user()
        self.room = make_room(self.owner, visibility=Chat.Visibility.PRIVATE)

    def test_owner_adds_and_removes_members(self):
        """Only the owner adds and removes members of a room."""
        services.add_member(chat=self.room, by=self.owner, user=self.member)
        services.add_member(chat=self.room, by=self.owner, user=self.member)
        assert Membership.objects.filter(chat=self.room, user=self.member).count() == 1
        with pytest.raises(PermissionDenied):
            services.add_member(chat=self.room, by=self.member, user=self.outsider)
        with pytest.raises(PermissionDenied):
            services.remove_member(chat=self.room, by=self.member, user=self.owner)
        services.remove_member(chat=self.room, by=self.owner, user=self.member)
        assert not Membership.objects.filter(chat=self.room, user=self.member).exists()
        with pytest.raises(Http404):
            services.remove_member(chat=self.room, by=self.owner, user=self.member)

    def test_owner_who_leaves_hands_over_the_room(self):
        """When the owner leaves, the longest-standing member becomes the owner."""
        services.add_member(chat=self.room, by=self.owner, user=self.member)
        services.add_member(chat=self.room, by=self.owner, user=self.outsider)
        services.leave_chat(user=self.owner, chat=self.room)
        assert Membership.objects.get(chat=self.room, user=self.member).role == Membership.Role.OWNER
        assert Membership.objects.get(chat=self.room, user=self.outsider).role == Membership.Role.MEMBER
        with pytest.raises(PermissionDenied):
            services.leave_chat(user=self.owner, chat=self.room)

    def test_direct_chat_is_one_per_pair(self):
        """Opening a direct chat twice, from either side, gives the same private chat of the two."""
        chat, created = services.open_direct_chat(user=self.owner, other=self.member)
        again, created_again = services.open_direct_chat(user=self.member, other=self.owner)
        assert created and not created_again and again == chat
        assert chat.kind == Chat.Kind.DIRECT and not chat.is_public
        assert set(chat.members.all()) == {self.owner, self.member}
        assert chat not in Chat.objects.visible_to(self.outsider)
        with pytest.raises(ValidationError):
            services.open_direct_chat(user=self.owner, other=self.owner)
        with pytest.raises(PermissionDenied):
            services.leave_chat(user=self.owner, chat=chat)
        with pytest.raises(PermissionDenied):
            services.add_member(chat=chat, by=self.owner, user=self.outsider)


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="concurrent writers need a server database: runs in the PostgreSQL pass",
)
class ConcurrentPostTests(TransactionTestCase):
    def test_concurrent_posts_get_gapless_ordered_numbers(self):
        """Messages posted at once from many threads get sequence and event numbers without gaps,
        in the same order as their ids."""
        users = [make_user() for _ in range(8)]
        chat = make_room(users[0])
        for user in users[1:]:
            services.join_chat(user=user, chat=chat)
        # The room's creation and the joins took the first event numbers.
        chat.refresh_from_db()
        joined = chat.last_event

        def post_ten(user: User) -> None:
            try:
                for i in range(10):
                    services.post_message(chat=chat, user=user, text=f"{user.username} {i}")
            finally:
                connection.close()

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(post_ten, users))
        rows = list(Message.objects.filter(chat=chat).order_by("pk").values_list("seq", "event"))
        assert [seq for seq, _ in rows] == list(range(1, 81))
        assert [event for _, event in rows] == list(range(joined + 1, joined + 81))
        chat.refresh_from_db()
        assert (chat.last_seq, chat.last_event) == (80, joined + 80)


class NewcomerTests(TestCase):
    def test_a_newcomer_starts_with_the_history_read(self):
        """A new account, someone joining or someone added sees the history, not a pile of unread."""
        owner = make_user()
        room = make_room(owner, "History")
        for i in range(3):
            services.post_message(chat=general(), user=owner, text=f"old {i}")
            services.post_message(chat=room, user=owner, text=f"old {i}")
        newcomer, joiner = make_user(), make_user()
        assert unread_count(newcomer, general()) == 0
        services.join_chat(user=joiner, chat=room)
        assert unread_count(joiner, room) == 0
        services.add_member(chat=room, by=owner, user=newcomer)
        assert unread_count(newcomer, room) == 0
        services.post_message(chat=room, user=owner, text="new")
        assert unread_count(newcomer, room) == 1
