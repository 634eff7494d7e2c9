"""A production process, as the README deploys it: collectstatic once, then plain daphne.

With DEBUG off, daphne alone must serve pages, the hashed and compressed static files
and WebSockets; and the settings refuse to run with the development secret.
"""

from __future__ import annotations

import gzip
import re
import secrets
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message
from html.parser import HTMLParser
from typing import TYPE_CHECKING

import brotli
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.typing import Origin

if TYPE_CHECKING:
    from chat.tests.conftest import Processes

pytestmark = pytest.mark.process

# A year: hashed file names never change content, so browsers may keep them that long.
LONG_MAX_AGE = 365 * 24 * 60 * 60


@dataclass
class Response:
    status: int
    headers: Message
    body: bytes


def get(url: str, **headers: str) -> Response:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return Response(response.status, response.headers, response.read())


class Assets(HTMLParser):
    """The stylesheets and scripts that a page references."""

    def __init__(self) -> None:
        super().__init__()
        self.stylesheets: list[str] = []
        self.scripts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "link" and attributes.get("rel") == "stylesheet" and attributes.get("href"):
            self.stylesheets.append(str(attributes["href"]))
        if tag == "script" and attributes.get("src"):
            self.scripts.append(str(attributes["src"]))


@dataclass
class Production:
    url: str
    login_page: Response
    assets: Assets


@pytest.fixture(scope="module")
def production(processes: type[Processes], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Production]:
    """collectstatic into STATIC_ROOT, then daphne with DEBUG off and a secret of its own."""
    directory = tmp_path_factory.mktemp("production")
    env = processes.env(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=f"sqlite:///{directory}/db.sqlite3",
    )
    for command in (("collectstatic", "--noinput"), ("migrate", "--noinput")):
        done = processes.manage(env, *command)
        assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}"
    with processes.daphne(env) as url:
        login_page = get(f"{url}/accounts/login/")
        assets = Assets()
        assets.feed(login_page.body.decode())
        yield Production(url, login_page, assets)


def stylesheet_url(production: Production) -> str:
    (href,) = [href for href in production.assets.stylesheets if "/css/dist/styles." in href]
    return production.url + href


def test_check_refuses_the_development_secret(processes: type[Processes]) -> None:
    """With DEBUG off and no SECRET_KEY, the project refuses to start and says why."""
    done = processes.manage(processes.env(DEBUG="false"), "check", timeout=60)
    assert done.returncode != 0
    assert "SECRET_KEY" in done.stderr


def test_serves_the_login_page(production: Production) -> None:
    """A production process serves pages."""
    assert production.login_page.status == 200
    assert production.login_page.headers.get_content_type() == "text/html"
    assert b'name="username"' in production.login_page.body


def test_serves_the_hashed_stylesheet_for_a_long_time(production: Production) -> None:
    """The page links a stylesheet with a content hash in its name, served with a long max-age."""
    assert re.fullmatch(r"/static/css/dist/styles\.[0-9a-f]{12}\.css", production.assets.stylesheets[0])
    response = get(stylesheet_url(production))
    assert response.status == 200
    assert response.headers.get_content_type() == "text/css"
    max_age = re.search(r"max-age=(\d+)", response.headers.get("Cache-Control", ""))
    assert max_age, response.headers.get("Cache-Control")
    assert int(max_age.group(1)) >= LONG_MAX_AGE
    assert b"--color-indigo-700" in response.body


@pytest.mark.parametrize(
    ("encoding", "decompress"), [("br", brotli.decompress), ("gzip", gzip.decompress)], ids=["br", "gzip"]
)
def test_serves_the_stylesheet_compressed(
    production: Production, encoding: str, decompress: Callable[[bytes], bytes]
) -> None:
    """A client that accepts brotli or gzip gets the stylesheet compressed that way."""
    plain = get(stylesheet_url(production))
    compressed = get(stylesheet_url(production), **{"Accept-Encoding": encoding})
    assert compressed.status == 200
    assert compressed.headers.get("Content-Encoding") == encoding
    assert "accept-encoding" in compressed.headers.get("Vary", "").lower()
    assert len(compressed.body) < len(plain.body)
    assert decompress(compressed.body) == plain.body


def test_serves_htmx_and_the_page_scripts(production: Production) -> None:
    """Every script the page references is served, htmx and its WebSocket extension among them."""
    scripts = production.assets.scripts
    assert any(re.search(r"/htmx[^/]*\.js$", src) for src in scripts), scripts
    assert any(re.search(r"/hx-ws[^/]*\.js$", src) for src in scripts), scripts
    for src in scripts:
        response = get(production.url + src)
        assert response.status == 200, src
        assert "javascript" in response.headers.get_content_type(), src
        assert response.body


def test_refuses_an_anonymous_socket(production: Production) -> None:
    """The production process serves WebSockets too: an anonymous one is closed with 4003."""
    socket_url = production.url.replace("http://", "ws://") + "/ws/chats/1/"
    with (
        connect(socket_url, origin=Origin(production.url), open_timeout=10) as connection,
        pytest.raises(ConnectionClosed) as closed,
    ):
        connection.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4003
