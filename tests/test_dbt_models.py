"""The dbt models over a loader that appends: re-sent rows, soft-deleted rows, live tests.

The loaders of meltano.yml merge on the key, so their tables never show the copies a resumed
run re-sends. Here every message of two snapshot runs (day 1 killed mid-page and resumed, day
2 in one go) is appended to DuckDB tables as a loader without keys would leave them, each
attempt stamped `_sdc_batched_at`, and some rows soft-deleted (`_sdc_deleted_at`) as
target-postgres marks rows a versioned snapshot replaced. The dbt-duckdb utility of meltano.yml
(installed by scripts/setup) builds the package on that file.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import typing as t
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import yaml

from tap_contactbased.schemas import BUNDLE_DATA
from tests.conftest import ALL_STREAMS, API_KEY, TODAY, make_config
from tests.fake_api import FakeContactBased
from tests.kill_harness import Campaign, KillPoint, flights, run_with_kills, since_last_state
from tests.singer_run import REPO, selected_catalog

DBT = REPO / ".meltano" / "utilities" / "dbt-duckdb" / "venv" / "bin" / "dbt"
PROJECT = REPO / "transform"
SIGNAL_PARTS = (
    "feed_id",
    "signal_date",
    "contact_id",
    "domain",
    "topic",
    "first_seen",
    "last_seen",
)
LOADED = datetime.datetime(2026, 11, 27, 12, 0)
DELETED = 10  # rows of one feed's newest export marked soft-deleted
Key = tuple[str, int]


@dataclass(frozen=True)
class Warehouse:
    """The DuckDB file, what was loaded into it, and dbt's results on it."""

    path: Path
    target: Path
    records: list[dict[str, t.Any]]  # export_rows as appended, copies included
    day_two: list[str]  # the exports of the second run
    deleted: set[Key]
    credits: dict[str, int]  # records_used of the last reading loaded per day


def while_an_export_is_read(records: int) -> KillPoint:
    """Kill `records` export rows after a STATE that has an export in flight."""

    def point(messages: list[dict[str, t.Any]]) -> bool:
        seen, state = since_last_state(messages)
        return state is not None and seen >= records and bool(flights(state))

    return point


def duckdb_type(spec: dict[str, t.Any]) -> str:
    """The column type a loader would give a property of a SCHEMA message."""
    types = spec.get("type", [])
    kinds = [k for k in ([types] if isinstance(types, str) else types) if k != "null"]
    if len(kinds) != 1 or kinds[0] in {"object", "array"}:
        return "JSON"
    if kinds[0] == "string":
        return "TIMESTAMP" if spec.get("format") == "date-time" else "VARCHAR"
    return {"integer": "BIGINT", "number": "DOUBLE", "boolean": "BOOLEAN"}[kinds[0]]


def append(db: duckdb.DuckDBPyConnection, campaigns: list[Campaign], work: Path) -> None:
    """Every RECORD of every attempt appended to its stream's table, in load order."""
    columns: dict[str, dict[str, str]] = {}
    rows: dict[str, list[str]] = {}
    attempts = [attempt for campaign in campaigns for attempt in campaign.attempts]
    for number, attempt in enumerate(attempts):
        loaded = (LOADED + datetime.timedelta(minutes=number)).isoformat()
        for message in attempt.messages:
            if message["type"] == "SCHEMA":
                properties = message["schema"]["properties"]
                known = columns.setdefault(message["stream"], {})
                known.update({name: duckdb_type(spec) for name, spec in properties.items()})
            elif message["type"] == "RECORD":
                line = {**message["record"], "_sdc_batched_at": loaded}
                rows.setdefault(message["stream"], []).append(json.dumps(line))
    db.execute("CREATE SCHEMA contactbased")
    for stream, properties in columns.items():
        names = {**properties, "_sdc_batched_at": "TIMESTAMP", "_sdc_deleted_at": "TIMESTAMP"}
        defined = ", ".join(f'"{name}" {kind}' for name, kind in names.items())
        db.execute(f"CREATE TABLE contactbased.{stream} ({defined})")
        if not rows.get(stream):
            continue
        lines = work / f"{stream}.jsonl"
        lines.write_text("\n".join(rows[stream]) + "\n")
        # Read as text, then cast by the table's types (DuckDB's reader would guess its own).
        read = {name: "JSON" if kind == "JSON" else "VARCHAR" for name, kind in names.items()}
        db.execute(
            f"INSERT INTO contactbased.{stream} SELECT * FROM read_json(?, columns = {read!r}, "
            "format = 'newline_delimited')",
            [str(lines)],
        )


