"""Fixtures for the tests that run the chat for real: daphne processes and Chromium.

The test process itself never touches these servers' databases: every server gets its
own SQLite file in a temporary directory, and browser tests go only through HTTP and
WebSocket, as users do.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn

import pytest

# Variables of the test process that must not leak into a server: each server is
# configured only by what its fixture says (the benchmark keeps the same list).
from bench.run import SERVER_VARIABLES

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--disable-gpu",
]
PASSWORD = "correct-horse-battery-staple-42"
# htmx announces its chat socket with events; the tests wait for the socket to be open
# before anyone sends, since a page that is still connecting would miss the push.
SOCKET_STATE_SCRIPT = """
document.addEventListener("htmx:wsOpen", () => { document.documentElement.dataset.chatSocket = "open"; });
document.addEventListener("htmx:wsClose", () => { document.documentElement.dataset.chatSocket = "closed"; });
"""
SERVER_START_TIMEOUT = 30.0
# The database of the shared Redis (127.0.0.1:6379) that in-process tests use and flush: one
# per pytest-xdist worker (3 for the first, 4 for the next...), so that no worker flushes
# another's keys while it runs.
WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
TEST_REDIS_URL = f"redis://127.0.0.1:6379/{3 + WORKER}"
# The rates of chat/limits.py, for servers whose tests are not about them: every test user
# signs up from 127.0.0.1, and the delivery tests send bursts of hundreds of messages.
GENEROUS_RATES = {
    "MESSAGE_RATE": "100000/minute",
    "EDIT_RATE": "100000/minute",
    "REACTION_RATE": "100000/minute",
    "ROOM_RATE": "100000/hour",
    "LOGIN_RATE": "10000/minute",
    "LOGIN_ADDRESS_RATE": "10000/minute",
    "SIGNUP_RATE": "10000/hour",
    "FRAME_RATE": "10000/second",
    "BOT_RATE": "10000/hour",
}
DJANGO_SETUP = """
import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
"""


def missing(reason: str) -> NoReturn:
    """Skip for a missing piece, except under CI=true, where a missing piece is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


