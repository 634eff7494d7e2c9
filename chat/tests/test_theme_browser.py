"""Light and dark in a real browser: every page of the tour (chat/tests/tour.py) in both.

The theme follows the system's colour scheme until the person picks one with the
switcher in the header; the choice is a cookie that the server reads, so that the first
paint is already right, with JavaScript or without.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from chat.tests.conftest import PROJECT_ROOT, SOCKET_STATE_SCRIPT, Processes
from chat.tests.tour import World, build_world, production_server, serve_server_error_page, sign_in, stops

pytestmark = pytest.mark.browser

expect.set_options(timeout=10_000)

DESKTOP = {"width": 1280, "height": 800}
# The mean relative luminance (0 black, 1 white) of a screenshot of the page.
MEAN_LUMINANCE = """
async (source) => {
  const image = new Image();
  image.src = source;
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = image.width;
  canvas.height = image.height;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const data = context.getImageData(0, 0, image.width, image.height).data;
  const linear = (value) => {
    const c = value / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  let total = 0;
  for (let i = 0; i < data.length; i += 4) {
    total += 0.2126 * linear(data[i]) + 0.7152 * linear(data[i + 1]) + 0.0722 * linear(data[i + 2]);
  }
  return total / (data.length / 4);
}
"""
# A page reads as dark below this mean luminance, and as light above the other.
DARK_BELOW = 0.15
LIGHT_ABOVE = 0.6


@pytest.fixture(scope="module")
def world(
    chromium: Browser, processes: type[Processes], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with production_server(processes, tmp_path_factory.mktemp("theme")) as (url, server_error_page):
        yield build_world(chromium, url, server_error_page)


def new_context(browser: Browser, world: World, **options: Any) -> BrowserContext:
    options.setdefault("viewport", DESKTOP)
    context = browser.new_context(base_url=world.url, **options)
    context.set_default_timeout(10_000)
    context.add_init_script(SOCKET_STATE_SCRIPT)
    serve_server_error_page(context, world)
    return context


def luminance(page: Page, scratch: Page) -> float:
    """How bright the page looks: the mean luminance of its screenshot."""
    page.mouse.move(0, 0)
    shot = base64.b64encode(page.screenshot()).decode()
    return float(scratch.evaluate(MEAN_LUMINANCE, f"data:image/png;base64,{shot}"))


@pytest.mark.parametrize(
    ("scheme", "chosen", "expected"),
    [
        ("dark", None, "dark"),
        ("light", "dark", "dark"),
        ("dark", "light", "light"),
        ("light", None, "light"),
    ],
    ids=["system-dark", "chosen-dark", "chosen-light", "system-light"],
)
def test_every_page_follows_the_theme(
    chromium: Browser, world: World, scheme: str, chosen: str | None, expected: str
) -> None:
    """With the system's colour scheme and the person's choice (none: the system's), each
    page of the tour is painted dark or light as a whole, error pages and API docs too."""
    pages: dict[str, Page] = {}
    contexts = []
    for who in ("anonymous", "owner", "member"):
        context = new_context(chromium, world, color_scheme=scheme)
        if chosen:
            context.add_cookies([{"name": "theme", "value": chosen, "url": world.url}])
        contexts.append(context)
        pages[who] = context.new_page() if who == "anonymous" else sign_in(context, getattr(world, who))
    scratch = contexts[0].new_page()
    wrong = []
    try:
        for stop in stops(world):
            if stop.name == "500" and chosen:
                # Rendered without a request, so without the cookie: it follows the system.
                continue
            page = pages[stop.who]
            stop.visit(page)
            measured = luminance(page, scratch)
            looks = "dark" if measured < DARK_BELOW else "light" if measured > LIGHT_ABOVE else "grey"
            if looks != expected:
                wrong.append(f"{stop.name} ({page.url}): mean luminance {measured:.2f}, {looks}")
    finally:
        for context in contexts:
            context.close()
    assert not wrong, f"expected {expected} pages:\n" + "\n".join(wrong)


def html_classes(page: Page) -> str:
    return page.locator("html").get_attribute("class") or ""


def test_the_choice_works_and_sticks_without_javascript(chromium: Browser, world: World) -> None:
    """With JavaScript off, the switcher's plain form sets the theme, comes back to the
    same page, and the choice holds on the next pages; System goes back to the browser's."""
    context = new_context(chromium, world, color_scheme="light", java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/accounts/signup/")
        theme = page.get_by_role("group", name="Theme")
        expect(theme.get_by_role("button", name="System")).to_have_attribute("aria-pressed", "true")
        theme.get_by_role("button", name="Dark").click()
        expect(page).to_have_url(re.compile(r"/accounts/signup/$"))
        expect(page.locator("html")).to_have_class("dark")
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        expect(theme.get_by_role("button", name="Dark")).to_have_attribute("aria-pressed", "true")
        expect(theme.get_by_role("button", name="System")).to_have_attribute("aria-pressed", "false")

        page.goto("/accounts/login/")
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        page.get_by_role("group", name="Theme").get_by_role("button", name="System").click()
        expect(page).to_have_url(re.compile(r"/accounts/login/$"))
        expect(page.locator("html")).to_have_attribute("data-theme", "system")
        assert "dark" not in html_classes(page).split()
    finally:
        context.close()


def test_the_switcher_repaints_in_place_with_javascript(chromium: Browser, world: World) -> None:
    """With JavaScript, choosing a theme repaints the open chat without reloading it (its
    socket stays open), and the choice is there on the next visit."""
    context = new_context(chromium, world, color_scheme="light")
    scratch = context.new_page()
    try:
        page = sign_in(context, world.owner)
        page.goto(f"/chats/{world.room}/")
        expect(page.locator("html")).to_have_attribute("data-chat-socket", "open")
        page.evaluate("() => { window.notReloaded = true; }")
        assert luminance(page, scratch) > LIGHT_ABOVE

        page.get_by_role("group", name="Theme").get_by_role("button", name="Dark").click()
        expect(page.locator("html")).to_have_class("dark")
        expect(page.get_by_role("group", name="Theme").get_by_role("button", name="Dark")).to_have_attribute(
            "aria-pressed", "true"
        )
        assert page.evaluate("() => window.notReloaded === true")
        expect(page.locator("html")).to_have_attribute("data-chat-socket", "open")
        assert luminance(page, scratch) < DARK_BELOW

        page.goto("/chats/")
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        page.get_by_role("group", name="Theme").get_by_role("button", name="Light").click()
        expect(page.locator("html")).to_have_attribute("data-theme", "light")
        page.reload()
        expect(page.locator("html")).to_have_attribute("data-theme", "light")
    finally:
        context.close()


def test_screenshot_of_a_room_in_the_dark(chromium: Browser, world: World, tmp_path: Path) -> None:
    """A room in the dark theme at 1000x640. With SCREENSHOTS=docs it is written to
    docs/screenshot-dark.png for the README."""
    context = new_context(chromium, world, color_scheme="dark", viewport={"width": 1000, "height": 640})
    try:
        page = sign_in(context, world.owner)
        page.goto(f"/chats/{world.room}/")
        expect(page.locator("html")).to_have_attribute("data-chat-socket", "open")
        page.get_by_role("textbox", name="Message", exact=True).fill("Friday works for me")
        page.mouse.move(0, 0)
        path = tmp_path / "screenshot-dark.png"
        page.screenshot(path=path)
        assert luminance(page, context.new_page()) < DARK_BELOW
        if os.environ.get("SCREENSHOTS") == "docs":
            shutil.copy(path, PROJECT_ROOT / "docs" / "screenshot-dark.png")
    finally:
        context.close()
