"""One `meltano run` into the embedded warehouse (DuckDB) and into JSON Lines files."""

from __future__ import annotations

import dataclasses
import datetime
import json
import typing as t
from pathlib import Path

import duckdb
import pytest

from tests.conftest import API_KEY, TODAY, YESTERDAY
from tests.e2e.conftest import SCHEMA, SELECTED_STREAMS, tap_env
from tests.e2e.meltano import Meltano
from tests.export_checks import delivered_rows
from tests.fake_api import FakeContactBased


@dataclasses.dataclass
class Landed:
    """What one run of both pipelines left, and what the local API served."""

    api: FakeContactBased
    duckdb_file: Path
    jsonl_dir: Path
    expected: dict[tuple[str, int], dict[str, t.Any]]


@pytest.fixture(scope="module")
def landed(meltano_plugins: None, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[Landed]:
    """Both pipelines in one `meltano run`: DuckDB first, then JSON Lines.

    The two blocks keep separate states, so the second reads the exports again; it reuses
    them rather than creating new ones.
    """
    work = tmp_path_factory.mktemp("embedded")
    with FakeContactBased(api_key=API_KEY, today=TODAY, build_seconds=0.05) as api:
        meltano = Meltano.isolated(
            work / "meltano",
            **tap_env(api, enrichment_bundles=["emails"]),
            TARGET_DUCKDB_FILEPATH=str(work / "warehouse.duckdb"),
            TARGET_JSONL_DESTINATION_PATH=str(work / "jsonl"),
            TARGET_JSONL_DO_TIMESTAMP_FILE="false",
        )
        (work / "jsonl").mkdir()

        meltano("run", "tap-contactbased", "target-duckdb", "tap-contactbased", "target-jsonl")

        expected: dict[tuple[str, int], dict[str, t.Any]] = {}
        for export_id in api.created_exports:
            expected.update(delivered_rows(api, export_id, YESTERDAY))
        yield Landed(api, work / "warehouse.duckdb", work / "jsonl", expected)


def test_the_exports_were_created_once_for_both_targets(landed: Landed) -> None:
    api = landed.api
    assert sorted(api.exports[e].feed_id for e in api.created_exports) == sorted(api.feed_ids[:2])
    assert landed.expected


def test_duckdb_holds_every_stream_with_the_served_rows_typed(landed: Landed) -> None:
    with duckdb.connect(str(landed.duckdb_file), read_only=True) as connection:
        tables = {
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                [SCHEMA],
            ).fetchall()
        }
        rows = connection.execute(
            "SELECT export_id, export_row, intent_score, signal_date, first_seen "
            f"FROM {SCHEMA}.export_rows"
        ).fetchall()
        types = dict(
            connection.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = 'export_rows'",
                [SCHEMA],
            ).fetchall()
        )
        enriched = connection.execute(
            f"SELECT contact_id, data FROM {SCHEMA}.enrichment WHERE found"
        ).fetchall()
        feeds = connection.execute(f"SELECT count(*) FROM {SCHEMA}.feeds").fetchone()

    assert tables == SELECTED_STREAMS
    keys = [(export_id, int(number)) for export_id, number, *_ in rows]
    assert len(keys) == len(set(keys)) == len(landed.expected)
    assert set(keys) == set(landed.expected)
    assert types["intent_score"] == "DOUBLE"
    assert types["first_seen"].startswith("TIMESTAMP")
    assert types["signal_date"] in {"VARCHAR", "DATE"}  # target-duckdb keeps dates as text
    for export_id, number, score, signal_date, first_seen in rows:
        record = landed.expected[(export_id, int(number))]
        assert score == record["intent_score"]
        assert str(signal_date) == record["signal_date"]
        assert first_seen == datetime.datetime.fromisoformat(
            record["first_seen"].replace("Z", "+00:00")
        ).replace(tzinfo=None)
    assert enriched
    assert all("emails" in json.loads(data) for _, data in enriched)
    assert feeds == (len(landed.api.feeds),)


def read_jsonl(path: Path) -> list[dict[str, t.Any]]:
    """The records of one target-jsonl file."""
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def test_jsonl_files_hold_every_stream_with_the_served_rows_typed(landed: Landed) -> None:
    files = {p.stem: p for p in landed.jsonl_dir.glob("*.jsonl")}
    # target-jsonl writes a file for a stream only once a record of it arrives.
    assert set(files) == SELECTED_STREAMS

    records = read_jsonl(files["export_rows"])
    keys = [(r["export_id"], r["export_row"]) for r in records]
    assert len(keys) == len(set(keys)) == len(landed.expected)
    for record in records:
        assert record == landed.expected[(record["export_id"], record["export_row"])]
    assert all(isinstance(r["intent_score"], float) for r in records if r["intent_score"])
    assert all(isinstance(r["export_row"], int) for r in records)
    enrichment = read_jsonl(files["enrichment"])
    assert {r["bundle"] for r in enrichment} == {"emails"}
    assert all(isinstance(r["data"], dict) for r in enrichment if r["found"])
