"""`python -m bench --e2e`: one ready export into warehouses, by each path, against COPY.

Starts the local API (one ready export of about --rows rows, as `python -m bench` does) and
a throwaway PostgreSQL server, then runs each variant --repeat times, interleaved, and
prints the medians. The tap and the loaders are the plugin executables `meltano install`
put in .meltano/, with the configs Meltano gives them (`meltano invoke --dump=config`) and
the catalog Meltano selects (`--dump=catalog`): what `meltano run` starts, joined by a pipe
instead of Meltano's relay, so that each program's CPU and memory are its own. The
`meltano` variant runs `meltano run` itself. bench/README.md explains the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bench.e2e_report import notes, summarize, table, write_report
from bench.fake import API_KEY, ROOT, BenchError, FakeApi, ReadyExport, tap_config
from bench.landed import Landed, from_csv, from_duckdb, from_postgres
from bench.measure import UNSET_FOR_CHILDREN
from bench.pgserver import BenchPostgres
from bench.pipeline import PipelineRun, Step, run_pipeline
from tests.e2e.meltano import MELTANO, base_env, stale_plugins
from tests.e2e.postgres import ConnectionInfo

VARIANTS = ("floor", "shipped", "before", "batch", "duckdb", "duckdb-before", "meltano")
# target-postgres 0.8.1's own defaults, as on main before the volume settings; the SDK's
# batch of 10,000 rows is what it uses when batch_size_rows is not set.
BEFORE = {
    "TARGET_POSTGRES_USE_COPY": "false",
    "TARGET_POSTGRES_VALIDATE_RECORDS": "true",
    "TARGET_POSTGRES_BATCH_SIZE_ROWS": "10000",
}
DUCKDB_BEFORE = {"TARGET_DUCKDB_BATCH_SIZE_ROWS": "100000"}  # target-duckdb 0.8.0's default
BATCH_CONFIG = {"encoding": {"format": "jsonl", "compression": "gzip"}}
OVERRIDABLE = ("TARGET_POSTGRES_", "TARGET_DUCKDB_")
PG_PASSWORD = "trust-auth-ignores-it"


def plugin_executable(kind: str, name: str) -> str:
    """A plugin's executable in .meltano/, as `meltano install` put it."""
    path = ROOT / ".meltano" / kind / name / "venv" / "bin" / name
    if not path.exists():
        raise BenchError(f"{path} is missing: run scripts/setup")
    return str(path)


def tap_settings(fake: FakeApi, export: ReadyExport) -> dict[str, str]:
    """TAP_CONTACTBASED_* variables that make the tap read the ready export (and reuse it)."""
    values = tap_config(fake.url, export, "csv")
    env = {
        f"TAP_CONTACTBASED_{name.upper()}": value if isinstance(value, str) else json.dumps(value)
        for name, value in values.items()
    }
    env["TAP_CONTACTBASED__SELECT"] = json.dumps(["export_rows.*"])
    return env


def postgres_settings(info: ConnectionInfo) -> dict[str, str]:
    """TARGET_POSTGRES_* variables for one database."""
    return {
        "TARGET_POSTGRES_HOST": info.host,
        "TARGET_POSTGRES_PORT": str(info.port),
        "TARGET_POSTGRES_USER": info.user,
        "TARGET_POSTGRES_PASSWORD": PG_PASSWORD,
        "TARGET_POSTGRES_DATABASE": info.database,
    }


@dataclass
class Setup:
    """Everything the runs share."""

    out: Path
    fake: FakeApi
    export: ReadyExport
    postgres: BenchPostgres
    plugin_env: dict[str, str]
    tap_env: dict[str, str]
    meltano_env: dict[str, str]
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    catalog: Path | None = None

    def meltano(self, *args: str, extra: dict[str, str] | None = None) -> str:
        """A Meltano command on the project (untimed); its stdout."""
        answer = subprocess.run(
            [MELTANO, *args],
            cwd=ROOT,
            env={**self.meltano_env, **(extra or {})},
            capture_output=True,
            check=False,
        )
        if answer.returncode != 0:
            tail = answer.stderr.decode(errors="replace")[-3000:]
            raise BenchError(f"meltano {' '.join(args)} failed:\n{tail}")
        return answer.stdout.decode()

    def dump(self, plugin: str, what: str = "config", **extra: str) -> dict[str, Any]:
        """What Meltano hands a plugin: `meltano invoke --dump=config|catalog`."""
        parsed: dict[str, Any] = json.loads(
            self.meltano("invoke", f"--dump={what}", plugin, extra=extra)
        )
        return parsed


