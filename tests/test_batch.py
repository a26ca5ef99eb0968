"""BATCH messages: export rows in JSONL files, with state only after the files are written."""

from __future__ import annotations

import gzip
import json
import typing as t
from pathlib import Path

from tests.conftest import YESTERDAY
from tests.export_checks import by_key, delivered_rows
from tests.fake_api import FakeContactBased
from tests.singer_run import run_tap


def test_export_rows_in_batch_files(
    api: FakeContactBased, config: dict[str, t.Any], tmp_path: Path
) -> None:
    batch_config = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": f"file://{tmp_path}", "prefix": "batch-"},
    }

    result = run_tap({**config, "batch_config": batch_config}, streams=["export_rows"])

    batches = [m for m in result.messages if m["type"] == "BATCH"]
    assert batches
    assert result.records("export_rows") == []
    records = []
    for message in batches:
        for url in message["manifest"]:
            with gzip.open(url.removeprefix("file://"), "rt") as lines:
                records += [json.loads(line) for line in lines]
    expected = {}
    for export_id in api.created_exports:
        expected.update(delivered_rows(api, export_id, YESTERDAY))
    assert by_key(records) == expected
    # No state confirms rows before the batch file that holds them is announced.
    kinds = [m["type"] for m in result.messages]
    first_batch = kinds.index("BATCH")
    assert "STATE" not in kinds[:first_batch]
    assert kinds[-1] == "STATE"
