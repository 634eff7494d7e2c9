"""Start the production layout on one machine, in the foreground: `make serve`.

    REDIS_URL=redis://127.0.0.1:6379/0 DATABASE_URL=postgres://… SECRET_KEY=… \
        .venv/bin/python deploy/serve.py

1. `collectstatic` and `migrate`;
2. HTTP workers: one gunicorn (config.wsgi) with HTTP_WORKERS sync workers (one per core
   by default): pages, forms and the API, each request on a single-threaded process;
3. socket processes: SOCKET_PROCESSES daphnes (config.asgi, 2 by default), for /ws/;
4. nginx (Debian's) in front, on HOST:PORT (127.0.0.1:8000 by default), from
   deploy/nginx.conf: /ws/ to the daphnes, /static/ from STATIC_ROOT, the rest to gunicorn.

The processes share chats through Redis, so REDIS_URL is required. A socket process that
exits is started again on its port (nginx sends new sockets to the other meanwhile, and
pages reconnect and catch up). SIGTERM or SIGINT stops everything; SIGHUP restarts the
socket processes one at a time and gunicorn's workers gracefully, e.g. after a deploy.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).resolve().parent / "nginx.conf"
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
# A socket process that keeps dying is started again at most this often.
RESTART_DELAY = 1.0


class LayoutError(RuntimeError):
    """The layout cannot start, and why."""


def log(text: str) -> None:
    print(f"serve: {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Options:
    host: str = LOOPBACK
    port: int = 8000
    http_workers: int = os.cpu_count() or 1
    socket_processes: int = 2
    nginx: str = "nginx"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Options:
        if not env.get("REDIS_URL"):
            raise LayoutError(
                "REDIS_URL is not set: the HTTP workers and socket processes of this layout share "
                "chats through Redis (e.g. REDIS_URL=redis://127.0.0.1:6379/0). "
                "For one process without Redis, run a single daphne (see the README)."
            )
        nginx = env.get("NGINX_BINARY") or shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(nginx).exists():
            raise LayoutError(
                "nginx is not installed (apt-get install -y nginx), or set NGINX_BINARY=<path>."
            )
        return cls(
            host=env.get("HOST") or LOOPBACK,
            port=int(env.get("PORT") or 8000),
            http_workers=int(env.get("HTTP_WORKERS") or os.cpu_count() or 1),
            socket_processes=int(env.get("SOCKET_PROCESSES") or 2),
            nginx=nginx,
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def accepts(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def worker_user(static_root: str) -> str:
    """Whom nginx's workers run as, when serve.py runs as root: www-data (they only read
    static files and proxy), unless www-data can't reach STATIC_ROOT (a checkout in a
    private directory, e.g. one made by mktemp); then the static files' owner, said in the log."""
    path = Path(static_root).resolve()
    if not path.exists() or all(os.stat(folder).st_mode & stat.S_IXOTH for folder in (path, *path.parents)):
        return "www-data"
    owner = pwd.getpwuid(path.stat().st_uid).pw_name
    log(f"www-data can't reach {path}: nginx's workers run as {owner}")
    return owner


def render_nginx(
    *,
    options: Options,
    runtime: Path,
    static_root: str,
    http_ports: list[int],
    socket_ports: list[int],
    template: str | None = None,
) -> str:
    """deploy/nginx.conf with its placeholders filled in."""
    values = {
        "user_line": f"user {worker_user(static_root)};" if os.geteuid() == 0 else "",
        "runtime": str(runtime),
        "host": options.host,
        "port": str(options.port),
        "static_root": static_root.rstrip("/"),
        "http_upstreams": "\n".join(f"        server {LOOPBACK}:{port};" for port in http_ports),
        "socket_upstreams": "\n".join(
            f"        server {LOOPBACK}:{port} max_fails=1 fail_timeout=2s;" for port in socket_ports
        ),
    }
    text = template if template is not None else TEMPLATE.read_text()
    return re.sub(r"\{\{ (\w+) \}\}", lambda match: values[match.group(1)], text)


