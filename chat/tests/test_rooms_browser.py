"""A room's members panel in a real browser: Chromium against a real daphne process.

Every test signs up its own people through the form and drives the pages by role and
label, as a screen reader does.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Locator, Page, expect

pytestmark = pytest.mark.browser

SignUp = Callable[..., Page]

expect.set_options(timeout=10_000)


def username(page: Page) -> str:
    """The signed-in person's username, as the page header shows it."""
    return page.get_by_role("navigation", name="Main").locator("strong").inner_text()


def create_room(page: Page, name: str) -> str:
    """Create a private room from the form; the URL of its members panel."""
    page.goto("/chats/new/")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Private").check()
    page.get_by_role("button", name="Create room").click()
    expect(page).to_have_url(re.compile(r"/chats/\d+/$"))
    return f"{page.url}members/"


def members(page: Page) -> Locator:
    return page.get_by_role("list", name="Members")


def notice(page: Page) -> Locator:
    """The panel's notice (with JavaScript) or the page's (after a redirect without it)."""
    return page.get_by_role("status").last


def test_owner_adds_a_suggested_member_by_keyboard_and_removes_her(sign_up: SignUp) -> None:
    """The owner types the start of a name, picks the suggestion with the keyboard, adds
    her, sees her listed, and removes her again; the panel is swapped in place."""
    owner = sign_up("owner")
    alice_name = username(sign_up("alice"))
    members_url = create_room(owner, "Garden club")
    owner.goto(members_url)
    expect(members(owner).get_by_role("listitem")).to_have_count(1)

    field = owner.get_by_label("Add a member")
    field.press_sequentially(alice_name[:-1])
    suggestions = owner.get_by_role("list", name="Suggestions").get_by_role("button")
    expect(suggestions).to_have_count(1)
    expect(suggestions).to_have_accessible_name(f"Add {alice_name}")
    # Tab past the Add button to the suggestion, and Enter adds her.
    field.press("Tab")
    owner.keyboard.press("Tab")
    expect(suggestions).to_be_focused()
    with owner.expect_response(lambda response: response.request.method == "POST") as added:
        owner.keyboard.press("Enter")
    assert added.value.status == 200  # htmx: the panel, not a redirect
    expect(notice(owner)).to_contain_text(f"{alice_name} is now a member of Garden club.")
    expect(members(owner).get_by_role("listitem")).to_have_count(2)
    expect(members(owner)).to_contain_text(alice_name)
    expect(owner.get_by_label("Add a member")).to_be_focused()
    expect(owner.get_by_label("Add a member")).to_have_value("")
    assert owner.url == members_url

    owner.get_by_role("button", name=f"Remove {alice_name}").click()
    expect(notice(owner)).to_contain_text(f"{alice_name} is no longer a member of Garden club.")
    expect(members(owner).get_by_role("listitem")).to_have_count(1)
    expect(members(owner)).not_to_contain_text(alice_name)


def test_owner_without_javascript_adds_by_exact_name(sign_up: SignUp) -> None:
    """With JavaScript off, the exact name and a plain form post (Post/Redirect/Get) are enough."""
    owner = sign_up("owner", java_script_enabled=False)
    bob_name = username(sign_up("bob"))
    members_url = create_room(owner, "Book club")
    owner.goto(members_url)
    owner.get_by_label("Add a member").fill(bob_name)
    with owner.expect_response(lambda response: response.request.method == "POST") as added:
        owner.get_by_role("button", name="Add", exact=True).click()
    assert added.value.status == 302
    expect(notice(owner)).to_contain_text(f"{bob_name} is now a member of Book club.")
    expect(members(owner)).to_contain_text(bob_name)
    owner.get_by_role("button", name=f"Remove {bob_name}").click()
    expect(notice(owner)).to_contain_text(f"{bob_name} is no longer a member of Book club.")
    expect(members(owner)).not_to_contain_text(bob_name)
