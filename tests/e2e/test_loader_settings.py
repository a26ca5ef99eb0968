"""The loaders' volume settings in meltano.yml land the same tables as the targets' defaults.

One sync of every stream (`meltano invoke tap-contactbased`) is written to a file of Singer
messages, then replayed (`meltano invoke <loader> < file`) into one warehouse with the
target's defaults and into another with the settings meltano.yml ships. Same input, so any
difference in the tables is the settings' doing.
"""

from __future__ import annotations

import datetime
import decimal
import json
import typing as t
from pathlib import Path

import duckdb
import pytest

from tests.conftest import API_KEY, TODAY
from tests.e2e.conftest import SCHEMA, SELECTED_STREAMS, postgres_env, tap_env
from tests.e2e.meltano import Meltano
from tests.e2e.postgres import ConnectionInfo, PostgresServer
from tests.fake_api import FakeContactBased

# Filled by the target while loading, so they differ from one load to the next (a clock, the
# load's start, a millisecond counter): compared for presence (non-NULL), not for value.
LOAD_TIME_COLUMNS = {
    "_sdc_received_at",
    "_sdc_batched_at",
    "_sdc_sequence",
    "_sdc_sync_started_at",
}
# Carried from the tap's messages, so equal in both loads.
MESSAGE_COLUMNS = {"_sdc_extracted_at", "_sdc_deleted_at", "_sdc_table_version"}
# target-postgres 0.8.1's defaults, which meltano.yml overrides.
POSTGRES_DEFAULTS = {
    "TARGET_POSTGRES_USE_COPY": "false",
    "TARGET_POSTGRES_VALIDATE_RECORDS": "true",
    "TARGET_POSTGRES_BATCH_SIZE_ROWS": "10000",  # the SDK's MAX_SIZE_DEFAULT
}
# Small enough that the test's few hundred export rows take many loads.
DUCKDB_SMALL_BATCH = "37"


def canonical(value: object) -> str:
    """A value as comparable text that keeps its Python type (Decimal 1 is not float 1)."""
    if isinstance(value, dict | list):
        return "json:" + json.dumps(value, sort_keys=True)
    return f"{type(value).__name__}:{value!r}"


@pytest.fixture(scope="module")
def synced(
    meltano_plugins: None, tmp_path_factory: pytest.TempPathFactory
) -> t.Iterator[tuple[FakeContactBased, Path]]:
    """One sync of every stream into a file, with the awkward values the API can serve.

    Bundles as JSON columns and objects (JSON null where absent), a column beyond the
    contract, a NUL byte in a CSV value, and the fake's hostile vocabulary (quotes, commas,
    newlines, accents).
    """
    work = tmp_path_factory.mktemp("loader-settings")
    with FakeContactBased(api_key=API_KEY, today=TODAY, build_seconds=0.05) as api:
        api.faults.extra_columns = ("crm_owner",)
        api.faults.nul_in_csv = True
        meltano = Meltano.isolated(
            work / "meltano",
            **tap_env(
                api,
                lookback_days=7,
                export_bundles=["emails", "phones"],
                enrichment_bundles=["emails"],
            ),
        )
        running = meltano.start("invoke", "tap-contactbased")
        result = running.wait()
        assert result.returncode == 0, result.tail()
        messages = work / "sync.singer"
        running.out_path.rename(messages)
        yield api, messages


def record_count(messages: Path, stream: str) -> int:
    """RECORD messages of a stream in the file."""
    with messages.open(encoding="utf-8") as lines:
        return sum(
            1 for line in lines if '"RECORD"' in line and json.loads(line)["stream"] == stream
        )


def replay(meltano: Meltano, loader: str, messages: Path) -> str:
    """`meltano invoke <loader>` reading the file; its log."""
    result = meltano("invoke", loader, stdin=messages)
    return result.log


def shipped_config(meltano: Meltano, loader: str) -> dict[str, t.Any]:
    """The config Meltano gives the loader from meltano.yml (and the test's variables)."""
    parsed: dict[str, t.Any] = json.loads(meltano("invoke", "--dump=config", loader).stdout)
    return parsed


# PostgreSQL


def pg_columns(info: ConnectionInfo, table: str) -> list[tuple[object, ...]]:
    """Every column with its exact type, nullability and position."""
    with info.connect() as connection:
        return connection.execute(
            "SELECT ordinal_position, column_name, data_type, udt_name, is_nullable, "
            "character_maximum_length, numeric_precision, numeric_scale, datetime_precision "
            "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
            "ORDER BY ordinal_position",
            (SCHEMA, table),
        ).fetchall()


def pg_constraints(info: ConnectionInfo, table: str) -> list[tuple[object, ...]]:
    """Primary key and other constraints, by definition."""
    with info.connect() as connection:
        return connection.execute(
            "SELECT contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass ORDER BY 1, 2",
            (f"{SCHEMA}.{table}",),
        ).fetchall()


def pg_rows(info: ConnectionInfo, table: str) -> tuple[list[tuple[str, ...]], dict[str, int]]:
    """The table's rows without the load-time columns, sorted; NULLs of those columns."""
    names = [str(row[1]) for row in pg_columns(info, table)]
    compared = [name for name in names if name not in LOAD_TIME_COLUMNS]
    selected = ", ".join(f'"{name}"' for name in compared)
    nulls = ", ".join(f'count(*) - count("{name}")' for name in sorted(LOAD_TIME_COLUMNS))
    with info.connect() as connection:
        rows = connection.execute(f'SELECT {selected} FROM {SCHEMA}."{table}"').fetchall()
        counts = connection.execute(f'SELECT {nulls} FROM {SCHEMA}."{table}"').fetchone()
    assert counts is not None
    load_time_nulls = {
        name: int(t.cast("int", count))
        for name, count in zip(sorted(LOAD_TIME_COLUMNS), counts, strict=True)
    }
    return sorted(tuple(map(canonical, row)) for row in rows), load_time_nulls


