"""How long a run takes to give up on an API that died while an export was read.

`.venv/bin/python -m bench.dead_api [--mode csv|pages|both] [--tap-src DIR]` starts, for
each read mode, the local ContactBased API as a separate process with one ready export
(bench.fake), runs the tap on it (it reuses that export: nothing is created), and kills
the API (SIGKILL) as soon as the tap writes its first RECORD: the read is cut and every
later connection is refused. It prints, per mode: the wall seconds from the kill to the
tap's exit, the requests the tap sent after the kill (each needs a new connection, logged
by bench/count_connects.py; a request already under way on an open connection when the API
died is not among them), the tries the tap's last line reports, the exit status and that
line. The retry
settings are the tap's defaults (`retry_max_seconds` 120) unless `--retry-max-seconds` is
given, so a run takes a few minutes a mode.

A benchmark, not a test: it asserts nothing about time. It stops with
`dead_api: FAILED: ...` when its figures mean nothing: a tap that exits before the API is
killed, or one that goes on past `--limit` seconds.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench.__main__ import OUT, child_env, discover_catalog, tap_source
from bench.fake import ROOT, BenchError, FakeApi, tap_config

MODES = {"csv": ("csv",), "pages": ("pages",), "both": ("csv", "pages")}
CONNECTS = ROOT / "bench" / "count_connects.py"
ROWS = 50_000
PAGE_SIZE = 1_000  # many pages, so that the pages mode is killed between two of them
TRIES = re.compile(r"\b(\d+) tries? in ")


@dataclass(frozen=True)
class GiveUp:
    """How one run ended after its API died."""

    mode: str
    records_before_kill: int
    seconds_after_kill: float
    connects_after_kill: int
    refused: int
    exit_code: int
    last_line: str


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.dead_api", description=__doc__)
    parser.add_argument("--mode", choices=sorted(MODES), default="both")
    parser.add_argument(
        "--tap-src",
        type=Path,
        default=None,
        help="folder holding the tap_contactbased to measure (default: the work tree)",
    )
    parser.add_argument("--out", type=Path, default=OUT / "dead-api", help="work folder")
    parser.add_argument(
        "--retry-max-seconds",
        type=float,
        default=None,
        help="the tap's retry_max_seconds (default: not set, the tap's own default)",
    )
    parser.add_argument(
        "--limit", type=float, default=900.0, help="seconds after the kill before it stops"
    )
    args = parser.parse_args(argv)
    args.out = args.out.resolve()
    if args.tap_src is not None:
        args.tap_src = args.tap_src.resolve()
    return args


class Output:
    """The tap's stdout, drained on a thread; `first_record` is set at its first RECORD."""

    def __init__(self, stream: IO[str]) -> None:
        self.records = 0
        self.first_record = threading.Event()
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream: IO[str]) -> None:
        for line in stream:
            if line.startswith(('{"type":"RECORD"', '{"type": "RECORD"')):
                self.records += 1
                self.first_record.set()
        self.first_record.set()  # the tap ended: nothing more to wait for

    def join(self) -> None:
        self._thread.join(timeout=30)


def run_mode(mode: str, args: argparse.Namespace, folder: Path) -> GiveUp:
    """One run of the tap in `mode`, its API killed at its first RECORD."""
    with FakeApi(
        rows=ROWS, seed=7, log_path=folder / f"fake-{mode}.log", page_size=PAGE_SIZE
    ) as fake:
        export = fake.export
        assert export is not None
        config = folder / f"config-{mode}.json"
        settings = tap_config(fake.url, export, mode)
        if args.retry_max_seconds is not None:
            settings["retry_max_seconds"] = args.retry_max_seconds
        config.write_text(json.dumps(settings), encoding="utf-8")
        catalog = discover_catalog(folder, config, args.tap_src)
        connects = folder / f"connects-{mode}.log"
        connects.write_text("", encoding="utf-8")
        env = child_env(args.tap_src)
        command = [
            sys.executable,
            str(CONNECTS),
            str(connects),
            "tap_contactbased",
            "--config",
            str(config),
            "--catalog",
            str(catalog),
        ]
        with (folder / f"tap-{mode}.log").open("w", encoding="utf-8") as stderr:
            tap = subprocess.Popen(
                command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
            )
            assert tap.stdout is not None
            output = Output(tap.stdout)
            output.first_record.wait(timeout=300)
            if tap.poll() is not None or not output.records:
                tap.kill()
                raise BenchError(
                    f"the {mode} run ended before its API was killed; see {stderr.name}"
                )
            fake.kill()
            killed = time.monotonic()
            records = output.records
            try:
                exit_code = tap.wait(timeout=args.limit)
            except subprocess.TimeoutExpired:
                tap.kill()
                tap.wait()
                raise BenchError(
                    f"the {mode} run went on {args.limit:.0f} s after the kill"
                ) from None
            ended = time.monotonic()
            output.join()
    tried = [line.split() for line in connects.read_text(encoding="utf-8").splitlines()]
    after = [words for words in tried if float(words[0]) >= killed]
    lines = (folder / f"tap-{mode}.log").read_text(encoding="utf-8", errors="replace").splitlines()
    return GiveUp(
        mode=mode,
        records_before_kill=records,
        seconds_after_kill=ended - killed,
        connects_after_kill=len(after),
        refused=sum(1 for words in after if words[1] == "ConnectionRefusedError"),
        exit_code=exit_code,
        last_line=next((line for line in reversed(lines) if line.strip()), ""),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Measure each mode once and print the figures."""
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        source = tap_source(args.tap_src, args.out)
        print(f"Tap measured: {source}", file=sys.stderr, flush=True)
        results = []
        for mode in MODES[args.mode]:
            print(
                f"{mode}: reading, the API killed at the first RECORD...",
                file=sys.stderr,
                flush=True,
            )
            results.append(run_mode(mode, args, args.out))
    except BenchError as exc:
        print(f"dead_api: FAILED: {exc}", file=sys.stderr)
        return 1
    header = ("mode", "records", "give-up s", "connects", "refused", "tries", "exit")
    print("{:<6} {:>8} {:>10} {:>9} {:>8} {:>6} {:>5}".format(*header))
    for r in results:
        tries = TRIES.search(r.last_line)
        print(
            f"{r.mode:<6} {r.records_before_kill:>8,} {r.seconds_after_kill:>10.1f} "
            f"{r.connects_after_kill:>9} {r.refused:>8} {tries[1] if tries else '?':>6} "
            f"{r.exit_code:>5}"
        )
    print("records: written before the kill; give-up s: wall seconds from the kill to the")
    print("tap's exit; connects: connections tried after the kill (refused: of them refused);")
    print("tries: what the tap's last line says")
    for r in results:
        print(f"{r.mode} last line: {r.last_line[-300:]}")
    print(f"logs in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
