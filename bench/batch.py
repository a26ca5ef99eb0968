"""`python -m bench --batch`: the tap in RECORD mode against the tap writing BATCH files.

Both read the same ready export; the BATCH run has a `batch_config` (JSON Lines, gzip)
with its files under `bench/out/batch-files/`, counted and removed after each run. The
tap alone is measured; `python -m bench --e2e` measures the loaders too.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.fake import BenchError, FakeApi, ReadyExport
from bench.measure import Run, Summary, measure, summarize

VARIANTS = ("record", "batch")


def file_rows(root: Path) -> int:
    """Lines in every batch file under `root` (gzip or not): one record each."""
    rows = 0
    for path in sorted(root.iterdir()):
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as file:
            while block := file.read(1 << 20):
                rows += block.count(b"\n")
    return rows


def batch_config_file(config: Path, root: Path) -> Path:
    """The config at `config` with a batch_config writing gzip JSON Lines under `root`."""
    settings = json.loads(config.read_text(encoding="utf-8"))
    settings["batch_config"] = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": root.as_uri(), "prefix": "bench-"},
    }
    path = config.with_name(config.stem + "-batch.json")
    path.write_text(json.dumps(settings, indent=2), encoding="utf-8")
    return path


def measure_pair(
    fake: FakeApi,
    export: ReadyExport,
    mode: str,
    *,
    tap: list[str],
    config: Path,
    catalog: Path,
    args: argparse.Namespace,
    env: dict[str, str],
    problems_in: Callable[[Path], list[str]],
) -> tuple[dict[str, Summary], Counter[str]]:
    """RECORD and BATCH runs of the tap in one read mode, alternating, `repeat` times each.

    Also returns what `problems_in` finds in the logs of the runs.
    """
    root = args.out / "batch-files"
    configs = {"record": config, "batch": batch_config_file(config, root)}
    runs: dict[str, list[Run]] = {variant: [] for variant in VARIANTS}
    problems: Counter[str] = Counter()
    for attempt in range(1, args.repeat + 1):
        for variant in VARIANTS:
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            log = args.out / f"tap-{mode}-{variant}-{attempt}.log"
            command = [*tap, "--config", str(configs[variant]), "--catalog", str(catalog)]
            run = measure(
                command,
                log_path=log,
                cwd=args.out,
                env=env,
                server_cpu=fake.cpu_seconds,
                # Stdout holds only STATE and BATCH messages then: the files hold the rows.
                rows_from_log=(lambda _log: file_rows(root)) if variant == "batch" else None,
            )
            if variant == "record" and any(root.iterdir()):
                raise BenchError(f"the RECORD run wrote batch files; see {log}")
            if run.rows != export.total_rows:
                raise BenchError(
                    f"the tap ({mode}, {variant}) delivered {run.rows:,} rows; the export "
                    f"holds {export.total_rows:,}; see {log}"
                )
            fake.check_nothing_created(f"the tap ({mode}, {variant}, run {attempt})")
            problems.update(problems_in(log))
            runs[variant].append(run)
            print(
                f"  {mode} {variant} run {attempt}: {run.rows:,} rows, {run.wall_s:.2f} s wall, "
                f"{run.cpu_s:.2f} s CPU, {run.peak_rss_mb:.1f} MB peak RSS",
                file=sys.stderr,
                flush=True,
            )
    shutil.rmtree(root, ignore_errors=True)
    return {variant: summarize(figures) for variant, figures in runs.items()}, problems


def table(results: dict[str, dict[str, Summary]]) -> str:
    """Medians of RECORD and BATCH per read mode, and BATCH / RECORD."""
    lines = [f"{'mode / tap':<14}{'rows':>10}{'wall s':>8}{'CPU s':>7}{'CPU µs/row':>12}"]
    lines[0] += f"{'peak RSS MB':>13}"
    for mode, pair in results.items():
        for variant in VARIANTS:
            s = pair[variant]
            lines.append(
                f"{mode + ' ' + variant:<14}{s.rows:>10,}{s.wall_s:>8.2f}{s.cpu_s:>7.2f}"
                f"{s.cpu_us_per_row:>12.1f}{s.peak_rss_mb:>13.1f}"
            )
        record, batch = pair["record"], pair["batch"]
        lines.append(
            f"{mode + ' batch/record':<14}{'':>10}{batch.wall_s / record.wall_s:>7.2f}x{'':>7}"
            f"{batch.cpu_us_per_row / record.cpu_us_per_row:>11.2f}x"
            f"{batch.peak_rss_mb / record.peak_rss_mb:>12.2f}x"
        )
    return "\n".join(lines)


def write_json(path: Path, meta: dict[str, Any], results: dict[str, dict[str, Summary]]) -> None:
    """Every figure: medians, each run, and the setup."""
    document = {
        "meta": meta,
        "results": {
            mode: {variant: asdict(summary) for variant, summary in pair.items()}
            for mode, pair in results.items()
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
