"""Export rows: the tap against a minimal hand-written client, on one ready export.

`.venv/bin/python -m bench --rows 200000 [--mode csv|pages|both] [--repeat 3] [--json F]`
starts the local ContactBased API with one ready export of about ROWS rows (30 days, 25
columns, two of them bundle JSON), then runs, one after the other and REPEAT times each,
the tap syncing export_rows and bench/handwritten.py, and prints the medians: rows, wall
time, CPU time and peak RSS of the program itself (not of the API), and the tap/client
ratios. `--profile` instead runs the tap once under cProfile (csv mode) and prints its top
functions; `--batch` compares the tap in RECORD mode with the tap writing BATCH files
(bench/batch.py), or with `--profile` profiles the tap writing them. `--e2e` instead loads
the export into PostgreSQL and DuckDB by each path and compares them with a hand COPY of its
CSV (bench/e2e.py). See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import batch, e2e
from bench.e2e import VARIANTS
from bench.fake import (
    API_KEY,
    LOOKBACK_DAYS,
    PAGE_SIZE,
    ROOT,
    BenchError,
    FakeApi,
    ReadyExport,
    rows_per_day,
    tap_config,
)
from bench.measure import (
    UNSET_FOR_CHILDREN,
    Run,
    Summary,
    measure,
    report_progress,
    summarize,
)
from bench.profiling import profile_command, top_functions
from bench.report import table, write_json

OUT = ROOT / "bench" / "out"
MODES = {"csv": ("csv",), "pages": ("pages",), "both": ("csv", "pages")}
_LOG_PROBLEM = re.compile(r"\|\s*(WARNING|ERROR|CRITICAL)\s*\|\s*(\S+)\s*\|\s*(.*)")
_TAP_COUNT = re.compile(r'"metric":"record_count","value":(\d+),"tags":\{"stream":"export_rows"')
_CLIENT_COUNT = re.compile(r"^handwritten: (\d+) records$", re.MULTILINE)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the export (about)")
    parser.add_argument("--mode", choices=sorted(MODES), default=None, help="default: both")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each program (median)")
    parser.add_argument(
        "--e2e",
        action="store_true",
        help="end to end instead: the export into PostgreSQL and DuckDB by each path,\n"
        "against a hand COPY of its CSV (bench/README.md)",
    )
    parser.add_argument(
        "--variants",
        type=lambda text: tuple(v for v in text.split(",") if v),
        default=VARIANTS,
        help=f"with --e2e: which paths, comma-separated (default {','.join(VARIANTS)})",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the fake API's data")
    parser.add_argument(
        "--page-size",
        type=int,
        default=PAGE_SIZE,
        help="rows per page of the export (1,000 to 50,000)",
    )
    parser.add_argument(
        "--stdout",
        choices=["pipe", "devnull"],
        default="pipe",
        help="pipe: count RECORD lines in the benchmark (default); devnull: discard them\n"
        "and take the counts the programs log",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the tap once under cProfile instead (csv unless --mode pages)",
    )
    parser.add_argument(
        "--tap-src",
        type=Path,
        default=None,
        help="folder holding the tap_contactbased to measure, e.g. one exported with\n"
        "`git archive HEAD tap_contactbased | tar -x -C DIR` (default: the work tree)",
    )
    parser.add_argument(
        "--profile-clock",
        choices=["cpu", "wall"],
        default="cpu",
        help="cpu: each thread's CPU time (default); wall: elapsed time, waits included",
    )
    parser.add_argument("--top", type=int, default=30, help="functions listed by --profile")
    parser.add_argument("--out", type=Path, default=OUT, help="work folder (configs, logs)")
    parser.add_argument(
        "--batch",
        action="store_true",
        help="the tap in RECORD mode against the tap writing BATCH files (gzip JSON Lines),\n"
        "instead of the tap against the client (csv unless --mode); with --profile, profile\n"
        "the tap writing BATCH files",
    )
    parser.add_argument(
        "--batch-compression",
        choices=("gzip", "none"),
        default="gzip",
        help="with --batch: the compression of the BATCH files (default gzip)",
    )
    args = parser.parse_args(argv)
    args.out = args.out.resolve()
    if args.tap_src is not None:
        args.tap_src = args.tap_src.resolve()
    if args.rows < 1 or args.repeat < 1:
        parser.error("--rows and --repeat must be at least 1")
    unknown = set(args.variants) - set(VARIANTS)
    if unknown or not args.variants:
        parser.error(f"--variants: choose among {', '.join(VARIANTS)} (not {sorted(unknown)})")
    return args


def tap_executable() -> str:
    """The tap's console script of the interpreter that runs the benchmark."""
    beside = Path(sys.executable).with_name("tap-contactbased")
    found = str(beside) if beside.exists() else shutil.which("tap-contactbased")
    if found is None:
        raise BenchError("tap-contactbased is not installed; run `uv sync` first")
    return found


