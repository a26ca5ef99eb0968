"""The organization streams emit exactly what the API serves, across pages."""

from __future__ import annotations

import datetime
import json
import typing as t

import pytest
import requests

from tap_contactbased.streams.organization import reading_day
from tests.conftest import API_KEY, TODAY, make_config
from tests.fake_api import FakeContactBased
from tests.singer_run import run_command, run_tap

ORGANIZATION_STREAMS = ["feeds", "credits", "feed_limit", "bundles", "filter_fields"]
SNAPSHOT_STREAMS = ["credits", "feed_limit"]
# What a newer API might add: a plain value and an object.
NEW_FIELDS: dict[str, t.Any] = {"plan_tier": "gold", "quota": {"window": "monthly", "max": 9}}


def served(api: FakeContactBased, method: str, path: str, body: t.Any = None) -> t.Any:
    response = requests.request(
        method, f"{api.url}{path}", headers={"X-API-Key": API_KEY}, json=body, timeout=10
    )
    response.raise_for_status()
    return response.json()


def test_discovery_lists_every_stream(config: dict[str, t.Any], tmp_path: t.Any) -> None:
    result = run_command(["--discover"], tmp_path, config=config)

    assert result.returncode == 0, result.stderr
    catalog = json.loads(result.stdout)
    names = {entry["tap_stream_id"] for entry in catalog["streams"]}
    assert set(ORGANIZATION_STREAMS) <= names
    assert {"export_rows", "exports", "feed_totals", "enrichment"} <= names
    keys = {e["tap_stream_id"]: e["key_properties"] for e in catalog["streams"]}
    assert keys["feeds"] == ["feed_id"]
    assert keys["bundles"] == ["key"]
    assert keys["filter_fields"] == ["field"]
    assert keys["credits"] == ["snapshot_date"]
    assert keys["feed_limit"] == ["snapshot_date"]
    assert keys["export_rows"] == ["export_id", "export_row"]


def test_organization_streams_emit_exactly_what_is_served(
    api: FakeContactBased, config: dict[str, t.Any]
) -> None:
    result = run_tap(config, streams=ORGANIZATION_STREAMS)

    assert result.records("feeds") == api.feeds
    day = {"snapshot_date": TODAY.isoformat()}
    assert result.records("credits") == [served(api, "GET", "/organization/credits") | day]
    assert result.records("feed_limit") == [served(api, "GET", "/organization/feed-limit") | day]
    assert result.records("bundles") == served(api, "GET", "/enrich/bundles")["bundles"]
    fields = served(api, "POST", "/intent/feeds/filters/fields", {})["fields"]
    assert result.records("filter_fields") == fields
    assert result.streams() == set(ORGANIZATION_STREAMS)


def test_feeds_are_read_across_every_page() -> None:
    with FakeContactBased(api_key=API_KEY, today=TODAY, feed_count=450) as api:
        result = run_tap(make_config(api), streams=["feeds"])

        feeds = result.records("feeds")
        assert len(feeds) == 450
        assert [f["feed_id"] for f in feeds] == api.feed_ids
        assert api.count_requests("GET", "/organization/feeds") == 3


def test_contract_fields_are_top_level_and_no_record_has_extra_fields(
    api: FakeContactBased, config: dict[str, t.Any]
) -> None:
    result = run_tap(config, streams=ORGANIZATION_STREAMS)

    # The local API serves every contract field; the schemas name them all.
    for served_feed, record in zip(api.feeds, result.records("feeds"), strict=True):
        assert record == served_feed
    for stream in ORGANIZATION_STREAMS:
        assert result.records(stream)
        assert all("extra_fields" not in record for record in result.records(stream))


def test_fields_the_api_adds_later_are_kept_in_extra_fields(
    api: FakeContactBased, config: dict[str, t.Any]
) -> None:
    api.faults.new_fields = NEW_FIELDS

    result = run_tap(config, streams=ORGANIZATION_STREAMS)

    for stream in ORGANIZATION_STREAMS:
        records = result.records(stream)
        assert records, stream
        declared = set(result.schema(stream)["schema"]["properties"])
        for record in records:
            assert set(record) <= declared, stream
            assert record["extra_fields"] == NEW_FIELDS, stream
    assert [
        {k: v for k, v in r.items() if k != "extra_fields"} for r in result.records("feeds")
    ] == (api.feeds)


@pytest.mark.parametrize("stream", SNAPSHOT_STREAMS)
def test_a_reading_is_keyed_by_the_day_of_the_api_clock(
    api: FakeContactBased, config: dict[str, t.Any], stream: str
) -> None:
    # This machine's clock is elsewhere: the local API's clock decides.
    api.today = datetime.date(2031, 1, 2)

    first = run_tap(config, streams=[stream])
    api.today = datetime.date(2031, 1, 3)
    second = run_tap(config, streams=[stream])

    assert first.schema(stream)["key_properties"] == ["snapshot_date"]
    assert [r["snapshot_date"] for r in first.records(stream)] == ["2031-01-02"]
    assert [r["snapshot_date"] for r in second.records(stream)] == ["2031-01-03"]


@pytest.mark.parametrize(
    ("date_header", "day"),
    [
        ("Sat, 02 Jan 2031 23:59:59 GMT", "2031-01-02"),
        ("Sun, 03 Jan 2031 01:30:00 +0200", "2031-01-02"),  # converted to UTC
        ("Sat, 02 Jan 2031 23:59:59 -0000", "2031-01-02"),  # "-0000": no zone given, GMT
    ],
)
def test_the_reading_day_is_the_utc_day_of_the_date_header(date_header: str, day: str) -> None:
    response = requests.Response()
    response.headers["Date"] = date_header

    assert reading_day(response) == day


@pytest.mark.parametrize("date_header", [None, "", "yesterday-ish"])
def test_without_a_valid_date_header_the_reading_day_is_this_machines(
    date_header: str | None,
) -> None:
    response = requests.Response()
    if date_header is not None:
        response.headers["Date"] = date_header
    before = datetime.datetime.now(datetime.timezone.utc).date()

    day = reading_day(response)

    after = datetime.datetime.now(datetime.timezone.utc).date()
    assert day in {before.isoformat(), after.isoformat()}
