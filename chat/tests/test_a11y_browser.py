"""Accessibility in a real browser: axe-core on every page, and the keyboard alone.

axe-core (installed from npm with the theme's packages, see the Makefile) is injected into
each page of the tour (chat/tests/tour.py) in both themes and both languages, and must
find no serious or critical violation of WCAG 2.2 AA. The other tests do what axe can't:
they use the chat with the keyboard only, and check where the focus goes and what a
screen reader is told.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Locator, Page, expect

from chat.tests.conftest import PASSWORD, PROJECT_ROOT, SOCKET_STATE_SCRIPT, Processes, missing
from chat.tests.tour import World, build_world, production_server, serve_server_error_page, sign_in, stops

pytestmark = pytest.mark.browser

expect.set_options(timeout=10_000)

AXE = PROJECT_ROOT / "theme" / "static_src" / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.0, 2.1 and 2.2, levels A and AA, and axe's best practices (landmarks, headings).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
BLOCKING = {"serious", "critical"}
DESKTOP = {"width": 1280, "height": 800}
RUN_AXE = """
(tags) => axe.run(document, {runOnly: {type: "tag", values: tags}}).then((result) =>
  result.violations.map((violation) => ({
    id: violation.id,
    impact: violation.impact,
    help: violation.help,
    nodes: violation.nodes.map((node) => ({target: node.target.join(" "), summary: node.failureSummary})),
  })))