def loader_overrides() -> dict[str, str]:
    """TARGET_POSTGRES_* and TARGET_DUCKDB_* variables of this shell, for the shipped variants.

    Meltano would apply them over meltano.yml the same way: a setting can be measured before
    it is shipped.
    """
    return {k: v for k, v in os.environ.items() if k.startswith(OVERRIDABLE)}


def prepare(setup: Setup) -> None:
    """Dump the configs and the catalog Meltano would use, once."""
    probe = ConnectionInfo("127.0.0.1", 1, "postgres", "unused")
    pg = postgres_settings(probe)
    setup.configs["tap"] = setup.dump("tap-contactbased")
    shipped = loader_overrides()
    setup.configs["shipped"] = setup.dump("target-postgres", **shipped, **pg)
    setup.configs["before"] = setup.dump("target-postgres", **pg, **BEFORE)
    setup.configs["duckdb"] = setup.dump("target-duckdb", **shipped)
    setup.configs["duckdb-before"] = setup.dump("target-duckdb", **DUCKDB_BEFORE)
    catalog = setup.dump("tap-contactbased", "catalog")
    selected = [
        s["tap_stream_id"]
        for s in catalog["streams"]
        if any(m["breadcrumb"] == [] and m["metadata"].get("selected") for m in s["metadata"])
    ]
    if selected != ["export_rows"]:
        raise BenchError(f"Meltano's catalog selects {selected}, not export_rows alone")
    setup.catalog = setup.out / "catalog.json"
    setup.catalog.write_text(json.dumps(catalog), encoding="utf-8")


def warm_up(setup: Setup) -> None:
    """Start each program once, untimed, so that no timed run pays for a cold cache."""
    for kind, name, env in (
        ("extractors", "tap-contactbased", setup.tap_env),
        ("loaders", "target-postgres", setup.plugin_env),
        ("loaders", "target-duckdb", setup.plugin_env),
    ):
        subprocess.run(
            [plugin_executable(kind, name), "--help"],
            env=env,
            capture_output=True,
            check=False,
        )


def write_json(path: Path, value: dict[str, Any]) -> Path:
    """Write a config file."""
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")
    return path


@dataclass(frozen=True)
class Outcome:
    """One run of one variant: figures and what landed."""

    run: PipelineRun
    landed: Landed
    batch_files: int | None = None


def run_variant(setup: Setup, variant: str, attempt: int) -> Outcome:
    """Run one variant once into a fresh warehouse, check it, then drop the warehouse."""
    work = setup.out / "e2e" / f"{variant}-{attempt}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    database = setup.postgres.create_database(f"bench_{variant}_{attempt}")
    servers: dict[str, Callable[[], float | None]] = {
        "postgres": setup.postgres.cpu_seconds,
        "api": setup.fake.cpu_seconds,
    }
    tap_config = dict(setup.configs["tap"])
    batch_root = work / "batches"
    if variant == "batch":
        batch_root.mkdir()
        tap_config["batch_config"] = {
            **BATCH_CONFIG,
            "storage": {"root": f"file://{batch_root}", "prefix": "export_rows-"},
        }
    tap = Step(
        "tap",
        [
            plugin_executable("extractors", "tap-contactbased"),
            "--config",
            str(write_json(work / "tap.json", tap_config)),
            "--catalog",
            str(setup.catalog),
        ],
        setup.tap_env,
        work,
    )
    try:
        steps = _steps(setup, variant, work, tap, database)
        baseline = setup.postgres.processes()
        run = run_pipeline(steps, work, servers, lambda: setup.postgres.settle(baseline))
        if variant == "floor":
            landed = from_postgres(database, "export_rows_floor", schema="public")
        elif variant.startswith("duckdb"):
            landed = from_duckdb(work / "warehouse.duckdb", "export_rows")
        else:
            landed = from_postgres(database, "export_rows")
        files = sum(1 for _ in batch_root.rglob("*.gz")) if variant == "batch" else None
        setup.fake.check_nothing_created(f"the {variant} run {attempt}")
        return Outcome(run, landed, files)
    finally:
        setup.postgres.drop_database(database)
        (work / "warehouse.duckdb").unlink(missing_ok=True)