@dataclass
class Layout:
    """The processes of the layout, started and supervised from this process."""

    options: Options
    env: dict[str, str]
    runtime: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="chat-serve-")))
    http_port: int = 0
    socket_ports: list[int] = field(default_factory=list)
    gunicorn: subprocess.Popen[bytes] | None = None
    daphnes: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    nginx: subprocess.Popen[bytes] | None = None
    stopping: bool = False

    def manage(self, *args: str) -> str:
        # Every argv here is this module's own: no input from outside reaches a command line.
        done = subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise LayoutError(f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def static_root(self) -> str:
        code = "from django.conf import settings; print(settings.STATIC_ROOT)"
        return self.manage("shell", "--no-imports", "-c", code).strip()

    def prepare(self) -> None:
        log("collectstatic and migrate")
        self.manage("collectstatic", "--noinput")
        self.manage("migrate", "--noinput")

    def spawn(self, argv: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, cwd=ROOT, env=self.env)  # noqa: S603

    def start_gunicorn(self) -> None:
        self.http_port = self.http_port or free_port()
        self.gunicorn = self.spawn(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                "--bind",
                f"{LOOPBACK}:{self.http_port}",
                "--workers",
                str(self.options.http_workers),
                "--worker-class",
                "sync",
                # nginx buffers requests and responses, so a sync worker never waits on a client.
                "--timeout",
                "30",
                "--graceful-timeout",
                "20",
                "--forwarded-allow-ips",
                LOOPBACK,
                # One control socket per user by default: two layouts on a machine would share it.
                "--no-control-socket",
            ]
        )

    def start_daphne(self, index: int) -> None:
        port = self.socket_ports[index]
        argv = [sys.executable, "-m", "daphne", "-b", LOOPBACK, "-p", str(port)]
        self.daphnes[index] = self.spawn([*argv, "--proxy-headers", "config.asgi:application"])
        log(f"socket process {index} (pid {self.daphnes[index].pid}) on {LOOPBACK}:{port}")  # type: ignore[union-attr]

    def wait_for(self, port: int, process: subprocess.Popen[bytes], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not accepts(port):
            if process.poll() is not None:
                raise LayoutError(f"{what} exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise LayoutError(f"{what} did not listen on {LOOPBACK}:{port} within {START_TIMEOUT:.0f} s")
            time.sleep(0.1)

    def start(self) -> None:
        """Start every process (after collectstatic and migrate) and wait until nginx listens."""
        self.prepare()
        static_root = self.static_root()
        self.start_gunicorn()
        self.socket_ports = [free_port() for _ in range(self.options.socket_processes)]
        self.daphnes = [None] * len(self.socket_ports)
        for index in range(len(self.socket_ports)):
            self.start_daphne(index)
        assert self.gunicorn is not None
        self.wait_for(self.http_port, self.gunicorn, "gunicorn")
        for index, port in enumerate(self.socket_ports):
            process = self.daphnes[index]
            assert process is not None
            self.wait_for(port, process, f"socket process {index}")
        # nginx's workers (www-data) must reach the temporary directories inside it.
        self.runtime.chmod(0o755)
        config = self.runtime / "nginx.conf"
        config.write_text(
            render_nginx(
                options=self.options,
                runtime=self.runtime,
                static_root=static_root,
                http_ports=[self.http_port],
                socket_ports=self.socket_ports,
            )
        )
        self.nginx = self.spawn([self.options.nginx, "-p", str(self.runtime), "-c", str(config)])
        self.wait_for(self.options.port, self.nginx, "nginx")
        log(
            f"serving on http://{self.options.host}:{self.options.port}/ "
            f"({self.options.http_workers} HTTP workers, {len(self.socket_ports)} socket processes)"
        )

    def restart_socket_processes(self) -> None:
        """One at a time, so that the others keep serving: pages reconnect and catch up."""
        for index, process in enumerate(self.daphnes):
            if process is not None:
                self.end(process, signal.SIGTERM)
            self.start_daphne(index)
            restarted = self.daphnes[index]
            assert restarted is not None
            self.wait_for(self.socket_ports[index], restarted, f"socket process {index}")
        if self.gunicorn is not None:
            # gunicorn starts new workers and lets the old ones finish their requests.
            self.gunicorn.send_signal(signal.SIGHUP)

    def supervise(self) -> int:
        """Keep the layout up until asked to stop; the exit status."""
        reload = False

        def stop(signum: int, frame: FrameType | None) -> None:
            self.stopping = True

        def hang_up(signum: int, frame: FrameType | None) -> None:
            nonlocal reload
            reload = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, hang_up)
        while not self.stopping:
            if reload:
                reload = False
                log("SIGHUP: restarting the socket processes one at a time, and gunicorn's workers")
                self.restart_socket_processes()
            for name, process in (("gunicorn", self.gunicorn), ("nginx", self.nginx)):
                if process is not None and process.poll() is not None:
                    log(f"{name} exited with {process.returncode}: stopping")
                    self.stop()
                    return 1
            for index, process in enumerate(self.daphnes):
                if process is not None and process.poll() is not None:
                    log(f"socket process {index} exited with {process.returncode}: starting it again")
                    time.sleep(RESTART_DELAY)
                    self.start_daphne(index)
            time.sleep(0.2)
        self.stop()
        return 0

    @staticmethod
    def end(process: subprocess.Popen[bytes], signum: int | None, timeout: float = STOP_TIMEOUT) -> None:
        """Send the signal (if any), wait for the exit, and kill what outlives the timeout."""
        if signum is not None and process.poll() is None:
            process.send_signal(signum)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"pid {process.pid} did not exit within {timeout:.0f} s: killing it")
            process.kill()
            process.wait()

    def stop(self) -> None:
        """nginx stops accepting; the socket processes close their sockets (1012) and exit;
        gunicorn's workers finish their requests."""
        self.stopping = True
        processes = [p for p in (self.nginx, *self.daphnes, self.gunicorn) if p is not None]
        for process in processes:
            if process.poll() is None:
                # nginx: QUIT is its graceful stop; TERM is gunicorn's and daphne's.
                process.send_signal(signal.SIGQUIT if process is self.nginx else signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in processes:
            self.end(process, None, max(0.1, deadline - time.monotonic()))
        shutil.rmtree(self.runtime, ignore_errors=True)
        log("stopped")


def main() -> int:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    try:
        options = Options.from_env(env)
        layout = Layout(options, env)

        def interrupted(signum: int, frame: FrameType | None) -> None:
            raise SystemExit(128 + signum)

        # Stopped while starting: what has started is stopped too.
        signal.signal(signal.SIGTERM, interrupted)
        try:
            layout.start()
        except BaseException:
            layout.stop()
            raise
    except LayoutError as error:
        log(str(error))
        return 2
    return layout.supervise()


if __name__ == "__main__":
    sys.exit(main())
