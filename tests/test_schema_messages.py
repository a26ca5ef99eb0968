"""What any Singer target needs from the SCHEMA messages, for every stream.

A key to merge on, one JSON Schema dialect, and records that hold only the fields their
SCHEMA declares (some targets, such as target-csv, fail on any other field, whatever
`additionalProperties` says) and that validate against it.
"""

from __future__ import annotations

import typing as t

import pytest
from singer_sdk.typing import DEFAULT_JSONSCHEMA_VALIDATOR

from tap_contactbased import schemas
from tests.conftest import ALL_STREAMS, make_config
from tests.fake_api import FakeContactBased
from tests.singer_run import SyncResult, run_tap

NEW_FIELDS: dict[str, t.Any] = {"plan_tier": "gold"}


@pytest.fixture
def every_stream(api: FakeContactBased) -> SyncResult:
    """One sync of every stream, each with records, on an API that grew new fields."""
    api.faults.new_fields = NEW_FIELDS
    api.faults.extra_columns = ("buying_stage",)
    config = make_config(
        api,
        lookback_days=3,
        export_bundles=["phones"],
        enrichment_bundles=["emails", "individual-core"],
    )
    result = run_tap(config)
    assert result.streams() == set(ALL_STREAMS)
    return result


def schema_messages(result: SyncResult) -> dict[str, dict[str, t.Any]]:
    """The SCHEMA message of each stream (the last, if one was sent again)."""
    return {m["stream"]: m for m in result.messages if m["type"] == "SCHEMA"}


def test_every_stream_has_a_key_that_its_schema_requires(every_stream: SyncResult) -> None:
    for stream, message in schema_messages(every_stream).items():
        keys = message["key_properties"]
        assert keys, f"{stream} has no key_properties"
        schema = message["schema"]
        assert set(keys) <= set(schema["properties"]), stream
        assert set(keys) <= set(schema.get("required", [])), stream


def test_every_schema_names_the_same_dialect(every_stream: SyncResult) -> None:
    dialects = {s: m["schema"].get("$schema") for s, m in schema_messages(every_stream).items()}

    assert dialects == dict.fromkeys(ALL_STREAMS, schemas.DIALECT)


def test_records_hold_only_declared_fields_and_validate(every_stream: SyncResult) -> None:
    messages = schema_messages(every_stream)
    for stream in ALL_STREAMS:
        schema = messages[stream]["schema"]
        validator = DEFAULT_JSONSCHEMA_VALIDATOR(
            schema, format_checker=DEFAULT_JSONSCHEMA_VALIDATOR.FORMAT_CHECKER
        )
        records = every_stream.records(stream)
        for record in records:
            assert set(record) <= set(schema["properties"]), stream
            errors = [e.message for e in validator.iter_errors(record)]
            assert not errors, (stream, errors)
    # The column the exports add was in the discovery preview: a declared column.
    assert all(r["buying_stage"] for r in every_stream.records("export_rows"))


def test_fields_the_api_adds_to_export_summaries_are_kept(every_stream: SyncResult) -> None:
    summaries = every_stream.records("exports")

    assert summaries
    assert all(s.get("extra_fields") == NEW_FIELDS for s in summaries)
