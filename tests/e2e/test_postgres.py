"""`meltano run tap-contactbased target-postgres` into a real PostgreSQL."""

from __future__ import annotations

import datetime
import decimal
import typing as t
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import API_KEY, TODAY, YESTERDAY
from tests.e2e.conftest import (
    SCHEMA,
    SELECTED_STREAMS,
    landed_keys,
    postgres_env,
    tables_of,
    tap_env,
)
from tests.e2e.meltano import Meltano
from tests.e2e.postgres import ConnectionInfo, PostgresServer
from tests.export_checks import delivered_rows
from tests.fake_api import FakeContactBased

RUN = ("run", "tap-contactbased", "target-postgres")


def column_types(info: ConnectionInfo, table: str) -> dict[str, str]:
    """Column -> PostgreSQL data type."""
    with info.connect() as connection:
        rows = connection.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s",
            (SCHEMA, table),
        ).fetchall()
    return {str(name): str(kind) for name, kind in rows}


def primary_key(info: ConnectionInfo, table: str) -> list[str]:
    """The columns of a table's primary key, in order."""
    with info.connect() as connection:
        rows = connection.execute(
            "SELECT a.attname FROM pg_index i "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = %s::regclass AND i.indisprimary "
            "ORDER BY array_position(i.indkey, a.attnum)",
            (f"{SCHEMA}.{table}",),
        ).fetchall()
    return [str(name) for (name,) in rows]


def as_utc_naive(value: datetime.datetime) -> datetime.datetime:
    """A timestamp as naive UTC, whether the column kept the zone or not."""
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value


