"""The dbt package on PostgreSQL: two days of snapshots, a run killed and resumed in between.

`meltano run tap-contactbased target-postgres dbt-postgres:build` on day 1; the local API's
clock moves one day; the same run is killed (the tap, SIGKILL) while it reads day 2's export,
and run again, with `dbt-postgres:freshness` after the build. Every dbt test passes after each
build, and the models hold what the local API served, counted here from its data. The
snapshots are versioned (`emit_activate_version_messages`): the killed run deactivates
nothing, the resumed one activates day 2's snapshot and target-postgres soft-deletes day 1's.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import typing as t
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import API_KEY
from tests.e2e.conftest import SCHEMA, landed_keys, postgres_env, tap_env
from tests.e2e.interrupt import PageReads
from tests.e2e.meltano import Meltano, wait_for
from tests.e2e.postgres import ConnectionInfo, PostgresServer
from tests.export_checks import delivered_rows
from tests.fake_api import FakeContactBased

BUILD = ("run", "tap-contactbased", "target-postgres", "dbt-postgres:build")
MODELS = "analytics"  # the dbt-postgres utility's schema
PAGE_SIZE = 1000
ROWS_PER_DAY = 1500  # a snapshot of 2 days, today half done: 2,250 rows a feed, 3 pages
HOLD_SECONDS = 20
MODEL_NAMES = (
    "stg_contactbased__export_rows",
    "contactbased__signals",
    "contactbased__latest_snapshot",
    "contactbased__credit_usage_daily",
)
BUNDLE = "individual-core"  # an export bundle whose scalar fields staging unpacks
SIGNAL_PARTS = (
    "feed_id",
    "signal_date",
    "contact_id",
    "domain",
    "topic",
    "first_seen",
    "last_seen",
)
Row = dict[str, t.Any]


@dataclass(frozen=True)
class Days:
    """What the two days served and left behind."""

    api: FakeContactBased
    warehouse: ConnectionInfo
    day_one: list[str]  # exports created on day 1
    day_two: list[str]  # on day 2 (by the killed run; the resumed one creates none)
    live_after_kill: set[tuple[str, int]]  # rows not soft-deleted once the kill had landed
    readings: dict[datetime.date, list[Row]]  # credits answers of each day's last run
    results: list[dict[str, t.Any]]  # dbt's run_results.json of each build
    enriched_between: tuple[datetime.date, datetime.date]  # this machine's UTC days


class CreditReadings:
    """Every answer the API gives to GET /organization/credits, by the API's day."""

    def __init__(self, api: FakeContactBased) -> None:
        self.answers: list[tuple[datetime.date, Row]] = []
        snapshot = api.credit_pool.snapshot

        def recording(today: datetime.date) -> Row:
            answer = snapshot(today)
            self.answers.append((today, answer))
            return answer

        api.credit_pool.snapshot = recording  # type: ignore[method-assign]


def utc_today() -> datetime.date:
    return datetime.datetime.now(datetime.timezone.utc).date()


def run_results(target: Path) -> dict[str, t.Any]:
    parsed: dict[str, t.Any] = json.loads((target / "run_results.json").read_text())
    return parsed