def test_postgres_copy_without_validation_lands_the_same_tables_as_the_defaults(
    synced: tuple[FakeContactBased, Path],
    postgres_server: PostgresServer,
    meltano: Meltano,
) -> None:
    api, messages = synced
    defaults = postgres_server.create_database("loader_defaults")
    shipped = postgres_server.create_database("loader_shipped")

    meltano.set(**postgres_env(defaults), **POSTGRES_DEFAULTS)
    defaults_log = replay(meltano, "target-postgres", messages)
    for name in POSTGRES_DEFAULTS:
        del meltano.env[name]
    meltano.set(**postgres_env(shipped))
    config = shipped_config(meltano, "target-postgres")
    shipped_log = replay(meltano, "target-postgres", messages)

    # The settings under test are the ones meltano.yml ships, and the loads really differed.
    assert config["use_copy"] is True
    assert config["validate_records"] is False
    assert "Inserting with SQL: COPY" in shipped_log
    assert "Inserting with SQL: COPY" not in defaults_log

    with defaults.connect() as connection:
        tables = {
            str(name)
            for (name,) in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (SCHEMA,),
            ).fetchall()
        }
    assert tables == SELECTED_STREAMS
    exported = record_count(messages, "export_rows")
    assert exported > 100, "too few export rows to prove anything"
    for table in sorted(tables):
        columns = pg_columns(defaults, table)
        assert columns == pg_columns(shipped, table), table
        names = {str(column[1]) for column in columns}
        assert names >= LOAD_TIME_COLUMNS | MESSAGE_COLUMNS, table
        assert pg_constraints(defaults, table) == pg_constraints(shipped, table), table
        rows, defaults_nulls = pg_rows(defaults, table)
        shipped_rows, shipped_nulls = pg_rows(shipped, table)
        assert rows, f"{table} is empty: the comparison would prove nothing"
        assert rows == shipped_rows, table
        assert set(defaults_nulls.values()) == set(shipped_nulls.values()) == {0}, table
        if table == "export_rows":
            assert len(rows) == exported

    # The comparison covered typed and awkward values, not only text.
    with shipped.connect() as connection:
        sample = connection.execute(
            "SELECT intent_score, signal_date, first_seen, bundle_emails, crm_owner, "
            f"_sdc_extracted_at FROM {SCHEMA}.export_rows WHERE bundle_emails <> 'null' "
            "AND intent_score IS NOT NULL LIMIT 1"
        ).fetchone()
    assert sample is not None
    score, day, first_seen, emails, owner, extracted = sample
    assert isinstance(score, decimal.Decimal)
    assert isinstance(day, datetime.date)
    assert isinstance(first_seen, datetime.datetime)
    assert isinstance(emails, dict)
    assert isinstance(owner, str)
    assert isinstance(extracted, datetime.datetime)
    assert api.created_exports


# DuckDB


def duckdb_tables(path: Path) -> dict[str, tuple[list[tuple[object, ...]], list[tuple[str, ...]]]]:
    """Each table's columns (name, type, nullability) and sorted rows."""
    out = {}
    with duckdb.connect(str(path), read_only=True) as connection:
        names = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [SCHEMA]
        ).fetchall()
        for (name,) in names:
            columns = connection.execute(
                "SELECT ordinal_position, column_name, data_type, is_nullable "
                "FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
                "ORDER BY ordinal_position",
                [SCHEMA, name],
            ).fetchall()
            rows = connection.execute(f'SELECT * FROM {SCHEMA}."{name}"').fetchall()
            out[str(name)] = (columns, sorted(tuple(map(canonical, row)) for row in rows))
    return out


def test_duckdb_small_batches_land_the_same_tables_as_the_default_batch(
    synced: tuple[FakeContactBased, Path], meltano: Meltano, tmp_path: Path
) -> None:
    _, messages = synced
    one_batch, small = tmp_path / "one-batch.duckdb", tmp_path / "small-batches.duckdb"

    meltano.set(TARGET_DUCKDB_FILEPATH=str(one_batch), TARGET_DUCKDB_BATCH_SIZE_ROWS="100000")
    replay(meltano, "target-duckdb", messages)
    meltano.set(TARGET_DUCKDB_FILEPATH=str(small), TARGET_DUCKDB_BATCH_SIZE_ROWS=DUCKDB_SMALL_BATCH)
    small_log = replay(meltano, "target-duckdb", messages)
    del meltano.env["TARGET_DUCKDB_BATCH_SIZE_ROWS"]
    config = shipped_config(meltano, "target-duckdb")

    exported = record_count(messages, "export_rows")
    loads = sum(
        1 for line in small_log.splitlines() if "rows into" in line and '"export_rows"' in line
    )
    assert loads >= exported // int(DUCKDB_SMALL_BATCH), "the small batches were not used"
    assert isinstance(config["batch_size_rows"], int)
    assert config["batch_size_rows"] < 100_000  # meltano.yml ships a smaller batch
    expected, landed = duckdb_tables(one_batch), duckdb_tables(small)
    assert set(expected) == SELECTED_STREAMS
    assert landed == expected
    assert len(expected["export_rows"][1]) == exported
