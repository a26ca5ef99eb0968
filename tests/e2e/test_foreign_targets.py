"""The tap's output loads into targets nobody here wrote, each with its default settings.

One `meltano run` of two pipelines: pipelinewise-target-postgres (with `validate_records`
on, as the issue asks; it refuses streams without key_properties by default) into a real
PostgreSQL, then MeltanoLabs target-csv (which fails on a record field its SCHEMA does not
declare). The local API has grown fields the contract does not name, and every stream has
records: export rows with a bundle column, enrichment of two bundles.
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import datetime
import typing as t
from pathlib import Path

import pytest

from tests.conftest import API_KEY, TODAY, YESTERDAY
from tests.e2e.conftest import SCHEMA, SELECTED_STREAMS, tables_of, tap_env
from tests.e2e.meltano import Meltano
from tests.e2e.postgres import ConnectionInfo, PostgresServer
from tests.export_checks import delivered_rows
from tests.fake_api import FakeContactBased

NEW_FIELDS: dict[str, t.Any] = {"plan_tier": "gold", "quota": {"window": "monthly"}}
BUNDLES = ["emails", "individual-core"]


@dataclasses.dataclass
class Landed:
    """What one run of both pipelines left, and what the local API served."""

    api: FakeContactBased
    warehouse: ConnectionInfo
    csv_dir: Path
    expected: dict[tuple[str, int], dict[str, t.Any]]
    credits: dict[str, t.Any]


@pytest.fixture(scope="module")
def landed(
    meltano_plugins: None,
    postgres_server: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> t.Iterator[Landed]:
    work = tmp_path_factory.mktemp("foreign")
    warehouse = postgres_server.create_database("foreign_targets")
    with FakeContactBased(api_key=API_KEY, today=TODAY, build_seconds=0.05) as api:
        api.faults.new_fields = NEW_FIELDS
        meltano = Meltano.isolated(
            work / "meltano",
            **tap_env(api, export_bundles=["phones"], enrichment_bundles=BUNDLES),
            # Where to write, nothing else: every other setting is the target's default.
            TARGET_POSTGRES_PIPELINEWISE_HOST=warehouse.host,
            TARGET_POSTGRES_PIPELINEWISE_PORT=str(warehouse.port),
            TARGET_POSTGRES_PIPELINEWISE_USER=warehouse.user,
            TARGET_POSTGRES_PIPELINEWISE_PASSWORD="trust-auth-ignores-it",
            TARGET_POSTGRES_PIPELINEWISE_DBNAME=warehouse.database,
            TARGET_CSV_OUTPUT_PATH=str(work / "csv"),
        )
        (work / "csv").mkdir()

        meltano(
            "run",
            "tap-contactbased",
            "target-postgres-pipelinewise",
            "tap-contactbased",
            "target-csv",
        )

        expected: dict[tuple[str, int], dict[str, t.Any]] = {}
        for export_id in api.created_exports:
            expected.update(delivered_rows(api, export_id, YESTERDAY))
        credits = api.credits  # no export was created or settled since the runs read it
        yield Landed(api, warehouse, work / "csv", expected, credits)


def as_naive_utc(text: str) -> datetime.datetime:
    """A timestamp as naive UTC, whatever form a target wrote it in."""
    value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value


def test_both_pipelines_shared_one_export_per_feed(landed: Landed) -> None:
    api = landed.api
    assert sorted(api.exports[e].feed_id for e in api.created_exports) == sorted(api.feed_ids[:2])
    assert landed.expected


def test_pipelinewise_postgres_holds_every_stream_and_the_served_rows(landed: Landed) -> None:
    warehouse = landed.warehouse
    assert tables_of(warehouse) == SELECTED_STREAMS
    with warehouse.connect() as connection:
        rows = connection.execute(
            "SELECT export_id, export_row, contact_id, intent_score, signal_date, first_seen, "
            f"bundle_phones FROM {SCHEMA}.export_rows"
        ).fetchall()
        credits = connection.execute(
            f"SELECT snapshot_date, records_total, extra_fields FROM {SCHEMA}.credits"
        ).fetchall()
        enriched = connection.execute(
            f"SELECT contact_id, bundle FROM {SCHEMA}.enrichment"
        ).fetchall()
        feeds = connection.execute(f"SELECT feed_id, extra_fields FROM {SCHEMA}.feeds").fetchall()

    keys = [(str(export_id), int(t.cast("int", number))) for export_id, number, *_ in rows]
    assert len(keys) == len(set(keys)) == len(landed.expected)
    assert set(keys) == set(landed.expected)
    for export_id, number, contact_id, score, signal_date, first_seen, phones in rows:
        record = landed.expected[(str(export_id), int(t.cast("int", number)))]
        assert contact_id == record["contact_id"]
        assert score == record["intent_score"]
        assert signal_date == record["signal_date"]  # the target keeps dates as text
        assert first_seen == as_naive_utc(record["first_seen"])
        assert phones == record["bundle_phones"]
    assert credits == [(TODAY.isoformat(), landed.credits["records_total"], NEW_FIELDS)]
    contacts = {r["contact_id"] for r in landed.expected.values() if r["contact_id"]}
    assert sorted(enriched) == sorted((c, b) for c in contacts for b in BUNDLES)
    assert sorted(feeds) == sorted((f["feed_id"], NEW_FIELDS) for f in landed.api.feeds)


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of one target-csv file, by header."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_target_csv_holds_every_stream_and_the_served_rows(landed: Landed) -> None:
    files = {p.stem: p for p in landed.csv_dir.glob("*.csv")}
    assert set(files) == SELECTED_STREAMS

    rows = read_csv(files["export_rows"])
    keys = [(row["export_id"], int(row["export_row"])) for row in rows]
    assert len(keys) == len(set(keys)) == len(landed.expected)
    assert set(keys) == set(landed.expected)
    for row, key in zip(rows, keys, strict=True):
        record = landed.expected[key]
        assert row["contact_id"] == (record["contact_id"] or "")
        assert float(row["intent_score"]) == record["intent_score"]
        assert row["signal_date"] == record["signal_date"]
        assert as_naive_utc(row["first_seen"]) == as_naive_utc(record["first_seen"])
        # target-csv writes an object as its Python repr.
        assert ast.literal_eval(row["bundle_phones"] or "None") == record["bundle_phones"]
    [credits] = read_csv(files["credits"])
    assert credits["snapshot_date"] == TODAY.isoformat()
    assert int(credits["records_total"]) == landed.credits["records_total"]
    assert ast.literal_eval(credits["extra_fields"]) == NEW_FIELDS
    contacts = {r["contact_id"] for r in landed.expected.values() if r["contact_id"]}
    enriched = [(r["contact_id"], r["bundle"]) for r in read_csv(files["enrichment"])]
    assert sorted(enriched) == sorted((c, b) for c in contacts for b in BUNDLES)
