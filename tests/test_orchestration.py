"""The export run: every feed checked and the whole spend counted first, all built at once.

Builds take seconds here, so that what overlaps and what waits shows in the local API's
request log and in its count of exports building at the same time.
"""

from __future__ import annotations

import json
import logging
import typing as t
from pathlib import Path

import pytest

from tap_contactbased import endpoints
from tap_contactbased.client import ContactBasedStream
from tap_contactbased.lifecycle import ExportLifecycle
from tap_contactbased.tap import TapContactBased
from tests.conftest import API_KEY, TODAY, YESTERDAY, make_config
from tests.export_checks import by_key, delivered_rows
from tests.fake_api import FakeContactBased
from tests.fake_api.exports import ExportOptions
from tests.run_checks import listed
from tests.singer_run import SyncResult, run_command, run_tap

BUILD_SECONDS = 3.0
READS = {endpoints.EXPORTS_PAGE, endpoints.EXPORTS_DOWNLOAD_URL}
UNKNOWN_FEED = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def four_feeds() -> t.Iterator[FakeContactBased]:
    """Four feeds whose exports take a few seconds to build."""
    with FakeContactBased(
        api_key=API_KEY, today=TODAY, feed_count=4, build_seconds=BUILD_SECONDS
    ) as server:
        yield server


def creates(api: FakeContactBased) -> list[int]:
    """Positions in the request log of the creates that succeeded."""
    return [
        i
        for i, r in enumerate(api.requests)
        if (r.method, r.path, r.status) == ("POST", endpoints.EXPORTS, 201)
    ]


def first_read(api: FakeContactBased) -> int:
    return next(i for i, r in enumerate(api.requests) if r.path in READS)


def assert_every_row_once(api: FakeContactBased, records: list[dict[str, t.Any]]) -> None:
    expected: dict[tuple[str, int], dict[str, t.Any]] = {}
    for export_id in api.created_exports:
        expected.update(delivered_rows(api, export_id, YESTERDAY))
    assert len(records) == len(expected) > 0
    assert by_key(records) == expected


@pytest.mark.parametrize("read_mode", ["csv", "pages"])
def test_all_exports_are_created_before_the_first_is_read(
    four_feeds: FakeContactBased, read_mode: str
) -> None:
    config = make_config(four_feeds, feed_ids=four_feeds.feed_ids, read_mode=read_mode)

    result = run_tap(config, streams=["export_rows"])

    assert len(creates(four_feeds)) == 4
    assert max(creates(four_feeds)) < first_read(four_feeds)
    assert four_feeds.max_building_seen == 4
    assert_every_row_once(four_feeds, result.records("export_rows"))


def test_max_concurrent_exports_bounds_the_builds(four_feeds: FakeContactBased) -> None:
    config = make_config(four_feeds, feed_ids=four_feeds.feed_ids, max_concurrent_exports=2)

    result = run_tap(config, streams=["export_rows"])

    assert four_feeds.max_building_seen == 2
    assert len(four_feeds.created_exports) == 4
    assert_every_row_once(four_feeds, result.records("export_rows"))


@pytest.mark.parametrize("status", [429, 409])
def test_the_apis_own_limit_delays_creates_without_duplicates(
    four_feeds: FakeContactBased, status: int
) -> None:
    four_feeds.faults.max_building_exports = 2
    four_feeds.faults.building_limit_status = status
    config = make_config(four_feeds, feed_ids=four_feeds.feed_ids)

    result = run_tap(config, streams=["export_rows"])

    refused = [r for r in four_feeds.requests if r.path == endpoints.EXPORTS and r.status == status]
    assert refused  # the tap asked for more than the API allowed, and waited
    assert four_feeds.max_building_seen == 2
    assert len(four_feeds.created_exports) == 4
    assert_every_row_once(four_feeds, result.records("export_rows"))


def one_line_failure(result: SyncResult) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("tap-contactbased: error: ")
    return line


def refusal(api: FakeContactBased, tmp_path: Path, **overrides: t.Any) -> str:
    """Run the tap as Meltano does; it must stop in one line with nothing created."""
    result = run_command([], tmp_path, config=make_config(api, **overrides))
    line = one_line_failure(result)
    assert api.created_exports == []
    assert not any(r.path == endpoints.EXPORTS for r in api.requests)
    assert API_KEY not in result.stderr
    return line


def test_unknown_feeds_anywhere_in_the_list_create_nothing(
    four_feeds: FakeContactBased, tmp_path: Path
) -> None:
    feeds = [*four_feeds.feed_ids[:2], UNKNOWN_FEED, four_feeds.foreign_feed_id]

    line = refusal(four_feeds, tmp_path, feed_ids=feeds)

    assert UNKNOWN_FEED in line
    assert four_feeds.foreign_feed_id in line  # every offender is named, not only the first


