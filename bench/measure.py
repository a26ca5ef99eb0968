"""One measured run of a program: its rows, wall time, CPU time and peak memory."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.fake import BenchError

LAUNCHER = Path(__file__).resolve().with_name("launch.py")
RECORD_LINE = b'\n{"type":"RECORD","stream":"export_rows",'
READ_BYTES = 1 << 20
# Set in some shells, they would change what is measured: an unbuffered stdout makes the
# client write once per line, and no bytecode cache makes every start compile ~350 modules.
UNSET_FOR_CHILDREN = ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")


@dataclass(frozen=True)
class Run:
    """Figures of one run of one program."""

    rows: int
    wall_s: float
    user_s: float
    sys_s: float
    peak_rss_mb: float
    server_cpu_s: float | None

    @property
    def cpu_s(self) -> float:
        """CPU seconds of the program itself (user + sys)."""
        return self.user_s + self.sys_s


@dataclass(frozen=True)
class Summary:
    """Medians over the repeated runs of one program in one mode."""

    rows: int
    wall_s: float
    rows_per_s: float
    cpu_s: float
    cpu_us_per_row: float
    # The least CPU a run took: the run least slowed by whatever else shared the machine
    # (other work only ever adds CPU time: caches, frequency, interrupts).
    min_cpu_us_per_row: float
    peak_rss_mb: float
    server_cpu_s: float | None
    runs: list[dict[str, float | int | None]]


def count_records(stream: int) -> int:
    """Count the export_rows RECORD lines read from a file descriptor, until EOF.

    Only line starts are counted; the bytes are then dropped. This runs in the benchmark,
    so its CPU time is not the measured program's.
    """
    count, tail = 0, b"\n"
    keep = len(RECORD_LINE) - 1  # shorter than a match: none is counted twice
    while chunk := os.read(stream, READ_BYTES):
        data = tail + chunk
        count += data.count(RECORD_LINE)
        tail = data[-keep:]
    return count


def measure(
    command: Sequence[str],
    *,
    log_path: Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    server_cpu: Callable[[], float | None] = lambda: None,
    rows_from_log: Callable[[Path], int] | None = None,
) -> Run:
    """Run `command` once through the launcher, stderr to `log_path`.

    Stdout is piped to a counter in this process; with `rows_from_log` it goes to
    /dev/null instead and the row count is what the program logged.
    """
    result_path = log_path.with_suffix(".rusage.json")
    result_path.unlink(missing_ok=True)
    launcher = [sys.executable, "-I", "-S", str(LAUNCHER), str(result_path), *command]
    server_before = server_cpu()
    with log_path.open("wb") as log:
        if rows_from_log is None:
            process = subprocess.Popen(
                launcher, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=log
            )
            assert process.stdout is not None
            with process.stdout:
                rows = count_records(process.stdout.fileno())
        else:
            process = subprocess.Popen(
                launcher, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=log
            )
        process.wait()
    server_after = server_cpu()
    if process.returncode != 0 or not result_path.exists():
        raise BenchError(f"the launcher failed ({process.returncode}); see {log_path}")
    figures = json.loads(result_path.read_text())
    if figures["exit_code"] != 0:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
        raise BenchError(
            f"{command[0]} exited with {figures['exit_code']}; last lines of {log_path}:\n"
            + "\n".join(tail)
        )
    if rows_from_log is not None:
        rows = rows_from_log(log_path)
    server = None if server_before is None or server_after is None else server_after - server_before
    return Run(
        rows=rows,
        wall_s=figures["wall_s"],
        user_s=figures["user_s"],
        sys_s=figures["sys_s"],
        peak_rss_mb=figures["maxrss_kib"] / 1024,
        server_cpu_s=server,
    )


def report_progress(mode: str, program: str, attempt: int, run: Run) -> None:
    """One line on stderr for a run just measured."""
    print(
        f"  {mode} {program} run {attempt}: {run.rows:,} rows, {run.wall_s:.2f} s wall, "
        f"{run.cpu_s:.2f} s CPU, {run.peak_rss_mb:.1f} MB peak RSS",
        file=sys.stderr,
        flush=True,
    )


def summarize(runs: Sequence[Run]) -> Summary:
    """Medians of the runs (the row count must be the same in each)."""
    counts = {run.rows for run in runs}
    if len(counts) != 1:
        raise BenchError(f"the runs emitted different row counts: {sorted(counts)}")
    rows = counts.pop()
    wall = statistics.median(run.wall_s for run in runs)
    cpu = statistics.median(run.cpu_s for run in runs)
    servers = [run.server_cpu_s for run in runs if run.server_cpu_s is not None]
    return Summary(
        rows=rows,
        wall_s=wall,
        rows_per_s=rows / wall if wall else 0.0,
        cpu_s=cpu,
        cpu_us_per_row=cpu / rows * 1e6 if rows else 0.0,
        min_cpu_us_per_row=min(run.cpu_s for run in runs) / rows * 1e6 if rows else 0.0,
        peak_rss_mb=statistics.median(run.peak_rss_mb for run in runs),
        server_cpu_s=statistics.median(servers) if servers else None,
        runs=[{**asdict(run), "cpu_s": run.cpu_s} for run in runs],
    )
