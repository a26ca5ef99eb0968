"""Sharded runs on several "machines" sharing one PostgreSQL system database (docs/scaling.md).

Each machine is a project directory of its own (tests/e2e/sharding.py); every one points
MELTANO_DATABASE_URI at the same PostgreSQL database and loads into the same warehouse.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import re
import threading
import typing as t
from pathlib import Path

import pytest

from tap_contactbased.shards import Shard, assign
from tests.conftest import API_KEY, TODAY, YESTERDAY
from tests.e2e.conftest import DATABASE_NUMBERS, SCHEMA, landed_keys, postgres_env, tap_env
from tests.e2e.meltano import Meltano, Result, project, wait_for
from tests.e2e.postgres import ConnectionInfo, PostgresServer
from tests.e2e.sharding import (
    database_uri,
    export_rows_bookmarks,
    machine,
    shared_states,
    state_id,
)
from tests.export_checks import delivered_rows
from tests.fake_api import FakeContactBased
from tests.fake_api import routes as api_routes

if t.TYPE_CHECKING:
    from tests.fake_api.routes import Reply, Request

RUN = ("run", "tap-contactbased", "target-postgres")
JOB = "contactbased-to-postgres"
CREATE = "/intent/feeds/exports"
COUNT = "/intent/feeds/exports/count"
SLOW_BUILD_SECONDS = 8.0  # the kill comes within a poll interval of the last create
GATE_TIMEOUT_SECONDS = 120.0  # only when the tap no longer counts before it creates


@pytest.fixture
def system_database(
    postgres_server: PostgresServer, request: pytest.FixtureRequest
) -> ConnectionInfo:
    """An empty PostgreSQL database for Meltano's system tables (and so its state)."""
    name = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())
    return postgres_server.create_database(f"meltano{next(DATABASE_NUMBERS)}_{name}"[:63])


def machines(root: Path, count: int, system: ConnectionInfo, **env: str) -> list[Meltano]:
    """Meltano on `count` machines that share the system database `system`."""
    return [
        Meltano.shared(
            machine(root, f"machine-{k}"), root / f"logs-{k}", database_uri(system), **env
        )
        for k in range(count)
    ]


def window(api: FakeContactBased, export_id: str) -> tuple[str, str]:
    """First and last day of an export."""
    days = api.exports[export_id].plan.days
    return days[0].isoformat(), days[-1].isoformat()


def rows_through(
    api: FakeContactBased, export_ids: t.Iterable[str], through: datetime.date
) -> dict[tuple[str, int], dict[str, t.Any]]:
    """What runs deliver from these exports, keyed by primary key."""
    expected: dict[tuple[str, int], dict[str, t.Any]] = {}
    for export_id in export_ids:
        expected.update(delivered_rows(api, export_id, through))
    return expected


def count_rows(info: ConnectionInfo, table: str) -> int:
    """Rows of a warehouse table."""
    with info.connect() as connection:
        row = connection.execute(f"SELECT count(*) FROM {SCHEMA}.{table}").fetchone()
    assert row is not None
    return int(t.cast("int", row[0]))


def schedules() -> dict[str, dict[str, t.Any]]:
    """meltano.yml's schedules, by name."""
    return {entry["name"]: entry for entry in project().get("schedules", [])}