def test_bundle_not_enabled_and_lookback_above_a_cap_are_named_together(
    four_feeds: FakeContactBased, tmp_path: Path
) -> None:
    last = four_feeds.feeds[-1]
    line = refusal(
        four_feeds,
        tmp_path,
        feed_ids=four_feeds.feed_ids,
        lookback_days=last["max_lookback_days"] + 1,
        export_bundles=["auto"],
    )

    assert "export_bundles asks for auto" in line
    assert f"feed {last['feed_id']} allows at most {last['max_lookback_days']}" in line


def counts(api: FakeContactBased, config: dict[str, t.Any]) -> dict[str, int]:
    """What each feed's export would reserve now, as the API counts it."""
    return {
        feed: api.plan(ExportOptions(feed, config["lookback_days"], config["page_size"])).total
        for feed in config["feed_ids"]
    }


def test_a_run_over_max_records_per_run_creates_nothing(
    four_feeds: FakeContactBased, tmp_path: Path
) -> None:
    config = make_config(four_feeds, feed_ids=four_feeds.feed_ids)
    parts = counts(four_feeds, config)
    # Each feed alone fits the cap; the run as a whole does not.
    cap = sum(parts.values()) - 1
    assert max(parts.values()) < cap

    line = refusal(four_feeds, tmp_path, feed_ids=four_feeds.feed_ids, max_records_per_run=cap)

    assert f"would reserve {sum(parts.values()):,} records credits" in line
    assert all(f"feed {feed} {count:,}" in line for feed, count in parts.items())
    assert f"max_records_per_run ({cap:,})" in line


def test_a_run_the_credit_pool_cannot_pay_for_creates_nothing(tmp_path: Path) -> None:
    with FakeContactBased(api_key=API_KEY, today=TODAY, feed_count=4, build_seconds=0.05) as api:
        config = make_config(api, feed_ids=api.feed_ids)
        parts = counts(api, config)
        api.credit_pool.total = sum(parts.values()) - 1

        line = refusal(api, tmp_path, feed_ids=api.feed_ids)

        assert f"only {sum(parts.values()) - 1:,} are left" in line


def test_a_failed_build_stops_only_its_feed(four_feeds: FakeContactBased, tmp_path: Path) -> None:
    failing = four_feeds.feed_ids[2]
    four_feeds.faults.fail_export_feeds = {failing}
    config = make_config(four_feeds, feed_ids=four_feeds.feed_ids)

    first = run_command([], tmp_path, config=config)

    line = one_line_failure(first)
    assert failing in line
    assert "1 feed(s) did not finish" in line
    delivered = {r["feed_id"] for r in first.records("export_rows")}
    assert delivered == set(four_feeds.feed_ids) - {failing}
    assert first.states, "the delivered feeds' bookmarks reached the target"

    four_feeds.faults.fail_export_feeds = set()
    second = run_command([], tmp_path, config=config, state=first.states[-1])

    assert second.returncode == 0, second.stderr
    assert {r["feed_id"] for r in second.records("export_rows")} == {failing}
    ready = [e for e in four_feeds.created_exports if four_feeds.exports[e].status == "ready"]
    assert len(ready) == 4
    records = first.records("export_rows") + second.records("export_rows")
    expected: dict[tuple[str, int], dict[str, t.Any]] = {}
    for export_id in ready:
        expected.update(delivered_rows(four_feeds, export_id, YESTERDAY))
    assert by_key(records) == expected
    assert len(records) == len(expected)


def test_the_cost_receipt_is_logged_by_a_failed_run(
    four_feeds: FakeContactBased, tmp_path: Path
) -> None:
    four_feeds.faults.fail_export_feeds = {four_feeds.feed_ids[0]}
    config = make_config(four_feeds, feed_ids=four_feeds.feed_ids)

    result = run_command([], tmp_path, config=config)

    one_line_failure(result)
    receipt = next(line for line in result.stderr.splitlines() if "Cost receipt:" in line)
    assert "4 export(s) created" in receipt


STATE_FROM_0_1 = Path(__file__).parent / "data" / "state_written_by_0.1.json"
WRITTEN_STATES = [
    pytest.param(STATE_FROM_0_1, id="0.1"),
    pytest.param(Path(__file__).parent / "data" / "state_written_by_main.json", id="main"),
]


