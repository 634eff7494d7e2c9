"""The HTTP benchmark: what each everyday request costs, next to a bare Django "hello".

    python -m bench.http                          # everything, about 3.5 minutes on 2 cores
    python -m bench.http --duration 20 --http-databases sqlite --layouts ""
    python -m bench.http --peer-url http://127.0.0.1:9000 --peer-page /rooms/1 \
        --peer-post /rooms/1/messages --peer-cookie "sessionid=…" --peer-fields "body=hi {n}"

One run measures, each for DURATION seconds from CLIENTS (16) concurrent clients with a
session each (bench/README.md, "The HTTP benchmark"):

- the floor: a bare Django app answering "hello" (bench/hello.py) on the same daphne;
- the chat on one daphne (config.asgi with bench/http_settings.py: the chat's settings and
  one more route), on SQLite and then on PostgreSQL with Redis: its middleware stack around
  a do-nothing view, the room page (50 messages), the form post, the API post, a message
  sent over the chat page's socket, and a socket connect;
- on PostgreSQL, the other layouts (one daphne per core behind nginx; gunicorn's WSGI
  workers behind nginx): the stack, the page and the form post;
- optionally a peer server started elsewhere (--peer-url): its page and its form post, with
  the same load generator.

Every server runs with DEBUG off, a SECRET_KEY, ALLOWED_HOSTS and collected static files.
Printed per request type: requests per second, latency p50/p99, the server's CPU per request
(utime + stime of its processes) and that over the bare hello's of the same run; on
PostgreSQL also the CPU of the database's backends per request. Every write the
server acknowledged is looked up in the database afterwards: acknowledged and not stored is
an error (bench/http_report.py prints it, and bench.http exits with 1).

bench/http_load.py holds the load generators, bench/http_requests.py what they send.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import sys
import tempfile
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.http_load import Client, Maker, Run, drive, drive_sockets
from bench.http_report import errors, table
from bench.http_requests import AUDIT, ON_LAYOUTS, OURS, SETUP, WRITES, ours, peer
from bench.run import HOST, POSTGRES, PYTHON, ROOT, Processes, free_port, log
from deploy.serve import Options, render_nginx

CLIENTS = 16
DURATION = 8.0
WARMUP = 1.0
DATABASES = ("sqlite", "postgres")
# The layouts measured besides one daphne, on PostgreSQL (they share chats through Redis).
LAYOUTS = ("daphne-per-core", "gunicorn")
CORES = os.cpu_count() or 1
REDIS_URL = "redis://127.0.0.1:6379/14"
NGINX = "/usr/sbin/nginx"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SETTINGS = "bench.http_settings"


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


def services_cpu_seconds(database: str) -> float:
    """utime + stime of PostgreSQL's backends for `database`, in seconds. PostgreSQL's shared
    processes (the WAL writer, the checkpointer) and Redis are left out: whatever else runs on
    the machine uses them too, and their CPU could not be told apart from the server's."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            if stat[stat.index("(") + 1 : stat.rindex(")")] != "postgres":
                continue
            # A backend's title: "postgres: 15/main: <user> <database> <host>(<port>) <state>".
            if f" {database} " in (entry / "cmdline").read_text().replace("\0", " "):
                fields = stat.rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


@dataclass
class Target:
    """A server under load: where it listens, its processes, and what the clients hold."""

    port: int
    pids: list[int]
    server: str
    database: str
    chat: int = 0
    clients: list[Client] = field(default_factory=list)
    host: str = HOST
    # The PostgreSQL database the server uses, whose backends' CPU is counted apart.
    services: str = ""

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def clock(self) -> tuple[float, float]:
        return cpu_seconds(self.pids), services_cpu_seconds(self.services) if self.services else 0.0


def measure(
    target: Target, kind: str, maker: Maker | None, arguments: argparse.Namespace
) -> tuple[dict[str, Any], Run]:
    """Warm up, then measure one request type on one server; its row, and the run."""

    def go(seconds: float) -> Run:
        if kind in ("send", "connect", "socket-hello"):
            return drive_sockets(
                target.host,
                target.port,
                [client.cookies.get("sessionid", "") for client in target.clients],
                target.chat,
                "connect" if kind == "socket-hello" else kind,
                arguments.http_clients,
                seconds,
                target.clock,
            )
        assert maker is not None
        return drive(target.host, target.port, target.clients, maker, seconds, target.clock)

    if arguments.http_warmup > 0:
        go(arguments.http_warmup)
    run = go(arguments.http_duration)
    count = len(run.measure.latencies)
    row: dict[str, Any] = {"request": kind, "server": target.server, "database": target.database}
    row.update(run.measure.summary(run.wall))
    row["cpu_ms"] = round(run.server_cpu * 1000 / count, 2) if count else None
    if target.services:
        row["services_cpu_ms"] = round(run.services_cpu * 1000 / count, 2) if count else None
    if kind in WRITES:
        row["acked"] = len(run.measure.acked)
    log(f"http {kind} on {target.server} ({target.database}): {row}")
    return row, run