"""


@pytest.fixture(scope="module")
def world(
    chromium: Browser, processes: type[Processes], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    if not AXE.exists():
        where = AXE.relative_to(PROJECT_ROOT)
        missing(f"axe-core is not installed ({where}): `make node-modules` installs it with npm")
    with production_server(processes, tmp_path_factory.mktemp("a11y")) as (url, server_error_page):
        yield build_world(chromium, url, server_error_page)


def new_context(browser: Browser, world: World, **options: Any) -> BrowserContext:
    options.setdefault("viewport", DESKTOP)
    context = browser.new_context(base_url=world.url, **options)
    context.set_default_timeout(10_000)
    context.add_init_script(SOCKET_STATE_SCRIPT)
    serve_server_error_page(context, world)
    return context


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"  {violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"][:5]:
            summary = " ".join(node["summary"].split())
            lines.append(f"    {node['target']}: {summary[:400]}")
    return "\n".join(lines)


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_axe_finds_nothing_serious_on_any_page(
    chromium: Browser, world: World, theme: str, language: str
) -> None:
    """On every page of the tour, in the theme and the language, axe-core reports no
    serious or critical violation of WCAG 2.2 AA (nor of its best practices)."""
    pages: dict[str, Page] = {}
    contexts = []
    for who in ("anonymous", "owner", "member"):
        # Playwright puts axe into the page as an inline script: the test lets it past the
        # Content Security Policy, which allows only the page's own scripts.
        context = new_context(chromium, world, locale=language, bypass_csp=True)
        context.add_cookies([{"name": "theme", "value": theme, "url": world.url}])
        contexts.append(context)
        pages[who] = context.new_page() if who == "anonymous" else sign_in(context, getattr(world, who))
    failures = []
    try:
        for stop in stops(world):
            page = pages[stop.who]
            stop.visit(page)
            # A stop that ends with a form post has its new page's elements before its
            # stylesheet: axe would judge the page unstyled (it did once in CI, under load).
            page.wait_for_load_state("load")
            expect(page.locator("html")).to_have_attribute(
                "data-theme", theme if stop.name != "500" else "system"
            )
            page.add_script_tag(path=str(AXE))
            violations = [v for v in page.evaluate(RUN_AXE, AXE_TAGS) if v["impact"] in BLOCKING]
            if violations:
                failures.append(f"{stop.name} ({page.url}):\n{describe(violations)}")
    finally:
        for context in contexts:
            context.close()
    assert not failures, f"axe-core, {theme} theme, {language}:\n" + "\n".join(failures)


# ---- The keyboard alone ----


def is_focused(locator: Locator) -> bool:
    return bool(locator.evaluate("(element) => element === document.activeElement"))


def press_until_focused(page: Page, target: Locator, key: str = "Tab", limit: int = 80) -> None:
    """Press the key (Tab, Shift+Tab) until the target has the focus, as a keyboard user does."""
    target.wait_for(state="attached")
    for _ in range(limit):
        if is_focused(target):
            return
        page.keyboard.press(key)
    focused = page.evaluate("() => document.activeElement && document.activeElement.outerHTML.slice(0, 200)")
    pytest.fail(f"{key} pressed {limit} times never reached {target}; the focus is on {focused}")


def test_keyboard_alone_signs_in_sends_edits_and_deletes(chromium: Browser, world: World) -> None:
    """With Tab, Enter, typing and Escape only (no pointer): sign in, open a chat, send a
    message, edit it and delete it. The focus stays somewhere useful after each step."""
    context = new_context(chromium, world)
    try:
        page = context.new_page()
        page.goto("/accounts/login/")
        press_until_focused(page, page.get_by_label("Username"))
        page.keyboard.type(world.owner)
        page.keyboard.press("Tab")
        expect(page.get_by_label("Password")).to_be_focused()
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(r"/chats/$"))

        room = page.get_by_role("navigation", name="Chats").get_by_role(
            "link", name=re.compile(r"^Book club\b")
        )
        press_until_focused(page, room)
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(rf"/chats/{world.room}/$"))
        expect(page.locator("html")).to_have_attribute("data-chat-socket", "open")
        # The composer takes the keys when a chat opens.
        composer = page.get_by_role("textbox", name="Message", exact=True)
        expect(composer).to_be_focused()
        page.keyboard.type("Typed without a mouse")
        page.keyboard.press("Enter")
        mine = (
            page.get_by_role("log", name="Messages")
            .locator("article")
            .filter(has_text="Typed without a mouse")
        )
        expect(mine).to_have_count(1)
        expect(composer).to_be_focused()
        expect(composer).to_have_value("")

        # Back from the composer to the message's own actions.
        edit = mine.get_by_role("link", name="Edit")
        press_until_focused(page, edit, "Shift+Tab")
        expect(mine.get_by_role("group", name="Message actions")).to_have_css("opacity", "1")
        page.keyboard.press("Enter")
        field = page.get_by_role("textbox", name="Edit message")
        expect(field).to_be_focused()
        page.keyboard.press("Escape")
        expect(field).to_have_count(0)
        expect(edit).to_be_focused()
        page.keyboard.press("Enter")
        expect(field).to_be_focused()
        page.keyboard.type(", and fixed")
        page.keyboard.press("Enter")
        edited = page.locator(f"#{mine.get_attribute('id')}")
        expect(edited).to_contain_text("Typed without a mouse, and fixed")
        expect(edited).to_contain_text("(edited)")
        # The saved message replaces the form; its Edit link has the focus again.
        expect(edited.get_by_role("link", name="Edit")).to_be_focused()

        questions: list[str] = []

        def answer(dialog: Dialog) -> None:
            # The browser's own confirmation: Enter accepts it. Playwright answers for the
            # keyboard, since no key reaches a native dialog from a script.
            questions.append(dialog.message)
            dialog.accept()

        page.once("dialog", answer)
        press_until_focused(page, edited.get_by_role("button", name="Delete"))
        page.keyboard.press("Enter")
        expect(edited).to_contain_text("This message was deleted.")
        assert questions == ["Delete this message for everyone?"]
        # Its actions went with it: the focus goes back to the composer.
        expect(composer).to_be_focused()
    finally:
        context.close()


def test_menus_and_the_panel_close_on_escape_and_give_the_focus_back(chromium: Browser, world: World) -> None:
    """The Room menu opens with Enter and closes with Escape, back on its button; the
    members panel opened from it closes with Escape, back on the menu's button."""
    context = new_context(chromium, world)
    try:
        page = sign_in(context, world.owner)
        page.goto(f"/chats/{world.room}/")
        expect(page.locator("html")).to_have_attribute("data-chat-socket", "open")
        menu = page.locator("details.room-menu")
        summary = menu.locator("summary")
        members = menu.get_by_role("link", name="Members")
        press_until_focused(page, summary, "Shift+Tab")
        page.keyboard.press("Enter")
        expect(members).to_be_visible()
        page.keyboard.press("Tab")
        expect(members).to_be_focused()
        page.keyboard.press("Escape")
        expect(members).to_be_hidden()
        expect(summary).to_be_focused()

        page.keyboard.press("Enter")
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        panel = page.get_by_role("complementary", name="Room details")
        expect(panel.get_by_role("heading", name="Members")).to_be_visible()
        expect(panel.get_by_role("button", name="Close the panel")).to_be_focused()
        page.keyboard.press("Escape")
        expect(panel).to_be_hidden()
        expect(summary).to_be_focused()
    finally:
        context.close()


