"""The HTTP benchmark: which process layout serves pages and form posts best on this machine.

    python -m bench.http                     # every layout, 10 s per measurement
    python -m bench.http --duration 20 --layouts daphne,gunicorn

Layouts (each on the same fresh PostgreSQL database and Redis, DEBUG off):

- `daphne`: one daphne process serves everything (the simple layout);
- `daphne-per-core`: one daphne per core behind nginx, which spreads pages and sockets;
- `gunicorn`: deploy/'s layout: nginx in front of gunicorn's sync WSGI workers (one per
  core) for HTTP and one daphne for /ws/.

Each layout gets CLIENTS concurrent clients (16), each with a session of its own and a
kept-alive connection: first the room page (GET /chats/<id>/, 50 messages), then the
composer's form post (POST /chats/<id>/messages/ with CSRF, answered 302). Printed: requests
per second, latency p50/p99, answers other than the expected one, and the server's CPU per
request (utime + stime of every server process in /proc, nginx included, before and after).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import secrets
import statistics
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.run import HOST, POSTGRES, PYTHON, ROOT, Processes, free_port, log
from deploy.serve import Options, render_nginx

CLIENTS = 16
LAYOUTS = ("daphne", "daphne-per-core", "gunicorn")
CORES = os.cpu_count() or 1
REDIS_URL = "redis://127.0.0.1:6379/14"
NGINX = "/usr/sbin/nginx"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

SETUP = """
import json, os, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from chat.models import Chat, Membership, Message
from chat import services
room = Chat.objects.create(name="HTTP bench", kind="room", visibility="public")
people = []
for i in range(int(sys.argv[1])):
    user = User.objects.create_user(f"http_bench_{i}")
    Membership.objects.get_or_create(user=user, chat=room)
    session = SessionStore()
    session.update({
        "_auth_user_id": str(user.pk),
        "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
        "_auth_user_hash": user.get_session_auth_hash(),
    })
    session.create()
    people.append(session.session_key)
for i in range(50):
    services.post_message(chat=room, user=User.objects.get(username=f"http_bench_{i % len(people)}"),
                          text=f"A message of ordinary length, number {i}, to fill the page.")
print(json.dumps({"chat": room.pk, "sessions": people}))
"""


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes and all their descendants, in seconds."""
    total = 0
    seen: set[int] = set()
    stack = list(pids)
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
            for task in Path(f"/proc/{pid}/task").iterdir():
                children = (task / "children").read_text().split()
                stack.extend(int(child) for child in children)
    return total / CLOCK_TICKS


