"""The production layout of deploy/: nginx in front of two gunicorn workers (HTTP) and two
daphne processes (/ws/), on PostgreSQL and a Redis of this module's own, started the way
`make serve` starts it (deploy/serve.py).

A browser chats through nginx; a message posted through an HTTP worker reaches sockets
held by daphne; and a socket process restarted during a burst loses nothing acknowledged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from chat.tests.conftest import PROJECT_ROOT, Processes, free_port, missing
from chat.tests.test_delivery import (
    Burst,
    Cluster,
    PageClient,
    RedisServer,
    converged,
    post_api,
    post_form,
    psycopg_connect,
    report,
    wait_for,
)
from deploy.serve import Options, render_nginx

pytestmark = pytest.mark.process

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SERVE = PROJECT_ROOT / "deploy" / "serve.py"
START_TIMEOUT = 120.0


def test_serve_refuses_to_start_without_redis() -> None:
    """Without REDIS_URL the layout refuses to start, and says why."""
    done = subprocess.run(
        [sys.executable, str(SERVE)],
        cwd=PROJECT_ROOT,
        env=Processes.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "REDIS_URL" in done.stderr


def test_nginx_accepts_the_generated_configuration(tmp_path: Path) -> None:
    """The template, filled in, is a configuration Debian's nginx accepts."""
    if not Path(NGINX).exists():
        missing("nginx is not installed (apt-get install -y nginx)")
    options = Options(port=free_port(), socket_processes=2, nginx=NGINX)
    config = render_nginx(
        options=options,
        runtime=tmp_path,
        static_root="/srv/static",
        http_ports=[8001],
        socket_ports=[8002, 8003],
    )
    assert "{{" not in config
    assert config.count("server 127.0.0.1:800") == 3
    (tmp_path / "nginx.conf").write_text(config)
    tmp_path.chmod(0o755)
    done = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@dataclass
class Deployment:
    url: str
    process: subprocess.Popen[bytes]
    cluster: Cluster
    log: IO[str]

    def socket_processes(self) -> list[int]:
        """The pids of the daphne processes that serve.py runs now."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        found = []
        for child in children:
            with contextlib.suppress(OSError):
                if b"daphne" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
        return sorted(found)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()[-6000:]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    for binary, package in ((NGINX, "nginx"), (shutil.which("redis-server"), "redis-server")):
        if binary is None or not Path(binary).exists():
            missing(f"{package} is not installed (apt-get install -y {package})")
    try:
        admin = psycopg_connect()
    except Exception as error:
        missing(f"PostgreSQL is not reachable at 127.0.0.1:5432 ({error})")
    database = f"chat_deploy_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{database}"')
    directory = tempfile.mkdtemp(prefix="chat-deploy-")
    redis = RedisServer(directory)
    redis.start()
    cluster = Cluster(directory, database, redis)
    port = free_port()
    # The sessions that add_people makes are signed with the servers' key.
    cluster.env["SECRET_KEY"] = secret = secrets.token_urlsafe(50)
    env = Processes.env(
        DEBUG="false",
        SECRET_KEY=secret,
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{database}",
        REDIS_URL=f"redis://127.0.0.1:{redis.port}/0",
        PORT=str(port),
        HTTP_WORKERS="2",
        SOCKET_PROCESSES="2",
        NGINX_BINARY=NGINX,
        MESSAGE_RATE="100000/minute",
        FRAME_RATE="10000/second",
        SIGNUP_RATE="10000/hour",
        LOGIN_RATE="10000/minute",
        LOGIN_ADDRESS_RATE="10000/minute",
        CHAT_LOG_LEVEL="WARNING",
    )
    # Open for the module's whole life, closed in the fixture's finally.
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, str(SERVE)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deployment = Deployment(f"http://127.0.0.1:{port}", process, cluster, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not answers(f"{deployment.url}/readyz"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"deploy/serve.py did not start:\n{deployment.output()}")
            time.sleep(0.2)
        # The helpers of test_delivery reach "server 0": here, nginx.
        cluster.ports = [port]
        yield deployment
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        # Whatever serve.py started is gone with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
        redis.stop()
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def server(deployment: Deployment) -> str:
    """The browser fixtures (sign_up) go through nginx."""
    return deployment.url


def test_browser_chat_through_nginx(sign_up: Callable[..., Any], deployment: Deployment) -> None:
    """Two people chat in Chromium through nginx: alice's message reaches bob live, and the
    page's stylesheet and scripts come from nginx's static files."""
    from playwright.sync_api import expect

    from chat.tests.test_browser import messages_with, send, wait_for_socket

    with psycopg_connect(deployment.cluster.database) as connection:
        row = connection.execute("SELECT id FROM chat_chat WHERE name = 'General'").fetchone()
    assert row is not None
    alice = sign_up("alice")
    bob = sign_up("bob")
    assets: list[str] = []
    bob.on("response", lambda response: assets.append(f"{response.status} {response.url}"))
    for page in (alice, bob):
        page.goto(f"/chats/{row[0]}/")
        expect(page.get_by_role("heading", level=1)).to_have_text("General")
        wait_for_socket(page)
    text = f"Through nginx {uuid.uuid4().hex[:8]}"
    send(alice, text)
    expect(messages_with(bob, text)).to_have_count(1)
    expect(messages_with(alice, text)).to_have_count(1)
    static = [line for line in assets if "/static/" in line]
    assert static and all(line.startswith(("200 ", "304 ")) for line in static), static


def test_http_worker_posts_reach_daphne_sockets(deployment: Deployment) -> None:
    """A form post and an API post, served by gunicorn's WSGI workers, reach sockets held by
    daphne (through Redis)."""
    cluster = deployment.cluster
    cluster.add_people("hana", "hugo")

    async def scenario() -> None:
        hana, hugo = PageClient(cluster, "hana", 0), PageClient(cluster, "hugo", 0)
        await hana.connect()
        await hugo.connect()
        assert post_form(cluster, 0, "hana", "form post through a WSGI worker") == 302
        posted = max(cluster.stored())
        await wait_for(lambda: posted in hugo.shown, what="the form post on the socket")
        created = post_api(cluster, 0, "hana", "API post through a WSGI worker")
        await wait_for(lambda: created["id"] in hugo.shown, what="the API post on the socket")
        await hana.close()
        await hugo.close()

    run(scenario)


def run[T](scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a scenario on an event loop of its own thread: the module's browser (sync
    Playwright) keeps a loop running in this one."""
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        return executor.submit(lambda: asyncio.run(scenario())).result()


