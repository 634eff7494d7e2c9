"""A tour of the chat's pages, for the accessibility and theme tests.

A production server (DEBUG off and collected static files, so that the error pages are
the site's own) holds a small world made through its forms, as people make it: two
people, a room with messages (one of them edited, one deleted), a direct chat. Each stop
of the tour is one page in one state (a menu open, a panel shown), reached as a person
reaches it.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pytest

from chat.tests.conftest import GENEROUS_RATES, PASSWORD, Processes

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

Who = Literal["anonymous", "owner", "member"]

# The 500 page is rendered without a request (django.views.defaults.server_error); the
# tour serves that rendering at this address of the real server, with its real styles.
SERVER_ERROR_PATH = "/__server-error__/"
RENDER_500 = """
from django.template import loader
print(loader.get_template("500.html").render())
"""


@dataclass(frozen=True)
class World:
    url: str
    owner: str
    member: str
    room: int
    direct: int
    # The owner's first message in the room, and its edited one.
    message: int
    edited: int
    server_error_page: str
    has_search: bool


@dataclass(frozen=True)
class Stop:
    """One page of the tour: who looks at it, and how they get there."""

    name: str
    who: Who
    visit: Callable[[Page], None]


@contextlib.contextmanager
def production_server(processes: type[Processes], directory: Path) -> Iterator[tuple[str, str]]:
    """daphne with DEBUG off, as deployed; yields its URL and the 500 page as it renders."""
    env = processes.env(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=f"sqlite:///{directory}/db.sqlite3",
        **GENEROUS_RATES,
    )
    for command in (("collectstatic", "--noinput"), ("migrate", "--noinput")):
        done = processes.manage(env, *command)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    server_error_page = processes.python(env, RENDER_500)
    with processes.daphne(env) as url:
        yield url, server_error_page


def sign_up(page: Page, username: str) -> str:
    page.goto("/accounts/signup/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/chats/$"))
    return username


def sign_in(context: BrowserContext, username: str) -> Page:
    """A page of the context, signed in through the login form."""
    page = context.new_page()
    page.goto("/accounts/login/")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/chats/$"))
    return page


def post(page: Page, text: str) -> int:
    """Send a message with the composer's plain form; its id."""
    page.locator("#composer textarea").fill(text)
    page.locator("#composer button[type=submit]").click()
    page.wait_for_load_state()
    # Nobody else writes meanwhile: the newest message is this one.
    article = page.locator("article[data-message-id]").last
    return int(article.get_attribute("data-message-id") or 0)


def chat_id(page: Page) -> int:
    match = re.search(r"/chats/(\d+)/", page.url)
    assert match, page.url
    return int(match.group(1))


def build_world(browser: Browser, url: str, server_error_page: str) -> World:
    """Two people make a room and a direct chat and talk, with JavaScript off (plain forms)."""
    owner_context = browser.new_context(base_url=url, java_script_enabled=False)
    member_context = browser.new_context(base_url=url, java_script_enabled=False)
    try:
        owner_page = owner_context.new_page()
        member_page = member_context.new_page()
        # The server and its database are the tour's own: plain names (as in screenshots).
        owner = sign_up(owner_page, "olivia")
        member = sign_up(member_page, "samir")

        owner_page.goto("/chats/new/")
        owner_page.locator("input[name=name]").fill("Book club")
        owner_page.locator("input[name=visibility][value=public]").check()
        owner_page.locator("main form button[type=submit]").first.click()
        owner_page.wait_for_url(re.compile(r"/chats/\d+/$"))
        room = chat_id(owner_page)
        message = post(owner_page, "Hello everyone! This month we read *Dune*, see `the list`.")
        edited = post(owner_page, "Meeting on Friday at six")
        owner_page.goto(f"/chats/{room}/messages/{edited}/edit/")
        owner_page.locator("textarea[name=text]").fill("Meeting on Friday at seven, in the library")
        owner_page.locator("main form button[type=submit]").first.click()
        owner_page.wait_for_url(re.compile(rf"/chats/{room}/"))

        member_page.goto(f"/chats/{room}/")
        member_page.locator("main form[action$='/join/']").locator("button[type=submit]").click()
        member_page.wait_for_load_state()
        post(member_page, "Hi! I'm halfway through.\nThe desert chapters are long.")
        mistake = post(member_page, "Sent to the wrong room, sorry")
        member_page.goto(f"/chats/{room}/messages/{mistake}/delete/")
        member_page.locator("main form button[type=submit]").first.click()
        member_page.wait_for_load_state()

        owner_page.goto("/chats/")
        owner_page.locator("input[name=username]").fill(member)
        owner_page.locator("form[action$='/direct/']").locator("button[type=submit]").click()
        owner_page.wait_for_url(re.compile(r"/chats/\d+/$"))
        direct = chat_id(owner_page)
        post(owner_page, "Can you bring the spare copy on Friday?")
        member_page.goto(f"/chats/{direct}/")
        post(member_page, "Sure, I'll bring it.")

        search = owner_page.goto("/search/?q=Dune")
        has_search = search is not None and search.status == 200
    finally:
        owner_context.close()
        member_context.close()
    return World(url, owner, member, room, direct, message, edited, server_error_page, has_search)