class Processes:
    """The chat's own processes, started as a deployment starts them."""

    @staticmethod
    def env(**overrides: str) -> dict[str, str]:
        """The environment of a server process: the test process's, minus the app's settings."""
        env = {name: value for name, value in os.environ.items() if name not in SERVER_VARIABLES}
        env["PYTHONUNBUFFERED"] = "1"
        env.update(overrides)
        return env

    @staticmethod
    def manage(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run a management command in a fresh process."""
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    @staticmethod
    def python(env: dict[str, str], code: str, *args: str) -> str:
        """Python code in a fresh process of the deployment, with Django set up; its output."""
        result = subprocess.run(
            [sys.executable, "-c", DJANGO_SETUP + code, *args],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    @staticmethod
    def start_daphne(env: dict[str, str], port: int, log: IO[Any] | None = None) -> subprocess.Popen[bytes]:
        """Start daphne on the port, as a deployment does, and wait until it serves pages."""
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log if log is not None else subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not answers_200(f"http://127.0.0.1:{port}/accounts/login/"):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait(timeout=10)
                if log is not None:
                    log.seek(0)
                output = log.read() if log is not None and log.readable() else "(no log)"
                pytest.fail(f"daphne did not serve pages on port {port}:\n{output}")
            time.sleep(0.1)
        return process

    @staticmethod
    def stop(process: subprocess.Popen[bytes]) -> None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    @staticmethod
    @contextlib.contextmanager
    def daphne(env: dict[str, str]) -> Iterator[str]:
        """A daphne process serving config.asgi:application; yields its base URL."""
        port = free_port()
        with tempfile.TemporaryFile(mode="w+") as log:
            process = Processes.start_daphne(env, port, log)
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                Processes.stop(process)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


# `make test` runs the suite on pytest-xdist workers (`-n 3 --dist loadgroup`), with these
# groups, each run whole and in order by one worker:
# - The modules whose every test starts servers (browser, delivery, process): one group per
#   module, so that its module-scoped servers start once.
# - Of those, the ones that run the chat with DEBUG off are one group: their servers read
#   STATIC_ROOT (staticfiles/ in the checkout, the same for every worker), and collectstatic,
#   which most of them run first, deletes and rewrites files there.
# - ALONE: a test of its own, to run beside the rest of its module.
# Every other test goes to whichever worker is free, in pytest-django's order (Django's test
# cases before the transactional ones, which empty the database of what migrations made).
# Groups start longest first: the STATIC_ROOT group, ALONE, the other modules, then the rest.
STATIC_ROOT_MODULES = {
    "test_a11y_browser.py",
    "test_bench.py",
    "test_bench_http.py",
    "test_connections.py",
    "test_deploy.py",
    "test_production.py",
    "test_theme_browser.py",
}
SERVER_MODULES = STATIC_ROOT_MODULES | {
    "test_api_live.py",
    "test_attachments_browser.py",
    "test_browser.py",
    "test_browser_delivery.py",
    "test_daphne_adapter.py",
    "test_delivery.py",
    "test_events_processes.py",
    "test_i18n_browser.py",
    "test_markdown_browser.py",
    "test_mentions_browser.py",
    "test_reactions_browser.py",
    "test_rooms_browser.py",
    "test_workspace_browser.py",
    "test_workspace_delivery.py",
    "test_workspace_processes_browser.py",
}
ALONE = {"test_delivery.py::test_idle_sockets_survive_on_redis"}
SERVER_MARKERS = ("browser", "delivery", "process")


def xdist_group(nodeid: str) -> tuple[str, int]:
    """The group of a test, and its rank (the order in which groups start)."""
    path, _, name = nodeid.partition("::")
    module = path.rsplit("/", 1)[-1]
    if f"{module}::{name}" in ALONE:
        return nodeid, 1
    if module in STATIC_ROOT_MODULES:
        return "static-root", 0
    if module in SERVER_MODULES:
        return path, 2
    return nodeid, 3


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """--dist loadgroup with the groups above, in the order the workers collected them.
    (xdist's own loadgroup reads xdist_group marks, which it cannot apply under pytest 9.)"""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid)[0]

    config.option.loadscopereorder = False
    return GroupScheduling(config, log)


# After pytest-django's, which puts Django's test cases first.
@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under --dist loadgroup, puts the groups in rank order (a stable sort: within a rank,
    pytest's order stays); otherwise the order stays pytest's."""
    # xdist's workers collect the tests; it tells them the controller's --dist this way.
    if config.getoption("loadgroup", False):
        items.sort(key=lambda item: xdist_group(item.nodeid)[1])


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test in SERVER_MODULES must start servers: a database test there could run after a
    transactional test of another group and find the database empty."""
    module = item.path.name
    if module in SERVER_MODULES and not any(item.get_closest_marker(name) for name in SERVER_MARKERS):
        pytest.fail(
            f"{module} is in SERVER_MODULES (conftest.py), but this test starts no server", pytrace=False
        )


@pytest.fixture(scope="session")
def processes() -> type[Processes]:
    """Management commands and daphne processes, each with an environment of its own."""
    return Processes


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """A development daphne (DEBUG on, in-memory channel layer) on its own SQLite file."""
    with tempfile.TemporaryDirectory(prefix="chat-browser-") as directory:
        env = Processes.env(
            DATABASE_URL=f"sqlite:///{directory}/db.sqlite3",
            DEBUG="true",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            **GENEROUS_RATES,
        )
        migrated = Processes.manage(env, "migrate", "--noinput")
        if migrated.returncode != 0:
            pytest.fail(f"migrate failed:\n{migrated.stdout}{migrated.stderr}")
        with Processes.daphne(env) as base_url:
            yield base_url


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, driven by Playwright.

    Module-scoped on purpose: sync Playwright keeps an asyncio loop running in the main
    thread for as long as it is open, which would break async_to_sync in tests that run
    after the browser tests.
    """
    if not CHROMIUM.exists():
        missing("Chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    # Django refuses database access while an event loop runs in the thread.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


_usernames = itertools.count(1)


def unique_username(prefix: str) -> str:
    return f"{prefix}_{next(_usernames)}_{uuid.uuid4().hex[:6]}"


@pytest.fixture
def sign_up(chromium: Browser, server: str) -> Iterator[Callable[..., Page]]:
    """Sign up a new user through the form, in a browser context of their own.

    `sign_up("alice", java_script_enabled=False, viewport={...})` returns the page,
    signed in and showing /chats/. Keyword arguments go to `browser.new_context`.
    """
    from playwright.sync_api import expect

    contexts = []

    def sign_up(prefix: str = "user", **context_options: Any) -> Page:
        context = chromium.new_context(base_url=server, **context_options)
        context.set_default_timeout(10_000)
        context.add_init_script(SOCKET_STATE_SCRIPT)
        contexts.append(context)
        page = context.new_page()
        page.goto("/accounts/signup/")
        page.get_by_label("Username").fill(unique_username(prefix))
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Password confirmation").fill(PASSWORD)
        page.get_by_role("button", name="Sign up").click()
        expect(page).to_have_url(f"{server}/chats/")
        return page

    yield sign_up
    for context in contexts:
        context.close()