@pytest.mark.parametrize("written", WRITTEN_STATES)
def test_a_state_written_by_the_previous_release_resumes_its_exports(
    tmp_path: Path, written: Path
) -> None:
    """Each file holds what an earlier tap wrote before SIGKILL, as its note says.

    One feed was delivered, the other's export was being read; the file of main also has
    the delivered export awaiting enrichment. The local API of the test holds those exports
    under the same ids, ready: the run must resume them, not create one, and enrich the
    contacts of both once.
    """
    old = json.loads(written.read_text())
    partitions = old["state"]["bookmarks"]["export_rows"]["partitions"]
    delivered = next(p for p in partitions if "in_flight" not in p)
    reading = next(p for p in partitions if "in_flight" in p)
    flight = reading["in_flight"]
    pending = old["state"]["bookmarks"].get("enrichment", {}).get("pending_exports", [])
    rows_per_day = tuple(old["api"]["rows_per_day"])
    with FakeContactBased(
        api_key=API_KEY, today=TODAY, build_seconds=0.05, rows_per_day=rows_per_day
    ) as api:
        lookback, page_size = old["config"]["lookback_days"], old["config"]["page_size"]
        for feed_id, export_id in [
            (reading["context"]["feed_id"], flight["export_id"]),
            *((entry["feed_id"], entry["export_id"]) for entry in pending),
        ]:
            api.make_ready_export(feed_id, lookback, page_size=page_size, export_id=export_id)
        feeds = [p["context"]["feed_id"] for p in partitions]
        config = make_config(api, feed_ids=feeds, **old["config"])

        result = run_command([], tmp_path, config=config, state=old["state"])

        assert result.returncode == 0, result.stderr
        assert api.created_exports == []  # resumed, not created again
        records = result.records("export_rows")
        expected = delivered_rows(api, flight["export_id"], YESTERDAY)
        assert by_key(records) == {k: v for k, v in expected.items() if k[1] > flight["rows_done"]}
        assert len(records) == len(expected) - flight["rows_done"] > 0
        final_state = result.states[-1]["bookmarks"]
        final = final_state["export_rows"]["partitions"]
        assert all("in_flight" not in p for p in final)
        assert all(p["delivered_through"] == YESTERDAY.isoformat() for p in final)
        assert delivered["delivered_through"] == YESTERDAY.isoformat()
        if pending:
            contacts = {
                row["contact_id"]
                for export_id in [flight["export_id"], *(e["export_id"] for e in pending)]
                for row in delivered_rows(api, export_id, YESTERDAY).values()
                if row["contact_id"]
            }
            enriched = [r["contact_id"] for r in result.records("enrichment")]
            assert sorted(enriched) == sorted(contacts)  # each contact once
            assert api.enrichment_ids_sent["emails"] == len(contacts)
            assert "pending_exports" not in final_state.get("enrichment", {})


@pytest.mark.parametrize("read_mode", ["csv", "pages"])
def test_a_state_without_page_size_resumes_where_the_api_does_not_echo_it(
    tmp_path: Path, read_mode: str
) -> None:
    # 0.1 recorded no page_size in flight: the CSV is read to its end with the setting's
    # size for its chunks; pages cannot be numbered without it, so that feed stops in one line.
    old = json.loads(STATE_FROM_0_1.read_text())
    partitions = old["state"]["bookmarks"]["export_rows"]["partitions"]
    reading = next(p for p in partitions if "in_flight" in p)
    flight = reading["in_flight"]
    with FakeContactBased(
        api_key=API_KEY, today=TODAY, build_seconds=0.05, rows_per_day=(250, 400)
    ) as api:
        api.faults.drift = {"summary": {"page_size": None}}
        api.make_ready_export(
            reading["context"]["feed_id"], 7, page_size=1000, export_id=flight["export_id"]
        )
        config = make_config(
            api, feed_ids=[reading["context"]["feed_id"]], lookback_days=7, read_mode=read_mode
        )
        assert "page_size" not in listed(api, flight["export_id"])

        result = run_command([], tmp_path, config=config, state=old["state"])

        assert api.created_exports == []
        final = result.states[-1]["bookmarks"]["export_rows"]["partitions"]
        if read_mode == "csv":
            assert result.returncode == 0, result.stderr
            expected = delivered_rows(api, flight["export_id"], YESTERDAY)
            rest = {k: v for k, v in expected.items() if k[1] > flight["rows_done"]}
            assert by_key(result.records("export_rows")) == rest
            assert final[-1]["delivered_through"] == YESTERDAY.isoformat()
        else:
            assert result.returncode == 1
            assert "neither the state nor the API says its page size" in result.stderr
            assert "read_mode csv" in result.stderr.splitlines()[-1]
            assert result.records("export_rows") == []
            assert final[-1]["in_flight"]["export_id"] == flight["export_id"]


def test_an_api_that_ignores_the_export_ids_filter_still_gives_the_exports_asked_for(
    api: FakeContactBased, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = [api.make_ready_export(feed, 3) for feed in api.feed_ids]
    stream = TapContactBased(config=make_config(api)).streams["export_rows"]
    assert isinstance(stream, ContactBasedStream)
    post = stream.client.post

    def without_filter(path: str, body: t.Any, **kwargs: t.Any) -> t.Any:
        return post(path, {k: v for k, v in body.items() if k != "export_ids"}, **kwargs)

    monkeypatch.setattr(stream.client, "post", without_filter)
    lifecycle = ExportLifecycle(stream.client, logging.getLogger("test"))

    # The list is newest first and a page holds as many as were asked for: the oldest
    # export is on the second page of the unfiltered list.
    found = lifecycle.summaries([made[0], "exp_unknown"])

    assert list(found) == [made[0]]
    assert found[made[0]].feed_id == api.feed_ids[0]
