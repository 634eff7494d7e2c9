import uuid

from django.test import TestCase
from django.urls import reverse

from chat import services
from chat.models import MESSAGE_MAX_LENGTH, Chat, Membership, Message
from chat.tests.factories import PASSWORD, general, make_messages, make_room, make_user, unread_count

HTMX = {"HX-Request": "true"}


class AccountPageTests(TestCase):
    def test_home_redirects(self):
        """/ sends visitors to the login page and members to their chats."""
        assert self.client.get("/")["Location"] == reverse("login")
        self.client.force_login(make_user())
        assert self.client.get("/")["Location"] == reverse("chat:list")

    def test_signup_signs_in_and_joins_general(self):
        """Signing up creates the account, signs it in, and makes it a member of General."""
        response = self.client.post(
            "/accounts/signup/", {"username": "ada", "password1": PASSWORD, "password2": PASSWORD}
        )
        assert response["Location"] == reverse("chat:list")
        page = self.client.get("/chats/")
        assert page.context["user"].username == "ada"
        assert Membership.objects.filter(user__username="ada", chat=general()).exists()

    def test_signup_errors_are_shown(self):
        """Mismatched passwords keep the visitor on the form with the error."""
        response = self.client.post(
            "/accounts/signup/", {"username": "ada", "password1": PASSWORD, "password2": "x"}
        )
        assert response.status_code == 200
        assert response.context["form"].errors["password2"]
        assert not Membership.objects.filter(user__username="ada").exists()

    def test_login_and_logout(self):
        """Log in with username and password; log out only by POST."""
        make_user("grace")
        response = self.client.post("/accounts/login/", {"username": "grace", "password": PASSWORD})
        assert response["Location"] == reverse("chat:list")
        assert self.client.get("/accounts/logout/").status_code == 405
        self.client.post("/accounts/logout/")
        assert self.client.get("/chats/")["Location"].startswith(reverse("login"))


class ChatListTests(TestCase):
    def test_lists_my_chats_with_unread_counts_and_public_rooms(self):
        """The list shows my chats with unread counts, and public rooms I can join, not private ones."""
        me, other = make_user(), make_user()
        make_messages(general(), other, 3)
        public = make_room(other, name="Gardening")
        make_room(other, name="Secret plans", visibility=Chat.Visibility.PRIVATE)
        self.client.force_login(me)
        response = self.client.get("/chats/")
        [membership] = response.context["memberships"]
        assert membership.chat == general() and membership.unread_count == 3
        assert list(response.context["joinable"]) == [public]
        assert "Gardening" in response.text
        assert "Secret plans" not in response.text

    def test_anonymous_is_sent_to_login(self):
        """Every chat page needs a signed-in user."""
        for url in ["/chats/", "/chats/new/", f"/chats/{general().pk}/", f"/chats/{general().pk}/messages/"]:
            assert self.client.get(url)["Location"].startswith(reverse("login")), url


class CreateAndJoinTests(TestCase):
    def test_create_room(self):
        """/chats/new/ creates a room owned by its creator and opens it."""
        me = make_user()
        self.client.force_login(me)
        response = self.client.post("/chats/new/", {"name": "Books", "visibility": "private"})
        chat = Chat.objects.get(name="Books")
        assert response["Location"] == chat.get_absolute_url()
        assert chat.visibility == Chat.Visibility.PRIVATE
        assert Membership.objects.get(chat=chat, user=me).role == Membership.Role.OWNER

    def test_create_room_errors(self):
        """An unknown visibility is an error on the form, and nothing is created."""
        self.client.force_login(make_user())
        response = self.client.post("/chats/new/", {"name": "Books", "visibility": "secret"})
        assert response.status_code == 200
        assert response.context["form"].errors["visibility"]
        assert not Chat.objects.filter(name="Books").exists()

    def test_join_public_room(self):
        """Join is a POST that makes me a member and opens the room."""
        room = make_room(make_user())
        me = make_user()
        self.client.force_login(me)
        assert self.client.get(f"/chats/{room.pk}/join/").status_code == 405
        response = self.client.post(f"/chats/{room.pk}/join/")
        assert response["Location"] == room.get_absolute_url()
        assert Membership.objects.filter(chat=room, user=me).exists()


