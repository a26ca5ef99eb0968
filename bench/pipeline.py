"""One measured end-to-end run: programs joined by pipes, each under the launcher.

The tap's stdout is the loader's stdin, an OS pipe as between two shell commands (Meltano
relays the same bytes through its own process; `meltano run` is measured as a whole).
Each program runs under bench/launch.py, so its CPU time and peak RSS are its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.fake import BenchError
from bench.measure import LAUNCHER


@dataclass(frozen=True)
class Step:
    """One program of a pipeline."""

    name: str  # tap, loader, floor, meltano
    command: Sequence[str]
    env: dict[str, str]
    cwd: Path


@dataclass(frozen=True)
class Usage:
    """A program's own figures (wait4)."""

    cpu_s: float
    peak_rss_mb: float


@dataclass(frozen=True)
class PipelineRun:
    """Wall time of the whole pipeline, each program's figures, and the servers' CPU."""

    wall_s: float
    usage: dict[str, Usage]
    server_cpu_s: dict[str, float | None]


def _launch(
    step: Step, work: Path, stdin: int | None, stdout: int | None
) -> subprocess.Popen[bytes]:
    result = work / f"{step.name}.rusage.json"
    result.unlink(missing_ok=True)
    with (work / f"{step.name}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-I", "-S", str(LAUNCHER), str(result), *step.command],
            cwd=step.cwd,
            env=step.env,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=stdout if stdout is not None else subprocess.DEVNULL,
            stderr=log,
        )


def _usage(step: Step, work: Path) -> Usage:
    path = work / f"{step.name}.rusage.json"
    log = work / f"{step.name}.log"
    if not path.exists():
        raise BenchError(f"the launcher of the {step.name} wrote no figures; see {log}")
    figures = json.loads(path.read_text())
    if figures["exit_code"] != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-8:]
        raise BenchError(
            f"the {step.name} exited with {figures['exit_code']}; end of {log}:\n" + "\n".join(tail)
        )
    return Usage(figures["user_s"] + figures["sys_s"], figures["maxrss_kib"] / 1024)


def run_pipeline(
    steps: Sequence[Step],
    work: Path,
    servers: dict[str, Callable[[], float | None]],
    settle: Callable[[], None] = lambda: None,
) -> PipelineRun:
    """Run the steps joined by pipes (one step: alone); logs and figures go to `work`.

    `settle` runs after the last program ended, before the servers' CPU is read again.
    """
    work.mkdir(parents=True, exist_ok=True)
    before = {name: read() for name, read in servers.items()}
    started = time.perf_counter()
    processes: list[subprocess.Popen[bytes]] = []
    upstream: int | None = None
    try:
        for index, step in enumerate(steps):
            last = index == len(steps) - 1
            process = _launch(step, work, upstream, None if last else subprocess.PIPE)
            if upstream is not None:
                processes[-1].stdout.close()  # type: ignore[union-attr]  # only the reader keeps it
            upstream = None if last else process.stdout.fileno()  # type: ignore[union-attr]
            processes.append(process)
        for process in processes:
            process.wait()
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    wall = time.perf_counter() - started
    settle()
    after = {name: read() for name, read in servers.items()}
    server_cpu: dict[str, float | None] = {}
    for name in servers:
        first, last_value = before[name], after[name]
        server_cpu[name] = None if first is None or last_value is None else last_value - first
    for process, step in zip(processes, steps, strict=True):
        if process.returncode != 0:
            raise BenchError(f"the launcher of the {step.name} failed ({process.returncode})")
    return PipelineRun(wall, {step.name: _usage(step, work) for step in steps}, server_cpu)