@dataclass
class Measure:
    latencies: list[float] = field(default_factory=list)
    unexpected: int = 0
    # Answers other than the expected one, by status (0: no answer).
    statuses: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def drive(port: int, chat: int, sessions: list[str], kind: str, seconds: float) -> tuple[Measure, float]:
    """CLIENTS threads, each on a kept-alive connection, for `seconds`; the measure and the
    wall time."""
    measure = Measure()
    until = time.monotonic() + seconds

    def client(session: str) -> None:
        csrf = uuid.uuid4().hex
        cookie = f"sessionid={session}; csrftoken={csrf}"
        origin = f"http://{HOST}:{port}"
        connection = http.client.HTTPConnection(HOST, port, timeout=60)
        while time.monotonic() < until:
            started = time.perf_counter()
            try:
                if kind == "page":
                    connection.request("GET", f"/chats/{chat}/", headers={"Cookie": cookie})
                    expected = 200
                else:
                    body = urllib.parse.urlencode(
                        {"text": "bench", "client_id": str(uuid.uuid4()), "csrfmiddlewaretoken": csrf}
                    )
                    headers = {
                        "Cookie": cookie,
                        "Origin": origin,
                        "Referer": f"{origin}/",
                        "Content-Type": "application/x-www-form-urlencoded",
                    }
                    connection.request("POST", f"/chats/{chat}/messages/", body=body, headers=headers)
                    expected = 302
                response = connection.getresponse()
                response.read()
                status = response.status
                ok = status == expected
                if response.will_close:
                    connection.close()
            except (OSError, http.client.HTTPException):
                ok, status = False, 0
                connection.close()
            elapsed = time.perf_counter() - started
            with measure.lock:
                measure.latencies.append(elapsed)
                measure.unexpected += not ok
                if not ok:
                    measure.statuses[status] += 1

    threads = [threading.Thread(target=client, args=(sessions[i % len(sessions)],)) for i in range(CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return measure, time.monotonic() - started


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Layouts:
    """Starts each layout's processes with bench.run's Processes (each in its own group)."""

    def __init__(self, processes: Processes, env: dict[str, str], directory: Path) -> None:
        self.processes = processes
        self.env = env
        self.directory = directory

    def daphne(self, stack: contextlib.ExitStack, port: int | None = None) -> tuple[int, int]:
        port = port or free_port()
        argv = [PYTHON, "-m", "daphne", "-v", "0", "-b", HOST, "-p", str(port), "config.asgi:application"]
        return port, stack.enter_context(self.processes.server("daphne", argv, self.env, port))

    def gunicorn(self, stack: contextlib.ExitStack) -> tuple[int, int]:
        port = free_port()
        argv = [
            PYTHON, "-m", "gunicorn", "config.wsgi:application", "--bind", f"{HOST}:{port}",
            "--workers", str(CORES), "--worker-class", "sync", "--no-control-socket",
        ]  # fmt: skip
        return port, stack.enter_context(self.processes.server("gunicorn", argv, self.env, port))

    def nginx(
        self, stack: contextlib.ExitStack, http_ports: list[int], socket_ports: list[int]
    ) -> tuple[int, int]:
        port = free_port()
        runtime = Path(tempfile.mkdtemp(prefix="nginx-", dir=self.directory))
        runtime.chmod(0o755)
        self.directory.chmod(0o755)
        config = runtime / "nginx.conf"
        static_root = str(ROOT / "staticfiles")
        options = Options(port=port)
        config.write_text(
            render_nginx(
                options=options,
                runtime=runtime,
                static_root=static_root,
                http_ports=http_ports,
                socket_ports=socket_ports,
            )
        )
        argv = [NGINX, "-p", str(runtime), "-c", str(config)]
        return port, stack.enter_context(self.processes.server("nginx", argv, self.env, port))

    @contextlib.contextmanager
    def start(self, name: str) -> Iterator[tuple[int, list[int]]]:
        """The layout's front port and its processes' pids."""
        with contextlib.ExitStack() as stack:
            if name == "daphne":
                port, pid = self.daphne(stack)
                yield port, [pid]
            elif name == "daphne-per-core":
                started = [self.daphne(stack) for _ in range(CORES)]
                ports = [port for port, _ in started]
                port, nginx = self.nginx(stack, ports, ports)
                yield port, [nginx, *(pid for _, pid in started)]
            else:
                http_port, gunicorn = self.gunicorn(stack)
                socket_port, daphne = self.daphne(stack)
                port, nginx = self.nginx(stack, [http_port], [socket_port])
                yield port, [nginx, gunicorn, daphne]


def run(arguments: argparse.Namespace) -> list[dict[str, Any]]:
    import psycopg

    database = f"chat_bench_http_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-http-") as temporary:
        directory = Path(temporary)
        processes = Processes(directory)
        env = processes.env(
            DATABASE_URL=f"{POSTGRES}/{database}",
            REDIS_URL=arguments.redis,
            DEBUG="false",
            SECRET_KEY=secrets.token_urlsafe(50),
            ALLOWED_HOSTS=HOST,
            MESSAGE_RATE="1000000/minute",
            CHAT_LOG_LEVEL="WARNING",
            ACCESS_LOG_LEVEL="WARNING",
        )
        try:
            processes.run([PYTHON, "manage.py", "collectstatic", "--noinput"], env, timeout=300)
            processes.run([PYTHON, "manage.py", "migrate", "--noinput"], env, timeout=300)
            setup = json.loads(processes.run([PYTHON, "-c", SETUP, str(CLIENTS)], env, timeout=300))
            layouts = Layouts(processes, env, directory)
            for name in arguments.layouts.split(","):
                with layouts.start(name) as (port, pids):
                    # Warm up: templates, code paths and the database pool.
                    drive(port, setup["chat"], setup["sessions"], "page", 1.0)
                    row: dict[str, Any] = {"layout": name}
                    for kind in ("page", "post"):
                        cpu_before = cpu_seconds(pids)
                        measure, wall = drive(
                            port, setup["chat"], setup["sessions"], kind, arguments.duration
                        )
                        cpu = cpu_seconds(pids) - cpu_before
                        count = len(measure.latencies)
                        row[kind] = {
                            "requests": count,
                            "per_s": round(count / wall, 1),
                            "p50_ms": round(statistics.median(measure.latencies) * 1000, 1)
                            if count
                            else None,
                            "p99_ms": round(percentile(measure.latencies, 0.99) * 1000, 1),
                            "unexpected": measure.unexpected,
                            "unexpected_statuses": dict(measure.statuses),
                            "cpu_ms": round(cpu * 1000 / count, 2) if count else None,
                        }
                    log(f"{name}: {row}")
                    results.append(row)
        finally:
            processes.stop_all()
            with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return results


def table(results: list[dict[str, Any]]) -> str:
    header = (
        "layout           | page/s | page p50 ms | page p99 ms | CPU ms/page | post/s | post p50 ms "
        "| post p99 ms | CPU ms/post | not 200/302"
    )
    lines = [header, "-" * len(header)]
    base = results[0] if results else None
    for row in results:
        page, post = row["page"], row["post"]
        lines.append(
            f"{row['layout']:<16} | {page['per_s']:>6} | {page['p50_ms']:>11} | {page['p99_ms']:>11} "
            f"| {page['cpu_ms']:>11} | {post['per_s']:>6} | {post['p50_ms']:>11} | {post['p99_ms']:>11} "
            f"| {post['cpu_ms']:>11} | {page['unexpected'] + post['unexpected']:>11}"
        )
    if base is not None:
        for row in results[1:]:
            pages = row["page"]["per_s"] / base["page"]["per_s"]
            posts = row["post"]["per_s"] / base["post"]["per_s"]
            lines.append(f"{row['layout']} ÷ {base['layout']}: pages {pages:.2f}x, posts {posts:.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (default 10)")
    parser.add_argument("--layouts", default=",".join(LAYOUTS), help=f"some of {','.join(LAYOUTS)}")
    parser.add_argument("--redis", default=REDIS_URL, help=f"the Redis the processes share ({REDIS_URL})")
    parser.add_argument("--json", help="also write the results to this file")
    arguments = parser.parse_args(argv)
    results = run(arguments)
    print(f"{CLIENTS} clients, {CORES} cores, {arguments.duration:.0f} s per measurement")
    print(table(results))
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
