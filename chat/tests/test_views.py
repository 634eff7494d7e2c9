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
        """The list is the chat sidebar (a nav named Chats, each entry with its unread count),
        with the total in the title, and public rooms I can join, not private ones."""
        me, other = make_user(), make_user()
        make_messages(general(), other, 3)
        public = make_room(other, name="Gardening")
        make_room(other, name="Secret plans", visibility=Chat.Visibility.PRIVATE)
        self.client.force_login(me)
        response = self.client.get("/chats/")
        [membership] = response.context["sidebar"]["rooms"]
        assert membership.chat == general() and membership.unread_count == 3
        assert list(response.context["joinable"]) == [public]
        assert '<nav id="chat-sidebar" aria-label="Chats"' in response.text
        assert f'data-chat-id="{general().pk}" data-unread="3"' in response.text
        assert "<title>(3) Your chats · Chat</title>" in response.text
        assert 'ws-connect="/ws/chats/"' in response.text
        assert "Gardening" in response.text
        assert "Secret plans" not in response.text

    def test_nothing_unread_has_no_count_in_the_title(self):
        """The title carries a count only while something is unread."""
        self.client.force_login(make_user())
        assert "<title>Your chats · Chat</title>" in self.client.get("/chats/").text

    def test_sidebar_fragment(self):
        """/chats/sidebar/ is the chat list alone, as of now, with the open chat marked."""
        me = make_user()
        room = make_room(me, name="Plans")
        self.client.force_login(me)
        response = self.client.get(f"/chats/sidebar/?open={room.pk}", headers=HTMX)
        assert "<html" not in response.text
        assert response.text.lstrip().startswith('<nav id="chat-sidebar"')
        assert f'data-chat-id="{room.pk}" data-unread="0" aria-current="page"' in response.text
        assert f'data-chat-id="{general().pk}" data-unread="0" class=' in response.text
        assert self.client.get("/chats/sidebar/?open=x").status_code == 200

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

    def test_chat_page_has_the_sidebar_with_the_open_chat_marked(self):
        """Beside the conversation: the person's chats, the open one marked."""
        response = self.client.get(self.chat.get_absolute_url())
        assert '<nav id="chat-sidebar" aria-label="Chats"' in response.text
        assert f'data-chat-id="{self.chat.pk}" data-unread="0" aria-current="page"' in response.text
        assert f'hx-get="/chats/sidebar/?open={self.chat.pk}"' in response.text

    def test_opening_a_chat_marks_nothing_read(self):
        """Opening a chat leaves its messages unread (the page reports what was on screen);
        a page without JavaScript loads the read pixel, which marks it read up to its last
        message."""
        messages = make_messages(self.chat, make_user(), 2)
        response = self.client.get(self.chat.get_absolute_url())
        assert unread_count(self.me, self.chat) == 2
        assert response.context["unread_total"] == 2
        pixel = f"/chats/{self.chat.pk}/read/?up_to={messages[-1].pk}"
        assert f'<noscript><img src="{pixel}"' in response.text
        read = self.client.get(pixel)
        assert read.status_code == 200 and read["Content-Type"] == "image/gif"
        assert read.content.startswith(b"GIF89a")
        assert unread_count(self.me, self.chat) == 0

    def test_read_pixel_reads_up_to_its_id(self):
        """The pixel marks read only up to the id it names; a bad id is a 400, a chat
        I can't see a 404, and a public room I'm not in is left alone."""
        messages = make_messages(self.chat, make_user(), 3)
        self.client.get(f"/chats/{self.chat.pk}/read/?up_to={messages[0].pk}")
        assert unread_count(self.me, self.chat) == 2
        assert self.client.get(f"/chats/{self.chat.pk}/read/?up_to=x").status_code == 400
        private = make_room(make_user(), visibility=Chat.Visibility.PRIVATE)
        assert self.client.get(f"/chats/{private.pk}/read/?up_to=1").status_code == 404
        public = make_room(make_user())
        assert self.client.get(f"/chats/{public.pk}/read/?up_to=1").status_code == 200
        assert not Membership.objects.filter(chat=public, user=self.me).exists()

    def test_new_messages_divider_above_the_first_unread(self):
        """A "New messages" divider stands above the first message from others after the
        last one read, and only when there is one."""
        other = make_user()
        messages = make_messages(self.chat, other, 5)
        services.mark_read(user=self.me, chat=self.chat, up_to=messages[1].pk)
        text = self.client.get(self.chat.get_absolute_url()).text
        divider = text.index('id="new-messages"')
        assert (
            text.index(f'id="message-{messages[1].pk}"')
            < divider
            < text.index(f'id="message-{messages[2].pk}"')
        )
        assert f'data-last-read="{messages[1].pk}"' in text
        services.mark_read(user=self.me, chat=self.chat)
        assert 'id="new-messages"' not in self.client.get(self.chat.get_absolute_url()).text

    def test_avatar_is_the_same_for_every_viewer(self):
        """A message shows its author's initials on a colour chosen by the author's id."""
        from chat.templatetags.chat_ui import avatar_colour

        author = make_user("mary.jones")
        make_messages(self.chat, author, 1)
        text = self.client.get(self.chat.get_absolute_url()).text
        assert f'{avatar_colour(author.pk)}" aria-hidden="true">MJ</span>' in text

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
        # Only the person's own updates (the chat list), not the room's messages.
        assert f'ws-connect="/ws/chats/{room.pk}/"' not in response.text
        assert 'ws-connect="/ws/chats/"' in response.text
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
        assert 'class="message-edited' in self.client.get(self.chat.get_absolute_url()).text

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

    def test_edit_in_place_with_htmx(self):
        """For htmx the edit view answers with the small form that replaces the text, and
        after saving with the message itself; a failed save shows the form again in place."""
        form = self.client.get(self.edit_url, headers=HTMX)
        assert "<html" not in form.text
        assert 'class="message-edit-form' in form.text and f'hx-post="{self.edit_url}"' in form.text
        assert ">typo</textarea>" in form.text
        saved = self.client.post(self.edit_url, {"text": "fixed"}, headers=HTMX)
        assert saved.status_code == 200
        assert saved.text.lstrip().startswith(f'<article id="message-{self.message.pk}"')
        assert "fixed" in saved.text and 'class="message-edited' in saved.text
        failed = self.client.post(self.edit_url, {"text": "  "}, headers=HTMX)
        assert "Write a message first." in failed.text
        assert failed["HX-Retarget"] == f"#message-{self.message.pk}-body"
        assert failed["HX-Reswap"] == "innerHTML"
        self.message.refresh_from_db()
        assert self.message.text == "fixed"

    def test_delete_asks_first_without_javascript(self):
        """GET on the delete URL is a confirmation page with a POST form; only a POST deletes,
        and only someone who may delete gets the page."""
        page = self.client.get(self.delete_url)
        assert page.status_code == 200
        assert "Delete this message?" in page.text and "typo" in page.text
        assert f'<form method="post" action="{self.delete_url}"' in page.text
        self.message.refresh_from_db()
        assert not self.message.is_deleted
        self.client.force_login(self.other)
        assert self.client.get(self.delete_url).status_code == 403
        self.client.force_login(self.author)
        assert self.client.post(self.delete_url)["Location"] == self.chat.get_absolute_url()
        self.message.refresh_from_db()
        assert self.message.is_deleted

    def test_message_actions_work_without_javascript(self):
        """Each message's Edit is a link to the edit page and its Delete a form that opens the
        confirmation page; with htmx, Delete posts after a confirmation."""
        text = self.client.get(self.chat.get_absolute_url()).text
        assert f'href="{self.edit_url}"' in text and f'hx-get="{self.edit_url}"' in text
        assert f'method="get" action="{self.delete_url}"' in text
        # With JavaScript, chat.js asks first (htmx:confirm), in the page's language.
        assert f'hx-post="{self.delete_url}"' in text

    def test_delete_with_and_without_htmx(self):
        """Delete redirects back without JS, and answers 204 to htmx (the push updates the page)."""
        response = self.client.post(self.delete_url, headers=HTMX)
        assert response.status_code == 204
        self.message.refresh_from_db()
        assert self.message.is_deleted
        assert 'class="message-deleted' in self.client.get(self.chat.get_absolute_url()).text
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