class Layouts:
    """Starts each layout's processes with bench.run's Processes (each in its own group)."""

    def __init__(self, processes: Processes, directory: Path) -> None:
        self.processes = processes
        self.directory = directory

    def daphne(
        self, stack: contextlib.ExitStack, env: dict[str, str], application: str = "config.asgi:application"
    ) -> tuple[int, int]:
        port = free_port()
        argv = [PYTHON, "-m", "daphne", "-v", "0", "-b", HOST, "-p", str(port), application]
        return port, stack.enter_context(self.processes.server("daphne", argv, env, port))

    def gunicorn(self, stack: contextlib.ExitStack, env: dict[str, str]) -> tuple[int, int]:
        port = free_port()
        argv = [
            PYTHON, "-m", "gunicorn", "config.wsgi:application", "--bind", f"{HOST}:{port}",
            "--workers", str(CORES), "--worker-class", "sync", "--no-control-socket",
        ]  # fmt: skip
        return port, stack.enter_context(self.processes.server("gunicorn", argv, env, port))

    def nginx(
        self, stack: contextlib.ExitStack, env: dict[str, str], http_ports: list[int], socket_ports: list[int]
    ) -> tuple[int, int]:
        port = free_port()
        runtime = Path(tempfile.mkdtemp(prefix="nginx-", dir=self.directory))
        runtime.chmod(0o755)
        self.directory.chmod(0o755)
        config = runtime / "nginx.conf"
        config.write_text(
            render_nginx(
                options=Options(port=port),
                runtime=runtime,
                static_root=str(ROOT / "staticfiles"),
                http_ports=http_ports,
                socket_ports=socket_ports,
            )
        )
        argv = [NGINX, "-p", str(runtime), "-c", str(config)]
        return port, stack.enter_context(self.processes.server("nginx", argv, env, port))

    @contextlib.contextmanager
    def start(self, name: str, env: dict[str, str]) -> Iterator[tuple[int, list[int]]]:
        """The layout's front port and its processes' pids."""
        with contextlib.ExitStack() as stack:
            if name == "hello":
                port, pid = self.daphne(stack, env, "bench.hello_asgi:application")
                yield port, [pid]
            elif name == "daphne":
                port, pid = self.daphne(stack, env)
                yield port, [pid]
            elif name == "daphne-per-core":
                started = [self.daphne(stack, env) for _ in range(CORES)]
                ports = [port for port, _ in started]
                port, nginx = self.nginx(stack, env, ports, ports)
                yield port, [nginx, *(pid for _, pid in started)]
            else:
                http_port, gunicorn = self.gunicorn(stack, env)
                socket_port, daphne = self.daphne(stack, env)
                port, nginx = self.nginx(stack, env, [http_port], [socket_port])
                yield port, [nginx, gunicorn, daphne]


