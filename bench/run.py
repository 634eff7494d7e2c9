"""Run the benchmark: start every server itself, drive it with bench.client, print one table.

    python -m bench.run                      # everything, as `make bench` runs it
    python -m bench.run --small              # tiny sizes, a few seconds per scenario
    python -m bench.run --only fanout,rooms --servers daphne,floor --duration 10

Servers (the columns): the seed's consumer (the baseline, bench.seed), the chat on
daphne (the default deployment), the chat on uvicorn with uvloop and websockets, and a
bare `websockets` broadcast (the floor, bench.floor). Scenarios: `idle`, `fanout`
(with the burst), `rooms`, and `redis` (the chat on two processes sharing Redis and
PostgreSQL, against one), `events` (the fan-out's room followed by token clients of
the JSON event stream, bench/events.py), and `http` (every everyday request's rate and
CPU next to a bare Django hello, on SQLite and PostgreSQL, and the other layouts, bench/http.py). See
bench/README.md for what each measures.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
HOST = "127.0.0.1"
SERVER_START_TIMEOUT = 60.0
SERVERS = ("seed", "daphne", "uvicorn", "floor")
OURS = ("daphne", "uvicorn")
SCENARIOS = ("idle", "fanout", "events", "rooms", "redis", "http")
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
BENCH_DATABASE = "chat_bench"
REDIS_URL = "redis://127.0.0.1:6379/13"
PACKAGES = (
    "Django",
    "channels",
    "daphne",
    "channels-redis",
    "redis",
    "uvicorn",
    "websockets",
    "uvloop",
    "Twisted",
)
# Variables of this process that must not reach a server: each is configured here alone.
# One key for the whole run: the sessions made while preparing the data must still be
# valid for the servers that read them.
SECRET_KEY = secrets.token_urlsafe(50)

SERVER_VARIABLES = (
    "DATABASE_URL",
    "STATIC_ROOT",
    "REDIS_URL",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "HTTPS",
    "SECURE_COOKIES",
    "MESSAGE_RATE",
    "API_MESSAGE_RATE",
    "EDIT_RATE",
    "REACTION_RATE",
    "ROOM_RATE",
    "FRAME_RATE",
    "SOCKETS_PER_USER",
    "LOG_FORMAT",
    "CORS_ALLOWED_ORIGINS",
    "BOT_SIGNUP",
    "BOT_RATE",
    "API_TOKENS_PER_USER",
    "MEDIA_ROOT",
    "ATTACHMENT_MAX_BYTES",
    "ATTACHMENTS_PER_MESSAGE",
    "ATTACHMENT_MAX_PIXELS",
)


@dataclass(frozen=True)
class Sizes:
    idle_sockets: int = 10_000
    # Seconds after which no idle socket is opened: a slow server reports what it reached.
    idle_budget: float = 60.0
    connect_concurrency: int = 100
    fanout_members: int = 1000
    fanout_messages: int = 20
    fanout_rate: float = 5.0
    burst: int = 100
    rooms: int = 100
    room_members: int = 10
    rate: float = 1000.0
    duration: float = 60.0
    capacity_duration: float = 10.0
    capacity_window: int = 2
    # Seconds to wait at most for the last deliveries after the last send: in the big
    # room (the seed takes long), and in the small rooms (past it, a delivery is lost).
    fanout_drain: float = 45.0
    drain: float = 5.0


SMALL = Sizes(
    idle_sockets=200,
    fanout_members=20,
    fanout_messages=20,
    fanout_rate=20.0,
    burst=20,
    rooms=5,
    room_members=4,
    rate=50.0,
    duration=3.0,
    capacity_duration=2.0,
    fanout_drain=30.0,
    drain=15.0,
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


class Processes:
    """Every process the benchmark starts, each in a process group of its own, all ended on exit."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.running: list[subprocess.Popen[bytes]] = []

    def env(self, **settings: str) -> dict[str, str]:
        env = {name: value for name, value in os.environ.items() if name not in SERVER_VARIABLES}
        env.update(PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT), **settings)
        return env

    def run(self, argv: list[str], env: dict[str, str], timeout: float) -> str:
        """Run a command to its end; its standard output, or RuntimeError with its errors."""
        done = subprocess.run(
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:4])}… failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
        return done.stdout

    @contextlib.contextmanager
    def server(self, name: str, argv: list[str], env: dict[str, str], port: int) -> Iterator[int]:
        """A server process, once it accepts connections on its port; yields its pid."""
        log_path = self.directory / f"{name}-{port}.log"
        with open(log_path, "wb") as output:
            process = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.running.append(process)
        try:
            deadline = time.monotonic() + SERVER_START_TIMEOUT
            while not accepts(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start:\n{log_path.read_text()[-4000:]}")
                time.sleep(0.1)
            yield process.pid
        finally:
            self.stop(process)
            errors = [
                line for line in log_path.read_text(errors="replace").splitlines() if "Traceback" in line
            ]
            if errors:
                log(f"{name} logged {len(errors)} tracebacks (see {log_path})")

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if process in self.running:
            self.running.remove(process)

    def stop_all(self) -> None:
        for process in list(self.running):
            self.stop(process)


def accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


def server_argv(kind: str, port: int) -> list[str]:
    if kind == "floor":
        return [PYTHON, "-m", "bench.floor", "--host", HOST, "--port", str(port)]
    if kind == "uvicorn":
        return [
            PYTHON, "-m", "uvicorn", "config.asgi:application", "--host", HOST, "--port", str(port),
            "--ws", "websockets", "--loop", "uvloop", "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
    application = "bench.seed:application" if kind == "seed" else "config.asgi:application"
    # -v 0: no access log, which would cost CPU per connection.
    return [PYTHON, "-m", "daphne", "-v", "0", "-b", HOST, "-p", str(port), application]


def protocol(kind: str) -> str:
    return {"seed": "seed", "floor": "floor"}.get(kind, "ours")


class Bench:
    def __init__(self, sizes: Sizes, processes: Processes, directory: Path) -> None:
        self.sizes = sizes
        self.processes = processes
        self.directory = directory

    # Databases.

    def app_env(self, database_url: str, redis_url: str = "") -> dict[str, str]:
        settings = {
            "DATABASE_URL": database_url,
            "DEBUG": "false",
            "SECRET_KEY": SECRET_KEY,
            # The benchmark's clients post far faster than a person: lift the limits.
            "MESSAGE_RATE": "100000000/minute",
            "FRAME_RATE": "100000000/second",
            "SOCKETS_PER_USER": "1000000",
            "ALLOWED_HOSTS": HOST,
            "CHAT_LOG_LEVEL": "WARNING",
        }
        if redis_url:
            settings["REDIS_URL"] = redis_url
        return self.processes.env(**settings)

    def prepare(self, database_url: str, users: int, idle_rooms: int, fanout_members: int, name: str) -> Path:
        """Migrate the database and create the users, chats and sessions; the plan's path."""
        env = self.app_env(database_url)
        started = time.monotonic()
        self.processes.run([PYTHON, "manage.py", "migrate", "--noinput"], env, timeout=300)
        plan = self.directory / f"plan-{name}.json"
        self.processes.run(
            [
                PYTHON, "-m", "bench.setup_data", "--out", str(plan), "--users", str(users),
                "--idle-rooms", str(idle_rooms), "--fanout-members", str(fanout_members),
                "--rooms", str(self.sizes.rooms), "--room-members", str(self.sizes.room_members),
            ],
            env,
            timeout=600,
        )  # fmt: skip
        log(f"prepared {users} users on {database_url.split('://')[0]} in {time.monotonic() - started:.1f} s")
        return plan

    def fresh_sqlite(self, pristine: Path) -> str:
        """A copy of the prepared SQLite database, so that every server starts from the same one."""
        copy = self.directory / "run.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{copy}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(pristine, copy)
        return f"sqlite:///{copy}"

    # Runs.

    def client(
        self, kind: str, plan: Path, ports: list[int], pids: list[int], scenario: list[str]
    ) -> dict[str, Any]:
        # The event stream's clients are bench.events's; every other scenario's bench.client's.
        module = "bench.events" if scenario[0] == "events" else "bench.client"
        argv = [PYTHON, "-m", module, "--plan", str(plan), "--proto", protocol(kind)]
        argv += [f"--url=ws://{HOST}:{port}" for port in ports]
        argv += [f"--pid={pid}" for pid in pids]
        drain = self.sizes.fanout_drain if scenario[0] in ("fanout", "events") else self.sizes.drain
        argv += ["--concurrency", str(self.sizes.connect_concurrency), "--drain", str(drain)]
        timeout = (
            300 + 2 * drain + self.sizes.duration + self.sizes.capacity_duration + self.sizes.idle_budget
        )
        output = self.processes.run([*argv, *scenario], self.processes.env(), timeout=timeout)
        return dict(json.loads(output.strip().splitlines()[-1]))

    def on_servers(
        self,
        kind: str,
        count: int,
        env: dict[str, str],
        plan: Path,
        scenario: list[str],
        before: Callable[[], None],
    ) -> dict[str, Any]:
        """Start `count` servers of a kind, run one scenario against them, stop them."""
        before()
        ports = [free_port() for _ in range(count)]
        with contextlib.ExitStack() as stack:
            pids = [
                stack.enter_context(self.processes.server(kind, server_argv(kind, port), env, port))
                for port in ports
            ]
            started = time.monotonic()
            result = self.client(kind, plan, ports, pids, scenario)
            result["wall_s"] = round(time.monotonic() - started, 1)
            return result

    def single_process(self, scenarios: list[str], servers: list[str]) -> dict[str, dict[str, Any]]:
        sizes = self.sizes
        users = max(sizes.idle_sockets, sizes.fanout_members, sizes.rooms * sizes.room_members)
        database = self.directory / "pristine.sqlite3"
        plan = self.prepare(
            f"sqlite:///{database}", users, 100 if users >= 1000 else 4, sizes.fanout_members, "sqlite"
        )
        if "events" in scenarios:
            # The event stream's clients sign in with API tokens, made by the token service.
            tokens = ["tokens", "--members", str(sizes.fanout_members)]
            self.processes.run(
                [PYTHON, "-m", "bench.events", "--plan", str(plan), *tokens],
                self.app_env(f"sqlite:///{database}"),
                timeout=600,
            )
        arguments = {
            "idle": ["idle", "--sockets", str(sizes.idle_sockets), "--budget", str(sizes.idle_budget)],
            "fanout": [
                "fanout", "--members", str(sizes.fanout_members), "--messages", str(sizes.fanout_messages),
                "--rate", str(sizes.fanout_rate), "--burst", str(sizes.burst),
            ],
            "events": [
                "events", "--members", str(sizes.fanout_members), "--messages", str(sizes.fanout_messages),
                "--rate", str(sizes.fanout_rate), "--burst", str(sizes.burst),
            ],
            "rooms": [
                "rooms", "--rooms", str(sizes.rooms), "--members", str(sizes.room_members),
                "--rate", str(sizes.rate), "--duration", str(sizes.duration),
            ],
        }  # fmt: skip
        results: dict[str, dict[str, Any]] = {}
        for scenario in scenarios:
            for kind in servers:
                if scenario == "events" and kind not in OURS:
                    continue  # The seed and the floor have no event stream.
                log(f"{scenario} on {kind}")
                env = self.app_env(self.fresh_sqlite(database))
                try:
                    result = self.on_servers(kind, 1, env, plan, arguments[scenario], before=lambda: None)
                except (RuntimeError, subprocess.TimeoutExpired, ValueError) as error:
                    log(f"{scenario} on {kind} failed: {error}")
                    result = {"error": str(error)[-2000:]}
                results.setdefault(scenario, {})[kind] = result
        return results

    def shared(self, servers: list[str]) -> dict[str, Any]:
        """The chat on one and on two processes sharing Redis and PostgreSQL."""
        import psycopg
        import redis

        sizes = self.sizes
        results: dict[str, Any] = {}
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
            connection.execute(f"CREATE DATABASE {BENCH_DATABASE}")
        try:
            database_url = f"{POSTGRES}/{BENCH_DATABASE}"
            users = sizes.rooms * sizes.room_members
            plan = self.prepare(database_url, users, 1, 0, "postgres")
            env = self.app_env(database_url, REDIS_URL)
            client = redis.Redis.from_url(REDIS_URL)

            def flush() -> None:
                client.flushdb()

            traffic = ["--rooms", str(sizes.rooms), "--members", str(sizes.room_members)]
            capacity = ["capacity", *traffic, "--duration", str(sizes.capacity_duration)]
            capacity += ["--window", str(sizes.capacity_window)]
            rooms = ["rooms", *traffic, "--rate", str(sizes.rate), "--duration", str(sizes.duration)]
            runs = [("capacity_1", 1, capacity), ("capacity_2", 2, capacity), ("rooms_2", 2, rooms)]
            for kind in [server for server in servers if server in OURS]:
                # The rooms scenario on two processes only for the default server: the
                # benchmark has to end in reasonable time.
                for label, count, scenario in runs if kind == "daphne" else runs[:2]:
                    log(f"redis {label} on {kind}")
                    try:
                        result = self.on_servers(kind, count, env, plan, scenario, before=flush)
                    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as error:
                        log(f"redis {label} on {kind} failed: {error}")
                        result = {"error": str(error)[-2000:]}
                    results.setdefault(label, {})[kind] = result
            client.flushdb()
            client.close()
        finally:
            with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as connection:
                connection.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        return results


# The table.

Getter = Callable[[dict[str, Any]], float | int | None]


def path(*keys: str) -> Getter:
    def get(result: dict[str, Any]) -> float | int | None:
        value: Any = result
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None

    return get


@dataclass(frozen=True)
class Row:
    label: str
    scenario: str
    get: Getter


def rows(sizes: Sizes) -> list[Row]:
    big = f"1 room x {sizes.fanout_members}"
    many = f"{sizes.rooms} rooms x {sizes.room_members} @ {sizes.rate:g}/s, {sizes.duration:g} s"
    return [
        Row(f"idle: sockets open (of {sizes.idle_sockets})", "idle", path("sockets")),
        Row("idle: RSS per socket, KB", "idle", path("rss_per_socket_kb")),
        Row("idle: connects per second", "idle", path("connect_per_s")),
        Row(f"{big}, {sizes.fanout_messages} msgs: delivery p50, ms", "fanout", path("steady", "p50_ms")),
        Row(f"{big}: delivery p99, ms", "fanout", path("steady", "p99_ms")),
        Row(f"{big}: first recipient p50, ms", "fanout", path("steady", "first_recipient_p50_ms")),
        Row(f"{big}: last recipient p99, ms", "fanout", path("steady", "last_recipient_p99_ms")),
        Row(f"{big}: lost", "fanout", path("steady", "lost")),
        Row(f"burst of {sizes.burst}: drain, ms", "fanout", path("burst", "drain_ms")),
        Row("burst: server CPU per delivery, us", "fanout", path("burst", "server_cpu_per_delivery_us")),
        Row("burst: last recipient p99, ms", "fanout", path("burst", "last_recipient_p99_ms")),
        Row("burst: lost", "fanout", path("burst", "lost")),
        Row(
            f"events, {big} token clients: last recipient p50, ms",
            "events",
            path("steady", "last_recipient_p50_ms"),
        ),
        Row("events: last recipient p99, ms", "events", path("steady", "last_recipient_p99_ms")),
        Row("events: delivery p99, ms", "events", path("steady", "p99_ms")),
        Row("events: lost", "events", path("steady", "lost")),
        Row(f"events, burst of {sizes.burst}: drain, ms", "events", path("burst", "drain_ms")),
        Row(
            "events burst: server CPU per delivered event, us",
            "events",
            path("burst", "server_cpu_per_delivery_us"),
        ),
        Row("events burst: lost", "events", path("burst", "lost")),
        Row("events: distinct frames per event", "events", path("distinct_frames_per_event")),
        Row("events CPU ÷ HTML fan-out CPU, per delivery", "events_vs_html", path("ratio")),
        Row(f"{many}: offered msgs/s", "rooms", path("offered_per_s")),
        Row("rooms: delivery p50, ms", "rooms", path("p50_ms")),
        Row("rooms: delivery p99, ms", "rooms", path("p99_ms")),
        Row("rooms: last recipient p99, ms", "rooms", path("last_recipient_p99_ms")),
        Row("rooms: lost", "rooms", path("lost")),
        Row("rooms: duplicates", "rooms", path("duplicates")),
        Row("rooms: server CPU per delivery, us", "rooms", path("server_cpu_per_delivery_us")),
        Row("2 procs + Redis + PG, rooms: delivery p50, ms", "rooms_2", path("p50_ms")),
        Row("2 procs, rooms: delivery p99, ms", "rooms_2", path("p99_ms")),
        Row("2 procs, rooms: lost", "rooms_2", path("lost")),
        Row("1 proc + Redis + PG: most msgs/s", "capacity_1", path("messages_per_s")),
        Row("2 procs + Redis + PG: most msgs/s", "capacity_2", path("messages_per_s")),
        Row("2 procs ÷ 1 proc", "scale", path("ratio")),
    ]


def fmt(value: float | int | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 100):
        return f"{int(value):,}"
    return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"


def ratio(ours: float | int | None, other: float | int | None) -> str:
    if ours is None or other is None or other == 0:
        return "-"
    return f"{ours / other:.2f}"


def table(results: dict[str, Any], sizes: Sizes) -> str:
    scenarios = results["scenarios"]
    header = [
        "metric",
        "seed",
        "daphne",
        "uvicorn",
        "floor",
        "daph/seed",
        "daph/floor",
        "uvi/seed",
        "uvi/floor",
    ]
    lines = []
    for row in rows(sizes):
        if row.scenario not in scenarios:
            continue
        values = {kind: row.get(scenarios.get(row.scenario, {}).get(kind, {})) for kind in SERVERS}
        cells = [row.label, *(fmt(values[kind]) for kind in SERVERS)]
        cells += [ratio(values[ours], values[other]) for ours in OURS for other in ("seed", "floor")]
        lines.append(cells)
    widths = [max(len(str(cells[i])) for cells in [header, *lines]) for i in range(len(header))]
    rule = "-+-".join("-" * width for width in widths)
    out = [
        " | ".join(
            header[i].ljust(widths[i]) if i == 0 else header[i].rjust(widths[i]) for i in range(len(header))
        )
    ]
    out.append(rule)
    for cells in lines:
        out.append(
            " | ".join(
                cells[i].ljust(widths[i]) if i == 0 else cells[i].rjust(widths[i]) for i in range(len(cells))
            )
        )
    out.append("Ratios are ours ÷ the other column (below 1 is less: better for times, CPU and RSS).")
    return "\n".join(out)


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """The issue's targets for the default deployment (daphne): (target, figure, met)."""
    scenarios = results["scenarios"]

    def get(scenario: str, kind: str, *keys: str) -> float | int | None:
        return path(*keys)(scenarios.get(scenario, {}).get(kind, {}))

    checks: list[tuple[str, str, bool | None]] = []

    def check(name: str, value: float | int | None, test: Callable[[float], bool], unit: str = "") -> None:
        checks.append(
            (name, "-" if value is None else f"{fmt(value)}{unit}", None if value is None else test(value))
        )

    cpu = get("fanout", "daphne", "burst", "server_cpu_per_delivery_us")
    seed_cpu = get("fanout", "seed", "burst", "server_cpu_per_delivery_us")
    check("server CPU per delivery <= 40 us", cpu, lambda v: v <= 40, " us")
    check(
        "at least 7x less CPU than the baseline",
        seed_cpu / cpu if cpu and seed_cpu else None,
        lambda v: v >= 7,
        "x",
    )
    check(
        "1,000-member room: p99 until the last recipient <= 100 ms",
        get("fanout", "daphne", "steady", "last_recipient_p99_ms"),
        lambda v: v <= 100,
        " ms",
    )
    requested = results["sizes"]["idle_sockets"]
    check(
        f"{requested:,} idle sockets open in one process",
        get("idle", "daphne", "sockets"),
        lambda v: v >= requested,
    )
    check("idle: <= 40 KB per socket", get("idle", "daphne", "rss_per_socket_kb"), lambda v: v <= 40, " KB")
    check("idle: >= 500 connects/s", get("idle", "daphne", "connect_per_s"), lambda v: v >= 500, "/s")
    check(
        "100 rooms x 10 @ 1,000/s: p99 <= 100 ms", get("rooms", "daphne", "p99_ms"), lambda v: v <= 100, " ms"
    )
    lost = get("rooms", "daphne", "lost")
    duplicates = get("rooms", "daphne", "duplicates") or 0
    check("100 rooms x 10: zero lost", None if lost is None else lost + duplicates, lambda v: v == 0)
    check("two processes deliver >= 1.6x one", get("scale", "daphne", "ratio"), lambda v: v >= 1.6, "x")
    return checks


def versions() -> dict[str, Any]:
    packages: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "python": platform.python_version(),
        "packages": packages,
        "cpus": os.cpu_count(),
        # Other work on the machine skews every figure; the load average tells how much there was.
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="tiny sizes (what the test suite runs)")
    parser.add_argument(
        "--only", default=",".join(SCENARIOS), help=f"comma-separated, of {', '.join(SCENARIOS)}"
    )
    parser.add_argument(
        "--servers", default=",".join(SERVERS), help=f"comma-separated, of {', '.join(SERVERS)}"
    )
    parser.add_argument(
        "--duration", type=float, help="seconds of traffic in the rooms scenarios (default 60)"
    )
    parser.add_argument("--idle-sockets", type=int, help="idle sockets to open (default 10,000)")
    parser.add_argument("--json", help="also write the results to this file")
    from bench import http

    http.add_arguments(parser)
    arguments = parser.parse_args(argv)
    http.check_arguments(parser, arguments)
    for option, allowed in (("only", SCENARIOS), ("servers", SERVERS)):
        chosen = [name for name in getattr(arguments, option).split(",") if name]
        unknown = set(chosen) - set(allowed)
        if unknown:
            parser.error(f"--{option}: unknown {', '.join(sorted(unknown))}")
        setattr(arguments, option, [name for name in allowed if name in chosen])
    return arguments


def run(arguments: argparse.Namespace) -> dict[str, Any]:
    sizes = SMALL if arguments.small else Sizes()
    if arguments.duration is not None:
        sizes = dataclasses.replace(sizes, duration=arguments.duration)
    if arguments.idle_sockets is not None:
        sizes = dataclasses.replace(sizes, idle_sockets=arguments.idle_sockets)
    started = time.monotonic()
    results: dict[str, Any] = {"versions": versions(), "sizes": dataclasses.asdict(sizes), "scenarios": {}}
    with tempfile.TemporaryDirectory(prefix="chat-bench-") as directory:
        processes = Processes(Path(directory))
        bench = Bench(sizes, processes, Path(directory))
        try:
            single = [scenario for scenario in arguments.only if scenario not in ("redis", "http")]
            if single:
                results["scenarios"].update(bench.single_process(single, arguments.servers))
                for kind in OURS:
                    html = path("burst", "server_cpu_per_delivery_us")(
                        results["scenarios"].get("fanout", {}).get(kind, {})
                    )
                    json_cpu = path("burst", "server_cpu_per_delivery_us")(
                        results["scenarios"].get("events", {}).get(kind, {})
                    )
                    if html and json_cpu:
                        results["scenarios"].setdefault("events_vs_html", {})[kind] = {
                            "ratio": round(json_cpu / html, 2)
                        }
            if "redis" in arguments.only:
                shared = bench.shared(arguments.servers)
                results["scenarios"].update(shared)
                for kind in OURS:
                    one = path("messages_per_s")(shared.get("capacity_1", {}).get(kind, {}))
                    two = path("messages_per_s")(shared.get("capacity_2", {}).get(kind, {}))
                    if one and two:
                        results["scenarios"].setdefault("scale", {})[kind] = {"ratio": round(two / one, 2)}
            if "http" in arguments.only:
                from bench import http

                results["scenarios"]["http"] = http.run(arguments)
        finally:
            processes.stop_all()
    results["seconds"] = round(time.monotonic() - started, 1)
    results["load_average_after"] = [round(load, 2) for load in os.getloadavg()]
    return results


def events_note(results: dict[str, Any]) -> str:
    distinct = {
        kind: result.get("distinct_frames_per_event")
        for kind, result in results["scenarios"]["events"].items()
        if isinstance(result, dict)
    }
    figures = ", ".join(f"{kind} {value}" for kind, value in distinct.items())
    return (
        "Events: the JSON of an event is made once, when the change is saved, whatever the number\n"
        "of clients (asserted in process by chat/tests/test_events.py::EventStreamTests::\n"
        "test_the_json_is_made_once_per_event_whatever_the_number_of_clients). Here, the distinct\n"
        f"frames that the token clients received per event (1: the same bytes for all): {figures}."
    )


def report(results: dict[str, Any]) -> str:
    sizes = Sizes(**results["sizes"])
    info = results["versions"]
    packages = ", ".join(f"{name} {version}" for name, version in info["packages"].items())
    lines = [
        f"Python {info['python']}, {packages}; {info['cpus']} CPUs; {info['platform']}; {info['date']}",
        f"Load average before: {info['load_average']}, after: {results.get('load_average_after')}",
    ]
    # The sockets' table and targets, unless only the HTTP part ran (`--only http`).
    if set(results["scenarios"]) - {"http"}:
        lines += ["", table(results, sizes), "", "Targets (the chat on daphne):"]
        for name, figure, met in targets(results):
            verdict = "n/a" if met is None else ("met" if met else "MISSED")
            lines.append(f"  {verdict:6} {name}: {figure}")
    if "events" in results["scenarios"]:
        lines += ["", events_note(results)]
    if "http" in results["scenarios"]:
        from bench import http

        lines += ["", "HTTP (bench/http.py):", http.table(results["scenarios"]["http"])]
    lines.append(f"\nThe benchmark took {results['seconds']:.0f} s.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    results = run(arguments)
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(results, indent=2))
    print(report(results))
    if "http" in results["scenarios"]:
        from bench.http_report import errors

        # An acknowledged write that is not stored (or stored twice) fails the run.
        if errors(results["scenarios"]["http"]):
            sys.exit(1)


if __name__ == "__main__":
    main()