def test_skip_links_lead_to_the_content(chromium: Browser, world: World) -> None:
    """The first Tab on a page reaches a visible skip link; Enter moves the focus past the
    header and the chat list: to the content, or in a chat to the composer."""
    context = new_context(chromium, world)
    try:
        page = sign_in(context, world.owner)
        page.goto("/chats/")
        page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Skip to content")
        expect(skip).to_be_focused()
        expect(skip).to_be_in_viewport()
        page.keyboard.press("Enter")
        expect(page.locator("main")).to_be_focused()

        # A chat at a width where the composer does not take the focus by itself.
        page.set_viewport_size({"width": 800, "height": 800})
        page.goto(f"/chats/{world.room}/")
        page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Skip to the composer")
        expect(skip).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.get_by_role("textbox", name="Message", exact=True)).to_be_focused()
    finally:
        context.close()


FOCUS_RING = """
(element) => {
  const style = getComputedStyle(element);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
  const ring = style.boxShadow !== "none";
  return outline || ring;
}
"""


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_focus_is_visible_on_everything_the_keyboard_reaches(
    chromium: Browser, world: World, theme: str
) -> None:
    """Each control that Tab reaches shows a focus ring (an outline of 2 px, or a ring)."""
    context = new_context(chromium, world)
    context.add_cookies([{"name": "theme", "value": theme, "url": world.url}])
    try:
        page = sign_in(context, world.owner)
        unseen = []
        for path in ("/chats/", f"/chats/{world.room}/", f"/chats/{world.room}/settings/"):
            page.goto(path)
            page.wait_for_load_state("networkidle")
            page.evaluate("() => document.activeElement && document.activeElement.blur()")
            seen = set()
            for _ in range(60):
                page.keyboard.press("Tab")
                focused = page.locator(":focus")
                if focused.count() != 1:
                    continue
                html = focused.evaluate("(element) => element.outerHTML.slice(0, 120)")
                if html in seen:
                    break
                seen.add(html)
                if not focused.evaluate(FOCUS_RING):
                    unseen.append(f"{path}: {html}")
        assert not unseen, "no visible focus:\n" + "\n".join(unseen)
    finally:
        context.close()


def test_messages_from_others_are_announced_without_taking_the_focus(chromium: Browser, world: World) -> None:
    """The conversation is a polite live region (role log, named Messages): a message from
    someone else is added to it while the reader's focus stays in the composer."""
    reader_context = new_context(chromium, world)
    writer_context = new_context(chromium, world)
    try:
        reader = sign_in(reader_context, world.owner)
        writer = sign_in(writer_context, world.member)
        for page in (reader, writer):
            page.goto(f"/chats/{world.room}/")
            expect(page.locator("html")).to_have_attribute("data-chat-socket", "open")
        log = reader.get_by_role("log", name="Messages")
        assert log.get_attribute("aria-live") in (None, "polite")
        composer = reader.get_by_role("textbox", name="Message", exact=True)
        composer.press_sequentially("Half a thought")
        writer.get_by_role("textbox", name="Message", exact=True).fill("A reply while you type")
        writer.get_by_role("textbox", name="Message", exact=True).press("Enter")
        expect(log.locator("article").filter(has_text="A reply while you type")).to_have_count(1)
        expect(composer).to_be_focused()
        expect(composer).to_have_value("Half a thought")
    finally:
        reader_context.close()
        writer_context.close()