class Bench:
    """One run: the bare hello, the chat on each database, the peer; their servers' settings."""

    def __init__(self, arguments: argparse.Namespace, processes: Processes, directory: Path) -> None:
        self.arguments = arguments
        self.processes = processes
        self.directory = directory
        self.layouts = Layouts(processes, directory)
        self.secret = secrets.token_urlsafe(50)
        # The PostgreSQL database of the run, made and dropped by postgres_database.
        self.postgres = ""

    def env(self, **settings: str) -> dict[str, str]:
        defaults = {
            "DEBUG": "false",
            "SECRET_KEY": self.secret,
            "ALLOWED_HOSTS": HOST,
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            # The clients post far faster than people: lift the limits.
            "MESSAGE_RATE": "100000000/minute",
            "FRAME_RATE": "100000000/second",
            "SOCKETS_PER_USER": "1000000",
            "CHAT_LOG_LEVEL": "WARNING",
            "ACCESS_LOG_LEVEL": "WARNING",
        }
        return self.processes.env(**{**defaults, **settings})

    def hello(self) -> list[dict[str, Any]]:
        """The floors: the bare hello, and a bare socket's connect and close on the same daphne."""
        env = self.env(DJANGO_SETTINGS_MODULE="bench.hello")
        with self.layouts.start("hello", env) as (port, pids):
            target = Target(
                port,
                pids,
                "daphne (bare)",
                "-",
                clients=[Client({}) for _ in range(self.arguments.http_clients)],
            )
            return [
                measure(target, "hello", ours("hello", 0, target.origin), self.arguments)[0],
                measure(target, "socket-hello", None, self.arguments)[0],
            ]

    def database(self, database: str) -> list[dict[str, Any]]:
        """Every request type of the chat on one database: one daphne, then the other layouts."""
        arguments = self.arguments
        if database == "sqlite":
            env = self.env(DATABASE_URL=f"sqlite:///{self.directory / 'http.sqlite3'}")
        else:
            env = self.env(DATABASE_URL=f"{POSTGRES}/{self.postgres}", REDIS_URL=arguments.http_redis)
            import redis

            with contextlib.closing(redis.Redis.from_url(arguments.http_redis)) as client:
                client.flushdb()
        self.processes.run([PYTHON, "manage.py", "migrate", "--noinput"], env, timeout=300)
        setup = json.loads(
            self.processes.run([PYTHON, "-c", SETUP, str(arguments.http_clients)], env, timeout=300)
        )
        readers = [
            Client({"sessionid": session, "csrftoken": uuid.uuid4().hex}) for session in setup["readers"]
        ]
        writers = [
            Client({"sessionid": session, "csrftoken": uuid.uuid4().hex}, token)
            for session, token in zip(setup["writers"], setup["tokens"], strict=True)
        ]
        services = self.postgres if database == "postgres" else ""
        layouts = ["daphne"] + (
            [name for name in arguments.http_layouts if name] if database == "postgres" else []
        )
        rows: list[dict[str, Any]] = []
        for layout in layouts:
            sent: dict[str, dict[str, list[str]]] = {}
            with self.layouts.start(layout, env) as (port, pids):
                reading = Target(port, pids, layout, database, setup["page_chat"], readers, services=services)
                writing = Target(
                    port, pids, layout, database, setup["write_chat"], writers, services=services
                )
                kinds = OURS if layout == "daphne" else ON_LAYOUTS
                for kind in [kind for kind in kinds if kind in arguments.http_requests]:
                    target = writing if kind in WRITES else reading
                    row, run = measure(target, kind, ours(kind, target.chat, target.origin), arguments)
                    rows.append(row)
                    if kind in WRITES:
                        acked = set(run.measure.acked)
                        unacked = [client_id for client_id in run.measure.sent if client_id not in acked]
                        sent[f"{len(rows) - 1}"] = {"acked": run.measure.acked, "unacked": unacked}
            self.audit(env, sent, rows, setup["write_chat"])
            if database == "postgres":
                self.analyze()
        return rows

    def audit(
        self,
        env: dict[str, str],
        sent: dict[str, dict[str, list[str]]],
        rows: list[dict[str, Any]],
        chat: int,
    ) -> None:
        """Count in the database what each write scenario's clients were told is stored, then
        empty the writers' room (AUDIT says why)."""
        audit_file = self.directory / "audit.json"
        audit_file.write_text(json.dumps(sent))
        audited = json.loads(
            self.processes.run([PYTHON, "-c", AUDIT, str(audit_file), str(chat)], env, timeout=300)
        )
        for index, found in audited.items():
            rows[int(index)].update(found)

    def peer(self) -> list[dict[str, Any]]:
        arguments = self.arguments
        parts = urllib.parse.urlsplit(arguments.peer_url)
        assert parts.hostname is not None, arguments.peer_url
        cookies = arguments.peer_cookie or [""]
        clients = [Client.parse(cookies[i % len(cookies)]) for i in range(arguments.http_clients)]
        target = Target(
            parts.port or 80,
            arguments.peer_pid,
            arguments.peer_name,
            "its own",
            clients=clients,
            host=parts.hostname,
        )
        rows = []
        for kind, path in (("peer-page", arguments.peer_page), ("peer-post", arguments.peer_post)):
            if path:
                row = measure(target, kind, peer(kind, arguments), arguments)[0]
                if not arguments.peer_pid:
                    row["cpu_ms"] = None  # No processes to read: --peer-pid names them.
                rows.append(row)
        return rows

    def analyze(self) -> None:
        """Refresh PostgreSQL's statistics after a layout's writes (and their removal), as
        autovacuum does within a minute: the posts grow and shrink the messages table in
        seconds, and plans made on statistics that say otherwise cost the next layout's pages."""
        import psycopg

        with psycopg.connect(f"{POSTGRES}/{self.postgres}", autocommit=True) as connection:
            connection.execute("ANALYZE")

    @contextlib.contextmanager
    def postgres_database(self) -> Iterator[None]:
        import psycopg

        self.postgres = f"chat_bench_http_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{self.postgres}"')
        try:
            yield
        finally:
            with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.postgres}" WITH (FORCE)')


