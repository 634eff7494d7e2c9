"""The benchmark's small variant: every message reaches every member socket exactly once.

It runs `python -m bench.run --small` against real daphne processes, as `make bench`
does with tiny sizes. Benchmarks measure; this test asserts only that nothing was lost,
duplicated or sent to the wrong room, never a time.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chat.tests.conftest import PROJECT_ROOT, missing

pytestmark = pytest.mark.process

RUN_TIMEOUT = 180


def reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def run_bench(directory: Path, *options: str) -> dict[str, Any]:
    """The scenarios' results of one small benchmark run."""
    output = directory / "bench.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--small",
            "--servers",
            "daphne",
            "--json",
            str(output),
            *options,
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return dict(json.loads(output.read_text())["scenarios"])


def traffic(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The parts of a scenario's result that sent messages (the fan-out has two)."""
    return [result[part] for part in ("steady", "burst") if part in result] or [result]


def assert_all_delivered_once(scenarios: dict[str, Any], names: list[str]) -> None:
    for name in names:
        result = scenarios[name]["daphne"]
        assert "error" not in result, f"{name}: {result['error']}"
        for part in traffic(result):
            assert part["messages"] > 0, name
            assert part["deliveries"] == part["deliveries_expected"], f"{name}: {part}"
            assert part["lost"] == 0, f"{name}: {part}"
            assert part["duplicates"] == 0, f"{name}: {part}"
            assert part["misrouted"] == 0, f"{name}: {part}"
            assert part["sockets_closed"] == 0, f"{name}: {part}"


def test_one_process_delivers_every_message_to_every_member_once(tmp_path: Path) -> None:
    """A big room (steady and burst) and small rooms at a fixed rate, on daphne with SQLite."""
    scenarios = run_bench(tmp_path, "--only", "fanout,rooms")
    assert_all_delivered_once(scenarios, ["fanout", "rooms"])


def test_two_processes_sharing_redis_deliver_every_message_to_every_member_once(tmp_path: Path) -> None:
    """Each room's members split over two daphne processes that share Redis and PostgreSQL."""
    if not reachable(6379):
        missing("Redis is not running on 127.0.0.1:6379")
    if not reachable(5432):
        missing("PostgreSQL is not running on 127.0.0.1:5432")
    scenarios = run_bench(tmp_path, "--only", "redis")
    assert_all_delivered_once(scenarios, ["capacity_1", "capacity_2", "rooms_2"])
