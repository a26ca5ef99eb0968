"""Versioned full-table loads: ACTIVATE_VERSION after a stream's last STATE, never before.

With `emit_activate_version_messages` on, `feeds`, `bundles`, `filter_fields` and (in
snapshot mode) `export_rows` send a version with every record and activate it once the
stream was delivered whole. A run that fails or is killed activates nothing; a snapshot it
left unfinished is finished by the next run under the same version. Off (the default),
the messages are those of a tap without the capability.
"""

from __future__ import annotations

import json
import time
import typing as t
from pathlib import Path

import pytest

from tap_contactbased.errors import ConfigError
from tests.conftest import ALL_STREAMS, make_config
from tests.export_checks import by_key, delivered_rows
from tests.fake_api import FakeContactBased
from tests.kill_harness import flights, run_with_kills, since_last_state
from tests.singer_run import SyncResult, run_command, run_tap, selected_catalog
from tests.test_batch import batch_config, batch_records

Message = dict[str, t.Any]

VERSIONED = ("feeds", "bundles", "filter_fields", "export_rows")
HISTORY = ("credits", "feed_limit", "exports", "feed_totals", "enrichment")
PAGE_SIZE = 1000


def versioned_config(api: FakeContactBased, **overrides: t.Any) -> dict[str, t.Any]:
    """Snapshots with versions asked for, enrichment on: every stream has records."""
    settings = {
        "export_mode": "snapshot",
        "emit_activate_version_messages": True,
        "enrichment_bundles": ["emails"],
        **overrides,
    }
    return make_config(api, **settings)


def by_stream(messages: list[Message]) -> dict[str, list[Message]]:
    """Each stream's messages, from its SCHEMA to the next stream's (streams run in turn)."""
    streams: dict[str, list[Message]] = {}
    current: list[Message] | None = None
    for message in messages:
        if message["type"] == "SCHEMA":
            current = streams.setdefault(message["stream"], [])
        if current is not None:
            current.append(message)
    return streams


def activations(messages: list[Message], stream: str = "export_rows") -> list[Message]:
    return [m for m in messages if m["type"] == "ACTIVATE_VERSION" and m["stream"] == stream]


def record_versions(messages: list[Message], stream: str) -> set[t.Any]:
    """The `version` of the stream's RECORD messages ("absent" where there is none)."""
    return {
        m.get("version", "absent")
        for m in messages
        if m["type"] == "RECORD" and m["stream"] == stream
    }


def snapshot_record(state: dict[str, t.Any] | None) -> dict[str, t.Any] | None:
    """The open snapshot a state holds, if any."""
    record = (state or {}).get("bookmarks", {}).get("export_rows", {}).get("snapshot")
    return t.cast("dict[str, t.Any] | None", record)


def timed_run(config: dict[str, t.Any], **kwargs: t.Any) -> tuple[SyncResult, int, int]:
    """A run in this process, and the moments (ms since the epoch) it began and ended in."""
    began = int(time.time() * 1000)
    result = run_tap(config, **kwargs)
    return result, began, int(time.time() * 1000)


def test_with_the_setting_off_no_message_carries_a_version_or_activates(
    api: FakeContactBased,
) -> None:
    config = versioned_config(api, emit_activate_version_messages=None)

    result = run_tap(config, streams=ALL_STREAMS)

    assert result.streams() == set(ALL_STREAMS)
    assert [m for m in result.messages if "version" in m] == []
    assert {m["type"] for m in result.messages} == {"SCHEMA", "RECORD", "STATE"}
    assert snapshot_record(result.last_state) is None


def test_versioned_streams_activate_once_after_their_last_state(api: FakeContactBased) -> None:
    result, began, ended = timed_run(versioned_config(api), streams=ALL_STREAMS)

    streams = by_stream(result.messages)
    assert set(streams) == set(ALL_STREAMS)
    for name in VERSIONED:
        messages = streams[name]
        (version,) = record_versions(messages, name)
        assert began <= version <= ended, name  # this run's own version
        # One activation, the stream's last message: after its records and its last STATE.
        assert activations(messages, name) == [messages[-1]]
        assert messages[-1] == {"type": "ACTIVATE_VERSION", "stream": name, "version": version}
        assert messages[-2]["type"] == "STATE", name
    for name in HISTORY:
        assert record_versions(streams[name], name) == {"absent"}, name
        assert activations(result.messages, name) == [], name
    # The STATE before export_rows' activation confirms every feed: none in flight, none open.
    confirming = streams["export_rows"][-2]
    assert flights(confirming) == []
    assert snapshot_record(confirming["value"]) is None
    partitions = confirming["value"]["bookmarks"]["export_rows"]["partitions"]
    delivered = {p["context"]["feed_id"]: p["last_export_id"] for p in partitions}
    assert sorted(delivered.values()) == sorted(api.created_exports)


def test_export_rows_in_incremental_mode_carries_no_version(api: FakeContactBased) -> None:
    config = versioned_config(api, export_mode="incremental")

    result = run_tap(config, streams=["export_rows", "feeds"])

    assert result.records("export_rows")
    assert record_versions(result.messages, "export_rows") == {"absent"}
    assert activations(result.messages) == []
    assert len(activations(result.messages, "feeds")) == 1


@pytest.mark.parametrize(
    "overrides",
    [{"feed_ids": []}, {"plan_only": True}],
    ids=["no feeds", "plan only"],
)
def test_a_run_that_exports_nothing_activates_nothing(
    api: FakeContactBased, overrides: dict[str, t.Any]
) -> None:
    """An activation without rows would empty the table (the shards' prepare run has none)."""
    result = run_tap(versioned_config(api, **overrides), streams=["export_rows", "feeds"])

    assert result.records("export_rows") == []
    assert activations(result.messages) == []
    assert snapshot_record(result.last_state) is None
    assert len(activations(result.messages, "feeds")) == 1