class ChatPageTests(TestCase):
    def setUp(self):
        self.me = make_user()
        self.chat = general()
        self.client.force_login(self.me)

    def test_chat_page_shows_latest_messages_and_composer(self):
        """The page shows the latest 50 messages, a link to older ones, and the composer."""
        messages = make_messages(self.chat, make_user(), 60)
        response = self.client.get(self.chat.get_absolute_url())
        shown = [m.pk for m in response.context["page_messages"]]
        assert shown == [m.pk for m in messages[-50:]]
        assert f"?before={messages[10].pk}" in response.text
        assert 'role="log" aria-label="Messages"' in response.text
        assert f'ws-connect="/ws/chats/{self.chat.pk}/"' in response.text
        assert '<label for="id_text" class="sr-only">Message</label>' in response.text
        assert f'data-author-id="{messages[-1].user_id}"' in response.text

    def test_opening_a_chat_marks_it_read(self):
        """Opening a chat clears its unread count."""
        make_messages(self.chat, make_user(), 2)
        self.client.get(self.chat.get_absolute_url())
        assert unread_count(self.me, self.chat) == 0

    def test_private_chat_of_others_is_not_found(self):
        """A private room I'm not in answers 404 on every route."""
        room = make_room(make_user(), visibility=Chat.Visibility.PRIVATE)
        for method, url in [
            ("get", f"/chats/{room.pk}/"),
            ("get", f"/chats/{room.pk}/messages/"),
            ("post", f"/chats/{room.pk}/messages/"),
            ("post", f"/chats/{room.pk}/join/"),
        ]:
            assert getattr(self.client, method)(url, {"text": "hi"}).status_code == 404, url
        assert not Message.objects.filter(chat=room).exists()
        assert not Membership.objects.filter(chat=room, user=self.me).exists()

    def test_public_room_reads_without_joining(self):
        """A public room I'm not in can be read, and offers Join instead of the composer."""
        room = make_room(make_user(), name="Open")
        response = self.client.get(room.get_absolute_url())
        assert response.status_code == 200
        assert "Join room" in response.text
        assert "ws-connect" not in response.text
        assert 'name="text"' not in response.text
        assert self.client.post(f"/chats/{room.pk}/messages/", {"text": "hi"}).status_code == 403
        assert not Message.objects.filter(chat=room).exists()

    def test_older_page_as_fragment_and_as_page(self):
        """?before= gives htmx the older messages alone, and a browser without JS a whole page."""
        messages = make_messages(self.chat, make_user(), 60)
        url = f"/chats/{self.chat.pk}/messages/?before={messages[10].pk}"
        fragment = self.client.get(url, headers=HTMX)
        assert "<html" not in fragment.text
        for message in messages[:10]:
            assert f'id="message-{message.pk}"' in fragment.text
        assert f'id="message-{messages[10].pk}"' not in fragment.text
        assert "Load older messages" not in fragment.text
        page = self.client.get(url)
        assert "<html" in page.text
        assert [m.pk for m in page.context["page_messages"]] == [m.pk for m in messages[:10]]
        assert f"?after={messages[9].pk}" in page.text

    def test_after_cursor(self):
        """?after= gives the messages after an id, oldest first."""
        messages = make_messages(self.chat, make_user(), 5)
        response = self.client.get(f"/chats/{self.chat.pk}/messages/?after={messages[2].pk}", headers=HTMX)
        assert [m.pk for m in response.context["page_messages"]] == [messages[3].pk, messages[4].pk]

    def test_bad_cursor(self):
        """A cursor that is not an id is a 400."""
        for query in ["before=abc", "after=-1", "before=1e3"]:
            assert self.client.get(f"/chats/{self.chat.pk}/messages/?{query}").status_code == 400, query


class SendMessageTests(TestCase):
    def setUp(self):
        self.me = make_user()
        self.chat = general()
        self.client.force_login(self.me)
        self.url = f"/chats/{self.chat.pk}/messages/"

    def test_form_post_redirects_back(self):
        """Without JavaScript the composer is a plain POST that redirects back to the chat."""
        with self.captureOnCommitCallbacks(execute=True) as callbacks:
            response = self.client.post(self.url, {"text": "hello", "client_id": str(uuid.uuid4())})
        assert response.status_code == 302
        assert response["Location"] == self.chat.get_absolute_url()
        assert Message.objects.get().text == "hello"
        assert len(callbacks) == 1

    def test_form_post_twice_makes_one_message(self):
        """A resubmitted form (same client id) makes one message."""
        data = {"text": "hello", "client_id": str(uuid.uuid4())}
        self.client.post(self.url, data)
        self.client.post(self.url, data)
        assert Message.objects.count() == 1

    def test_form_post_errors_show_on_the_page(self):
        """An invalid post re-renders the chat with the error and the typed text, and saves nothing."""
        too_long = "x" * (MESSAGE_MAX_LENGTH + 1)
        response = self.client.post(self.url, {"text": too_long})
        assert response.status_code == 400
        assert "at most 4000 characters" in response.text
        assert too_long in response.text
        blank = self.client.post(self.url, {"text": "   "})
        assert "Write a message first." in blank.text
        assert not Message.objects.exists()

    def test_htmx_post_returns_fresh_composer(self):
        """With htmx the post answers with a fresh composer (or the errors) instead of a redirect."""
        response = self.client.post(self.url, {"text": "hello"}, headers=HTMX)
        assert response.status_code == 200
        assert 'id="composer"' in response.text
        assert "hello" not in response.text
        assert Message.objects.get().text == "hello"
        error = self.client.post(self.url, {"text": ""}, headers=HTMX)
        assert "Write a message first." in error.text
        assert Message.objects.count() == 1

    def test_text_is_escaped_on_the_page(self):
        """Message text is escaped in the page."""
        self.client.post(self.url, {"text": "<script>alert(1)</script>"})
        response = self.client.get(self.chat.get_absolute_url())
        assert "<script>alert(1)</script>" not in response.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