def child_env(tap_src: Path | None = None) -> dict[str, str]:
    """The environment of the measured programs: this one, less what skews them."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET_FOR_CHILDREN}
    env["CONTACTBASED_API_KEY"] = API_KEY
    if tap_src is not None:
        # Ahead of the editable install's path, so this copy of the package is the one run.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tap_src), env.get("PYTHONPATH")]))
    return env


def tap_source(tap_src: Path | None, out: Path) -> dict[str, Any]:
    """Which tap the figures are about: its folder, the commit, uncommitted changes."""
    folder = (tap_src or ROOT).resolve()
    package = folder / "tap_contactbased"
    if not package.is_dir():
        raise BenchError(f"{folder} holds no tap_contactbased package")

    def git(*words: str) -> str:
        answer = subprocess.run(["git", *words], cwd=ROOT, capture_output=True, check=False)
        return answer.stdout.decode(errors="replace").strip()

    # The tap runs in the work folder: `python -m` would put the current folder first.
    probe = subprocess.run(
        [sys.executable, "-c", "import tap_contactbased; print(tap_contactbased.__file__)"],
        cwd=out,
        env=child_env(tap_src),
        capture_output=True,
        check=True,
    )
    imported = Path(probe.stdout.decode().strip()).resolve()
    if imported.parent != package.resolve():
        raise BenchError(f"the tap would be imported from {imported}, not from {package}")
    source: dict[str, Any] = {"package": str(package), "repo_commit": git("rev-parse", "HEAD")}
    if tap_src is None:
        changed = git("status", "--porcelain", "--", "tap_contactbased").splitlines()
        source["uncommitted_changes"] = [line.strip() for line in changed]
    return source


def logged_count(pattern: re.Pattern[str]) -> Callable[[Path], int]:
    """Read a program's own row count from its log (for --stdout devnull)."""

    def count(log: Path) -> int:
        found = pattern.findall(log.read_text(errors="replace"))
        if not found:
            raise BenchError(f"no row count in {log}")
        return sum(int(value) for value in found)

    return count


def write_config(out: Path, fake: FakeApi, export: ReadyExport, mode: str) -> Path:
    """A tap config that reads the ready export in `mode` and emits all its rows."""
    config = tap_config(fake.url, export, mode)
    path = out / f"config-{mode}.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def discover_catalog(out: Path, config: Path, tap_src: Path | None) -> Path:
    """Discover the catalog and select export_rows only."""
    answer = subprocess.run(
        [tap_executable(), "--config", str(config), "--discover"],
        cwd=out,
        env=child_env(tap_src),
        capture_output=True,
        check=False,
    )
    if answer.returncode != 0:
        raise BenchError(f"discovery failed:\n{answer.stderr.decode(errors='replace')[-2000:]}")
    catalog = json.loads(answer.stdout)
    names = []
    for stream in catalog["streams"]:
        names.append(stream["tap_stream_id"])
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = stream["tap_stream_id"] == "export_rows"
    if "export_rows" not in names:
        raise BenchError(f"the catalog has no export_rows stream: {names}")
    path = out / "catalog.json"
    path.write_text(json.dumps(catalog, indent=2), encoding="utf-8")
    return path


def warm_up() -> None:
    """Import the client once, untimed, so that its first run finds the bytecode cache.

    Discovery did the same for the tap.
    """
    command = [sys.executable, "-m", "bench.handwritten", "--help"]
    subprocess.run(command, cwd=ROOT, env=child_env(), capture_output=True, check=True)


