"""`meltano run tap-contactbased target-postgres` into a real PostgreSQL."""

from __future__ import annotations

import datetime
import decimal
import typing as t

from tests.conftest import TODAY, YESTERDAY
from tests.e2e.conftest import (
    SCHEMA,
    SELECTED_STREAMS,
    landed_keys,
    postgres_env,
    tables_of,
    tap_env,
)
from tests.e2e.meltano import Meltano
from tests.e2e.postgres import ConnectionInfo
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


def test_rows_land_typed_once_and_the_next_day_adds_only_its_rows(
    api: FakeContactBased, warehouse: ConnectionInfo, meltano: Meltano
) -> None:
    # Arrays and a bundle through TAP_CONTACTBASED_* variables; export_bundles adds a JSON
    # column to every row, enrichment_bundles fills the enrichment stream.
    meltano.set(
        **tap_env(api, export_bundles=["phones"], enrichment_bundles=["individual-core"]),
        **postgres_env(warehouse),
    )

    meltano(*RUN)

    first_exports = list(api.created_exports)
    assert sorted(api.exports[e].feed_id for e in first_exports) == sorted(api.feed_ids[:2])
    expected: dict[tuple[str, int], dict[str, t.Any]] = {}
    for export_id in first_exports:
        expected.update(delivered_rows(api, export_id, YESTERDAY))
    assert expected, "the local API served no row: the test would prove nothing"
    assert tables_of(warehouse) == SELECTED_STREAMS
    keys = landed_keys(warehouse)
    assert len(keys) == len(set(keys)) == len(expected)
    assert set(keys) == set(expected)
    assert primary_key(warehouse, "export_rows") == ["export_id", "export_row"]
    assert primary_key(warehouse, "enrichment") == ["contact_id", "bundle"]

    types = column_types(warehouse, "export_rows")
    assert types["intent_score"] == "numeric"
    assert types["first_seen"].startswith("timestamp")
    assert types["last_seen"].startswith("timestamp")
    assert types["signal_date"] == "date" or types["signal_date"].startswith("timestamp")
    assert types["export_row"] in {"bigint", "integer"}
    assert types["bundle_phones"] in {"jsonb", "json"}
    assert column_types(warehouse, "enrichment")["data"] in {"jsonb", "json"}

    with warehouse.connect() as connection:
        landed = {
            (row[0], row[1]): row
            for row in connection.execute(
                "SELECT export_id, export_row, contact_id, intent_score, signal_date, "
                f"first_seen, last_seen, bundle_phones FROM {SCHEMA}.export_rows"
            ).fetchall()
        }
        enriched = connection.execute(
            f"SELECT contact_id, bundle, found, data FROM {SCHEMA}.enrichment"
        ).fetchall()
        feeds = connection.execute(f"SELECT count(*) FROM {SCHEMA}.feeds").fetchone()
    for key, record in expected.items():
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
    contacts = {r["contact_id"] for r in expected.values() if r["contact_id"]}
    assert contacts
    assert {c for c, *_ in enriched} == contacts
    assert len(enriched) == len(contacts)  # one row per unique contact and bundle
    assert {b for _, b, *_ in enriched} == {"individual-core"}
    assert any(found and isinstance(data, dict) and data for _, _, found, data in enriched)
    assert feeds == (len(api.feeds),)

    # The API's clock moves one day: today (2026-11-27) is now complete.
    api.today = TODAY + datetime.timedelta(days=1)

    meltano(*RUN)

    second_exports = api.created_exports[len(first_exports) :]
    assert sorted(api.exports[e].feed_id for e in second_exports) == sorted(api.feed_ids[:2])
    added: dict[tuple[str, int], dict[str, t.Any]] = {}
    for export_id in second_exports:
        added.update(delivered_rows(api, export_id, TODAY))
    assert added
    assert {r["signal_date"] for r in added.values()} == {TODAY.isoformat()}
    keys = landed_keys(warehouse)
    assert len(keys) == len(set(keys)) == len(expected) + len(added)
    assert set(keys) == set(expected) | set(added)
    with warehouse.connect() as connection:
        days = connection.execute(
            f"SELECT DISTINCT signal_date FROM {SCHEMA}.export_rows WHERE export_id = ANY(%s)",
            (second_exports,),
        ).fetchall()
    assert days == [(TODAY,)]
