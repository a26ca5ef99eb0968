"""The README's sync modes table, run: two `meltano run`s into PostgreSQL, a day apart.

Each row of the table (an Airbyte sync mode) is a set of settings: the tap's `export_mode`
and `emit_activate_version_messages`, target-postgres' `load_method` and `hard_delete`. The
test runs the pipeline on day D; between the runs a feed (not one of `feed_ids`) is deleted
and a bundle withdrawn upstream and the local API's clock moves to D+1 (as scripts/demo
does); then it runs again, checking the `export_rows`, `feeds` and `bundles` tables after
each run, and the `credits` history.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing as t

import pytest

from tests.conftest import TODAY, YESTERDAY
from tests.e2e.conftest import SCHEMA, landed_keys, postgres_env, tap_env
from tests.e2e.meltano import Meltano
from tests.e2e.postgres import ConnectionInfo
from tests.export_checks import delivered_rows
from tests.fake_api import FakeContactBased
from tests.fake_api.enrichment import bundle_catalogue

RUN = ("run", "tap-contactbased", "target-postgres")
TOMORROW = TODAY + datetime.timedelta(days=1)
Keys = set[tuple[str, int]]

# The rows of the newest export of each feed that reached the table: how to read the
# latest snapshot while target-postgres keeps the older ones (the README shows it).
LATEST_SNAPSHOT = f"""
    SELECT r.export_id, r.export_row FROM {SCHEMA}.export_rows r
    JOIN (
        SELECT DISTINCT ON (feed_id) export_id FROM {SCHEMA}.exports
        WHERE export_id IN (SELECT export_id FROM {SCHEMA}.export_rows)
        ORDER BY feed_id, created_at DESC
    ) latest USING (export_id)
"""


def rows_of(api: FakeContactBased, exports: list[str], through: datetime.date | None) -> Keys:
    """Keys of the rows these exports deliver (through a day, or all of them)."""
    keys: Keys = set()
    for export_id in exports:
        keys |= delivered_rows(api, export_id, through).keys()
    return keys


@dataclasses.dataclass(frozen=True)
class Delivery:
    """Per run: the last signal date it delivers (None: all), the signal dates of its export."""

    through: tuple[datetime.date | None, datetime.date | None]
    days: tuple[set[datetime.date], set[datetime.date]]


DAY_BEFORE = YESTERDAY - datetime.timedelta(days=1)
# A snapshot is the whole window, today's partial day included: the days two windows share
# are in the table once per snapshot.
SNAPSHOTS = Delivery((None, None), ({DAY_BEFORE, YESTERDAY, TODAY}, {YESTERDAY, TODAY, TOMORROW}))
# Incremental runs deliver the days before the API's today: each day once, one day late.
COMPLETE_DAYS = Delivery((YESTERDAY, TODAY), ({DAY_BEFORE, YESTERDAY}, {TODAY}))


@dataclasses.dataclass(frozen=True)
class Mode:
    """A row of the README table: Airbyte's name, the settings, what lands."""

    airbyte: str
    export_mode: str
    load_method: str
    delivery: Delivery
    versions: bool = False  # emit_activate_version_messages
    hard_delete: bool = False


MODES = [
    # target-postgres 0.8.1 merges on the key whatever `load_method` says
    # (MeltanoLabs/target-postgres#266): an overwrite is the versioned snapshot, whose
    # ACTIVATE_VERSION soft-deletes (or, with hard_delete, deletes) the rows of D.
    Mode("Full refresh | Overwrite", "snapshot", "overwrite", SNAPSHOTS, versions=True),
    Mode(
        "Full refresh | Overwrite, hard_delete",
        "snapshot",
        "overwrite",
        SNAPSHOTS,
        versions=True,
        hard_delete=True,
    ),
    Mode("Full refresh | Append", "snapshot", "append-only", SNAPSHOTS),
    Mode("Incremental | Append", "incremental", "append-only", COMPLETE_DAYS),
    Mode("Incremental | Append + Deduped", "incremental", "upsert", COMPLETE_DAYS),
]
# Deleted upstream between the two runs: a feed outside `feed_ids`, and a bundle.
WITHDRAWN_BUNDLE = "professional"
# The rows target-postgres has not soft-deleted: the current snapshot, once activated.
LIVE_ROWS = f"SELECT export_id, export_row FROM {SCHEMA}.export_rows WHERE _sdc_deleted_at IS NULL"


def signal_days(info: ConnectionInfo, exports: list[str]) -> set[datetime.date]:
    """The signal dates of the rows of these exports in the table."""
    with info.connect() as connection:
        rows = connection.execute(
            f"SELECT DISTINCT signal_date FROM {SCHEMA}.export_rows WHERE export_id = ANY(%s)",
            (exports,),
        ).fetchall()
    return {t.cast("datetime.date", day) for (day,) in rows}