def run(arguments: argparse.Namespace) -> dict[str, Any]:
    """Every measurement of the HTTP benchmark; what `table` prints."""
    if not arguments.http_duration:
        arguments.http_duration = 1.0 if getattr(arguments, "small", False) else DURATION
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-http-") as temporary:
        directory = Path(temporary)
        processes = Processes(directory)
        bench = Bench(arguments, processes, directory)
        try:
            static_env = bench.env(DATABASE_URL=f"sqlite:///{directory / 'static.sqlite3'}")
            processes.run([PYTHON, "manage.py", "collectstatic", "--noinput"], static_env, timeout=300)
            rows += bench.hello()
            for database in arguments.http_databases:
                if database == "postgres":
                    with bench.postgres_database():
                        rows += bench.database(database)
                else:
                    rows += bench.database(database)
            if arguments.peer_url:
                rows += bench.peer()
        finally:
            processes.stop_all()
    hello = rows[0]["cpu_ms"]
    for row in rows:
        if hello and row["cpu_ms"] is not None:
            row["x_hello"] = round(row["cpu_ms"] / hello, 2)
    return {
        "clients": arguments.http_clients,
        "duration": arguments.http_duration,
        "cores": CORES,
        "rows": rows,
    }


def names(text: str) -> list[str]:
    return [name for name in text.split(",") if name]


def add_arguments(parser: argparse.ArgumentParser, *, alone: bool = False) -> None:
    """The HTTP benchmark's options, for bench.http and for bench.run (`--only http`)."""
    short = (lambda name: [name]) if alone else (lambda name: [])
    group = parser.add_argument_group("http", "the HTTP benchmark (bench/http.py)")
    group.add_argument(
        "--http-duration",
        *short("--duration"),
        type=float,
        help=f"seconds per measurement (default {DURATION:g})",
    )
    group.add_argument(
        "--http-warmup",
        type=float,
        default=WARMUP,
        help=f"seconds of warm-up before each (default {WARMUP:g})",
    )
    group.add_argument(
        "--http-clients", type=int, default=CLIENTS, help=f"concurrent clients (default {CLIENTS})"
    )
    group.add_argument(
        "--http-requests", type=names, default=list(OURS), help=f"some of {','.join(OURS)} (default all)"
    )
    group.add_argument(
        "--http-databases", type=names, default=list(DATABASES), help=f"some of {','.join(DATABASES)}"
    )
    group.add_argument(
        "--http-layouts", *short("--layouts"), type=names, default=list(LAYOUTS),
        help=f"layouts besides one daphne, on PostgreSQL: some of {','.join(LAYOUTS)}, or ''",
    )  # fmt: skip
    group.add_argument(
        "--http-redis", default=REDIS_URL, help=f"the Redis of the PostgreSQL runs ({REDIS_URL})"
    )
    group.add_argument("--peer-url", help="a peer server to load as well, e.g. http://127.0.0.1:9000")
    group.add_argument("--peer-name", default="peer", help="its name in the table")
    group.add_argument("--peer-page", help="the path of its page to GET, e.g. /rooms/1")
    group.add_argument("--peer-post", help="the path its form posts to")
    group.add_argument(
        "--peer-cookie",
        action="append",
        default=[],
        help="a Cookie header, e.g. 'sessionid=…'; repeat: one per client in turn",
    )
    group.add_argument(
        "--peer-fields",
        default="",
        help="the form's fields, URL-encoded; {n} and {uuid} are replaced per post",
    )
    group.add_argument(
        "--peer-csrf-field", default="csrfmiddlewaretoken", help="the field for the csrftoken cookie's value"
    )
    group.add_argument("--peer-page-status", type=int, default=200, help="the page's expected status (200)")
    group.add_argument("--peer-post-status", type=int, default=302, help="the post's expected status (302)")
    group.add_argument(
        "--peer-pid", type=int, action="append", default=[], help="a process of the peer, for its CPU; repeat"
    )


def check_arguments(parser: argparse.ArgumentParser, arguments: argparse.Namespace) -> None:
    for name in arguments.http_requests:
        if name not in OURS:
            parser.error(f"--http-requests: unknown {name}")
    for name in arguments.http_databases:
        if name not in DATABASES:
            parser.error(f"--http-databases: unknown {name}")
    for name in arguments.http_layouts:
        if name not in LAYOUTS:
            parser.error(f"--http-layouts: unknown {name}")
    if arguments.peer_url and not (arguments.peer_page or arguments.peer_post):
        parser.error("--peer-url needs --peer-page or --peer-post")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser, alone=True)
    parser.add_argument("--json", help="also write the results to this file")
    arguments = parser.parse_args(argv)
    check_arguments(parser, arguments)
    results = run(arguments)
    print(table(results))
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(results, indent=2))
    if any(line.startswith("ERROR") for line in errors(results)):
        sys.exit(1)


if __name__ == "__main__":
    main()
