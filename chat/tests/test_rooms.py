"""A room's members panel and its settings: the pages, their fragments and the service."""

from unittest import mock

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import TestCase, override_settings
from django.urls import reverse

from chat import broadcast, limits, services
from chat.hub import PRESENCE_SECONDS, presence_key
from chat.models import ROOM_NAME_MAX_LENGTH, TOPIC_MAX_LENGTH, Chat, Membership
from chat.tests.factories import SocketListener, make_room, make_user

HTMX = {"HX-Request": "true"}
# A fixed clock for the rate limits, so that no rate window ends in the middle of a test.
NOW = 1_800_000_000


def rates(**changes: str) -> dict[str, str]:
    return {**settings.CHAT_RATES, **changes}


class RoomTestCase(TestCase):
    def setUp(self) -> None:
        cache.clear()
        clock = mock.patch.object(limits, "time", mock.Mock(time=mock.Mock(return_value=float(NOW))))
        clock.start()
        self.addCleanup(clock.stop)
        self.owner, self.member, self.outsider = make_user("olga"), make_user("mike"), make_user("otto")
        self.room = make_room(self.owner, name="Plans", visibility=Chat.Visibility.PRIVATE)
        services.add_member(chat=self.room, by=self.owner, user=self.member)
        self.members_url = reverse("rooms:members", args=[self.room.pk])
        self.settings_url = reverse("rooms:settings", args=[self.room.pk])
        self.suggest_url = reverse("rooms:suggest", args=[self.room.pk])

    def remove_url(self, user: User) -> str:
        return reverse("rooms:remove_member", args=[self.room.pk, user.pk])


class MembersPanelTests(RoomTestCase):
    def test_owner_sees_members_and_controls(self):
        """The owner sees every member, who owns the room, the add form and a Remove per other member."""
        self.client.force_login(self.owner)
        page = self.client.get(self.members_url)
        assert page.status_code == 200
        assert "<html" in page.text
        assert [m.user for m in page.context["memberships"]] == [self.owner, self.member]
        assert 'id="member-username"' in page.text and 'id="member-suggestions"' in page.text
        assert f'id="remove-member-{self.member.pk}"' in page.text
        assert f'id="remove-member-{self.owner.pk}"' not in page.text
        assert ">owner</span>" in page.text
        assert reverse("rooms:settings", args=[self.room.pk]) in page.text

    def test_member_sees_members_without_controls(self):
        """A member who is not the owner sees who is in the room, and no add or remove controls."""
        self.client.force_login(self.member)
        page = self.client.get(self.members_url)
        assert page.status_code == 200
        assert "olga" in page.text and "mike" in page.text
        assert "Add a member" not in page.text
        assert "remove-member-" not in page.text
        assert self.settings_url not in page.text

    def test_outsider_of_a_private_room_gets_404_everywhere(self):
        """A private room does not exist for an outsider: the panel, every action and the settings."""
        self.client.force_login(self.outsider)
        assert self.client.get(self.members_url).status_code == 404
        assert self.client.post(self.members_url, {"username": "otto"}).status_code == 404
        assert self.client.get(self.suggest_url, {"username": "o"}).status_code == 404
        assert self.client.post(self.remove_url(self.member)).status_code == 404
        assert self.client.get(self.settings_url).status_code == 404
        assert (
            self.client.post(self.settings_url, {"name": "Mine", "visibility": "public"}).status_code == 404
        )
        assert not Membership.objects.filter(chat=self.room, user=self.outsider).exists()

    def test_anyone_signed_in_sees_a_public_rooms_members(self):
        """A public room's panel is visible to a non-member, without controls; acting is 403."""
        room = make_room(self.owner, name="Lobby")
        self.client.force_login(self.outsider)
        page = self.client.get(reverse("rooms:members", args=[room.pk]))
        assert page.status_code == 200
        assert "olga" in page.text and "Add a member" not in page.text
        assert (
            self.client.post(reverse("rooms:members", args=[room.pk]), {"username": "mike"}).status_code
            == 403
        )
        assert not Membership.objects.filter(chat=room, user=self.member).exists()

    def test_anonymous_is_sent_to_login(self):
        """Every route needs a signed-in user."""
        for url in [self.members_url, self.suggest_url, self.settings_url]:
            assert self.client.get(url)["Location"].startswith(reverse("login")), url

    def test_htmx_gets_the_panel_and_the_list_alone(self):
        """htmx gets the panel without the page; the list that re-fetches itself gets only the list."""
        self.client.force_login(self.owner)
        panel = self.client.get(self.members_url, headers=HTMX)
        assert "<html" not in panel.text
        assert panel.text.lstrip().startswith('<section id="members-panel"')
        assert 'hx-trigger="every 30s"' in panel.text
        listed = self.client.get(self.members_url, headers={**HTMX, "HX-Target": "member-list"})
        assert listed.text.lstrip().startswith('<div id="member-list"')
        assert "Add a member" not in listed.text
        assert f'id="remove-member-{self.member.pk}"' in listed.text

    def test_presence_is_shown(self):
        """Whoever has the chat open now (as the socket hub marks it in the cache) shows as online."""
        cache.set(presence_key(self.room.pk, self.member.pk), True, timeout=PRESENCE_SECONDS)
        self.client.force_login(self.owner)
        page = self.client.get(self.members_url, headers={**HTMX, "HX-Target": "member-list"})
        assert f'id="member-{self.member.pk}" data-user-id="{self.member.pk}" data-online="true"' in page.text
        assert f'id="member-{self.owner.pk}" data-user-id="{self.owner.pk}" data-online="false"' in page.text
        assert "2 members, 1 online now" in page.text
        # Someone else's presence in another chat does not count here.
        cache.delete(presence_key(self.room.pk, self.member.pk))
        cache.set(presence_key(self.room.pk + 1000, self.member.pk), True)
        assert "2 members, 0 online now" in self.client.get(self.members_url).text

    def test_online_members_come_first_after_the_owner(self):
        """The owner first, then members with the chat open, then the rest by name."""
        anna = make_user("anna")
        services.add_member(chat=self.room, by=self.owner, user=anna)
        cache.set(presence_key(self.room.pk, self.member.pk), True)
        self.client.force_login(self.member)
        page = self.client.get(self.members_url)
        assert [m.user for m in page.context["memberships"]] == [self.owner, self.member, anna]

    def test_direct_chat_shows_members_without_controls(self):
        """A direct chat's panel shows the two people; nobody adds or removes there."""
        chat, _ = services.open_direct_chat(user=self.owner, other=self.member)
        url = reverse("rooms:members", args=[chat.pk])
        self.client.force_login(self.owner)
        page = self.client.get(url)
        assert page.status_code == 200
        assert "olga" in page.text and "mike" in page.text
        assert "Add a member" not in page.text and "remove-member-" not in page.text
        assert self.client.post(url, {"username": "otto"}).status_code == 403
        assert self.client.get(reverse("rooms:suggest", args=[chat.pk]), {"username": "o"}).status_code == 403
        remove = reverse("rooms:remove_member", args=[chat.pk, self.member.pk])
        assert self.client.post(remove).status_code == 403
        assert Membership.objects.filter(chat=chat).count() == 2


