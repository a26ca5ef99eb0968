"""BATCH and RECORD messages land the same rows in PostgreSQL (target-postgres of meltano.yml)."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import API_KEY, TODAY
from tests.e2e.conftest import SCHEMA, postgres_env, tap_env
from tests.e2e.meltano import Meltano
from tests.e2e.postgres import ConnectionInfo, PostgresServer
from tests.fake_api import FakeContactBased

RUN = ("run", "tap-contactbased", "target-postgres")
SETTINGS: dict[str, t.Any] = {"export_bundles": ["phones"], "enrichment_bundles": ["emails"]}
# What differs by nature between two runs, whatever the message type.
RUN_TIME_COLUMNS = {"enriched_at"}


@dataclass(frozen=True)
class TwoLoads:
    """The same sync loaded once from RECORD messages and once from BATCH files."""

    record: ConnectionInfo
    batch: ConnectionInfo
    files: Path
    created_by_record_run: list[str]
    created_by_batch_run: list[str]


@pytest.fixture(scope="module")
def two_loads(
    meltano_plugins: None, postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> TwoLoads:
    work = tmp_path_factory.mktemp("batch_postgres")
    files = work / "files"
    batch_config = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": files.as_uri(), "prefix": "run-"},
    }
    record = postgres_server.create_database("wh_batch_vs_record_record")
    batch = postgres_server.create_database("wh_batch_vs_record_batch")
    with FakeContactBased(api_key=API_KEY, today=TODAY, build_seconds=0.05) as api:
        in_records = Meltano.isolated(work / "record")
        in_records.set(**tap_env(api, **SETTINGS), **postgres_env(record))
        in_records(*RUN)
        created = list(api.created_exports)
        # Its own Meltano state: the run finds the same exports ready and reuses them.
        in_files = Meltano.isolated(work / "batch")
        in_files.set(**tap_env(api, **SETTINGS, batch_config=batch_config), **postgres_env(batch))
        in_files(*RUN)
        return TwoLoads(record, batch, files, created, api.created_exports[len(created) :])


def columns(info: ConnectionInfo, table: str) -> list[str]:
    with info.connect() as connection:
        rows = connection.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY column_name",
            (SCHEMA, table),
        ).fetchall()
    return [str(name) for (name,) in rows]


def table(info: ConnectionInfo, name: str, key: str) -> list[tuple[t.Any, ...]]:
    """Every row, ordered by `key`, without the `_sdc_*` columns and run times."""
    kept = [c for c in columns(info, name) if not c.startswith("_sdc_")]
    kept = [c for c in kept if c not in RUN_TIME_COLUMNS]
    with info.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                f"SELECT {', '.join(kept)} FROM {SCHEMA}.{name} ORDER BY {key}"
            ).fetchall()
        ]


def test_batch_files_land_the_rows_record_messages_land(two_loads: TwoLoads) -> None:
    assert two_loads.created_by_batch_run == []
    assert columns(two_loads.batch, "export_rows") == columns(two_loads.record, "export_rows")
    landed = table(two_loads.batch, "export_rows", "export_id, export_row")
    assert landed, "no row landed: the test would prove nothing"
    assert landed == table(two_loads.record, "export_rows", "export_id, export_row")


def test_the_contacts_of_batch_files_are_enriched_as_in_record_mode(two_loads: TwoLoads) -> None:
    landed = table(two_loads.batch, "enrichment", "contact_id, bundle")
    assert landed
    assert landed == table(two_loads.record, "enrichment", "contact_id, bundle")


def test_batch_loads_leave_every_sdc_column_null_and_the_files_on_disk(
    two_loads: TwoLoads,
) -> None:
    metadata = [c for c in columns(two_loads.batch, "export_rows") if c.startswith("_sdc_")]
    assert {"_sdc_extracted_at", "_sdc_batched_at"} <= set(metadata)
    counts = ", ".join(f"count({c})" for c in ["*", *metadata])
    query = f"SELECT {counts} FROM {SCHEMA}.export_rows"
    with two_loads.batch.connect() as connection:
        in_batch = connection.execute(query).fetchone()
    with two_loads.record.connect() as connection:
        in_records = connection.execute(query).fetchone()
    assert in_batch is not None
    assert in_records is not None
    rows, *filled = in_batch
    assert rows
    assert filled == [0] * len(metadata)
    filled_in_records = dict(zip(metadata, in_records[1:], strict=True))
    assert filled_in_records["_sdc_extracted_at"] == filled_in_records["_sdc_batched_at"] == rows
    # README, "BATCH files instead of RECORD messages": target-postgres deletes no file.
    assert any(
        path.name.startswith("run-tap-contactbased--export_rows-")
        for path in two_loads.files.iterdir()
    )
