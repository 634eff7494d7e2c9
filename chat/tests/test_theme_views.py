import json
import re

from django.test import TestCase, override_settings
from django.urls import reverse

from chat.tests.factories import make_user
from chat.theme_views import COOKIE, COOKIE_MAX_AGE

HTMX = {"HX-Request": "true"}
HTML_TAG = re.compile(r"<html[^>]*>")


class ThemeChoiceTests(TestCase):
    def html_tag(self) -> str:
        match = HTML_TAG.search(self.client.get("/accounts/login/").content.decode())
        assert match
        return match.group(0)

    def test_choice_is_remembered_and_goes_back(self):
        """The form sets a long-lived cookie for the server, not for scripts, and goes back
        to the page it came from."""
        response = self.client.post(reverse("chat:theme"), {"theme": "dark", "next": "/accounts/signup/"})
        assert response.status_code == 302
        assert response["Location"] == "/accounts/signup/"
        cookie = response.cookies[COOKIE]
        assert cookie.value == "dark"
        assert cookie["max-age"] == COOKIE_MAX_AGE
        assert cookie["httponly"] and cookie["samesite"] == "Lax"

    def test_goes_back_only_within_the_site(self):
        """Another site's address in `next` or the Referer leads home instead."""
        response = self.client.post(
            reverse("chat:theme"),
            {"theme": "light", "next": "https://example.com/"},
            headers={"referer": "https://example.com/"},
        )
        assert response["Location"] == "/"
        response = self.client.post(reverse("chat:theme"), {"theme": "light"}, headers={"referer": "/chats/"})
        assert response["Location"] == "/chats/"

    def test_htmx_gets_the_theme_to_repaint(self):
        """With htmx nothing is swapped: the answer names the theme for chat.js."""
        response = self.client.post(reverse("chat:theme"), {"theme": "system"}, headers=HTMX)
        assert response.status_code == 204
        assert json.loads(response["HX-Trigger"]) == {"chat:theme": {"theme": "system"}}
        assert response.cookies[COOKIE].value == "system"

    @override_settings(DEBUG=False)
    def test_unknown_theme_is_a_bad_request(self):
        """A theme that does not exist is refused, and GET is not allowed."""
        response = self.client.post(reverse("chat:theme"), {"theme": "sepia"})
        assert response.status_code == 400
        assert COOKIE not in response.cookies
        assert self.client.get(reverse("chat:theme")).status_code == 405

    def test_pages_are_drawn_in_the_chosen_theme(self):
        """The server draws the page in the cookie's theme: dark has the class, system leaves
        it to the media query, and anything else counts as system."""
        assert 'data-theme="system"' in self.html_tag() and "dark" not in self.html_tag()
        for value, tag in (
            ("dark", 'class="dark"'),
            ("light", 'data-theme="light"'),
            ("bogus", 'data-theme="system"'),
        ):
            self.client.cookies[COOKIE] = value
            assert tag in self.html_tag(), value
        self.client.cookies[COOKIE] = "light"
        assert "class=" not in self.html_tag()

    def test_switcher_shows_the_choice(self):
        """The switcher marks the chosen theme as pressed, for signed-in people too."""
        self.client.force_login(make_user())
        self.client.cookies[COOKIE] = "dark"
        page = self.client.get("/chats/").content.decode()
        pressed = re.findall(r'name="theme" value="(\w+)"[^>]*aria-pressed="true"', page)
        assert pressed == ["dark"]
