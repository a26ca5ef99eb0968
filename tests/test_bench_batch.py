"""`python -m bench --batch` runs on a tiny export and prints its table (nothing is timed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_the_batch_benchmark_counts_every_row_in_both_modes(
    compression: str, tmp_path: Path
) -> None:
    figures = tmp_path / "batch.json"
    command = [
        sys.executable,
        "-m",
        "bench",
        "--batch",
        "--batch-compression",
        compression,
        "--rows",
        "300",
        "--repeat",
        "1",
        "--out",
        str(tmp_path),
        "--json",
        str(figures),
    ]
    answer = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )

    # The benchmark stops with "bench: FAILED" when a run misses a row of the export.
    assert answer.returncode == 0, answer.stderr[-3000:]
    document = json.loads(figures.read_text(encoding="utf-8"))
    record, batch = document["results"]["csv"]["record"], document["results"]["csv"]["batch"]
    assert record["rows"] == batch["rows"] > 0
    assert document["meta"]["batch_compression"] == compression
    gzip_alone = document["gzip_alone_cpu_us_per_row"]["csv"]
    assert (gzip_alone is not None) == (compression == "gzip")
    assert ("csv gzip alone" in answer.stdout) == (compression == "gzip")
    assert "csv batch/record" in answer.stdout
    assert not (tmp_path / "batch-files").exists()
