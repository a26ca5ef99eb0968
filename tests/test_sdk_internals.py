"""The SDK behaviour the tap relies on beyond its documented surface (sdk_internals.py).

Each test fails when singer-sdk changes what the tap leans on.
"""

from __future__ import annotations

import inspect
import typing as t
from pathlib import Path

from singer_sdk import Stream, Tap

from tap_contactbased.sdk_internals import (
    BaseBatchFileEncoding,
    BatchConfig,
    announce_batch,
    storage_location,
    write_state_now,
)
from tap_contactbased.tap import TapContactBased
from tests.conftest import make_config
from tests.fake_api import FakeContactBased
from tests.singer_run import CollectingWriter, run_tap


def parameters(function: t.Callable[..., t.Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_a_state_can_be_written_in_the_middle_of_a_stream(api: FakeContactBased) -> None:
    writer = CollectingWriter()
    tap = TapContactBased(config=make_config(api), message_writer=writer)
    stream = tap.streams["export_rows"]
    flight = {"export_id": "e", "rows_done": 0}
    stream.get_context_state({"feed_id": "f"})["in_flight"] = flight

    write_state_now(stream)
    flight["rows_done"] = 1000
    write_state_now(stream)  # the SDK marked the state flushed after the first

    states = [m["value"] for m in writer.messages if m["type"] == "STATE"]
    flights = [s["bookmarks"]["export_rows"]["partitions"][0]["in_flight"] for s in states]
    assert [f["rows_done"] for f in flights] == [0, 1000]


def test_record_messages_come_from_one_overridable_generator() -> None:
    assert parameters(Stream._generate_record_messages) == ["self", "record"]
    assert "_generate_record_messages" in inspect.getsource(Stream._write_record_message)
    assert "_stream_version" in inspect.getsource(Stream._generate_record_messages)


def test_the_sdks_bookmark_is_advanced_through_one_method_per_record() -> None:
    assert parameters(Stream._increment_stream_state) == ["self", "latest_record", "context"]
    assert "_increment_stream_state" in inspect.getsource(Stream._sync_records)


def test_streams_sync_and_log_their_costs_in_the_order_of_tap_streams(
    api: FakeContactBased,
) -> None:
    source = inspect.getsource(Tap.sync_all)
    assert "self.streams.values()" in source
    assert source.index("stream.sync()") < source.index("stream.log_sync_costs()")
    config = make_config(api, enrichment_bundles=["emails"])

    result = run_tap(config, streams=["export_rows", "enrichment", "feeds"])

    order = [m["stream"] for m in result.messages if m["type"] == "RECORD"]
    assert order.index("enrichment") > max(i for i, s in enumerate(order) if s == "export_rows")
    assert list(TapContactBased(config=config).streams)[-1] == "enrichment"


def test_a_batch_message_can_be_written_for_one_stream_alias(api: FakeContactBased) -> None:
    writer = CollectingWriter()
    tap = TapContactBased(config=make_config(api), message_writer=writer)
    stream = tap.streams["export_rows"]
    config = BatchConfig.from_dict(
        {"encoding": {"format": "jsonl", "compression": "gzip"}, "storage": {"root": "file:///b"}}
    )
    assert isinstance(config.encoding, BaseBatchFileEncoding)

    announce_batch(stream, "rows_alias", config.encoding, ["file:///b/one.jsonl.gz"])

    (message,) = writer.messages
    assert message["type"] == "BATCH"
    assert message["stream"] == "rows_alias"
    assert message["encoding"] == {"format": "jsonl", "compression": "gzip"}
    assert message["manifest"] == ["file:///b/one.jsonl.gz"]


def test_files_written_at_the_storage_location_are_where_the_sdk_names_them(
    tmp_path: Path,
) -> None:
    root = tmp_path / "not-yet"
    config = BatchConfig.from_dict(
        {"encoding": {"format": "jsonl"}, "storage": {"root": root.as_uri(), "prefix": "p-"}}
    )

    fs, folder = storage_location(config.storage)
    with fs.open(f"{folder}/one.jsonl", "wb") as file:
        file.write(b"{}\n")

    assert root.is_dir()
    url = config.storage.get_url("one.jsonl")
    assert url == (root / "one.jsonl").as_uri()
    assert Path(url.removeprefix("file://")).read_bytes() == b"{}\n"


def test_the_sdk_counts_the_batches_of_get_batches_on_the_counter_of_get_batch_counter() -> None:
    source = inspect.getsource(Stream._sync_batches)
    assert source.index("self.get_batch_counter()") < source.index("self.get_batches(")
    assert "self._sync_batches(" in inspect.getsource(Stream.sync)


def test_the_sdks_batches_take_records_before_stream_maps_and_selection() -> None:
    # Why every stream's get_batches maps its records itself (client.py): the SDK's batches
    # are `_sync_records`'s records, while maps and selection apply to record messages.
    assert parameters(Stream._sync_records) == ["self", "context", "write_messages"]
    source = inspect.getsource(Stream.get_batches)
    assert "self._sync_records(context, write_messages=False)" in source
    assert "_generate_record_messages" not in source
    assert "pop_deselected_record_properties" in inspect.getsource(Stream._generate_record_messages)


def test_the_sdks_record_loop_counts_on_one_counter_and_checks_the_dry_run_cap() -> None:
    source = inspect.getsource(Stream._sync_records)
    assert source.count("self.get_record_counter()") == 1
    assert "_check_max_record_limit" in source
    assert "ABORT_AT_RECORD_COUNT" in inspect.getsource(Stream._check_max_record_limit)


def test_the_sdk_activates_a_version_at_the_start_of_sync_through_one_property() -> None:
    """ActivatedAtEnd turns that property off and activates after these two methods return."""
    source = inspect.getsource(Stream.sync)
    assert "self.emit_activate_version_messages" in source
    start = source.index("_write_activate_version_message")
    assert start < source.index("_sync_batches(") < source.index("_sync_records(")
    assert parameters(Stream._write_activate_version_message) == ["self", "full_table_version"]
    assert parameters(Stream._sync_records) == ["self", "context", "write_messages"]
    assert parameters(Stream._sync_batches) == ["self", "batch_config", "context"]
    # The final STATE of a sync is the last thing `_sync_records` writes.
    body = inspect.getsource(Stream._sync_records).rstrip()
    assert body.endswith("self._write_state_message()")