def parse_timestamp(text: str) -> datetime.datetime:
    """An ISO 8601 timestamp from the API as naive UTC."""
    return as_utc_naive(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")))


@dataclass(frozen=True)
class TwoDays:
    """Two daily `meltano run`s into one warehouse, and what the local API served."""

    api: FakeContactBased
    warehouse: ConnectionInfo
    first_exports: list[str]
    expected: dict[tuple[str, int], dict[str, t.Any]]  # day 1: rows through yesterday
    keys_after_first: list[tuple[str, int]]
    second_exports: list[str]
    added: dict[tuple[str, int], dict[str, t.Any]]  # day 2: the day that became complete


@pytest.fixture(scope="module")
def two_days(
    meltano_plugins: None, postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> t.Iterator[TwoDays]:
    """Day 1 with export and enrichment bundles, then the API's clock one day later."""
    warehouse = postgres_server.create_database("wh_postgres_two_days")
    with FakeContactBased(api_key=API_KEY, today=TODAY, build_seconds=0.05) as api:
        meltano = Meltano.isolated(Path(tmp_path_factory.mktemp("meltano")))
        # Arrays and a bundle through TAP_CONTACTBASED_* variables; export_bundles adds a JSON
        # column to every row, enrichment_bundles fills the enrichment stream.
        meltano.set(
            **tap_env(api, export_bundles=["phones"], enrichment_bundles=["individual-core"]),
            **postgres_env(warehouse),
        )
        meltano(*RUN)
        first_exports = list(api.created_exports)
        expected: dict[tuple[str, int], dict[str, t.Any]] = {}
        for export_id in first_exports:
            expected.update(delivered_rows(api, export_id, YESTERDAY))
        keys_after_first = landed_keys(warehouse)

        api.today = TODAY + datetime.timedelta(days=1)  # TODAY is now a complete day
        meltano(*RUN)
        second_exports = api.created_exports[len(first_exports) :]
        added: dict[tuple[str, int], dict[str, t.Any]] = {}
        for export_id in second_exports:
            added.update(delivered_rows(api, export_id, TODAY))
        yield TwoDays(
            api, warehouse, first_exports, expected, keys_after_first, second_exports, added
        )


def test_every_stream_lands_in_its_table(two_days: TwoDays) -> None:
    assert tables_of(two_days.warehouse) == SELECTED_STREAMS
    with two_days.warehouse.connect() as connection:
        feeds = connection.execute(f"SELECT count(*) FROM {SCHEMA}.feeds").fetchone()
    assert feeds == (len(two_days.api.feeds),)


def test_each_row_of_the_first_day_lands_once_under_the_tables_key(two_days: TwoDays) -> None:
    api, expected = two_days.api, two_days.expected
    assert sorted(api.exports[e].feed_id for e in two_days.first_exports) == sorted(
        api.feed_ids[:2]
    )
    assert expected, "the local API served no row: the test would prove nothing"
    keys = two_days.keys_after_first
    assert len(keys) == len(set(keys)) == len(expected)
    assert set(keys) == set(expected)
    assert primary_key(two_days.warehouse, "export_rows") == ["export_id", "export_row"]
    assert primary_key(two_days.warehouse, "enrichment") == ["contact_id", "bundle"]


def test_columns_get_warehouse_types(two_days: TwoDays) -> None:
    types = column_types(two_days.warehouse, "export_rows")
    assert types["intent_score"] == "numeric"
    assert types["first_seen"].startswith("timestamp")
    assert types["last_seen"].startswith("timestamp")
    assert types["signal_date"] == "date" or types["signal_date"].startswith("timestamp")
    assert types["export_row"] in {"bigint", "integer"}
    assert types["bundle_phones"] in {"jsonb", "json"}
    assert column_types(two_days.warehouse, "enrichment")["data"] in {"jsonb", "json"}


def test_values_are_the_served_values(two_days: TwoDays) -> None:
    with two_days.warehouse.connect() as connection:
        landed = {
            (row[0], row[1]): row
            for row in connection.execute(
                "SELECT export_id, export_row, contact_id, intent_score, signal_date, "
                f"first_seen, last_seen, bundle_phones FROM {SCHEMA}.export_rows"
            ).fetchall()
        }
    for key, record in two_days.expected.items():
        _, _, contact_id, score, signal_date, first_seen, last_seen, phones = landed[key]
        assert contact_id == record["contact_id"]
        assert isinstance(score, decimal.Decimal)
        assert float(score) == record["intent_score"]
        assert signal_date == datetime.date.fromisoformat(record["signal_date"])
        assert isinstance(first_seen, datetime.datetime)
        assert isinstance(last_seen, datetime.datetime)
        assert as_utc_naive(first_seen) == parse_timestamp(record["first_seen"])
        assert as_utc_naive(last_seen) == parse_timestamp(record["last_seen"])
        assert phones == record["bundle_phones"]
    assert any(phones is not None for *_, phones in landed.values())


def test_enrichment_holds_one_row_per_contact_and_bundle(two_days: TwoDays) -> None:
    with two_days.warehouse.connect() as connection:
        enriched = connection.execute(
            f"SELECT contact_id, bundle, found, data FROM {SCHEMA}.enrichment"
        ).fetchall()
    contacts = {r["contact_id"] for r in two_days.expected.values() if r["contact_id"]}
    contacts |= {r["contact_id"] for r in two_days.added.values() if r["contact_id"]}
    assert contacts
    assert {c for c, *_ in enriched} == contacts
    assert len(enriched) == len(contacts)
    assert {b for _, b, *_ in enriched} == {"individual-core"}
    assert any(found and isinstance(data, dict) and data for _, _, found, data in enriched)


def test_the_next_day_adds_only_the_day_that_became_complete(two_days: TwoDays) -> None:
    api, added, expected = two_days.api, two_days.added, two_days.expected
    second = two_days.second_exports
    assert sorted(api.exports[e].feed_id for e in second) == sorted(api.feed_ids[:2])
    assert added
    assert {r["signal_date"] for r in added.values()} == {TODAY.isoformat()}
    keys = landed_keys(two_days.warehouse)
    assert len(keys) == len(set(keys)) == len(expected) + len(added)
    assert set(keys) == set(expected) | set(added)
    with two_days.warehouse.connect() as connection:
        days = connection.execute(
            f"SELECT DISTINCT signal_date FROM {SCHEMA}.export_rows WHERE export_id = ANY(%s)",
            (second,),
        ).fetchall()
    assert days == [(TODAY,)]
