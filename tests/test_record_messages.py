"""export_rows skips the SDK's per-record selection walk only when it would drop nothing."""

from __future__ import annotations

import datetime
import decimal
import json
import logging
import subprocess
import sys
import typing as t

import pytest
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import RecordMessage, StateMessage

from tap_contactbased.streams.export_rows import ExportRowsStream
from tap_contactbased.tap import TapContactBased
from tap_contactbased.writer import RecordBufferingWriter
from tests.fake_api import FakeContactBased
from tests.singer_run import REPO, deselect_property, run_tap, selected_catalog


def record_messages(result: t.Any) -> list[dict[str, t.Any]]:
    return [
        {k: v for k, v in m.items() if k != "time_extracted"}
        for m in result.messages
        if m["type"] == "RECORD"
    ]


def test_fast_path_writes_what_the_sdk_path_writes(
    api: FakeContactBased, config: dict[str, t.Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {
        **config,
        "export_bundles": ["emails"],
        "stream_maps": {"export_rows": {"score_x2": "intent_score * 2 if intent_score else None"}},
    }
    catalog = selected_catalog(config, ["export_rows"])

    fast = run_tap(config, catalog=catalog)
    monkeypatch.setattr(ExportRowsStream, "selects_every_property", False)
    sdk = run_tap(config, catalog=catalog)

    assert len(api.created_exports) == 2  # the second run read the same exports
    assert record_messages(fast) == record_messages(sdk)
    assert any(m["record"]["score_x2"] for m in record_messages(fast))
    assert all("time_extracted" in m for m in fast.messages if m["type"] == "RECORD")


def test_a_deselected_property_is_still_dropped(
    api: FakeContactBased, config: dict[str, t.Any]
) -> None:
    catalog = selected_catalog(config, ["export_rows"])
    deselect_property(catalog, "export_rows", "linkedin_url")

    records = run_tap(config, catalog=catalog).records("export_rows")

    assert records
    assert all("linkedin_url" not in r for r in records)
    assert all("company_name" in r for r in records)


def test_the_writer_writes_records_byte_for_byte_as_the_sdks_writer(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    extracted = datetime.datetime(2026, 11, 27, 8, 30, 1, 123456, tzinfo=datetime.timezone.utc)
    record = {
        "export_id": "exp_1",
        "export_row": 7,
        "intent_score": 0.25,
        "amount": decimal.Decimal("12.50"),
        "seen": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
        "bundle_emails": {"emails": [{"address": "a@b.c"}], "note": 'quote " and \n'},
        "empty": None,
    }
    messages = [
        RecordMessage(stream="export_rows", record=record, time_extracted=extracted),
        RecordMessage(stream="export_rows", record={**record, "export_row": 8}, version=12),
        RecordMessage(stream="other", record={"a": 1}),
        StateMessage(value={"bookmarks": {}}),
        RecordMessage(stream="export_rows", record=record, time_extracted=extracted),
    ]
    writer = RecordBufferingWriter()

    for message in messages:
        writer.write_message(message)
    writer.flush()

    reference = MsgSpecWriter()
    expected = b"".join(bytes(reference.format_message(m)) for m in messages)
    assert capsysbinary.readouterr().out == expected


def test_flattened_records_match_the_sdk_path(
    api: FakeContactBased, config: dict[str, t.Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {
        **config,
        "export_bundles": ["emails"],
        "flattening_enabled": True,
        "flattening_max_depth": 1,
    }
    catalog = selected_catalog(config, ["export_rows"])

    fast = run_tap(config, catalog=catalog)
    monkeypatch.setattr(ExportRowsStream, "selects_every_property", False)
    sdk = run_tap(config, catalog=catalog)

    assert record_messages(fast) == record_messages(sdk)
    assert any(k.startswith("bundle_emails__") for m in record_messages(fast) for k in m["record"])


def test_records_written_past_the_sdks_loop_are_the_sdks_records_and_are_counted(
    api: FakeContactBased,
    config: dict[str, t.Any],
    capsysbinary: pytest.CaptureFixture[bytes],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    catalog = selected_catalog(config, ["export_rows"])
    sdk = run_tap(config, catalog=catalog)  # a writer of the tests': the SDK's loop
    capsysbinary.readouterr()
    caplog.clear()
    through_sdk: list[t.Any] = []
    monkeypatch.setattr(ExportRowsStream, "_write_record_message", through_sdk.append)

    with caplog.at_level(logging.INFO, logger="singer_sdk.metrics"):
        tap = TapContactBased(
            config=config, catalog=catalog, state={}, message_writer=RecordBufferingWriter()
        )
        tap.sync_all()
        tap.message_writer.flush()  # type: ignore[attr-defined]

    lines = [json.loads(line) for line in capsysbinary.readouterr().out.splitlines()]
    direct = [
        {k: v for k, v in m.items() if k != "time_extracted"}
        for m in lines
        if m["type"] == "RECORD"
    ]
    assert through_sdk == []
    assert direct == record_messages(sdk)
    assert all("time_extracted" in m for m in lines if m["type"] == "RECORD")
    counts = [
        json.loads(r.getMessage().split("METRIC: ", 1)[1])
        for r in caplog.records
        if '"record_count"' in r.getMessage() and '"export_rows"' in r.getMessage()
    ]
    assert sum(c["value"] for c in counts) == len(direct) > 0


# A writer left with a buffered record at exit, made on the process's stdout or under capture.
LEFT_AT_EXIT = """
import contextlib, io, sys
from singer_sdk.singerlib import RecordMessage
from tap_contactbased.writer import RecordBufferingWriter

def left_with_a_record():
    writer = RecordBufferingWriter()
    writer.write_message(RecordMessage(stream="feeds", record={"feed_id": "f1"}))
    return writer

if sys.argv[1] == "captured":
    with contextlib.redirect_stdout(io.StringIO()):
        kept = left_with_a_record()
else:
    kept = left_with_a_record()
"""


@pytest.mark.parametrize(
    ("made_on", "written_at_exit"),
    [("own", b'{"type":"RECORD","stream":"feeds","record":{"feed_id":"f1"}}\n'), ("captured", b"")],
)
def test_records_left_at_exit_go_only_to_the_stdout_the_writer_was_made_for(
    made_on: str, written_at_exit: bytes
) -> None:
    """A tap run inside a test (or any program) never writes into the program's output."""
    completed = subprocess.run(
        [sys.executable, "-c", LEFT_AT_EXIT, made_on],
        capture_output=True,
        check=True,
        cwd=REPO,
        timeout=60,
    )

    assert completed.stdout == written_at_exit
    assert completed.stderr == b""
