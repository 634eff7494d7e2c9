"""The HTTP benchmark's small variant: every request type answers as expected, and every write
the server acknowledged is stored.

It runs `python -m bench.http` on SQLite alone (no PostgreSQL, no other layouts), with four
clients for a second per request type. Benchmarks measure; this test asserts only what the
answers and the database say, never a time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chat.tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.process

RUN_TIMEOUT = 240


def test_every_request_type_answers_and_every_acknowledged_write_is_stored(tmp_path: Path) -> None:
    """The bare hello, the stack, the page, the form and API posts, the socket's send and
    connect: no unexpected answer, and acked = stored, once each."""
    output = tmp_path / "http.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "bench.http", "--http-databases", "sqlite", "--layouts", "",
            "--duration", "1", "--http-warmup", "0", "--http-clients", "4", "--json", str(output),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    rows = json.loads(output.read_text())["rows"]
    floors, ours = ["hello", "socket-hello"], ["stack", "page", "form", "api", "send", "connect"]
    assert [row["request"] for row in rows] == floors + ours
    for row in rows:
        assert row["requests"] > 0, row
        assert row["unexpected"] == 0, row
        assert row["cpu_ms"] is not None, row
    for row in [row for row in rows if row["request"] in ("form", "api", "send")]:
        assert row["acked"] > 0, row
        assert row["stored"] == row["acked"], row
        assert row["rows"] == row["stored"], row