def dbt(
    command: str, warehouse: Path, target: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run a dbt command of the dbt-duckdb utility on the package of this repository."""
    assert DBT.exists(), f"{DBT} is missing: run scripts/setup (it installs the dbt utilities)"
    return subprocess.run(
        [str(DBT), command, "--project-dir", str(PROJECT), "--profiles-dir",
         str(PROJECT / "profiles" / "duckdb"), "--target-path", str(target),
         "--log-path", str(target / "logs"), *args],
        env={"PATH": str(DBT.parent), "HOME": str(target), "DBT_DUCKDB_PATH": str(warehouse),
             "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def statuses(target: Path) -> dict[str, str]:
    results = json.loads((target / "run_results.json").read_text())
    return {r["unique_id"]: r["status"] for r in results["results"]}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    work = tmp_path_factory.mktemp("appended")
    with FakeContactBased(
        api_key=API_KEY, today=TODAY, build_seconds=0.05, rows_per_day=(700, 800)
    ) as api:
        config = make_config(
            api,
            export_mode="snapshot",
            lookback_days=2,
            read_mode="pages",
            export_bundles=["individual-core"],
            enrichment_bundles=["emails"],
        )
        catalog = selected_catalog(config, ALL_STREAMS)
        first = run_with_kills(config, catalog, [while_an_export_is_read(500)], work / "day-1")
        first_exports = len(api.created_exports)
        api.today = TODAY + datetime.timedelta(days=1)
        second = run_with_kills(config, catalog, [], work / "day-2")
        day_two = api.created_exports[first_exports:]
    assert first.kills == 1
    records = first.records("export_rows") + second.records("export_rows")
    path = work / "warehouse.duckdb"
    # Readable by the DuckDB of dbt-duckdb (1.2.2, the one target-duckdb writes with).
    with duckdb.connect(str(path), config={"storage_compatibility_version": "v1.2.0"}) as db:
        append(db, [first, second], work)
        newest_of_one_feed = day_two[0]
        deleted = db.execute(
            "UPDATE contactbased.export_rows SET _sdc_deleted_at = ? "
            "WHERE export_id = ? AND export_row <= ? RETURNING export_id, export_row",
            [LOADED, newest_of_one_feed, DELETED],
        ).fetchall()
    credits: dict[str, int] = {}
    for record in first.records("credits") + second.records("credits"):
        credits[record["snapshot_date"]] = record["records_used"]  # the last load wins
    target = work / "target"
    built = dbt("build", path, target)
    assert built.returncode == 0, built.stdout[-4000:]
    return Warehouse(path, target, records, day_two, {(e, n) for e, n in deleted}, credits)


def keys(records: t.Iterable[dict[str, t.Any]]) -> set[Key]:
    return {(r["export_id"], r["export_row"]) for r in records}


def test_every_model_builds_and_every_dbt_test_passes(warehouse: Warehouse) -> None:
    found = statuses(warehouse.target)
    assert sum(uid.startswith("model.") for uid in found) == 12
    assert sum(uid.startswith("test.") for uid in found) >= 30
    assert set(found.values()) == {"success", "pass"}


def test_the_rows_a_resumed_run_sent_again_collapse_to_one_per_key(warehouse: Warehouse) -> None:
    assert len(warehouse.records) > len(keys(warehouse.records)), "nothing was sent twice"
    with duckdb.connect(str(warehouse.path), read_only=True) as db:
        staged = db.execute(
            "SELECT export_id, export_row FROM analytics.stg_contactbased__export_rows"
        ).fetchall()
        readings = db.execute(
            "SELECT snapshot_date, records_used FROM analytics.stg_contactbased__credits"
        ).fetchall()
        usage = db.execute(
            "SELECT usage_date, records_credits_used "
            "FROM analytics.contactbased__credit_usage_daily "
            "WHERE records_used IS NOT NULL ORDER BY 1"
        ).fetchall()
    assert len(staged) == len(set(staged)) == len(keys(warehouse.records))
    assert set(staged) == keys(warehouse.records)
    # credits were appended once per attempt: the reading of the latest load wins each day.
    assert {day.isoformat(): used for day, used in readings} == warehouse.credits
    first, second = sorted(warehouse.credits)
    assert [(day.isoformat(), used) for day, used in usage] == [
        (first, None),
        (second, warehouse.credits[second] - warehouse.credits[first]),
    ]


def test_signals_keep_every_delivered_signal_once_soft_deleted_ones_too(
    warehouse: Warehouse,
) -> None:
    signals = {tuple(r[p] for p in SIGNAL_PARTS) for r in warehouse.records}
    with duckdb.connect(str(warehouse.path), read_only=True) as db:
        count = db.execute("SELECT count(*) FROM analytics.contactbased__signals").fetchone()
    assert count == (len(signals),)


def test_the_latest_snapshot_leaves_out_the_soft_deleted_rows(warehouse: Warehouse) -> None:
    newest = {k for k in keys(warehouse.records) if k[0] in warehouse.day_two}
    assert len(warehouse.deleted) == DELETED
    with duckdb.connect(str(warehouse.path), read_only=True) as db:
        latest = db.execute(
            "SELECT export_id, export_row FROM analytics.contactbased__latest_snapshot"
        ).fetchall()
    assert set(latest) == newest - warehouse.deleted


def test_a_status_outside_the_contract_fails_its_accepted_values_test(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    path = tmp_path / "warehouse.duckdb"
    path.write_bytes(warehouse.path.read_bytes())
    with duckdb.connect(str(path), config={"storage_compatibility_version": "v1.2.0"}) as db:
        db.execute("UPDATE contactbased.exports SET status = 'archived' WHERE export_id = ?",
                   [warehouse.day_two[0]])  # fmt: skip
    target = tmp_path / "target"
    run = dbt("test", path, target, "--select", "stg_contactbased__exports")
    assert run.returncode == 1
    failed = [uid.split(".")[2] for uid, status in statuses(target).items() if status == "fail"]
    assert failed == ["accepted_values_stg_contactbased__exports_status__building__ready__failed"]


def scalar_kind(spec: dict[str, t.Any]) -> str | None:
    """The var's kind of a payload field the tap types as a scalar; None for lists, objects."""
    kinds = [k for k in spec.get("type", []) if k != "null"]
    if kinds == ["string"]:
        return "date" if spec.get("format") == "date" else "string"
    return kinds[0] if kinds and kinds[0] in {"integer", "number", "boolean"} else None


def test_the_unpacked_bundle_fields_are_the_scalars_the_tap_types() -> None:
    project = yaml.safe_load((PROJECT / "dbt_project.yml").read_text())
    expected = {}
    for bundle, payload in BUNDLE_DATA.items():
        properties = payload.type_dict["properties"]
        fields = {name: scalar_kind(spec) for name, spec in properties.items()}
        if scalars := {name: kind for name, kind in fields.items() if kind}:
            expected[bundle] = scalars
    assert project["vars"]["contactbased_bundle_fields"] == expected