class AddMemberTests(RoomTestCase):
    def test_owner_adds_by_exact_name_without_javascript(self):
        """A plain form post adds the person and redirects back to the panel, which says so."""
        self.client.force_login(self.owner)
        response = self.client.post(self.members_url, {"username": "otto"})
        assert response.status_code == 302 and response["Location"] == self.members_url
        assert Membership.objects.filter(chat=self.room, user=self.outsider).exists()
        assert "otto is now a member of Plans." in self.client.get(self.members_url).text

    def test_owner_adds_with_htmx(self):
        """With htmx the answer is the panel, with the new member, a notice and the input focused again."""
        self.client.force_login(self.owner)
        with self.captureOnCommitCallbacks(execute=True), mock.patch.object(broadcast, "chat_added") as added:
            panel = self.client.post(self.members_url, {"username": "otto"}, headers=HTMX)
        assert panel.status_code == 200
        assert "<html" not in panel.text
        assert 'role="status"' in panel.text and "otto is now a member of Plans." in panel.text
        assert f'id="member-{self.outsider.pk}"' in panel.text
        assert "autofocus" in panel.text
        added.assert_called_once_with(self.room.pk, self.outsider.pk)

    def test_adding_a_member_again_says_so(self):
        """Adding someone who is already a member is harmless, and the notice says so."""
        self.client.force_login(self.owner)
        panel = self.client.post(self.members_url, {"username": "mike"}, headers=HTMX)
        assert "mike is already a member of Plans." in panel.text
        assert Membership.objects.filter(chat=self.room, user=self.member).count() == 1

    def test_unknown_or_inactive_names_are_errors(self):
        """An unknown or deactivated name leaves the room as it was, with the error next to the field."""
        User.objects.filter(pk=self.outsider.pk).update(is_active=False)
        self.client.force_login(self.owner)
        for name in ["nobody", "otto"]:
            page = self.client.post(self.members_url, {"username": name})
            assert page.status_code == 400
            assert f"Nobody is called {name}." in page.text
            assert 'aria-invalid="true"' in page.text
        fragment = self.client.post(self.members_url, {"username": "nobody"}, headers=HTMX)
        # htmx swaps only successful answers: the errors come as the panel.
        assert fragment.status_code == 200 and "Nobody is called nobody." in fragment.text
        assert Membership.objects.filter(chat=self.room).count() == 2

    def test_only_the_owner_adds(self):
        """A member who is not the owner gets 403, whatever the name, and nobody is added."""
        self.client.force_login(self.member)
        assert self.client.post(self.members_url, {"username": "otto"}).status_code == 403
        assert self.client.post(self.members_url, {"username": "nobody"}).status_code == 403
        assert not Membership.objects.filter(chat=self.room, user=self.outsider).exists()


