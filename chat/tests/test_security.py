"""The browser's protections and the production defaults.

Pages carry a Content Security Policy that allows scripts and styles only from the site or
with the response's nonce, and no eval; the chat, the API docs and the admin work under it
in Chromium without a single violation. A production process (DEBUG off) refuses a weak
secret key, and with the documented variables `check --deploy` has nothing to say.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from django.conf import settings
from django.http import HttpResponseBase
from django.test import TestCase
from django.urls import reverse
from django.utils.csp import build_policy
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Locator, Page, expect

from chat.tests.factories import general, make_user

if TYPE_CHECKING:
    from chat.tests.conftest import Processes

expect.set_options(timeout=10_000)

PASSWORD = "correct-horse-battery-staple-42"
# What `check --deploy` is run with: the variables the README documents for production.
DEPLOYMENT = {
    "DEBUG": "false",
    "HTTPS": "true",
    "ALLOWED_HOSTS": "chat.example.com",
}


def directives(header: str) -> dict[str, list[str]]:
    """A Content-Security-Policy header as {directive: [sources]}."""
    policy: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *sources = part.split()
        policy[name] = sources
    return policy


def header_nonce(response: HttpResponseBase) -> str:
    """The nonce that the response's policy allows scripts with."""
    script_src = directives(response.headers["Content-Security-Policy"])["script-src"]
    match = re.fullmatch(r"'nonce-([\w-]+)'", script_src[-1])
    assert match, script_src
    return match.group(1)


def nonces(html: str, tag: str) -> list[str | None]:
    """The nonce of every <script> or <style> element of a page (None where it has none)."""
    found = []
    for attributes in re.findall(rf"<{tag}\b([^>]*)>", html):
        match = re.search(r'\bnonce="([^"]+)"', attributes)
        found.append(match.group(1) if match else None)
    return found


