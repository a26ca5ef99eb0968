"""What one shard costs: CPU and peak memory of its tap, its loader and Meltano.

    .venv/bin/python -m bench.shard                       # 2 feeds, 30 days, 1,000 rows a day
    .venv/bin/python -m bench.shard --feeds 4 --rows-per-day 2000 --json bench/out/shard.json

One `meltano run tap-contactbased target-postgres` of a shard that does not load the
organization streams (like shards 1 to N-1), its first run: every feed exports its whole
lookback window. The local API runs as a separate process with builds of a few seconds; the
PostgreSQL server is started from the installed binaries (as the end-to-end tests do) and
holds both Meltano's system database and the warehouse, with the project's target-postgres
settings. The processes under `meltano run` are sampled from /proc every 0.1 s: CPU is
user + system time at the last sample (so at most 0.1 s short per process), memory is the
kernel's high-water mark of resident memory (VmHWM), exact. docs/scaling.md has the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tap_contactbased.shards import Shard
from tests.e2e.meltano import MELTANO, base_env
from tests.e2e.postgres import PostgresServer
from tests.e2e.sharding import database_uri, machine

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "cbk_test_key"
TICKS = os.sysconf("SC_CLK_TCK")
ROLES = ("tap", "discovery", "loader", "meltano")


@dataclass
class Sample:
    """The last figures read for one process."""

    role: str
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0


@dataclass
class Figures:
    """What one shard's run cost."""

    feeds: int
    lookback_days: int
    rows_loaded: int
    wall_s: float
    tree_cpu_s: float  # wait4: meltano and every process it waited for
    cpu_s: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    api_cpu_s: float = 0.0
    warehouse_cpu_s: float = 0.0  # the PostgreSQL server (system database included)
    connections: dict[str, int] = field(default_factory=dict)  # most at once, by database


def role_of(cmdline: list[str]) -> str:
    """Which part of the pipeline a process is."""
    line = " ".join(cmdline)
    # Plugins run from their venvs under .meltano/; Meltano's own command line names them too.
    if "/extractors/tap-contactbased/" in line:
        return "discovery" if "--discover" in cmdline else "tap"
    if "/loaders/target-postgres/" in line:
        return "loader"
    return "meltano"


def read_process(pid: int) -> tuple[list[str], float, float] | None:
    """Command line, CPU seconds and peak RSS (MB) of a process; None once it is gone."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    cpu = (int(stat[11]) + int(stat[12])) / TICKS
    hwm = next((line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")), "0")
    return cmdline.split("\0"), cpu, int(hwm) / 1024


def descendants(root: int) -> list[int]:
    """Pids of every process below `root`, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def run_measured(
    command: list[str], cwd: Path, env: dict[str, str], log: Path, postmaster: int
) -> Figures:
    """Run `command`, sampling its process tree and the server's connections until it ends."""
    samples: dict[int, Sample] = {}
    connections: Counter[str] = Counter()
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=out)
    rusage = None
    while rusage is None:
        for pid in [process.pid, *descendants(process.pid)]:
            figures = read_process(pid)
            if figures is None:
                continue
            cmdline, cpu, rss = figures
            sample = samples.setdefault(pid, Sample(role_of(cmdline)))
            sample.cpu_s, sample.peak_rss_mb = cpu, max(sample.peak_rss_mb, rss)
        for database, count in backends(postmaster).items():
            connections[database] = max(connections[database], count)
        waited, status, usage = os.wait4(process.pid, os.WNOHANG)
        if waited:
            rusage = usage
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"bench.shard: meltano run failed; see {log}")
        else:
            time.sleep(0.1)  # a sampling period, not a synchronisation
    result = Figures(0, 0, 0, time.monotonic() - started, rusage.ru_utime + rusage.ru_stime)
    for role in ROLES:
        mine = [s for s in samples.values() if s.role == role]
        result.cpu_s[role] = round(sum(s.cpu_s for s in mine), 2)
        result.peak_rss_mb[role] = round(max((s.peak_rss_mb for s in mine), default=0.0), 1)
    result.connections = dict(connections)
    return result


def backends(postmaster: int) -> Counter[str]:
    """Client connections of a PostgreSQL server by database, from the backends' titles.

    A backend names itself `postgres: <user> <database> <host>(<port>) <state>`.
    """
    found: Counter[str] = Counter()
    for pid in descendants(postmaster):
        figures = read_process(pid)
        words = " ".join(figures[0]).split() if figures else []
        if len(words) >= 4 and words[0] == "postgres:" and "(" in words[3]:
            found[words[2]] += 1
    return found


