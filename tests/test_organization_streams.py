"""The organization streams emit exactly what the API serves, across pages."""

from __future__ import annotations

import json
import typing as t

import requests

from tests.conftest import API_KEY, TODAY, make_config
from tests.fake_api import FakeContactBased
from tests.singer_run import run_command, run_tap

ORGANIZATION_STREAMS = ["feeds", "credits", "feed_limit", "bundles", "filter_fields"]


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
    assert keys["export_rows"] == ["export_id", "export_row"]


def test_organization_streams_emit_exactly_what_is_served(
    api: FakeContactBased, config: dict[str, t.Any]
) -> None:
    result = run_tap(config, streams=ORGANIZATION_STREAMS)

    assert result.records("feeds") == api.feeds
    assert result.records("credits") == [served(api, "GET", "/organization/credits")]
    assert result.records("feed_limit") == [served(api, "GET", "/organization/feed-limit")]
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


def test_unknown_fields_from_the_api_pass_through(
    api: FakeContactBased, config: dict[str, t.Any]
) -> None:
    result = run_tap(config, streams=["feeds"])

    # The local API serves every contract field; none may be dropped by the schema.
    for served_feed, record in zip(api.feeds, result.records("feeds"), strict=True):
        assert set(record) == set(served_feed)