class RemoveMemberTests(RoomTestCase):
    def test_owner_removes_without_javascript(self):
        """A plain post removes the member, pushes it after commit, and redirects back to the panel."""
        self.client.force_login(self.owner)
        with self.captureOnCommitCallbacks(execute=True), mock.patch.object(broadcast, "member_left") as left:
            response = self.client.post(self.remove_url(self.member))
        assert response["Location"] == self.members_url
        assert not Membership.objects.filter(chat=self.room, user=self.member).exists()
        left.assert_called_once_with(self.room.pk, self.member.pk, mock.ANY, mock.ANY)
        assert "mike is no longer a member of Plans." in self.client.get(self.members_url).text

    def test_owner_removes_with_htmx(self):
        """With htmx the answer is the panel without the member."""
        self.client.force_login(self.owner)
        panel = self.client.post(self.remove_url(self.member), headers=HTMX)
        assert "mike is no longer a member of Plans." in panel.text
        assert f'id="member-{self.member.pk}"' not in panel.text

    def test_owner_can_not_remove_themselves(self):
        """The owner leaves by leaving, not by removing themselves: the panel says so."""
        self.client.force_login(self.owner)
        panel = self.client.post(self.remove_url(self.owner), headers=HTMX)
        assert 'role="alert"' in panel.text and "To leave the room yourself, leave it." in panel.text
        page = self.client.post(self.remove_url(self.owner), follow=True)
        assert "To leave the room yourself, leave it." in page.text
        assert Membership.objects.filter(chat=self.room, user=self.owner).exists()

    def test_only_the_owner_removes(self):
        """A member gets 403; removing someone who is not a member (or does not exist) is 404."""
        self.client.force_login(self.member)
        assert self.client.post(self.remove_url(self.owner)).status_code == 403
        self.client.force_login(self.owner)
        assert self.client.post(self.remove_url(self.outsider)).status_code == 404
        assert (
            self.client.post(reverse("rooms:remove_member", args=[self.room.pk, 999999])).status_code == 404
        )
        assert self.client.get(self.remove_url(self.member)).status_code == 405
        assert Membership.objects.filter(chat=self.room).count() == 2


class SuggestTests(RoomTestCase):
    def options(self, prefix: str) -> list[str]:
        response = self.client.get(self.suggest_url, {"username": prefix}, headers=HTMX)
        assert response.status_code == 200
        return [part.split('"')[0] for part in response.text.split('name="username" value="')[1:]]

    def test_suggests_people_who_are_not_members_by_prefix(self):
        """Active non-members whose name starts with the text, ignoring case, by name, at most 8."""
        for name in ["Alice", "alfred", "albert", "malia"]:
            make_user(name)
        services.add_member(chat=self.room, by=self.owner, user=make_user("alma"))
        User.objects.filter(username="albert").update(is_active=False)
        self.client.force_login(self.owner)
        assert self.options("AL") == ["Alice", "alfred"]
        assert self.options("ot") == ["otto"]
        assert self.options("mi") == []
        assert self.options("") == []
        for number in range(10):
            make_user(f"bulk{number}")
        assert self.options("bulk") == [f"bulk{number}" for number in range(8)]

    def test_suggestions_are_escaped(self):
        """A name is text, whatever it holds."""
        User.objects.create_user(username='al<b>"x&y')
        self.client.force_login(self.owner)
        response = self.client.get(self.suggest_url, {"username": "al<"})
        assert "<b>" not in response.text
        assert 'name="username" value="al&lt;b&gt;&quot;x&amp;y"' in response.text
        assert "Add <strong" in response.text and "al&lt;b&gt;&quot;x&amp;y</strong>" in response.text

    def test_a_suggestion_adds_that_person(self):
        """Each suggestion is a form that posts the person's name, as the add form does."""
        self.client.force_login(self.owner)
        response = self.client.get(self.suggest_url, {"username": "ot"}, headers=HTMX)
        assert (
            f'action="{self.members_url}"' in response.text and 'hx-target="#members-panel"' in response.text
        )
        assert 'name="csrfmiddlewaretoken"' in response.text

    def test_only_the_owner_gets_suggestions(self):
        """Suggestions list people, so only the one who may add them gets them."""
        self.client.force_login(self.member)
        assert self.client.get(self.suggest_url, {"username": "o"}).status_code == 403


