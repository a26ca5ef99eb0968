"""`python -m bench --batch`: the tap in RECORD mode against the tap writing BATCH files.

Both read the same ready export; the BATCH run has a `batch_config` (JSON Lines, gzip
unless `--batch-compression none`) with its files under `bench/out/batch-files/`, counted
and removed after each run. The tap alone is measured; `python -m bench --e2e` measures the
loaders too. With gzip, the files of the last run are also compressed again here, as the
tap compresses them, to show what gzip alone costs a row.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from isal import isal_zlib

from bench.fake import BenchError, FakeApi, ReadyExport
from bench.measure import Run, Summary, measure, report_progress, summarize
from tap_contactbased import batch_files

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


def empty_files_root(out: Path) -> Path:
    """The folder under `out` that BATCH runs write their files into, emptied."""
    root = out / "batch-files"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    return root


def rows_in_files(root: Path) -> Callable[[Path], int]:
    """A row count for `measure`: the lines of the batch files under `root`."""
    return lambda _log: file_rows(root)


def gzip_cost_us_per_row(root: Path, rows: int) -> float:
    """CPU µs a row that compressing the rows of the files under `root` costs.

    The files are read back and compressed again exactly as the tap compresses them (ISA-L
    at its level, in its blocks); only the compression is timed.
    """
    cpu = 0.0
    for path in sorted(root.glob("*.gz")):
        data = gzip.decompress(path.read_bytes())
        compressor = isal_zlib.compressobj(batch_files.GZIP_LEVEL, isal_zlib.DEFLATED, 31)
        start = resource.getrusage(resource.RUSAGE_SELF)
        for offset in range(0, len(data), batch_files.BLOCK_BYTES):
            compressor.compress(data[offset : offset + batch_files.BLOCK_BYTES])
        compressor.flush()
        end = resource.getrusage(resource.RUSAGE_SELF)
        cpu += (end.ru_utime - start.ru_utime) + (end.ru_stime - start.ru_stime)
    return cpu / rows * 1e6


def batch_config_file(config: Path, root: Path, compression: str = "gzip") -> Path:
    """The config at `config` with a batch_config writing JSON Lines under `root`."""
    settings = json.loads(config.read_text(encoding="utf-8"))
    settings["batch_config"] = {
        "encoding": {"format": "jsonl", "compression": compression},
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
) -> tuple[dict[str, Summary], Counter[str], float | None]:
    """RECORD and BATCH runs of the tap in one read mode, alternating, `repeat` times each.

    Also returns what `problems_in` finds in the logs of the runs, and the CPU µs a row that
    gzip alone costs (None without gzip).
    """
    root = empty_files_root(args.out)
    configs = {"record": config, "batch": batch_config_file(config, root, args.batch_compression)}
    runs: dict[str, list[Run]] = {variant: [] for variant in VARIANTS}
    problems: Counter[str] = Counter()
    for attempt in range(1, args.repeat + 1):
        for variant in VARIANTS:
            empty_files_root(args.out)
            log = args.out / f"tap-{mode}-{variant}-{attempt}.log"
            command = [*tap, "--config", str(configs[variant]), "--catalog", str(catalog)]
            run = measure(
                command,
                log_path=log,
                cwd=args.out,
                env=env,
                server_cpu=fake.cpu_seconds,
                # Stdout holds only STATE and BATCH messages then: the files hold the rows.
                rows_from_log=rows_in_files(root) if variant == "batch" else None,
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
            report_progress(mode, variant, attempt, run)
    gzip_cost = gzip_cost_us_per_row(root, export.total_rows) if any(root.glob("*.gz")) else None
    shutil.rmtree(root, ignore_errors=True)
    summaries = {variant: summarize(figures) for variant, figures in runs.items()}
    return summaries, problems, gzip_cost


def table(results: dict[str, dict[str, Summary]], gzip_costs: dict[str, float | None]) -> str:
    """RECORD and BATCH per read mode, their ratios, and gzip's own cost.

    Medians, and the least CPU a run took.
    """
    lines = [
        f"{'mode / tap':<14}{'rows':>10}{'wall s':>8}{'CPU s':>7}{'CPU µs/row':>12}"
        f"{'min µs/row':>12}{'peak RSS MB':>13}"
    ]
    for mode, pair in results.items():
        for variant in VARIANTS:
            s = pair[variant]
            lines.append(
                f"{mode + ' ' + variant:<14}{s.rows:>10,}{s.wall_s:>8.2f}{s.cpu_s:>7.2f}"
                f"{s.cpu_us_per_row:>12.1f}{s.min_cpu_us_per_row:>12.1f}{s.peak_rss_mb:>13.1f}"
            )
        record, batch = pair["record"], pair["batch"]
        lines.append(
            f"{mode + ' batch/record':<14}{'':>10}{batch.wall_s / record.wall_s:>7.2f}x{'':>7}"
            f"{batch.cpu_us_per_row / record.cpu_us_per_row:>11.2f}x"
            f"{batch.min_cpu_us_per_row / record.min_cpu_us_per_row:>11.2f}x"
            f"{batch.peak_rss_mb / record.peak_rss_mb:>12.2f}x"
        )
        if (gzip_cost := gzip_costs.get(mode)) is not None:
            lines.append(f"{mode + ' gzip alone':<14}{'':>25}{gzip_cost:>12.1f}")
    return "\n".join(lines)


def write_json(
    path: Path,
    meta: dict[str, Any],
    results: dict[str, dict[str, Summary]],
    gzip_costs: dict[str, float | None],
) -> None:
    """Every figure: medians, each run, gzip's own cost per row, and the setup."""
    document = {
        "meta": meta,
        "gzip_alone_cpu_us_per_row": gzip_costs,
        "results": {
            mode: {variant: asdict(summary) for variant, summary in pair.items()}
            for mode, pair in results.items()
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