async def reconnect(client: PageClient, *, within: float = 30) -> None:
    """Connect again through nginx, as the page does after a close it retries."""
    deadline = time.monotonic() + within
    while True:
        try:
            await client.connect()
            return
        except Exception:
            assert time.monotonic() < deadline, f"{client.name} could not reconnect"
            await asyncio.sleep(0.2)


def test_rolling_restart_of_a_socket_process(deployment: Deployment) -> None:
    """One of the two socket processes gets SIGTERM during a burst of socket sends through
    nginx and serve.py starts it again: every acknowledged message is stored, and every
    client, reconnected through nginx, shows the database's list."""
    cluster = deployment.cluster
    rng = random.Random(os.environ.get("CHAT_FAULT_SEED", "restart"))
    names = [f"roll{i}_{uuid.uuid4().hex[:4]}" for i in range(4)]
    cluster.add_people(*names)
    before = deployment.socket_processes()
    assert len(before) == 2, deployment.output()
    restarted_pid = before[0]

    async def scenario() -> tuple[Burst, list[PageClient], float]:
        clients = [PageClient(cluster, name, 0) for name in names]
        for client in clients:
            await client.connect()
        burst = Burst()
        sending = True

        async def follow(client: PageClient) -> None:
            # Whenever the server closes the socket during the burst, the page reconnects.
            while sending:
                assert client.reader is not None
                await asyncio.shield(client.reader)
                if sending:
                    await reconnect(client)

        async def restart() -> None:
            await wait_for(lambda: burst.sent >= 150, within=60, what="the burst to get going")
            os.kill(restarted_pid, signal.SIGTERM)

        followers = [asyncio.create_task(follow(client)) for client in clients]
        await asyncio.gather(burst.send(clients[0], 200, rng), burst.send(clients[1], 200, rng), restart())
        await wait_for(burst.answered, within=120, what="acknowledgements")
        # What died unacknowledged with the process is sent again, as the page keeps it.
        await burst.resend_unacknowledged()
        await wait_for(burst.answered, within=120, what="acknowledgements of the resent messages")
        sending = False
        seconds = await converged(clients, cluster)
        for client in clients:
            await client.close()
        await asyncio.gather(*followers)
        print(f"\n[rolling restart] close codes seen: {[client.close_codes for client in clients]}")
        return burst, clients, seconds

    burst, clients, seconds = run(scenario)
    report("SIGTERM to one of two socket processes behind nginx", burst, clients, cluster, seconds)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{restarted_pid}").exists():
        assert time.monotonic() < deadline, (
            f"the socket process did not exit within 30 s of SIGTERM\n{deployment.output()}"
        )
        time.sleep(0.2)
    while len(after := deployment.socket_processes()) != 2:
        assert time.monotonic() < deadline, f"serve.py did not start it again: {after}\n{deployment.output()}"
        time.sleep(0.2)
    assert re.search(r"socket process \d exited", deployment.output())


def test_sighup_restarts_the_socket_processes_one_at_a_time(deployment: Deployment) -> None:
    """SIGHUP to serve.py (a deploy) replaces both socket processes, one at a time: the site
    stays ready throughout, and a socket opened afterwards works."""
    before = deployment.socket_processes()
    deployment.process.send_signal(signal.SIGHUP)
    answers_during: list[bool] = []
    deadline = time.monotonic() + 90
    while set(deployment.socket_processes()) & set(before) or len(deployment.socket_processes()) != 2:
        assert time.monotonic() < deadline, (
            f"SIGHUP did not replace the socket processes\n{deployment.output()}"
        )
        answers_during.append(answers(f"{deployment.url}/readyz"))
        time.sleep(0.2)
    print(f"\n[SIGHUP] /readyz answered 200 {sum(answers_during)} of {len(answers_during)} times meanwhile")
    assert all(answers_during)
    cluster = deployment.cluster
    cluster.add_people("after_hup")

    async def scenario() -> None:
        client = PageClient(cluster, "after_hup", 0)
        await reconnect(client)
        await client.send("after the deploy", str(uuid.uuid4()))
        await wait_for(lambda: len(client.acked) == 1, what="the acknowledgement after SIGHUP")
        await client.close()

    run(scenario)