class ErrorPageTests(TestCase):
    """Error pages show what happened and a way back, in the site's layout."""

    def test_not_found(self):
        self.client.force_login(make_user())
        response = self.client.get("/chats/999999/")
        assert response.status_code == 404
        assert "There is nothing here" in response.text
        assert 'aria-label="Main"' in response.text and "Back to your chats" in response.text

    def test_forbidden(self):
        author = make_user()
        self.client.force_login(author)
        self.client.post(f"/chats/{general().pk}/messages/", {"text": "mine"})
        message = Message.objects.get()
        self.client.force_login(make_user())
        response = self.client.get(f"/chats/{general().pk}/messages/{message.pk}/edit/")
        assert response.status_code == 403
        assert "You can't do that here" in response.text
        assert "Only the author can edit a message." in response.text

    def test_bad_request(self):
        response = self.client.get("/", headers={"host": "evil.example"})
        assert response.status_code == 400
        assert "That request could not be understood" in response.text

    def test_csrf_failure(self):
        from django.test import Client

        client = Client(enforce_csrf_checks=True)
        client.force_login(make_user())
        response = client.post("/chats/new/", {"name": "Books", "visibility": "public"})
        assert response.status_code == 403
        assert "That form could not be sent" in response.text
        assert "Back to your chats" in response.text
        assert not Chat.objects.filter(name="Books").exists()

    def test_server_error_needs_no_request(self):
        """The 500 page renders without a request or context, and loads no script."""
        from django.test import RequestFactory
        from django.views.defaults import server_error

        response = server_error(RequestFactory().get("/"))
        text = response.content.decode()
        assert response.status_code == 500
        assert "Something went wrong" in text and "Back to your chats" in text
        assert "<script" not in text