def main(argv: list[str] | None = None) -> int:
    """Measure one shard's first run into PostgreSQL."""
    parser = argparse.ArgumentParser(prog="python -m bench.shard", description=__doc__)
    parser.add_argument("--feeds", type=int, default=2)
    parser.add_argument("--rows-per-day", type=int, default=1000)
    parser.add_argument("--lookback-days", type=int, default=30)
    parser.add_argument("--build-seconds", type=float, default=3.0)
    parser.add_argument(
        "--buffer-mib", type=int, help="Meltano's elt.buffer_size (default: Meltano's, 100 MiB)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-shard-"))
    api_log = (work / "api.log").open("w")
    api = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fake_api",
            "--feed-count",
            str(args.feeds),
            "--rows-per-day",
            str(args.rows_per_day),
            "--build-seconds",
            str(args.build_seconds),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=api_log,
        text=True,
    )
    server = PostgresServer().start()
    try:
        assert api.stdout is not None
        url = api.stdout.readline().strip()
        feeds = [str(f["feed_id"]) for f in _get(url, "/organization/feeds?page_size=200")]
        system = server.create_database("meltano_system")
        warehouse = server.create_database("warehouse")
        project = machine(work, "machine")
        env = base_env(database_uri(system))
        env.update(Shard(1, tuple(feeds)).env())
        env.update(
            TAP_CONTACTBASED_API_URL=url,
            TAP_CONTACTBASED_API_KEY=API_KEY,
            TAP_CONTACTBASED_LOOKBACK_DAYS=str(args.lookback_days),
            TAP_CONTACTBASED_POLL_INTERVAL_MAX_SECONDS="1",
            TARGET_POSTGRES_HOST=warehouse.host,
            TARGET_POSTGRES_PORT=str(warehouse.port),
            TARGET_POSTGRES_USER=warehouse.user,
            TARGET_POSTGRES_PASSWORD="trust",
            TARGET_POSTGRES_DATABASE=warehouse.database,
        )
        if args.buffer_mib is not None:
            env["MELTANO_ELT_BUFFER_SIZE"] = str(args.buffer_mib * 1024 * 1024)
        subprocess.run(
            [MELTANO, "upgrade", "database"], cwd=project, env=env, check=True, capture_output=True
        )
        api_cpu_before, server_cpu_before = _cpu(api.pid), _server_cpu(server)
        figures = run_measured(
            [MELTANO, "run", "tap-contactbased", "target-postgres"],
            project,
            env,
            work / "meltano-run.log",
            _postmaster(server),
        )
        figures.api_cpu_s = round(_cpu(api.pid) - api_cpu_before, 2)
        figures.warehouse_cpu_s = round(_server_cpu(server) - server_cpu_before, 2)
        with warehouse.connect() as connection:
            row = connection.execute("SELECT count(*) FROM contactbased.export_rows").fetchone()
        figures.feeds, figures.lookback_days = len(feeds), args.lookback_days
        figures.rows_loaded = int(str(row[0])) if row else 0
    finally:
        api.terminate()
        api.wait()
        api_log.close()
        server.stop()
    _report(figures)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(asdict(figures), indent=2) + "\n")
    return 0


def _get(url: str, path: str) -> list[dict[str, object]]:
    """The items of a JSON list of the API."""
    import requests  # noqa: PLC0415 (in the dev environment, like the rest of bench)

    response = requests.get(url + path, headers={"X-API-Key": API_KEY}, timeout=30)
    response.raise_for_status()
    items: list[dict[str, object]] = response.json()["items"]
    return items


def _cpu(pid: int) -> float:
    figures = read_process(pid)
    return figures[1] if figures else 0.0


def _postmaster(server: PostgresServer) -> int:
    return int((server.data_dir / "postmaster.pid").read_text().split()[0])


def _server_cpu(server: PostgresServer) -> float:
    """CPU seconds of the PostgreSQL server so far.

    The postmaster, its live backends, and the backends that ended (in its cutime, cstime).
    """
    postmaster = _postmaster(server)
    stat = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    total = sum(int(v) for v in stat[11:15]) / TICKS  # utime, stime, cutime, cstime
    return total + sum(_cpu(pid) for pid in descendants(postmaster))


def _report(f: Figures) -> None:
    rows = max(f.rows_loaded, 1)
    print(
        f"one shard: {f.feeds} feeds x {f.lookback_days} days, {f.rows_loaded:,} rows "
        f"loaded, {f.wall_s:.1f} s wall, {f.tree_cpu_s:.1f} s CPU in all "
        f"(the local API: {f.api_cpu_s:.1f} s more; the PostgreSQL server: "
        f"{f.warehouse_cpu_s:.1f} s more, {f.warehouse_cpu_s / rows * 1e6:.0f} us/row)"
    )
    print(f"{'process':<10} {'CPU s':>8} {'CPU us/row':>11} {'peak RSS MB':>12}")
    for role in ROLES:
        cpu = f.cpu_s[role]
        print(f"{role:<10} {cpu:>8.2f} {cpu / rows * 1e6:>11.1f} {f.peak_rss_mb[role]:>12.1f}")
    print(f"most connections at once, by database: {f.connections}")


if __name__ == "__main__":
    sys.exit(main())