def _steps(
    setup: Setup, variant: str, work: Path, tap: Step, database: ConnectionInfo
) -> list[Step]:
    env = setup.plugin_env
    if variant == "floor":
        command = [
            sys.executable,
            "-m",
            "bench.copy_floor",
            "--api-url",
            setup.fake.url,
            "--export-id",
            setup.export.export_id,
            "--conninfo",
            database.conninfo,
        ]
        return [Step("floor", command, env, ROOT)]
    if variant == "meltano":
        meltano_env = {
            **base_env(f"sqlite:///{work / 'meltano.db'}"),
            **with_tap_src(setup.tap_env),
            **tap_settings(setup.fake, setup.export),
            **loader_overrides(),
            **postgres_settings(database),
        }
        command = [MELTANO, "run", "tap-contactbased", "target-postgres"]
        return [Step("meltano", command, meltano_env, ROOT)]
    if variant.startswith("duckdb"):
        config = {**setup.configs[variant], "filepath": str(work / "warehouse.duckdb")}
        executable = plugin_executable("loaders", "target-duckdb")
    else:
        key = "before" if variant == "before" else "shipped"
        config = {**setup.configs[key], "port": database.port, "database": database.database}
        executable = plugin_executable("loaders", "target-postgres")
    loader = Step(
        "loader", [executable, "--config", str(write_json(work / "loader.json", config))], env, work
    )
    return [tap, loader]


def expected_figures(setup: Setup) -> Landed:
    """Rows and checksum of the export's CSV (one untimed download)."""
    session = requests.Session()
    session.headers["X-API-Key"] = API_KEY
    answer = session.post(
        setup.fake.url + "/intent/feeds/exports/download-url",
        json={"export_id": setup.export.export_id},
        timeout=60,
    )
    answer.raise_for_status()
    body = requests.get(answer.json()["url"], timeout=300)
    body.raise_for_status()
    return from_csv(body.content)


def check(variant: str, attempt: int, outcome: Outcome, expected: Landed) -> None:
    """Fail loudly when a variant did not land exactly the export's rows."""
    landed = outcome.landed
    if (landed.rows, landed.checksum) != (expected.rows, expected.checksum):
        raise BenchError(
            f"{variant} run {attempt} landed {landed.rows:,} rows (checksum {landed.checksum}); "
            f"the export holds {expected.rows:,} (checksum {expected.checksum})"
        )


def say(text: str) -> None:
    """Progress, on stderr."""
    print(text, file=sys.stderr, flush=True)


def with_tap_src(env: dict[str, str]) -> dict[str, str]:
    """Only the PYTHONPATH of `env`, if it has one (it names the --tap-src copy)."""
    return {k: v for k, v in env.items() if k == "PYTHONPATH"}


def tap_environment(plugin_env: dict[str, str], tap_src: Path | None) -> dict[str, str]:
    """The tap's environment: with --tap-src, that folder first on PYTHONPATH.

    It then comes before the editable install's path (a .pth entry in the plugin's venv), so
    the plugin's executable runs that copy of the package with the venv's dependencies.
    """
    if tap_src is None:
        return dict(plugin_env)
    path = os.pathsep.join(filter(None, [str(tap_src), plugin_env.get("PYTHONPATH")]))
    return {**plugin_env, "PYTHONPATH": path}


def tap_package(setup: Setup, tap_src: Path | None) -> str:
    """The tap_contactbased folder the tap's interpreter imports; checked against --tap-src."""
    python = Path(plugin_executable("extractors", "tap-contactbased")).with_name("python")
    answer = subprocess.run(
        [str(python), "-c", "import tap_contactbased; print(tap_contactbased.__file__)"],
        cwd=setup.out,
        env=setup.tap_env,
        capture_output=True,
        check=True,
    )
    package = Path(answer.stdout.decode().strip()).resolve().parent
    wanted = ((tap_src or ROOT) / "tap_contactbased").resolve()
    if package != wanted:
        raise BenchError(f"the tap would be imported from {package}, not from {wanted}")
    return str(package)