def test_three_shards_on_three_machines_load_every_row_once(
    api: FakeContactBased,
    warehouse: ConnectionInfo,
    system_database: ConnectionInfo,
    meltano_plugins: None,
    tmp_path: Path,
) -> None:
    # meltano.yml's schedules, as a user would run them: the prepare run, then the three
    # shards at once, each from its own machine. Their feeds are the local API's three.
    shards = {k: schedules()[f"{JOB}-shard-{k}"]["env"] for k in range(3)}
    shard_feeds = {k: json.loads(env["TAP_CONTACTBASED_FEED_IDS"]) for k, env in shards.items()}
    assert sorted(f for feeds in shard_feeds.values() for f in feeds) == sorted(api.feed_ids)
    settings = tap_env(api)
    del settings["TAP_CONTACTBASED_FEED_IDS"]  # each schedule brings its own
    hosts = machines(tmp_path, 3, system_database, **settings, **postgres_env(warehouse))

    hosts[0]("schedule", "run", f"{JOB}-prepare")
    with contextlib.ExitStack() as stack:
        running = [
            stack.enter_context(host.start("schedule", "run", f"{JOB}-shard-{k}"))
            for k, host in enumerate(hosts)
        ]
        results = [run.wait() for run in running]
    for k, result in enumerate(results):
        assert result.returncode == 0, f"shard-{k} failed:\n{result.tail()}"

    # One export per feed, all of the same window.
    created = list(api.created_exports)
    assert sorted(api.exports[e].feed_id for e in created) == sorted(api.feed_ids)
    assert len({window(api, e) for e in created}) == 1
    # Every complete-day row of every feed, once.
    expected = rows_through(api, created, YESTERDAY)
    assert expected
    keys = landed_keys(warehouse)
    assert len(keys) == len(set(keys)) == len(expected)
    assert set(keys) == set(expected)
    with warehouse.connect() as connection:
        rows = connection.execute(
            f"SELECT feed_id, count(*) FROM {SCHEMA}.feed_totals GROUP BY feed_id"
        ).fetchall()
    totals = {str(feed_id): count for feed_id, count in rows}
    assert totals == dict.fromkeys(api.feed_ids, 3)  # lookback_days 3
    # The organization streams, once: only shard-0 asked for them, and the tables without
    # a primary key (one row per run that loads them) hold one row.
    assert api.count_requests("GET", "/organization/feed-limit") == 1
    assert api.count_requests("GET", "/enrich/bundles") == 1
    assert api.count_requests("POST", "/intent/feeds/filters/fields") == 1
    assert count_rows(warehouse, "credits") == 1
    assert count_rows(warehouse, "feed_limit") == 1
    assert count_rows(warehouse, "feeds") == len(api.feeds)
    # The shared system database holds one state per shard (the prepare run kept none),
    # each with the bookmarks of its own feeds.
    states = shared_states(system_database)
    assert set(states) == {state_id(f"shard-{k}") for k in range(3)}
    for k, feeds in shard_feeds.items():
        bookmarks = export_rows_bookmarks(states[state_id(f"shard-{k}")])
        assert set(bookmarks) == set(feeds)
        assert {b["delivered_through"] for b in bookmarks.values()} == {YESTERDAY.isoformat()}


def test_a_shard_killed_while_its_exports_build_resumes_on_another_machine(
    warehouse: ConnectionInfo,
    system_database: ConnectionInfo,
    meltano_plugins: None,
    tmp_path: Path,
) -> None:
    with FakeContactBased(api_key=API_KEY, today=TODAY, build_seconds=0.05, feed_count=6) as api:
        # A shard of several feeds that does not load the organization streams.
        shard = next(
            s for s in assign(api.feed_ids, 3) if len(s.feed_ids) >= 2 and not s.organization
        )
        first, second = machines(
            tmp_path, 2, system_database, **tap_env(api), **postgres_env(warehouse)
        )
        for host in (first, second):
            host.set(**shard.env())
        sid = state_id(shard.suffix)

        first(*RUN)  # day 1: the shard's bookmarks reach the shared state
        day_one = list(api.created_exports)
        assert sorted(api.exports[e].feed_id for e in day_one) == sorted(shard.feed_ids)

        # Day 2, slow builds: the machine dies once every export of the shard is created.
        api.today = TODAY + datetime.timedelta(days=1)
        api.build_seconds = SLOW_BUILD_SECONDS
        with first.start(*RUN) as running:
            day_two = wait_for(
                lambda: _new_creates(api, day_one, len(shard.feed_ids)),
                "the shard's creates in the API's list of created exports",
                timeout=120,
            )
            assert all(api.exports[e].status == "building" for e in day_two[-1:])
            running.kill_group()
            running.wait()
        # The builds end while the machine is down.
        for export_id in day_two:
            api.exports[export_id].finish_now()

        # The other machine sees, in the shared system database, the dead run still
        # marked as running, and the bookmarks of day 1.
        refused = second(*RUN, check=False)
        assert refused.returncode != 0
        assert "already running" in refused.log, refused.tail()
        bookmarks = export_rows_bookmarks(shared_states(system_database)[sid])
        assert set(bookmarks) == set(shard.feed_ids)
        assert {b["delivered_through"] for b in bookmarks.values()} == {YESTERDAY.isoformat()}
        second(*RUN, "--force")

    assert api.created_exports == day_one + day_two, "the other machine created an export"
    assert sorted(api.exports[e].feed_id for e in day_two) == sorted(shard.feed_ids)
    expected = rows_through(api, day_one, YESTERDAY) | rows_through(api, day_two, TODAY)
    keys = landed_keys(warehouse)
    assert len(keys) == len(set(keys)) == len(expected)
    assert set(keys) == set(expected)
    bookmarks = export_rows_bookmarks(shared_states(system_database)[sid])
    assert {b["delivered_through"] for b in bookmarks.values()} == {TODAY.isoformat()}


def _new_creates(api: FakeContactBased, before: list[str], count: int) -> list[str] | None:
    """Exports created after `before`, once there are `count` of them."""
    new = [e for e in api.created_exports if e not in before]
    return new if len(new) >= count else None