def tap_problems(log: Path, export: ReadyExport) -> list[str]:
    """Warnings and errors the tap logged; fails when it did not reuse the ready export."""
    text = log.read_text(errors="replace")
    if f"Reusing export {export.export_id}" not in text:
        raise BenchError(f"the tap did not say it reused {export.export_id}; see {log}")
    return [
        f"{match.group(1)} {match.group(2)}: {match.group(3).strip()}"
        for match in map(_LOG_PROBLEM.search, text.splitlines())
        if match
    ]


def check_rows(program: str, run: Run, export: ReadyExport) -> None:
    """Fail loudly when a program did not emit every row of the export."""
    if run.rows != export.total_rows:
        raise BenchError(
            f"{program} emitted {run.rows:,} records; the export holds {export.total_rows:,}"
        )


def run_mode(
    fake: FakeApi, export: ReadyExport, mode: str, catalog: Path, args: argparse.Namespace
) -> tuple[dict[str, Summary], Counter[str]]:
    """Measure the tap and the client in one read mode, `repeat` times each, alternating."""
    config = write_config(args.out, fake, export, mode)
    tap = [tap_executable(), "--config", str(config), "--catalog", str(catalog)]
    client = [
        sys.executable,
        "-m",
        "bench.handwritten",
        "--api-url",
        fake.url,
        "--export-id",
        export.export_id,
        "--mode",
        mode,
    ]
    envs = {"tap": child_env(args.tap_src), "client": child_env()}
    cwds = {"tap": args.out, "client": ROOT}  # the client runs as `python -m bench...`
    counts = {"tap": logged_count(_TAP_COUNT), "client": logged_count(_CLIENT_COUNT)}
    runs: dict[str, list[Run]] = {"tap": [], "client": []}
    problems: Counter[str] = Counter()
    for attempt in range(1, args.repeat + 1):
        for program, command in (("tap", tap), ("client", client)):
            log = args.out / f"{program}-{mode}-{attempt}.log"
            run = measure(
                command,
                log_path=log,
                cwd=cwds[program],
                env=envs[program],
                server_cpu=fake.cpu_seconds,
                rows_from_log=counts[program] if args.stdout == "devnull" else None,
            )
            check_rows(program, run, export)
            fake.check_nothing_created(f"the {program} ({mode}, run {attempt})")
            if program == "tap":
                problems.update(tap_problems(log, export))
            runs[program].append(run)
            report_progress(mode, program, attempt, run)
    return {program: summarize(figures) for program, figures in runs.items()}, problems


def run_profile(
    fake: FakeApi, export: ReadyExport, mode: str, catalog: Path, args: argparse.Namespace
) -> None:
    """Run the tap once under cProfile and print its top functions (BATCH with --batch)."""
    out = args.out
    config = write_config(out, fake, export, mode)
    variant = f"{mode}-batch" if args.batch else mode
    rows_from_log = logged_count(_TAP_COUNT)
    if args.batch:
        root = batch.empty_files_root(out)
        config = batch.batch_config_file(config, root, args.batch_compression)
        rows_from_log = batch.rows_in_files(root)
    prof = out / f"tap-{variant}.prof"
    tap_args = ["--config", str(config), "--catalog", str(catalog)]
    command = profile_command(prof, args.profile_clock, tap_args)
    log = out / f"tap-{variant}-profile.log"
    # Stdout goes to /dev/null: with the wall clock, time blocked on a pipe that the
    # benchmark has not read yet would show up as the tap's.
    run = measure(
        command,
        log_path=log,
        cwd=out,
        env=child_env(args.tap_src),
        server_cpu=fake.cpu_seconds,
        rows_from_log=rows_from_log,
    )
    check_rows("the profiled tap", run, export)
    fake.check_nothing_created("the profiled tap")
    text = top_functions(prof, run.rows, clock=args.profile_clock, limit=args.top)
    (out / f"tap-{variant}-profile.txt").write_text(text + "\n", encoding="utf-8")
    print(text)
    print(
        f"\nprofiled run: {run.wall_s:.2f} s wall, {run.cpu_s:.2f} s CPU; "
        f"pstats file {prof} (e.g. `python -m pstats {prof}`)"
    )