class UpdateRoomServiceTests(RoomTestCase):
    def test_owner_changes_name_topic_and_visibility(self):
        """The owner renames the room, sets a one-line topic and makes it public."""
        services.update_room(
            chat=self.room, by=self.owner, name="  Big plans ", topic="  What\nnext? ", visibility="public"
        )
        self.room.refresh_from_db()
        assert (self.room.name, self.room.topic, self.room.visibility) == (
            "Big plans",
            "What next?",
            "public",
        )

    def test_only_the_owner_of_a_room(self):
        """A member, an outsider or anyone in a direct chat can't change settings."""
        for person in [self.member, self.outsider]:
            try:
                services.update_room(chat=self.room, by=person, name="Mine", topic="", visibility="private")
            except PermissionDenied:
                pass
            else:
                raise AssertionError(f"{person} changed the room")
        chat, _ = services.open_direct_chat(user=self.owner, other=self.member)
        try:
            services.update_room(chat=chat, by=self.owner, name="Ours", topic="", visibility="private")
        except PermissionDenied:
            pass
        else:
            raise AssertionError("a direct chat was renamed")
        self.room.refresh_from_db()
        assert self.room.name == "Plans"

    def test_the_name_rules_are_create_rooms(self):
        """Creating and renaming answer the same words for the same bad name."""
        for bad in ["   ", "x" * (ROOM_NAME_MAX_LENGTH + 1)]:
            with self.assertRaises(ValidationError) as created:
                services.create_room(user=self.owner, name=bad, visibility="public")
            with self.assertRaises(ValidationError) as renamed:
                services.update_room(chat=self.room, by=self.owner, name=bad, topic="", visibility="private")
            assert created.exception.message_dict["name"] == renamed.exception.message_dict["name"]
        assert renamed.exception.message_dict["name"] == [
            f"A room name has at most {ROOM_NAME_MAX_LENGTH} characters."
        ]

    def test_every_bad_field_at_once(self):
        """A too-long topic and a bad visibility are reported together with the name's error."""
        with self.assertRaises(ValidationError) as raised:
            services.update_room(
                chat=self.room,
                by=self.owner,
                name="",
                topic="t" * (TOPIC_MAX_LENGTH + 1),
                visibility="secret",
            )
        assert raised.exception.message_dict == {
            "name": ["Give the room a name."],
            "topic": [f"A topic has at most {TOPIC_MAX_LENGTH} characters."],
            "visibility": ["Choose public or private."],
        }

    def test_pushed_after_commit(self):
        """Members' chat lists and open pages get the new name and topic once it is committed."""
        listener = SocketListener(self.room)
        self.addCleanup(listener.close)
        with self.captureOnCommitCallbacks(execute=False) as callbacks:
            services.update_room(
                chat=self.room, by=self.owner, name="Plans B", topic="<b>soon</b>", visibility="private"
            )
        assert listener.pending() == []
        for callback in callbacks:
            callback()
        [html] = listener.pending()
        assert html.lstrip().startswith('<div id="chat-title"')
        assert "Plans B" in html and "&lt;b&gt;soon&lt;/b&gt;" in html and "private" in html

    def test_open_pages_get_the_new_title(self):
        """A socket on the chat receives the header fragment and the chat-list carrier."""
        listener = SocketListener(self.room)
        self.addCleanup(listener.close)
        with self.captureOnCommitCallbacks(execute=True):
            services.update_room(
                chat=self.room, by=self.owner, name="Renamed", topic="Soon", visibility="public"
            )
        [frame] = listener.pending()
        assert '<div id="chat-title"' in frame and "Renamed" in frame and "Soon" in frame
        assert 'id="sidebar-update"' in frame and 'data-action="update"' in frame

    def test_nothing_changed_pushes_nothing(self):
        """Saving the settings as they are writes and pushes nothing, and is not counted by the rate."""
        with (
            override_settings(CHAT_RATES=rates(room="0/hour")),
            mock.patch.object(broadcast, "chat_updated") as updated,
            self.captureOnCommitCallbacks(execute=True),
        ):
            services.update_room(chat=self.room, by=self.owner, name="Plans", topic="", visibility="private")
        updated.assert_not_called()

    def test_rated(self):
        """Changes count towards the room rate, shared with creating rooms."""
        with override_settings(CHAT_RATES=rates(room="2/hour")):
            services.update_room(chat=self.room, by=self.owner, name="One", topic="", visibility="private")
            with self.assertRaisesMessage(PermissionDenied, "You are changing rooms too fast."):
                services.update_room(
                    chat=self.room, by=self.owner, name="Two", topic="", visibility="private"
                )
        self.room.refresh_from_db()
        assert self.room.name == "One"