def test_every_run_of_a_finished_snapshot_begins_a_new_version(api: FakeContactBased) -> None:
    config = versioned_config(api)

    first = run_tap(config, streams=["export_rows"])
    second = run_tap(config, streams=["export_rows"], state=first.last_state)

    (old,) = record_versions(first.messages, "export_rows")
    (new,) = record_versions(second.messages, "export_rows")
    assert new > old
    assert [m["version"] for m in activations(first.messages + second.messages)] == [old, new]
    assert len(api.created_exports) == 2 * len(config["feed_ids"])  # each run, every feed


def test_a_failed_feed_activates_nothing_and_the_next_run_finishes_under_its_version(
    api: FakeContactBased, tmp_path: Path
) -> None:
    failing = api.feed_ids[1]
    api.faults.fail_export_feeds = {failing}
    config = versioned_config(api)
    catalog = selected_catalog(config, ["export_rows"])

    first = run_command([], tmp_path, config=config, catalog=catalog)

    assert first.returncode == 1
    assert "1 feed(s) did not finish" in first.stderr.strip().splitlines()[-1]
    assert activations(first.messages) == []
    (version,) = record_versions(first.messages, "export_rows")
    assert snapshot_record(first.last_state) == {"version": version, "delivered": [api.feed_ids[0]]}

    api.faults.fail_export_feeds = set()
    created = len(api.created_exports)
    second = run_tap(config, catalog=catalog, state=first.last_state)

    # The failing feed's export was replaced; the delivered one was not exported again.
    assert [api.exports[e].feed_id for e in api.created_exports[created:]] == [failing]
    assert record_versions(second.messages, "export_rows") == {version}
    assert second.messages[-1] == {
        "type": "ACTIVATE_VERSION",
        "stream": "export_rows",
        "version": version,
    }
    assert snapshot_record(second.last_state) is None
    expected: dict[tuple[str, int], dict[str, t.Any]] = {}
    for export_id in api.created_exports:
        if api.exports[export_id].status == "ready":
            expected.update(delivered_rows(api, export_id, None))
    records = first.records("export_rows") + second.records("export_rows")
    assert by_key(records) == expected


def delivered_one_then_mid_page(records_after_state: int) -> t.Callable[[list[Message]], bool]:
    """Kill in the middle of the second feed's rows, the first feed's export delivered."""

    def point(messages: list[Message]) -> bool:
        seen, state = since_last_state(messages)
        if state is None or seen < records_after_state:
            return False
        record = snapshot_record(state["value"]) or {}
        return len(record.get("delivered", [])) == 1 and any(
            f["rows_done"] > 0 for f in flights(state)
        )

    return point


def test_a_snapshot_killed_midway_is_finished_under_its_version(
    paged_api: FakeContactBased, tmp_path: Path
) -> None:
    config = make_config(
        paged_api,
        export_mode="snapshot",
        emit_activate_version_messages=True,
        read_mode="pages",
        page_size=PAGE_SIZE,
        max_concurrent_exports=1,  # the first feed is delivered before the second is read
    )
    catalog = selected_catalog(config, ["export_rows"])

    campaign = run_with_kills(config, catalog, [delivered_one_then_mid_page(137)], tmp_path)

    killed, finishing = campaign.attempts
    assert killed.killed
    assert not finishing.killed
    assert activations(killed.messages) == []
    (version,) = record_versions(campaign.messages, "export_rows")
    # The resumed run exported nothing again: one export per feed in all.
    assert sorted(paged_api.exports[e].feed_id for e in paged_api.created_exports) == sorted(
        config["feed_ids"]
    )
    assert activations(finishing.messages) == [finishing.messages[-1]]
    assert finishing.messages[-1]["version"] == version
    expected: dict[tuple[str, int], dict[str, t.Any]] = {}
    for export_id in paged_api.created_exports:
        expected.update(delivered_rows(paged_api, export_id, None))
    assert by_key(campaign.records("export_rows")) == expected


@pytest.mark.parametrize("versions", [True, False], ids=["versioned", "off"])
def test_batch_files_carry_the_version_of_their_rows(
    api: FakeContactBased, tmp_path: Path, versions: bool
) -> None:
    config = versioned_config(
        api, emit_activate_version_messages=versions, batch_config=batch_config(tmp_path)
    )

    result = run_tap(config, streams=["export_rows", "feeds"])

    for stream in ("export_rows", "feeds"):
        records = batch_records(result.messages, stream)
        assert records, stream
        found = {r.get("_sdc_table_version", "absent") for r in records}
        messages = by_stream(result.messages)[stream]
        if versions:
            (version,) = found
            assert messages[-1] == {
                "type": "ACTIVATE_VERSION",
                "stream": stream,
                "version": version,
            }
            assert messages[-2]["type"] == "STATE"
        else:
            assert found == {"absent"}
            assert activations(result.messages, stream) == []


def test_a_snapshot_version_after_the_runs_start_is_refused(api: FakeContactBased) -> None:
    """A version no run wrote would outlive every later snapshot: nothing is spent on it."""
    future = int(time.time() * 1000) + 86_400_000
    state = {"bookmarks": {"export_rows": {"snapshot": {"version": future, "delivered": []}}}}

    result = run_tap(
        versioned_config(api), streams=["export_rows"], state=state, raise_errors=False
    )

    assert isinstance(result.error, ConfigError)
    assert "bookmarks.export_rows.snapshot.version" in str(result.error)
    assert "after this run's start" in str(result.error)
    assert api.created_exports == []
    assert json.dumps(result.messages).count("ACTIVATE_VERSION") == 0