class HeadersTests(TestCase):
    """Every page says what the browser may load and do."""

    def setUp(self) -> None:
        self.user = make_user("alice")

    def test_page_has_a_strict_content_security_policy(self) -> None:
        """Scripts and styles come from the site or carry the nonce; nothing is evaluated,
        framed, posted elsewhere or loaded as a plugin."""
        response = self.client.get(reverse("login"))
        policy = directives(response.headers["Content-Security-Policy"])
        nonce = header_nonce(response)
        assert policy["default-src"] == ["'self'"]
        assert policy["script-src"] == ["'self'", f"'nonce-{nonce}'"]
        assert policy["style-src"] == ["'self'", f"'nonce-{nonce}'"]
        assert policy["connect-src"] == ["'self'"]
        assert policy["object-src"] == ["'none'"]
        assert policy["base-uri"] == ["'self'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert policy["form-action"] == ["'self'"]
        assert "unsafe" not in response.headers["Content-Security-Policy"]

    def test_page_has_the_other_security_headers(self) -> None:
        """Not framed, no referrer to other sites, no camera or microphone, its own window."""
        response = self.client.get(reverse("login"))
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        permissions = response.headers["Permissions-Policy"]
        for feature in ("camera", "microphone", "geolocation"):
            assert f"{feature}=()" in permissions

    def test_every_script_and_style_of_the_chat_page_has_the_nonce(self) -> None:
        """The chat page's scripts and its per-user style block carry this response's nonce,
        and htmx is told not to evaluate code or add styles of its own."""
        self.client.force_login(self.user)
        response = self.client.get(general().get_absolute_url())
        html = response.content.decode()
        nonce = header_nonce(response)
        scripts = nonces(html, "script")
        assert len(scripts) >= 3
        assert set(scripts) == {nonce}
        # The per-user style block and the page's words (chat/page_words.html).
        assert set(nonces(html, "style")) == {nonce}
        assert " style=" not in html
        config = re.search(r'<meta name="htmx-config" content=\'([^\']+)\'>', html)
        assert config
        assert '"allowEval": false' in config.group(1)
        assert '"allowScriptTags": false' in config.group(1)
        assert '"includeIndicatorStyles": false' in config.group(1)
        assert '"selfRequestsOnly": true' in config.group(1)

    def test_each_response_has_a_fresh_nonce(self) -> None:
        """A nonce is never reused: one page's nonce is no use on the next."""
        self.client.force_login(self.user)
        seen = {header_nonce(self.client.get(reverse("chat:list"))) for _ in range(3)}
        assert len(seen) == 3

    def test_api_docs_relax_only_what_they_need(self) -> None:
        """The API docs' inline scripts and styles carry the nonce; their view's own policy adds
        data: images, never inline scripts or eval."""
        self.client.force_login(self.user)
        for name, expected in (("api:docs", settings.API_DOCS_CSP),):
            response = self.client.get(reverse(name))
            assert response.status_code == 200, name
            header = response.headers["Content-Security-Policy"]
            policy = directives(header)
            nonce = header_nonce(response)
            assert header == build_policy(expected, nonce), f"{name} has the site's policy, not its own"
            assert policy["script-src"] == ["'self'", f"'nonce-{nonce}'"], name
            assert "unsafe" not in " ".join(policy["script-src"]), name
            html = response.content.decode()
            assert set(nonces(html, "script")) == {nonce}, name
            # Inline styles, if any, carry it too (the docs' look is a stylesheet now).
            assert set(nonces(html, "style")) <= {nonce}, name
            assert "fonts.googleapis.com" not in html, name
        assert settings.API_DOCS_CSP["style-src"] == settings.SECURE_CSP["style-src"]

    def test_json_api_is_not_given_a_nonce(self) -> None:
        """Responses that render no template still get the policy, without a nonce in it."""
        self.client.force_login(self.user)
        response = self.client.get("/api/chats/")
        assert "nonce" not in response.headers["Content-Security-Policy"]


# ---- Production defaults, each in a fresh process as a deployment starts one (no server) ----


def random_key() -> str:
    return secrets.token_urlsafe(50)


@pytest.mark.process
def test_check_deploy_finds_nothing_with_the_documented_variables(
    processes: type[Processes], tmp_path: Path
) -> None:
    """With DEBUG off, a long random key, HTTPS=true and the host, `check --deploy` is clean."""
    env = processes.env(
        **DEPLOYMENT, SECRET_KEY=random_key(), DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3"
    )
    done = processes.manage(env, "check", "--deploy", timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "System check identified no issues" in done.stdout, output
    assert "WARNING" not in output, output


@pytest.mark.process
@pytest.mark.parametrize(
    "key",
    [
        pytest.param("s" * 49, id="short"),
        pytest.param("ab" * 40, id="repetitive"),
        pytest.param("django-insecure-" + secrets.token_urlsafe(50), id="django-insecure"),
    ],
)
def test_production_refuses_a_weak_secret_key(processes: type[Processes], key: str) -> None:
    """DEBUG off with a key shorter than 50 characters (or guessable) refuses to start."""
    done = processes.manage(processes.env(DEBUG="false", SECRET_KEY=key), "check", timeout=60)
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr
    assert "SECRET_KEY" in done.stderr


@pytest.mark.process
def test_debug_is_off_unless_set(processes: type[Processes]) -> None:
    """A process started without DEBUG is a production one."""
    output = processes.python(
        processes.env(SECRET_KEY=random_key(), HTTPS="", SECURE_COOKIES=""),
        "from django.conf import settings; print(settings.DEBUG)",
    )
    assert output.strip() == "False"


HTTPS_PROBE = """
from django.conf import settings
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
print(settings.SECURE_HSTS_SECONDS, settings.SECURE_HSTS_INCLUDE_SUBDOMAINS)
print(settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE)
client = Client(HTTP_HOST="chat.example.com")
plain = client.get("/")
print(plain.status_code, plain.headers.get("Location"))
proxied = client.get("/", headers={"X-Forwarded-Proto": "https"})
print(proxied.status_code, proxied.headers.get("Location"), proxied.headers.get("Strict-Transport-Security"))
"""


@pytest.mark.process
def test_https_turns_on_redirect_hsts_and_secure_cookies(processes: type[Processes], tmp_path: Path) -> None:
    """HTTPS=true: plain HTTP is redirected, a request the proxy marks as HTTPS is served with
    a year of HSTS for all subdomains, and cookies are sent over HTTPS only."""
    env = processes.env(
        **DEPLOYMENT, SECRET_KEY=random_key(), DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3"
    )
    hsts, cookies, plain, proxied = processes.python(env, HTTPS_PROBE).splitlines()
    assert hsts == "31536000 True"
    assert cookies == "True True"
    assert plain == "301 https://chat.example.com/"
    # Served (the home page sends a visitor to the login page), not redirected to HTTPS again.
    assert proxied == "302 /accounts/login/ max-age=31536000; includeSubDomains"


@pytest.mark.process
def test_without_https_nothing_is_redirected(processes: type[Processes]) -> None:
    """Without HTTPS=true (a production process behind nothing, or on a private network),
    plain HTTP is served, and the proxy header is not trusted."""
    output = processes.python(
        processes.env(DEBUG="false", SECRET_KEY=random_key(), HTTPS="", SECURE_COOKIES=""),
        "from django.conf import settings; "
        "print(settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS, settings.SECURE_PROXY_SSL_HEADER)",
    )
    assert output.strip() == "False 0 None"


@pytest.mark.process
def test_secure_cookies_alone_still_works(processes: type[Processes]) -> None:
    """SECURE_COOKIES, the older variable, still makes the cookies HTTPS-only by itself."""
    output = processes.python(
        processes.env(DEBUG="true", HTTPS="", SECURE_COOKIES="true"),
        "from django.conf import settings; "
        "print(settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE, settings.SECURE_SSL_REDIRECT)",
    )
    assert output.strip() == "True True False"


# ---- In Chromium: no violation anywhere ----

# Runs in every page before its own scripts: each violation is handed to the test.
VIOLATION_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportViolation({
    page: location.pathname,
    directive: event.violatedDirective,
    blocked: event.blockedURI,
    source: `${event.sourceFile}:${event.lineNumber}`,
    sample: event.sample,
  });
}, true);
document.addEventListener("htmx:wsOpen", () => { document.documentElement.dataset.chatSocket = "open"; });
document.addEventListener("htmx:wsClose", (event) => {
  document.documentElement.dataset.chatSocket = `closed ${event.detail.event.code}`;
});
"""
# One turn of the page's task queue: a violation event queued before it has been delivered.
NEXT_TASK = "() => new Promise((resolve) => setTimeout(resolve, 0))"


@dataclass
class Watched:
    """A browser context whose CSP violations, console errors and page errors are collected."""

    context: BrowserContext
    page: Page
    problems: list[str] = field(default_factory=list)

    def settle(self) -> None:
        self.page.evaluate(NEXT_TASK)


def console(message: ConsoleMessage, problems: list[str]) -> None:
    """Collect errors and CSP reports; browsers ask every site for /favicon.ico (the admin
    has none), which is no problem of the page's."""
    if message.type != "error" and "Content Security Policy" not in message.text:
        return
    source = message.location.get("url", "")
    if source.endswith("/favicon.ico"):
        return
    problems.append(f"console {message.type}: {message.text} ({source})")