class CreateRace:
    """Holds the preflight counts of one feed so that two shards reach its create together.

    A shard counts an export (free) just before it creates it. Both counts are held until
    both have arrived, so both shards have looked for a reusable export before either
    created one. `together`: both answers then leave at once, and the creates race.
    `staggered`: the second answer waits until the first shard's export exists, as when one
    machine is a little slower: a shard that looks again just before creating reuses it.
    """

    def __init__(self, feed_id: str, *, staggered: bool) -> None:
        """Hold the counts of `feed_id` once installed."""
        self.feed_id = feed_id
        self.staggered = staggered
        self.counts = 0
        self.gave_up: str | None = None
        self._lock = threading.Lock()
        self._both_counted = threading.Event()
        self._created = threading.Event()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Wrap the API's count and create endpoints for this test."""
        count = api_routes.ROUTES[COUNT]["POST"]
        create = api_routes.ROUTES[CREATE]["POST"]

        def counting(api: FakeContactBased, request: Request) -> Reply:
            if self._ours(request):
                self._hold()
            return count(api, request)

        def creating(api: FakeContactBased, request: Request) -> Reply:
            reply = create(api, request)
            if self._ours(request) and getattr(reply, "status", 0) == 201:
                self._created.set()
            return reply

        monkeypatch.setitem(api_routes.ROUTES[COUNT], "POST", counting)
        monkeypatch.setitem(api_routes.ROUTES[CREATE], "POST", creating)

    def _ours(self, request: Request) -> bool:
        return isinstance(request.body, dict) and request.body.get("feed_id") == self.feed_id

    def _hold(self) -> None:
        with self._lock:
            self.counts += 1
            order = self.counts
        if order > 2:
            return
        if order == 2:
            self._both_counted.set()
        # Not a sleep: the waits end on the other shard's request; the timeout only keeps
        # a tap that no longer counts before creating from hanging the test.
        if not self._both_counted.wait(GATE_TIMEOUT_SECONDS):
            self.gave_up = "the second shard never counted the shared feed"
        elif self.staggered and order == 2 and not self._created.wait(GATE_TIMEOUT_SECONDS):
            self.gave_up = "the first shard never created an export of the shared feed"


def overlap_warnings(results: t.Iterable[Result], export_ids: t.Collection[str]) -> list[str]:
    """Log lines that report an overlap and name every one of `export_ids`."""
    return [
        line
        for result in results
        for line in result.log.splitlines()
        if "overlap" in line.lower() and all(e in line for e in export_ids)
    ]


@pytest.mark.parametrize("release", ["together", "staggered"])
def test_two_shards_sharing_a_feed_pay_for_one_export_or_warn(
    api: FakeContactBased,
    postgres_server: PostgresServer,
    system_database: ConnectionInfo,
    meltano_plugins: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    release: str,
) -> None:
    shared, own_x, own_y = api.feed_ids
    race = CreateRace(shared, staggered=release == "staggered")
    race.install(monkeypatch)
    # A held count must not time out in the tap and be sent again.
    settings = tap_env(api, request_timeout_seconds=int(GATE_TIMEOUT_SECONDS) + 60)
    hosts = machines(tmp_path, 2, system_database, **settings)
    # Misconfigured: both shards list the shared feed. Each loads into a warehouse of its
    # own, so that both runs can end well: into one warehouse, two loads of the same export
    # rows at the same moment make one upsert fail on its primary key (docs/scaling.md).
    for host, (shard, feeds) in zip(
        hosts, ((1, (shared, own_x)), (2, (shared, own_y))), strict=True
    ):
        name = f"wh{next(DATABASE_NUMBERS)}_overlap_{release}_{shard}"
        host.set(**Shard(shard, feeds).env(), **postgres_env(postgres_server.create_database(name)))
    # Separate warehouses share no table to race for: migrating the shared system database
    # is all the preparation these two shards need.
    hosts[0]("upgrade", "database")

    with contextlib.ExitStack() as stack:
        running = [stack.enter_context(host.start(*RUN)) for host in hosts]
        results = [run.wait() for run in running]

    exports = [e for e in api.created_exports if api.exports[e].feed_id == shared]
    print(
        f"\nTwo shards sharing feed {shared}, creates released {release}: "
        f"{len(exports)} export(s) created for its window: {', '.join(exports)}"
    )
    assert race.gave_up is None, race.gave_up
    assert race.counts >= 2
    for result in results:
        assert result.returncode == 0, result.tail()
    assert len({window(api, e) for e in exports}) == 1
    for own in (own_x, own_y):
        assert [api.exports[e].feed_id for e in api.created_exports].count(own) == 1
    assert 1 <= len(exports) <= 2
    if release == "staggered":
        assert len(exports) == 1, "the second shard did not look again just before creating"
    if len(exports) == 2:
        assert overlap_warnings(results, exports), "no warning names both exports"
