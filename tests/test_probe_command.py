"""`tap-contactbased --probe`: a table on stdout, a JSON report, exit 0, 1 or 2, one line."""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest

from tests.conftest import API_KEY, TODAY, make_config
from tests.fake_api import FakeContactBased
from tests.singer_run import SyncResult, run_command

TABLE_TITLE = "ContactBased API probe of "


def probe_command(
    api: FakeContactBased,
    tmp: Path,
    *flags: str,
    env: dict[str, str] | None = None,
    **config: t.Any,
) -> SyncResult:
    return run_command(["--probe", *flags], tmp, config=make_config(api, **config), env=env)


def table_rows(stdout: str) -> list[list[str]]:
    lines = [line for line in stdout.splitlines() if line.startswith("| ")][2:]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]


def one_error_line(result: SyncResult) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("tap-contactbased:")]
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_nothing_differs_exit_0_and_a_row_per_point(api: FakeContactBased, tmp_path: Path) -> None:
    api.make_ready_export(api.feed_ids[0], 7)

    result = probe_command(api, tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(TABLE_TITLE)
    rows = table_rows(result.stdout)
    assert len(rows) == 21
    assert {row[4] for row in rows} == {"holds", "not checked"}
    assert api.created_exports == []


def test_something_differs_exit_1(api: FakeContactBased, tmp_path: Path) -> None:
    api.faults.drift = {"error": {"detail": "reason"}}

    result = probe_command(api, tmp_path)

    assert result.returncode == 1, result.stderr
    differing = [row for row in table_rows(result.stdout) if row[4] == "differs"]
    assert [row[0] for row in differing] == ["error bodies"]


def test_a_refused_key_exits_2_with_one_line(api: FakeContactBased, tmp_path: Path) -> None:
    result = probe_command(api, tmp_path, api_key="cbk_wrong_key_for_the_probe")

    assert result.returncode == 2
    line = one_error_line(result)
    assert line.startswith("tap-contactbased: error: probe: the API refused the key")
    assert "check the api_key setting" in line
    assert "cbk_wrong_key_for_the_probe" not in result.stdout + result.stderr
    assert result.stdout == ""


def test_an_api_out_of_reach_exits_2_with_one_line(tmp_path: Path) -> None:
    with FakeContactBased(api_key=API_KEY, today=TODAY) as api:
        config = make_config(api)
    # Stopped: its port now refuses connections.

    result = run_command(["--probe"], tmp_path, config=config)

    assert result.returncode == 2
    line = one_error_line(result)
    assert "cannot reach the API" in line
    assert "Check api_url" in line


def test_invalid_settings_exit_2_with_one_line(api: FakeContactBased, tmp_path: Path) -> None:
    result = probe_command(api, tmp_path, page_size=5)

    assert result.returncode == 2
    assert "invalid settings" in one_error_line(result)
    assert api.requests == []


def test_the_report_file_holds_the_table_as_json(api: FakeContactBased, tmp_path: Path) -> None:
    api.faults.drift = {"credits": {"records_remaining": None}}
    report = tmp_path / "probe.json"

    result = probe_command(api, tmp_path, "--probe-report", str(report))

    assert result.returncode == 0, result.stderr
    written = json.loads(report.read_text())
    assert set(written) == {"checks", "tap_version", "api_host"}
    assert written["api_host"] == api.url.removeprefix("http://")
    rows = table_rows(result.stdout)
    assert [c["point"] for c in written["checks"]] == [row[0] for row in rows]
    assert [c["verdict"] for c in written["checks"]] == [row[4] for row in rows]
    credits = next(c for c in written["checks"] if c["point"] == "credits counters")
    assert credits["verdict"] == "differs but tolerated"
    assert "records_total - records_used - records_reserved" in credits["note"]


@pytest.mark.parametrize("existing", [False, True])
def test_the_report_file_is_for_its_owner_only(
    api: FakeContactBased, tmp_path: Path, existing: bool
) -> None:
    report = tmp_path / "probe.json"
    if existing:
        report.write_text("an older report")
        report.chmod(0o644)

    result = probe_command(api, tmp_path, "--probe-report", str(report))

    assert result.returncode == 0, result.stderr
    assert json.loads(report.read_text())["checks"]
    assert report.stat().st_mode & 0o777 == 0o600


def test_a_report_without_probe_still_probes_and_never_syncs(
    api: FakeContactBased, tmp_path: Path
) -> None:
    report = tmp_path / "probe.json"

    result = run_command(
        ["--probe-report", str(report)], tmp_path, config=make_config(api, lookback_days=2)
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(TABLE_TITLE)
    assert json.loads(report.read_text())["checks"]
    assert api.created_exports == []
    assert api.count_requests("POST", "/intent/feeds/exports") == 0


@pytest.mark.parametrize("number", ["0.5", "30"])
def test_settings_from_variables_are_typed_by_the_schema(
    api: FakeContactBased, tmp_path: Path, number: str
) -> None:
    # As Meltano passes them to a command: poll_interval_max_seconds is a JSON number.
    env = {
        "TAP_CONTACTBASED_API_URL": api.url,
        "TAP_CONTACTBASED_API_KEY": API_KEY,
        "TAP_CONTACTBASED_FEED_IDS": json.dumps(api.feed_ids[:1]),
        "TAP_CONTACTBASED_LOOKBACK_DAYS": "3",
        "TAP_CONTACTBASED_POLL_INTERVAL_MAX_SECONDS": number,
        "TAP_CONTACTBASED_REQUIRE_CONTACT_ID": "true",
    }

    result = run_command(["--config", "ENV", "--probe"], tmp_path, env=env)

    assert result.returncode == 0, result.stderr
    previews = [r.body or {} for r in api.requests if r.path == "/intent/feeds/exports/preview"]
    assert [(b["feed_id"], b["lookback_days"], b["require_contact_id"]) for b in previews] == [
        (api.feed_ids[0], 3, True)
    ]


def test_a_variable_that_is_not_its_type_exits_2(api: FakeContactBased, tmp_path: Path) -> None:
    env = {
        "TAP_CONTACTBASED_API_URL": api.url,
        "TAP_CONTACTBASED_API_KEY": API_KEY,
        "TAP_CONTACTBASED_EXPORT_TIMEOUT_SECONDS": "soon",
    }

    result = run_command(["--config", "ENV", "--probe"], tmp_path, env=env)

    assert result.returncode == 2
    assert "TAP_CONTACTBASED_EXPORT_TIMEOUT_SECONDS is not a valid number" in one_error_line(result)