def plugin_environment() -> dict[str, str]:
    """The programs' environment: this one, less what skews them or configures plugins."""
    skip = ("TAP_", "TARGET_", "MELTANO_")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in UNSET_FOR_CHILDREN and not k.startswith(skip)
    }
    env["CONTACTBASED_API_KEY"] = API_KEY
    return env


def run_all(args: argparse.Namespace) -> tuple[dict[str, list[Outcome]], Landed, dict[str, Any]]:
    """Set up, run every variant `repeat` times (interleaved), return the outcomes."""
    stale = stale_plugins()
    if stale:
        raise BenchError(f"Meltano plugins not installed or stale: {stale}; run scripts/setup")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    say(f"Starting the local API ({args.rows:,} rows asked) and PostgreSQL...")
    with (
        FakeApi(rows=args.rows, seed=args.seed, log_path=out / "fake.log") as fake,
        BenchPostgres() as postgres,
    ):
        export = fake.export
        assert export is not None
        say(
            f"Ready export {export.export_id}: {export.total_rows:,} rows, "
            f"{len(export.columns)} columns"
        )
        plugin_env = plugin_environment()
        tap_env = tap_environment(plugin_env, args.tap_src)
        setup = Setup(
            out=out,
            fake=fake,
            export=export,
            postgres=postgres,
            plugin_env=plugin_env,
            tap_env=tap_env,
            # The catalog dump runs the tap's discovery: the measured copy's.
            meltano_env={
                **base_env(f"sqlite:///{out / 'meltano-dump.db'}"),
                **with_tap_src(tap_env),
                **tap_settings(fake, export),
            },
        )
        package = tap_package(setup, args.tap_src)
        say(f"Tap measured: {package}")
        if loader_overrides():
            say(f"Shipped loader settings overridden by this shell: {loader_overrides()}")
        prepare(setup)
        warm_up(setup)
        expected = expected_figures(setup)
        if expected.rows != export.total_rows:
            raise BenchError(
                f"the CSV holds {expected.rows:,} rows, the export {export.total_rows:,}"
            )
        outcomes: dict[str, list[Outcome]] = {variant: [] for variant in args.variants}
        for attempt in range(1, args.repeat + 1):
            for variant in args.variants:
                outcome = run_variant(setup, variant, attempt)
                check(variant, attempt, outcome, expected)
                outcomes[variant].append(outcome)
                usage = ", ".join(
                    f"{name} {u.cpu_s:.1f} s CPU {u.peak_rss_mb:.0f} MB"
                    for name, u in outcome.run.usage.items()
                )
                pg = outcome.run.server_cpu_s.get("postgres")
                say(
                    f"  {variant} run {attempt}: {outcome.run.wall_s:.1f} s wall; {usage}; "
                    f"PostgreSQL {pg or 0:.1f} s CPU; {outcome.landed.rows:,} rows landed"
                )
        meta = {
            "tap_package": package,
            "export_id": export.export_id,
            "export_rows": export.total_rows,
            "columns": len(export.columns),
            "checksum": expected.checksum,
            "tap_config": {k: v for k, v in setup.configs["tap"].items() if k != "api_key"},
            "loader_overrides": loader_overrides(),
            "loader_configs": {
                name: {k: v for k, v in setup.configs[name].items() if k != "password"}
                for name in ("shipped", "before", "duckdb", "duckdb-before")
            },
        }
    return outcomes, expected, meta


def main(args: argparse.Namespace) -> int:
    """Run the end-to-end benchmark and print its table."""
    try:
        outcomes, expected, meta = run_all(args)
    except BenchError as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        return 1
    rows = summarize(outcomes)
    print(table(rows, expected.rows))
    print(notes(outcomes))
    if args.json is not None:
        write_report(args.json, args, meta, rows, outcomes)
        print(f"\nwrote {args.json}")
    return 0
