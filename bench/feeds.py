"""Wall time of a run against the number of feeds, with a fixed build time per export.

`.venv/bin/python -m bench.feeds [--feeds 1 4 8] [--build-seconds 6] [--baseline-src DIR]`

For each feed count N the tap runs twice against a fresh local API whose exports take
BUILD seconds to build: first to create and read N exports ("run"), then again on the same
API without a state, which finds the N exports ready and only reads them ("reads"). The
figure that matters is `(run - reads) / BUILD`: how many build times the run waited. One
export at a time waits N; all at once waits one. `--baseline-src` measures another copy of
the tap the same way, e.g. the release before the export orchestration:

    git archive e4d3f3c tap_contactbased | tar -x -C /tmp/base
    uv pip install --target /tmp/base "ijson~=3.3"   # what that release imports
    .venv/bin/python -m bench.feeds --baseline-src /tmp/base

`max_concurrent_exports` is set to N so that every feed can build at once (its default is 4).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.fake import API_KEY, ROOT, BenchError
from tests.fake_api import FakeContactBased

LOOKBACK_DAYS = 7
PAGE_SIZE = 10_000
ROWS_PER_DAY = (1_500, 2_500)


@dataclass(frozen=True)
class Figures:
    """One tap at one feed count."""

    tap: str
    feeds: int
    rows: int
    run_s: float
    reads_s: float
    build_s: float

    @property
    def builds_waited(self) -> float:
        """Build times the run spent waiting beyond reading."""
        return (self.run_s - self.reads_s) / self.build_s

    @property
    def target_met(self) -> bool:
        """Within one build time plus the reads, plus 20%."""
        return self.run_s <= 1.2 * (self.build_s + self.reads_s)


def export_rows_catalog(src: Path, config_path: Path, workdir: Path) -> Path:
    """The catalog that tap discovers, with export_rows alone selected."""
    discovered = subprocess.run(
        [sys.executable, "-m", "tap_contactbased", "--config", str(config_path), "--discover"],
        cwd=src,
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True,
        check=True,
    )
    catalog = json.loads(discovered.stdout)
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] == "export_rows"
    path = workdir / "catalog.json"
    path.write_text(json.dumps(catalog))
    return path


def run_tap(src: Path, config: dict[str, object], workdir: Path) -> tuple[float, int]:
    """Sync export_rows once; its wall time and the rows it emitted."""
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config))
    catalog_path = export_rows_catalog(src, config_path, workdir)
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, "-m", "tap_contactbased", "--config", str(config_path)]
    started = time.perf_counter()
    completed = subprocess.run(
        [*command, "--catalog", str(catalog_path)],
        cwd=src,
        env=env,
        capture_output=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        tail = completed.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise BenchError(f"the tap of {src} failed: {tail}")
    rows = completed.stdout.count(b'"type":"RECORD"') + completed.stdout.count(b'"type": "RECORD"')
    return wall, rows


def measure(name: str, src: Path, feeds: int, build_seconds: float, workdir: Path) -> Figures:
    """Both runs of one tap at one feed count, each against the same fresh API."""
    with FakeContactBased(
        api_key=API_KEY, feed_count=feeds, build_seconds=build_seconds, rows_per_day=ROWS_PER_DAY
    ) as api:
        config: dict[str, object] = {
            "api_key": API_KEY,
            "api_url": api.url,
            "feed_ids": api.feed_ids,
            "lookback_days": LOOKBACK_DAYS,
            "page_size": PAGE_SIZE,
            "read_mode": "csv",
            "max_concurrent_exports": feeds,
            "poll_interval_max_seconds": 1,
        }
        run_s, rows = run_tap(src, config, workdir)
        created = len(api.created_exports)
        reads_s, read_again = run_tap(src, config, workdir)
        if created != feeds or len(api.created_exports) != feeds or read_again != rows:
            raise BenchError(
                f"{name} at {feeds} feeds: {created} exports created by the run, "
                f"{len(api.created_exports)} after the reads; rows {rows} then {read_again}"
            )
    return Figures(name, feeds, rows, run_s, reads_s, build_seconds)


def table(figures: Sequence[Figures]) -> str:
    """The figures, one line per tap and feed count."""
    header = ("tap", "feeds", "rows", "run s", "reads s", "builds waited", "<= 1 build+20%")
    lines = [header]
    for f in figures:
        lines.append(
            (
                f.tap,
                str(f.feeds),
                f"{f.rows:,}",
                f"{f.run_s:.1f}",
                f"{f.reads_s:.1f}",
                f"{f.builds_waited:.2f}",
                "yes" if f.target_met else "no",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print."""
    parser = argparse.ArgumentParser(prog="python -m bench.feeds", description=__doc__)
    parser.add_argument("--feeds", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--build-seconds", type=float, default=6.0)
    parser.add_argument("--baseline-src", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    taps = [("this tree", ROOT)]
    if args.baseline_src is not None:
        taps.insert(0, ("baseline", args.baseline_src.resolve()))
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for feeds in args.feeds:
            for name, src in taps:
                figures.append(measure(name, src, feeds, args.build_seconds, Path(tmp)))
                print(table(figures[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(f"build time per export: {args.build_seconds:g} s")
    print(table(figures))
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(f) for f in figures], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