def open_room_menu(page: Page) -> None:
    page.locator("details.room-menu > summary").click()
    page.locator("details.room-menu[open]").wait_for()


def open_members_panel(page: Page) -> None:
    open_room_menu(page)
    page.locator("details.room-menu a[href$='/members/']").click()
    page.locator("#side-panel:not([hidden]) #members-panel").wait_for()


def open_inline_edit(page: Page, message: int) -> None:
    article = page.locator(f"#message-{message}")
    article.hover()
    article.locator(".message-edit").click()
    page.locator(f"#edit-text-{message}").wait_for()


def open_reaction_picker(page: Page, message: int) -> None:
    article = page.locator(f"#message-{message}")
    article.hover()
    article.locator("details.reaction-picker > summary").click()
    article.locator("details.reaction-picker[open]").wait_for()


def goto(path: str) -> Callable[[Page], None]:
    def visit(page: Page) -> None:
        page.goto(path)

    return visit


def then(path: str, action: Callable[[Page], None]) -> Callable[[Page], None]:
    def visit(page: Page) -> None:
        page.goto(path)
        # The socket's first catch-up may re-render the log: act after it settled.
        page.wait_for_load_state("networkidle")
        action(page)

    return visit


def bad_request(page: Page) -> None:
    """The 400 page: the theme form posted with a theme that does not exist."""
    page.goto("/accounts/login/")
    with page.expect_navigation():
        page.evaluate(
            """() => {
              const form = document.getElementById("theme-switcher");
              const theme = document.createElement("input");
              Object.assign(theme, {type: "hidden", name: "theme", value: "sepia"});
              form.append(theme);
              form.submit();
            }"""
        )


def sign_up_refused(page: Page) -> None:
    """The sign-up form again, with its errors: a taken name, passwords that differ."""
    page.goto("/accounts/signup/")
    page.locator("input[name=username]").fill("olivia")
    page.locator("input[name=password1]").fill("short")
    page.locator("input[name=password2]").fill("different")
    page.locator("main form button[type=submit]").click()
    page.locator("[aria-invalid=true]").first.wait_for()


def saved_with_a_notice(path: str) -> Callable[[Page], None]:
    """Room settings saved with a plain post: back in the room, under a floating notice."""

    def visit(page: Page) -> None:
        page.goto(f"{path}settings/")
        with page.expect_navigation():
            page.evaluate(
                "() => HTMLFormElement.prototype.submit.call(document.querySelector('#room-settings form'))"
            )
        page.locator("#notices").wait_for()

    return visit


def stops(world: World) -> list[Stop]:
    """Every page of the chat, in the states worth looking at."""
    room = f"/chats/{world.room}/"
    tour = [
        Stop("sign-up", "anonymous", goto("/accounts/signup/")),
        Stop("login", "anonymous", goto("/accounts/login/")),
        Stop("sign-up refused", "anonymous", sign_up_refused),
        Stop("chat list", "owner", goto("/chats/")),
        Stop("new room", "owner", goto("/chats/new/")),
        Stop("room", "owner", then(room, lambda page: None)),
        Stop("room menu", "owner", then(room, open_room_menu)),
        Stop("members panel", "owner", then(room, open_members_panel)),
        Stop("edit in place", "owner", then(room, lambda page: open_inline_edit(page, world.message))),
        Stop("reaction picker", "member", then(room, lambda page: open_reaction_picker(page, world.message))),
        Stop("room as a reader", "member", then(room, lambda page: None)),
        Stop("members page", "owner", goto(f"{room}members/")),
        Stop("room settings", "owner", goto(f"{room}settings/")),
        Stop("notice", "owner", saved_with_a_notice(room)),
        Stop("direct chat", "owner", then(f"/chats/{world.direct}/", lambda page: None)),
        Stop("edit page", "owner", goto(f"{room}messages/{world.message}/edit/")),
        Stop("delete page", "owner", goto(f"{room}messages/{world.message}/delete/")),
        Stop("password", "owner", goto("/accounts/password/")),
        Stop(
            "API docs", "owner", then("/api/docs/", lambda page: page.locator(".swagger-ui .info").wait_for())
        ),
        Stop("400", "anonymous", bad_request),
        Stop("403", "member", goto(f"{room}settings/")),
        Stop("404", "owner", goto("/chats/999999999/")),
        Stop("500", "anonymous", goto(SERVER_ERROR_PATH)),
    ]
    if world.has_search:
        tour.append(Stop("search results", "owner", goto("/search/?q=Dune")))
    return tour


def serve_server_error_page(context: BrowserContext, world: World) -> None:
    """Answer SERVER_ERROR_PATH with the 500 page as the server renders it."""
    context.route(
        f"{world.url}{SERVER_ERROR_PATH}",
        lambda route: route.fulfill(
            status=500, content_type="text/html; charset=utf-8", body=world.server_error_page
        ),
    )
