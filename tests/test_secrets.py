"""The API key and signed download URLs never appear in output, logs or state.

Every scenario runs the tap as a process with debug logging and a recognisable key, and
scans everything it wrote: Singer messages (records and state), and every log line.
"""

from __future__ import annotations

import typing as t
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import make_config
from tests.fake_api import FakeContactBased
from tests.secret_checks import DEBUG, WRONG_KEY, leaks
from tests.singer_run import SyncResult, run_command

Scenario = Callable[[FakeContactBased, Path], list[SyncResult]]


def sync(api: FakeContactBased, tmp: Path, **overrides: t.Any) -> list[SyncResult]:
    config = make_config(api, enrichment_bundles=["emails"], **overrides)
    return [run_command([], tmp, config=config, env=DEBUG)]


def twice_with_state(api: FakeContactBased, tmp: Path) -> list[SyncResult]:
    first = sync(api, tmp)[0]
    config = make_config(api, enrichment_bundles=["emails"])
    second = run_command([], tmp, config=config, state=first.last_state, env=DEBUG)
    return [first, second]


def with_faults(**knobs: t.Any) -> Scenario:
    def scenario(api: FakeContactBased, tmp: Path) -> list[SyncResult]:
        for name, value in knobs.items():
            setattr(api.faults, name, value)
        return sync(api, tmp, read_mode="csv")

    return scenario


def probe(api: FakeContactBased, tmp: Path, **overrides: t.Any) -> list[SyncResult]:
    """The probe, with a ready export to read; its JSON report is scanned with its output."""
    api.make_ready_export(api.feed_ids[0], 7, enrichment_bundles=["emails"])
    config = make_config(api, export_bundles=["emails"], **overrides)
    report = tmp / "probe.json"
    result = run_command(["--probe", "--probe-report", str(report)], tmp, config=config, env=DEBUG)
    if report.exists():
        result.stdout += report.read_text()
    return [result]


SCENARIOS: dict[str, Scenario] = {
    "full sync, csv": lambda api, tmp: sync(api, tmp, read_mode="csv"),
    "full sync, pages": lambda api, tmp: sync(api, tmp, read_mode="pages"),
    "resumed from state": twice_with_state,
    "expired URLs and cut downloads": with_faults(expire_urls=2, truncate_downloads=1),
    "rate limited": with_faults(rate_limit_every=4, retry_after=0.01),
    "refused key": lambda api, tmp: [
        run_command([], tmp, config={**make_config(api), "api_key": WRONG_KEY}, env=DEBUG)
    ],
    "failed export": with_faults(fail_exports=True),
    "plan only": lambda api, tmp: sync(api, tmp, plan_only=True),
    "discovery": lambda api, tmp: [
        run_command(["--discover"], tmp, config=make_config(api), env=DEBUG)
    ],
    "connection test": lambda api, tmp: [
        run_command(["--test"], tmp, config=make_config(api), env=DEBUG)
    ],
    "probe with a ready export": probe,
    "probe, refused key": lambda api, tmp: probe(api, tmp, api_key=WRONG_KEY),
    "invalid config": lambda api, tmp: [
        run_command([], tmp, config={**make_config(api), "page_size": 5}, env=DEBUG)
    ],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_no_secret_in_anything_the_tap_writes(
    api: FakeContactBased, tmp_path: Path, name: str
) -> None:
    results = SCENARIOS[name](api, tmp_path)

    written = "\n".join(r.stdout + r.stderr for r in results)
    assert "DEBUG" in written  # the scan covers debug logging
    assert leaks(api, written) == []
    if name.startswith(("full sync, csv", "expired", "probe with")):
        assert api.issued_signatures  # signed URLs were in play