def deleted(info: ConnectionInfo, table: str, key: str) -> dict[str, bool]:
    """Each row's key, and whether target-postgres marked it deleted (`_sdc_deleted_at`)."""
    with info.connect() as connection:
        rows = connection.execute(
            f"SELECT {key}, _sdc_deleted_at IS NOT NULL FROM {SCHEMA}.{table}"
        ).fetchall()
    return {str(k): bool(gone) for k, gone in rows}


def live_keys(info: ConnectionInfo) -> Keys:
    with info.connect() as connection:
        return {(str(e), t.cast("int", n)) for e, n in connection.execute(LIVE_ROWS).fetchall()}


@pytest.mark.parametrize("mode", MODES, ids=[m.airbyte for m in MODES])
def test_two_runs_a_day_apart_leave_the_table_the_readme_describes(
    api: FakeContactBased, warehouse: ConnectionInfo, meltano: Meltano, mode: Mode
) -> None:
    settings: dict[str, t.Any] = {"export_mode": mode.export_mode}
    if mode.versions:
        settings["emit_activate_version_messages"] = True
    meltano.set(
        **tap_env(api, **settings),
        **postgres_env(warehouse),
        TARGET_POSTGRES_LOAD_METHOD=mode.load_method,
    )
    if mode.hard_delete:
        meltano.set(TARGET_POSTGRES_HARD_DELETE="true")
    all_feeds = set(api.feed_ids)
    all_bundles = {b["key"] for b in bundle_catalogue(())}
    removed_feed = api.feed_ids[2]

    meltano(*RUN)
    first = list(api.created_exports)
    after_first = landed_keys(warehouse)
    feeds_first = deleted(warehouse, "feeds", "feed_id")
    api.remove_feed(removed_feed)
    api.remove_bundle(WITHDRAWN_BUNDLE)
    api.today = TOMORROW
    meltano(*RUN)
    second = api.created_exports[len(first) :]
    after_second = landed_keys(warehouse)

    # Each run exports each feed once: run 2 asks for another window, so another export.
    feeds = sorted(api.feed_ids[:2])
    assert sorted(api.exports[e].feed_id for e in first) == feeds
    assert sorted(api.exports[e].feed_id for e in second) == feeds
    delivered_first = rows_of(api, first, mode.delivery.through[0])
    delivered_second = rows_of(api, second, mode.delivery.through[1])
    assert delivered_first
    assert delivered_second
    assert len(after_first) == len(set(after_first))
    assert set(after_first) == delivered_first
    # Run 1's own activation (the tables were new) removed none of its rows.
    assert feeds_first == dict.fromkeys(all_feeds, False)
    assert len(after_second) == len(set(after_second))
    if mode.hard_delete:
        # Only D+1's snapshot is left; the feed and the bundle deleted upstream are gone.
        assert set(after_second) == delivered_second
        assert set(deleted(warehouse, "feeds", "feed_id")) == all_feeds - {removed_feed}
        assert set(deleted(warehouse, "bundles", "key")) == all_bundles - {WITHDRAWN_BUNDLE}
    else:
        # Whatever load_method says, target-postgres 0.8.1 merges a key it has seen: the
        # feeds, loaded by both runs, are there once (and `append-only` does not fail).
        assert set(after_second) == delivered_first | delivered_second
        feed_rows = deleted(warehouse, "feeds", "feed_id")
        bundles = deleted(warehouse, "bundles", "key")
        assert set(feed_rows) == all_feeds
        assert set(bundles) == all_bundles
        # Soft delete: what D+1's snapshot replaced is marked, the rest is live.
        gone = mode.versions
        assert feed_rows == {f: gone and f == removed_feed for f in all_feeds}
        assert bundles == {b: gone and b == WITHDRAWN_BUNDLE for b in all_bundles}
        assert live_keys(warehouse) == (delivered_second if gone else set(after_second))
    assert signal_days(warehouse, second) == mode.delivery.days[1]
    if not mode.hard_delete:
        assert signal_days(warehouse, first) == mode.delivery.days[0]
    with warehouse.connect() as connection:
        latest = connection.execute(LATEST_SNAPSHOT).fetchall()
        readings = connection.execute(
            f"SELECT snapshot_date FROM {SCHEMA}.credits ORDER BY 1"
        ).fetchall()
    assert {(str(e), t.cast("int", n)) for e, n in latest} == delivered_second
    # One reading of the credit pool per day: a history, keyed by snapshot_date, that no
    # activation touches.
    assert readings == [(TODAY,), (TOMORROW,)]