def run_batch(
    fake: FakeApi,
    export: ReadyExport,
    catalog: Path,
    args: argparse.Namespace,
    *,
    modes: tuple[str, ...],
    source: dict[str, Any],
) -> int:
    """Measure the tap in RECORD and in BATCH mode and print the medians."""
    results: dict[str, dict[str, Summary]] = {}
    gzip_costs: dict[str, float | None] = {}
    problems: Counter[str] = Counter()
    for mode in modes:
        config = write_config(args.out, fake, export, mode)
        results[mode], found, gzip_costs[mode] = batch.measure_pair(
            fake,
            export,
            mode,
            tap=[tap_executable()],
            config=config,
            catalog=catalog,
            args=args,
            env=child_env(args.tap_src),
            problems_in=lambda log: tap_problems(log, export),
        )
        problems.update(found)
    print(batch.table(results, gzip_costs))
    if problems:
        print("\nThe tap logged:\n" + "\n".join(f"  {n}x {text}" for text, n in problems.items()))
    if args.json is not None:
        meta = {
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "export_rows": export.total_rows,
            "page_size": export.page_size,
            "repeat": args.repeat,
            "seed": args.seed,
            "tap": source,
            "batch_compression": args.batch_compression,
            "figures": "medians; CPU and peak RSS are the tap's own (wait4)",
        }
        batch.write_json(args.json, meta, results, gzip_costs)
        print(f"\nwrote {args.json}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or the profile)."""
    args = parse_args(argv)
    if args.e2e:
        return e2e.main(args)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        source = tap_source(args.tap_src, args.out)
    except BenchError as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"Tap measured: {source}", file=sys.stderr, flush=True)
    if args.profile or args.batch:
        modes: tuple[str, ...] = MODES[args.mode or "csv"]
    else:
        modes = MODES[args.mode or "both"]
    print(
        f"Starting the local API: {args.rows:,} rows asked, {rows_per_day(args.rows):,} "
        f"rows a day for {LOOKBACK_DAYS} days (seed {args.seed})...",
        file=sys.stderr,
        flush=True,
    )
    try:
        with FakeApi(
            rows=args.rows, seed=args.seed, log_path=args.out / "fake.log", page_size=args.page_size
        ) as fake:
            export = fake.export
            assert export is not None
            print(
                f"Ready export {export.export_id}: {export.total_rows:,} rows, "
                f"{len(export.columns)} columns, {export.total_pages} pages of "
                f"{export.page_size:,}",
                file=sys.stderr,
                flush=True,
            )
            config = write_config(args.out, fake, export, modes[0])
            catalog = discover_catalog(args.out, config, args.tap_src)
            fake.check_nothing_created("discovery")
            warm_up()
            if args.profile:
                run_profile(fake, export, modes[0], catalog, args)
                return 0
            if args.batch:
                return run_batch(fake, export, catalog, args, modes=modes, source=source)
            results: dict[str, dict[str, Summary]] = {}
            problems: Counter[str] = Counter()
            for mode in modes:
                results[mode], found = run_mode(fake, export, mode, catalog, args)
                problems.update(found)
    except BenchError as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        return 1
    print(table(results))
    warnings = [f"{count}x {text}" for text, count in problems.most_common()]
    if warnings:
        print("\nThe tap logged:\n" + "\n".join(f"  {line}" for line in warnings))
    if args.json is not None:
        meta: dict[str, Any] = {
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "rows_asked": args.rows,
            "export_rows": export.total_rows,
            "rows_per_day": rows_per_day(args.rows),
            "days": LOOKBACK_DAYS,
            "columns": list(export.columns),
            "page_size": export.page_size,
            "total_pages": export.total_pages,
            "repeat": args.repeat,
            "seed": args.seed,
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "tap": source,
            "stdout": args.stdout,
            "unset_for_children": list(UNSET_FOR_CHILDREN),
            "figures": "medians; CPU and peak RSS are the measured program's own (wait4)",
        }
        write_json(args.json, meta, results, warnings)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