@pytest.fixture
def watch(chromium: Browser, server: str) -> Iterator[Callable[[], Watched]]:
    contexts: list[BrowserContext] = []

    def watch() -> Watched:
        context = chromium.new_context(base_url=server)
        context.set_default_timeout(15_000)
        contexts.append(context)
        problems: list[str] = []
        context.expose_function("reportViolation", lambda report: problems.append(f"violation: {report}"))
        context.add_init_script(VIOLATION_LISTENER)
        page = context.new_page()
        page.on("console", lambda message: console(message, problems))
        page.on("pageerror", lambda error: problems.append(f"page error: {error} ({page.url})"))
        # The app works offline: nothing is fetched from another origin (a CDN).
        page.on(
            "request",
            lambda request: (
                None
                if request.url.startswith((server, "data:", "blob:", "ws://127.0.0.1"))
                else problems.append(f"request to another origin: {request.url}")
            ),
        )
        return Watched(context, page, problems)

    yield watch
    for context in contexts:
        context.close()


def sign_up_in(watched: Watched) -> str:
    username = f"csp_{uuid.uuid4().hex[:10]}"
    page = watched.page
    page.goto("/accounts/signup/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/chats/$"))
    return username


def open_general(watched: Watched) -> None:
    page = watched.page
    page.goto("/chats/")
    page.get_by_role("navigation", name="Chats").get_by_role("link", name=re.compile(r"^General\b")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("General")
    expect(page.locator("html")).to_have_attribute("data-chat-socket", "open")


def composer(watched: Watched) -> Locator:
    return watched.page.get_by_role("textbox", name="Message", exact=True)


def log(watched: Watched) -> Locator:
    return watched.page.get_by_role("log", name="Messages")


@pytest.mark.browser
def test_no_policy_violation_in_the_chat(watch: Callable[[], Watched]) -> None:
    """Sign-up, login, the chat list, a chat with messages sent, received, edited and deleted
    live, the edit page and the admin login: Chromium reports no CSP violation, console
    error or script error, and the live parts (htmx and its socket) work."""
    alice, bob = watch(), watch()
    alice_name = sign_up_in(alice)
    sign_up_in(bob)
    page = alice.page

    # Log out and in again through the forms.
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Username").fill(alice_name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/chats/$"))
    expect(page.get_by_role("navigation", name="Chats")).to_be_visible()

    open_general(alice)
    open_general(bob)
    assert page.evaluate("htmx.config.allowEval") is False
    assert page.evaluate("htmx.config.allowScriptTags") is False
    # htmx added no <style> of its own: the page's style blocks are its words and the
    # per-user rules, each with the response's nonce.
    assert page.locator("style").count() == 2
    assert page.locator("style:not([nonce])").count() == 0

    # Received live over the socket, and sent over it.
    from_bob = f"from bob {uuid.uuid4().hex[:6]}"
    composer(bob).fill(from_bob)
    bob.page.get_by_role("button", name="Send", exact=True).click()
    expect(log(alice).locator("article").filter(has_text=from_bob)).to_have_count(1)
    from_alice = f"from alice {uuid.uuid4().hex[:6]}"
    composer(alice).fill(from_alice)
    page.get_by_role("button", name="Send", exact=True).click()
    expect(log(bob).locator("article").filter(has_text=from_alice)).to_have_count(1)
    mine = log(alice).locator("article").filter(has_text=from_alice)
    # The per-user style block (with the nonce) applies: only her own message offers Edit.
    expect(mine.get_by_role("link", name="Edit")).to_be_visible()
    expect(
        log(alice).locator("article").filter(has_text=from_bob).get_by_role("link", name="Edit")
    ).to_be_hidden()

    # The edit page, then back to the chat, live again.
    # (Edit opens an inline form with JavaScript; the edit page is for pages without it.)
    page.goto(str(mine.get_by_role("link", name="Edit").get_attribute("href")))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Edit your message")
    edited = f"{from_alice} (edited)"
    page.get_by_label("Message").fill(edited)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("General")
    expect(page.locator("html")).to_have_attribute("data-chat-socket", "open")
    expect(log(bob).locator("article").filter(has_text=edited)).to_have_count(1)

    # hx-post with hx-confirm, without eval: the deletion reaches Bob live.
    page.once("dialog", lambda dialog: dialog.accept())
    log(alice).locator("article").filter(has_text=edited).get_by_role("button", name="Delete").click()
    expect(log(bob).locator("article").filter(has_text=edited)).to_have_count(0)
    alice.settle()
    bob.settle()

    # The admin's login page (Alice is not staff: the admin asks her to log in).
    page.goto("/admin/login/")
    expect(page.locator("#login-form")).to_be_visible()
    expect(page.locator("#login-form")).to_have_css("display", "block")
    alice.settle()

    assert alice.problems + bob.problems == [], "\n".join(alice.problems + bob.problems)


@pytest.mark.browser
def test_no_policy_violation_in_the_api_docs(watch: Callable[[], Watched]) -> None:
    """Swagger UI renders the schema and runs a request: no CSP violation, console error or
    script error, and nothing fetched from another origin."""
    alice = watch()
    sign_up_in(alice)
    page = alice.page

    page.goto("/api/docs/")
    operation = page.locator(".opblock-get").filter(has_text="/api/users/me/").first
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    expect(operation.locator(".live-responses-table tbody .response-col_status")).to_have_text("200")
    alice.settle()

    assert alice.problems == [], "\n".join(alice.problems)