@pytest.fixture(scope="module")
def days(
    meltano_plugins: None, postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> t.Iterator[Days]:
    warehouse = postgres_server.create_database("wh_dbt_two_days")
    target = tmp_path_factory.mktemp("dbt-target")
    # The API's clock on this machine's day: the freshness check compares with the real clock.
    first_day = utc_today()
    with FakeContactBased(
        api_key=API_KEY, today=first_day, build_seconds=0.05, rows_per_day=ROWS_PER_DAY
    ) as api:
        readings = CreditReadings(api)
        meltano = Meltano.isolated(tmp_path_factory.mktemp("meltano"))
        meltano.set(
            **tap_env(
                api,
                export_mode="snapshot",
                lookback_days=2,
                read_mode="pages",
                page_size=PAGE_SIZE,
                emit_activate_version_messages=True,
                export_bundles=[BUNDLE],
                enrichment_bundles=["emails"],
            ),
            **postgres_env(warehouse),
            TARGET_POSTGRES_BATCH_SIZE_ROWS="500",
            DBT_POSTGRES_HOST=warehouse.host,
            DBT_POSTGRES_PORT=str(warehouse.port),
            DBT_POSTGRES_USER=warehouse.user,
            DBT_POSTGRES_DBNAME=warehouse.database,
            DBT_POSTGRES_SCHEMA=MODELS,
            DBT_POSTGRES_TARGET_PATH=str(target),
            DBT_POSTGRES_LOG_PATH=str(target / "logs"),
        )
        results = []

        meltano(*BUILD)
        results.append(run_results(target))
        day_one = list(api.created_exports)
        first_readings = [answer for _, answer in readings.answers]

        api.today = first_day + datetime.timedelta(days=1)
        page_reads = PageReads(api, hold=2, seconds=HOLD_SECONDS)
        landed = len(landed_keys(warehouse))
        with meltano.start(*BUILD) as running:
            wait_for(page_reads.held.is_set, "day 2's second page read", timeout=120)
            wait_for(
                lambda: len(landed_keys(warehouse)) >= landed + PAGE_SIZE,
                "day 2's first page to land",
            )
            tap = running.find_child("tap-contactbased", "--catalog", exclude="--discover")
            assert tap is not None, "no tap-contactbased process under meltano"
            os.kill(tap, signal.SIGKILL)
            killed = running.wait()
        assert killed.returncode != 0
        live_after_kill = live_rows(warehouse)
        day_two = api.created_exports[len(day_one) :]
        resumed_from = len(readings.answers)
        meltano(*BUILD, "dbt-postgres:freshness")
        results.append(run_results(target))
        assert api.created_exports[len(day_one) :] == day_two, "the resumed run created again"
        with warehouse.connect() as connection:  # shown with pytest -s: what the models hold
            for model in MODEL_NAMES:
                count = connection.execute(f"SELECT count(*) FROM {MODELS}.{model}").fetchone()
                print(f"{model}: {count}")
        yield Days(
            api,
            warehouse,
            day_one,
            day_two,
            live_after_kill,
            {
                first_day: first_readings,
                api.today: [answer for _, answer in readings.answers[resumed_from:]],
            },
            results,
            (first_day, utc_today()),
        )


def query(info: ConnectionInfo, sql: str) -> list[tuple[t.Any, ...]]:
    with info.connect() as connection:
        return connection.execute(sql).fetchall()


def live_rows(info: ConnectionInfo) -> set[tuple[str, int]]:
    """Keys of the export rows target-postgres has not soft-deleted."""
    rows = query(
        info,
        f"SELECT export_id, export_row FROM {SCHEMA}.export_rows WHERE _sdc_deleted_at IS NULL",
    )
    return {(str(e), int(n)) for e, n in rows}


def served(api: FakeContactBased, exports: list[str]) -> dict[tuple[str, int], Row]:
    rows: dict[tuple[str, int], Row] = {}
    for export_id in exports:
        rows.update(delivered_rows(api, export_id, None))  # snapshots: every row, today's too
    return rows


def test_every_build_runs_every_model_and_passes_every_dbt_test(days: Days) -> None:
    for results in (days.results[0], days.results[1]):
        statuses = {r["unique_id"]: r["status"] for r in results["results"]}
        tests = [uid for uid in statuses if uid.startswith("test.")]
        models = [uid for uid in statuses if uid.startswith("model.")]
        assert len(models) == 12, models
        assert len(tests) >= 30, tests
        assert {statuses[uid] for uid in models} == {"success"}
        failing = {
            uid: status for uid, status in statuses.items() if uid in tests and status != "pass"
        }
        assert not failing


def test_staging_holds_each_served_row_once_typed_with_its_bundle_unpacked(days: Days) -> None:
    expected = served(days.api, days.day_one + days.day_two)
    assert len(days.day_one) == len(days.day_two) == 2
    rows = query(
        days.warehouse,
        f"SELECT export_id, export_row, intent_score, signal_date, individual_core__first_name, "
        f"individual_core__birth_year FROM {MODELS}.stg_contactbased__export_rows",
    )
    assert len(rows) == len({(r[0], r[1]) for r in rows}) == len(expected)
    for export_id, number, score, day, first_name, birth_year in rows:
        record = expected[(export_id, number)]
        assert float(score) == record["intent_score"]
        assert day.isoformat() == record["signal_date"]
        bundle = record[f"bundle_{BUNDLE}"] or {}  # null where the bundle found nothing
        assert first_name == bundle.get("first_name")
        assert birth_year == bundle.get("birth_year")
    assert any(first_name for *_, first_name, _ in rows)


def test_signals_hold_every_delivered_signal_once_with_its_feed(days: Days) -> None:
    expected = served(days.api, days.day_one + days.day_two)
    signals = {tuple(row.get(part) for part in SIGNAL_PARTS) for row in expected.values()}
    # Overlapping snapshots delivered some signals twice: the model must fold them.
    assert len(signals) < len(expected)
    rows = query(
        days.warehouse,
        f"SELECT feed_id, feed_name, times_delivered FROM {MODELS}.contactbased__signals",
    )
    assert len(rows) == len(signals)
    names = {feed["feed_id"]: feed["name"] for feed in days.api.feeds}
    assert all(name == names[feed_id] for feed_id, name, _ in rows)
    assert sum(times for *_, times in rows) == len(expected)


def test_the_latest_snapshot_is_each_feeds_newest_export(days: Days) -> None:
    expected = served(days.api, days.day_two)
    rows = query(
        days.warehouse,
        f"SELECT export_id, export_row FROM {MODELS}.contactbased__latest_snapshot",
    )
    assert sorted((str(e), int(n)) for e, n in rows) == sorted(expected)
    # With versioned loads the latest snapshot is simply the live rows.
    assert live_rows(days.warehouse) == set(expected)


def test_a_run_killed_midway_deactivates_nothing_and_the_resumed_run_activates(
    days: Days,
) -> None:
    day_one = set(served(days.api, days.day_one))
    day_two = set(served(days.api, days.day_two))
    # Killed after some of day 2's rows landed: all of day 1's snapshot is still live.
    assert day_one <= days.live_after_kill
    assert days.live_after_kill - day_one
    assert days.live_after_kill - day_one < day_two
    # The resumed run finished day 2's snapshot under its version and activated it: staging
    # reads the loader's _sdc_deleted_at, set on day 1's rows only.
    deleted = query(
        days.warehouse,
        f"SELECT export_id, export_row FROM {MODELS}.stg_contactbased__export_rows "
        "WHERE deleted_at IS NOT NULL",
    )
    assert {(str(e), int(n)) for e, n in deleted} == day_one


def test_credit_usage_is_the_rise_of_records_used_and_the_enrichments_per_day(
    days: Days,
) -> None:
    readings = {
        day: (used, previous, credits)
        for day, used, previous, credits in query(
            days.warehouse,
            f"SELECT usage_date, records_used, previous_snapshot_date, records_credits_used "
            f"FROM {MODELS}.contactbased__credit_usage_daily WHERE records_used IS NOT NULL",
        )
    }
    first, second = sorted(days.readings)
    assert sorted(readings) == [first, second]
    # Each day's reading is an answer the API gave that day, in that day's last run.
    served_used = {
        day: {a["records_used"] for a in answers} for day, answers in days.readings.items()
    }
    assert readings[first][0] in served_used[first]
    assert readings[second][0] in served_used[second]
    assert readings[first][1:] == (None, None)
    assert readings[second][1:] == (first, readings[second][0] - readings[first][0])
    assert readings[second][2] > 0, "day 1's exports were paid for between the readings"

    enrichments = query(
        days.warehouse,
        "SELECT usage_date, enrichment_credits_used "
        f"FROM {MODELS}.contactbased__credit_usage_daily WHERE enrichment_credits_used > 0",
    )
    assert sum(n for _, n in enrichments) == len(days.api.enrichment_charged["emails"]) > 0
    earliest, latest = days.enriched_between
    assert all(earliest <= day <= latest for day, _ in enrichments)
