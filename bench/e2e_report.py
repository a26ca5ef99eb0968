"""The end-to-end benchmark's table, notes and JSON."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.e2e import Outcome

LABELS = {
    "floor": "the export's CSV -> COPY FROM STDIN, by hand (the floor)",
    "shipped": "tap -> target-postgres as meltano.yml ships it",
    "before": "tap -> target-postgres with its defaults (INSERT, validation on): main before",
    "batch": "tap with batch_config jsonl.gz (BATCH) -> target-postgres as shipped",
    "duckdb": "tap -> target-duckdb as meltano.yml ships it",
    "duckdb-before": "tap -> target-duckdb with its default batch (100,000 rows): main before",
    "meltano": "`meltano run tap-contactbased target-postgres`, shipped config, whole",
}
# Each variant's programs, in the order of the table's columns.
PROGRAMS = {"floor": ("floor",), "meltano": ("meltano",)}
DEFAULT_PROGRAMS = ("tap", "loader")


@dataclass(frozen=True)
class Row:
    """Medians of one variant."""

    variant: str
    runs: int
    wall_s: float
    cpu_s: dict[str, float]  # per program, and "postgres", "api"
    peak_rss_mb: dict[str, float]  # per program


def _median(values: Sequence[float | None]) -> float:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else float("nan")


def summarize(outcomes: dict[str, list[Outcome]]) -> list[Row]:
    """Medians of each variant's runs."""
    rows = []
    for variant, runs in outcomes.items():
        programs = PROGRAMS.get(variant, DEFAULT_PROGRAMS)
        cpu = {p: _median([r.run.usage[p].cpu_s for r in runs]) for p in programs}
        for server in ("postgres", "api"):
            cpu[server] = _median([r.run.server_cpu_s.get(server) for r in runs])
        rss = {p: _median([r.run.usage[p].peak_rss_mb for r in runs]) for p in programs}
        rows.append(Row(variant, len(runs), _median([r.run.wall_s for r in runs]), cpu, rss))
    return rows


def _cells(row: Row, rows: int, floor_wall: float | None) -> list[str]:
    def fig(value: float | None, digits: int = 1) -> str:
        return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"

    cpu, rss = row.cpu_s, row.peak_rss_mb
    # The floor program and `meltano run` (Meltano, discovery, tap and loader together) have
    # one figure each: it goes in the loader's column.
    loader = cpu.get("loader", cpu.get("floor", cpu.get("meltano")))
    loader_rss = rss.get("loader", rss.get("floor", rss.get("meltano")))
    ratio = f"{row.wall_s / floor_wall:.1f}x" if floor_wall else "-"
    return [
        row.variant,
        f"{row.wall_s:.1f}",
        f"{rows / row.wall_s:,.0f}",
        ratio,
        fig(cpu.get("tap")),
        fig(loader),
        fig(cpu.get("postgres")),
        fig(cpu.get("api")),
        fig(rss.get("tap"), 0),
        fig(loader_rss, 0),
    ]


def table(rows: list[Row], landed_rows: int) -> str:
    """Medians per variant: wall, rows/s, ratio to the floor, CPU and peak RSS per process."""
    header = [
        "variant",
        "wall s",
        "rows/s",
        "x floor",
        "tap CPU s",
        "loader CPU s",
        "PG CPU s",
        "API CPU s",
        "tap RSS MB",
        "loader RSS MB",
    ]
    floor = next((r.wall_s for r in rows if r.variant == "floor"), None)
    lines = [header, *(_cells(row, landed_rows, floor) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(
            [line[0].ljust(widths[0])]
            + [c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True)]
        )
        for line in lines
    ]
    return "\n".join(text)


def notes(outcomes: dict[str, list[Outcome]]) -> str:
    """What the table cannot show: the paths, the landed rows, what BATCH left behind."""
    lines = ["", "Every run landed all rows with the export's checksum."]
    lines += [f"  {variant:13} {LABELS[variant]}" for variant in outcomes]
    for variant, runs in outcomes.items():
        sdc = [r.landed.sdc_null_rows for r in runs if r.landed.sdc_null_rows]
        files = [r.batch_files for r in runs if r.batch_files is not None]
        if sdc:
            lines.append(f"{variant}: {sdc[0]:,} rows with NULL _sdc_received_at (and the other")
            lines.append(
                "  load timestamps): the SDK sets them per RECORD message, not per batch file"
            )
        if files:
            lines.append(f"{variant}: {files[0]} batch files left on disk after the run")
    lines.append(
        "CPU s: each program's own (wait4); meltano: Meltano, discovery, tap and loader together."
    )
    return "\n".join(lines)


def write_report(
    path: Path,
    args: argparse.Namespace,
    meta: dict[str, Any],
    rows: list[Row],
    outcomes: dict[str, list[Outcome]],
) -> None:
    """Every figure as JSON: medians, each run, setup."""
    document = {
        "meta": {
            **meta,
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "rows_asked": args.rows,
            "repeat": args.repeat,
            "seed": args.seed,
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "load_average": os.getloadavg(),
        },
        "medians": [asdict(row) for row in rows],
        "runs": {
            variant: [
                {
                    "wall_s": o.run.wall_s,
                    "usage": {k: asdict(v) for k, v in o.run.usage.items()},
                    "server_cpu_s": o.run.server_cpu_s,
                    "landed": asdict(o.landed),
                    "batch_files": o.batch_files,
                }
                for o in runs
            ]
            for variant, runs in outcomes.items()
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