class EditAndDeleteViewTests(TestCase):
    def setUp(self):
        self.author, self.other = make_user(), make_user()
        self.chat = general()
        self.client.force_login(self.author)
        self.client.post(f"/chats/{self.chat.pk}/messages/", {"text": "typo"})
        self.message = Message.objects.get()
        self.edit_url = f"/chats/{self.chat.pk}/messages/{self.message.pk}/edit/"
        self.delete_url = f"/chats/{self.chat.pk}/messages/{self.message.pk}/delete/"

    def test_author_edits_through_the_form(self):
        """The edit page shows the text; posting it saves and goes back to the message."""
        assert "typo" in self.client.get(self.edit_url).text
        response = self.client.post(self.edit_url, {"text": "fixed"})
        assert response["Location"] == f"{self.chat.get_absolute_url()}#message-{self.message.pk}"
        self.message.refresh_from_db()
        assert self.message.text == "fixed"
        assert "(edited)" in self.client.get(self.chat.get_absolute_url()).text

    def test_others_cannot_edit_or_delete(self):
        """Another member gets 403 and the message is unchanged; a wrong chat id is a 404."""
        self.client.force_login(self.other)
        assert self.client.get(self.edit_url).status_code == 403
        assert self.client.post(self.edit_url, {"text": "mine now"}).status_code == 403
        assert self.client.post(self.delete_url).status_code == 403
        room = make_room(self.other)
        assert self.client.post(f"/chats/{room.pk}/messages/{self.message.pk}/delete/").status_code == 404
        self.message.refresh_from_db()
        assert self.message.text == "typo" and not self.message.is_deleted

    def test_delete_with_and_without_htmx(self):
        """Delete redirects back without JS, and answers 204 to htmx (the push updates the page)."""
        response = self.client.post(self.delete_url, headers=HTMX)
        assert response.status_code == 204
        self.message.refresh_from_db()
        assert self.message.is_deleted
        assert "This message was deleted." in self.client.get(self.chat.get_absolute_url()).text
        assert self.client.post(self.delete_url).status_code == 404


class RoomMembershipViewTests(TestCase):
    def setUp(self):
        self.owner, self.friend = make_user("olga"), make_user("fred")
        self.room = make_room(self.owner, name="Plans", visibility=Chat.Visibility.PRIVATE)

    def test_owner_adds_a_member_by_username(self):
        """The owner adds someone to a private room from its page; an unknown name is an error."""
        self.client.force_login(self.owner)
        page = self.client.post(f"/chats/{self.room.pk}/members/", {"username": "fred"}, follow=True)
        assert "fred is now a member of Plans." in page.text
        assert Membership.objects.filter(chat=self.room, user=self.friend).exists()
        page = self.client.post(f"/chats/{self.room.pk}/members/", {"username": "nobody"}, follow=True)
        assert "Nobody is called nobody." in page.text

    def test_only_the_owner_adds(self):
        """A member who is not the owner gets 403 and nobody is added."""
        services.add_member(chat=self.room, by=self.owner, user=self.friend)
        self.client.force_login(self.friend)
        outsider = make_user("otto")
        assert self.client.post(f"/chats/{self.room.pk}/members/", {"username": "otto"}).status_code == 403
        assert not Membership.objects.filter(chat=self.room, user=outsider).exists()

    def test_leave(self):
        """Leaving is a POST that takes the room off my list."""
        services.add_member(chat=self.room, by=self.owner, user=self.friend)
        self.client.force_login(self.friend)
        page = self.client.post(f"/chats/{self.room.pk}/leave/", follow=True)
        assert "You left Plans." in page.text
        assert self.client.get(self.room.get_absolute_url()).status_code == 404

    def test_direct_chat_from_the_list(self):
        """Writing to someone by name opens (once) the direct chat of the two."""
        self.client.force_login(self.owner)
        first = self.client.post("/chats/direct/", {"username": "fred"})
        again = self.client.post("/chats/direct/", {"username": "fred"})
        chat = Chat.objects.get(kind=Chat.Kind.DIRECT)
        assert first["Location"] == again["Location"] == chat.get_absolute_url()
        assert "Nobody is called" in self.client.post("/chats/direct/", {"username": "x"}, follow=True).text
        assert "someone else" in self.client.post("/chats/direct/", {"username": "olga"}, follow=True).text