class SignupPageTests(TestCase):
    def test_password_rules_are_a_small_list_that_fields_point_at(self):
        """The password rules are a list in a <div> (not nested in a paragraph), and every
        id that aria-describedby names exists in the page."""
        import re

        response = self.client.post("/accounts/signup/", {"username": "", "password1": "a", "password2": "b"})
        text = response.text
        assert '<div id="id_password1_helptext" class="form-help' in text
        assert "<p" not in text[text.index('id="id_password1_helptext"') - 200 : text.index("</ul>")]
        described = {i for ids in re.findall(r'aria-describedby="([^"]+)"', text) for i in ids.split()}
        assert described >= {"id_username_error", "id_password1_helptext", "id_password2_error"}
        for element_id in described:
            assert f'id="{element_id}"' in text, element_id


class RoomMenuTests(TestCase):
    def test_the_owner_finds_settings_and_exports_in_the_room_menu(self):
        """The Room menu links the members panel for members, and settings and archives for the owner."""
        owner, member = make_user(), make_user()
        room = make_room(owner, "Menu")
        services.join_chat(user=member, chat=room)
        self.client.force_login(owner)
        page = self.client.get(f"/chats/{room.pk}/").content.decode()
        for href in (
            f"/chats/{room.pk}/members/",
            f"/chats/{room.pk}/settings/",
            f"/chats/{room.pk}/export/?format=html",
        ):
            assert f'href="{href}"' in page
        self.client.force_login(member)
        page = self.client.get(f"/chats/{room.pk}/").content.decode()
        assert f'href="/chats/{room.pk}/members/"' in page
        assert "/settings/" not in page and "/export/" not in page
