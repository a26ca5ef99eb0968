"""`python -m bench --e2e` runs on a tiny export and prints its table (nothing is timed)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.e2e.meltano import REPO, base_env

VARIANTS = ("floor", "shipped", "batch", "duckdb")


def test_the_end_to_end_benchmark_lands_every_row_by_each_path(
    meltano_plugins: None, tmp_path: Path
) -> None:
    command = [
        sys.executable,
        "-m",
        "bench",
        "--e2e",
        "--rows",
        "300",
        "--repeat",
        "1",
        "--variants",
        ",".join(VARIANTS),
        "--out",
        str(tmp_path),
        "--json",
        str(tmp_path / "e2e.json"),
    ]
    env = base_env(f"sqlite:///{tmp_path / 'unused.db'}")
    answer = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False
    )

    assert answer.returncode == 0, answer.stderr[-3000:]
    lines = answer.stdout.splitlines()
    header = lines[0].split()
    assert header[:4] == ["variant", "wall", "s", "rows/s"]
    rows = {line.split()[0]: line.split() for line in lines[1 : 1 + len(VARIANTS)]}
    assert set(rows) == set(VARIANTS)
    assert rows["floor"][3] == "1.0x"
    for variant in VARIANTS:
        assert re.fullmatch(r"\d+\.\dx", rows[variant][3]), rows[variant]
    assert "Every run landed all rows with the export's checksum." in answer.stdout
    # BATCH into target-postgres: the load timestamps are NULL and the files stay.
    assert re.search(r"batch: [\d,]+ rows with NULL _sdc_received_at", answer.stdout)
    assert re.search(r"batch: [1-9]\d* batch files left on disk", answer.stdout)
    assert (tmp_path / "e2e.json").exists()