class RoomSettingsPageTests(RoomTestCase):
    def test_owner_sees_the_settings(self):
        """The owner's settings page holds the room's name, topic and visibility as they are."""
        Chat.objects.filter(pk=self.room.pk).update(topic="Q3")
        self.client.force_login(self.owner)
        page = self.client.get(self.settings_url)
        assert page.status_code == 200
        assert page.context["form"].initial == {"name": "Plans", "topic": "Q3", "visibility": "private"}
        assert 'value="Plans"' in page.text and 'value="Q3"' in page.text

    def test_only_the_owner_of_a_room(self):
        """A member gets 403; a direct chat has no settings (403)."""
        self.client.force_login(self.member)
        assert self.client.get(self.settings_url).status_code == 403
        assert (
            self.client.post(self.settings_url, {"name": "Mine", "visibility": "private"}).status_code == 403
        )
        chat, _ = services.open_direct_chat(user=self.owner, other=self.member)
        self.client.force_login(self.owner)
        assert self.client.get(reverse("rooms:settings", args=[chat.pk])).status_code == 403

    def test_save_without_javascript(self):
        """A plain post saves and goes back to the room (Post/Redirect/Get), which shows the topic."""
        self.client.force_login(self.owner)
        response = self.client.post(
            self.settings_url, {"name": "Big plans", "topic": "For Q3", "visibility": "public"}
        )
        assert response["Location"] == self.room.get_absolute_url()
        self.room.refresh_from_db()
        assert (self.room.name, self.room.topic, self.room.visibility) == ("Big plans", "For Q3", "public")

    def test_save_with_htmx(self):
        """With htmx the answer is the settings fragment, saying it is saved."""
        self.client.force_login(self.owner)
        fragment = self.client.post(
            self.settings_url, {"name": "Big plans", "topic": "", "visibility": "private"}, headers=HTMX
        )
        assert fragment.status_code == 200 and "<html" not in fragment.text
        assert fragment.text.lstrip().startswith('<section id="room-settings"')
        assert 'role="status"' in fragment.text and 'value="Big plans"' in fragment.text

    def test_same_words_as_creating_a_room(self):
        """A too-long name gets the words /chats/new/ shows, next to the name field."""
        self.client.force_login(self.owner)
        long_name = "x" * (ROOM_NAME_MAX_LENGTH + 1)
        created = self.client.post(reverse("chat:new"), {"name": long_name, "visibility": "public"})
        renamed = self.client.post(
            self.settings_url, {"name": long_name, "topic": "", "visibility": "public"}
        )
        words = f"A room name has at most {ROOM_NAME_MAX_LENGTH} characters."
        assert words in created.text
        assert renamed.status_code == 400
        assert renamed.context["form"].errors["name"] == [words]
        bad_visibility = self.client.post(self.settings_url, {"name": "Plans", "visibility": "secret"})
        assert "Choose public or private." in bad_visibility.text
        self.room.refresh_from_db()
        assert self.room.name == "Plans"

    def test_rate_limited_says_so(self):
        """Past the rate the form says so and nothing changes."""
        self.client.force_login(self.owner)
        with override_settings(CHAT_RATES=rates(room="1/hour")):
            page = self.client.post(self.settings_url, {"name": "Later", "visibility": "private"})
        assert page.status_code == 400 and "You are changing rooms too fast." in page.text
