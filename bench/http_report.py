"""The HTTP benchmark's table (bench/http.py): the figures, the issue's targets, the errors."""

from __future__ import annotations

from typing import Any

from bench.http_requests import LABELS, ON_LAYOUTS, OURS

# The targets: server CPU per request over the bare hello's.
TARGETS = {"stack": 1.5, "page": 2.0, "form": 2.5, "api": 2.5, "send": 1.0, "connect": 1.5}
POSTGRES_OVER_SQLITE = 1.3


def lost_writes(row: dict[str, Any]) -> int:
    """Acknowledged writes that the database does not hold."""
    return int(row["acked"] - row["stored"]) if "stored" in row else 0


def errors(results: dict[str, Any]) -> list[str]:
    lines = []
    for row in results["rows"]:
        where = f"{LABELS[row['request']]} on {row['server']} ({row['database']})"
        if lost_writes(row):
            lines.append(
                f"ERROR: {where}: {lost_writes(row)} of {row['acked']} acknowledged writes are NOT STORED"
            )
        if row.get("rows", 0) > row.get("stored", 0):
            lines.append(f"ERROR: {where}: {row['rows'] - row['stored']} acknowledged writes stored twice")
        if row["unexpected"]:
            lines.append(
                f"warning: {where}: {row['unexpected']} answers not the expected one, by status: "
                f"{row['unexpected_statuses']}"
            )
        if "acked" in row and "stored" not in row:
            lines.append(f"ERROR: {where}: the writes were not audited")
    return lines


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.3g}" if value < 100 else f"{value:,.0f}"


def table(results: dict[str, Any]) -> str:
    header = [
        "request",
        "server",
        "db",
        "req/s",
        "p50 ms",
        "p99 ms",
        "CPU ms/req",
        "x hello",
        "+PG ms",
        "not ok",
        "acked",
        "stored",
    ]
    lines = [header]
    for row in results["rows"]:
        lines.append(
            [
                LABELS[row["request"]],
                row["server"],
                row["database"],
                *(
                    fmt(row.get(key))
                    for key in ("per_s", "p50_ms", "p99_ms", "cpu_ms", "x_hello", "services_cpu_ms")
                ),
                fmt(row["unexpected"]),
                fmt(row.get("acked")),
                fmt(row.get("stored")) + (" LOST!" if lost_writes(row) else ""),
            ]
        )
    widths = [max(len(cells[i]) for cells in lines) for i in range(len(header))]
    out = [
        " | ".join(cell.ljust(widths[i]) if i < 3 else cell.rjust(widths[i]) for i, cell in enumerate(cells))
        for cells in lines
    ]
    out.insert(1, "-+-".join("-" * width for width in widths))
    out.append(
        f"{results['clients']} clients, {results['duration']:g} s per measurement, {results['cores']} cores. "
        "CPU: the server's processes (nginx included in the layouts behind it); x hello: over the bare "
        "hello's."
    )
    out += targets(results)
    out += [f"!!! {line}" if line.startswith("ERROR") else line for line in errors(results)]
    return "\n".join(out)


def targets(results: dict[str, Any]) -> list[str]:
    """The issue's targets for one daphne, with the figures of this run."""
    found = {(row["request"], row["server"], row["database"]): row for row in results["rows"]}
    lines = []
    for database in ("sqlite", "postgres"):
        figures = []
        for kind, limit in TARGETS.items():
            ratio = found.get((kind, "daphne", database), {}).get("x_hello")
            if ratio is not None:
                figures.append(f"{kind} {ratio:.1f}x {'met' if ratio <= limit else 'MISSED'} (<= {limit:g}x)")
        if figures:
            lines.append(f"Targets, daphne on {database}, CPU over the bare hello: " + ", ".join(figures))
    floor = found.get(("socket-hello", "daphne (bare)", "-"), {}).get("cpu_ms")
    connects = [
        f"{database} {row['cpu_ms'] / floor:.1f}x"
        for database in ("sqlite", "postgres")
        if floor and (row := found.get(("connect", "daphne", database), {})).get("cpu_ms")
    ]
    if connects:
        lines.append(f"Socket connect over the bare socket's ({floor:g} ms): " + ", ".join(connects))
    ratios = []
    for kind in OURS:
        sqlite = found.get((kind, "daphne", "sqlite"), {}).get("cpu_ms")
        postgres = found.get((kind, "daphne", "postgres"), {}).get("cpu_ms")
        if sqlite and postgres:
            ratio = postgres / sqlite
            ratios.append(f"{kind} {ratio:.2f}x {'met' if ratio <= POSTGRES_OVER_SQLITE else 'MISSED'}")
    if ratios:
        lines.append(
            f"PostgreSQL over SQLite, daphne's CPU per request (<= {POSTGRES_OVER_SQLITE}x): "
            + ", ".join(ratios)
        )
    layouts = dict.fromkeys(row["server"] for row in results["rows"] if row["database"] == "postgres")
    for layout in [name for name in layouts if name != "daphne"]:
        compared = []
        for kind in ON_LAYOUTS:
            base = found.get((kind, "daphne", "postgres"), {}).get("per_s")
            other = found.get((kind, layout, "postgres"), {}).get("per_s")
            if base and other:
                compared.append(f"{kind} {other / base:.2f}x")
        if compared:
            lines.append(f"{layout} over daphne (PostgreSQL), requests/s: " + ", ".join(compared))
    return lines
