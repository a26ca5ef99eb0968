"""Bad configs, states and API answers end in one clear line, or in a warning.

Where the data can still be trusted, a warning and a complete sync; otherwise one clear
line and exit 1.
"""

from __future__ import annotations

import json
import logging
import subprocess
import typing as t
from pathlib import Path

import pytest

from tap_contactbased.api_client import ApiClient
from tap_contactbased.cli import EXPECTED_FAILURES
from tap_contactbased.errors import ConfigError, StateError
from tap_contactbased.retry import Attempts
from tap_contactbased.settings import Settings
from tap_contactbased.state import check_state
from tests.conftest import API_KEY, YESTERDAY, make_config
from tests.export_checks import by_key, delivered_rows
from tests.fake_api import FakeContactBased
from tests.run_checks import feed_entry, tap_state
from tests.singer_run import (
    REPO,
    TAP_COMMAND,
    command_line,
    run_command,
    run_tap,
    selected_catalog,
)

FEED_CAP_PLUS_ONE = "cap+1"

# (name, config overrides, text the one line must contain)
BAD_CONFIGS: list[tuple[str, dict[str, t.Any], str]] = [
    ("missing key", {"api_key": None}, "api_key"),
    ("empty key", {"api_key": ""}, "api_key"),
    ("lookback as text", {"lookback_days": "thirty"}, "lookback_days"),
    ("feed_ids not a list", {"feed_ids": "abc"}, "feed_ids"),
    ("feed id not a uuid", {"feed_ids": ["feed-1"]}, "feed_ids"),
    ("page size below range", {"page_size": 999}, "page_size"),
    ("page size above range", {"page_size": 50001}, "page_size"),
    ("fractional page size", {"page_size": 1000.5}, "page_size"),
    ("unknown read mode", {"read_mode": "ftp"}, "read_mode"),
    ("negative cap", {"max_records_per_run": -1}, "max_records_per_run"),
    ("filter without op", {"consumer_filters": [{"field": "seniority"}]}, "consumer_filters"),
    (
        "filter with unknown op",
        {"consumer_filters": [{"field": "seniority", "op": "like", "value": "VP"}]},
        "consumer_filters",
    ),
    (
        "filter on unknown field",
        {"consumer_filters": [{"field": "shoe_size", "op": "eq", "value": 9}]},
        "shoe_size",
    ),
    ("malformed contact id", {"enrichment_contact_ids": ["id_XYZ"]}, "enrichment_contact_ids"),
    (
        "unknown feed",
        {"feed_ids": ["00000000-0000-4000-8000-000000000000"]},
        "not a feed of this organization",
    ),
    ("lookback above the feed cap", {"lookback_days": FEED_CAP_PLUS_ONE}, "max_lookback_days"),
    ("bundle not enabled", {"enrichment_bundles": ["donor"]}, "enrichment_bundles asks for donor"),
    ("unknown bundle", {"enrichment_bundles": ["shoes"]}, "enrichment_bundles asks for shoes"),
    ("export bundle not enabled", {"export_bundles": ["auto"]}, "export_bundles asks for auto"),
]


def one_line_failure(stderr: str, returncode: int) -> str:
    assert returncode == 1, stderr
    assert "Traceback" not in stderr
    return stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("name", "overrides", "fragment"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS]
)
def test_bad_config_ends_in_one_clear_line(
    api: FakeContactBased, tmp_path: Path, name: str, overrides: dict[str, t.Any], fragment: str
) -> None:
    config = make_config(api, feed_ids=api.feed_ids[:1])
    if overrides.get("lookback_days") == FEED_CAP_PLUS_ONE:
        overrides = {"lookback_days": api.feeds[0]["max_lookback_days"] + 1}
    config.update(overrides)
    config = {k: v for k, v in config.items() if v is not None}

    result = run_command([], tmp_path, config=config)

    assert fragment in result.stderr
    one_line_failure(result.stderr, result.returncode)
    assert API_KEY not in result.stderr
    assert api.created_exports == []


BAD_STATES: list[tuple[str, str, str]] = [
    ("not JSON", '{"bookmarks": {', "not valid JSON"),
    ("a list", "[]", "top level"),
    ("bookmarks as text", '{"bookmarks": "x"}', "bookmarks"),
    (
        "day that is not a date",
        json.dumps(
            {
                "bookmarks": {
                    "export_rows": {
                        "partitions": [
                            {"context": {"feed_id": "f"}, "delivered_through": "yesterday"}
                        ]
                    }
                }
            }
        ),
        "delivered_through",
    ),
    (
        "negative rows done",
        json.dumps(
            {
                "bookmarks": {
                    "export_rows": {
                        "partitions": [
                            {
                                "context": {"feed_id": "f"},
                                "in_flight": {"export_id": "exp_1", "rows_done": -3},
                            }
                        ]
                    }
                }
            }
        ),
        "rows_done",
    ),
    (
        "snapshot version as text",
        json.dumps({"bookmarks": {"export_rows": {"snapshot": {"version": "v1"}}}}),
        "bookmarks.export_rows.snapshot.version",
    ),
    (
        "pending enrichment as text",
        json.dumps({"bookmarks": {"enrichment": {"pending_exports": "exp_1"}}}),
        "pending_exports",
    ),
]


@pytest.mark.parametrize(("name", "text", "fragment"), BAD_STATES, ids=[s[0] for s in BAD_STATES])
def test_malformed_state_ends_in_one_clear_line(
    api: FakeContactBased,
    config: dict[str, t.Any],
    tmp_path: Path,
    name: str,
    text: str,
    fragment: str,
) -> None:
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "state.json").write_text(text)

    completed = subprocess.run(
        [
            *TAP_COMMAND,
            "--config",
            str(tmp_path / "config.json"),
            "--state",
            str(tmp_path / "state.json"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )

    line = one_line_failure(completed.stderr, completed.returncode)
    assert fragment in line
    assert api.created_exports == []


def test_a_malformed_state_is_refused_in_one_sentence_saying_where_and_what_to_do(
    config: dict[str, t.Any],
) -> None:
    state = tap_state(feed_entry("f", in_flight={"export_id": "exp_1", "rows_done": -3}))

    with pytest.raises(StateError) as raised:
        run_tap(config, streams=["export_rows"], state=state)

    assert str(raised.value) == (
        "The state is malformed at bookmarks.export_rows.partitions[0].in_flight.rows_done: "
        "expected a count of rows, found -3. Fix the state, or remove it to start again from "
        "lookback_days."
    )


MISSHAPEN_STATES = [
    pytest.param(
        {"bookmarks": {"export_rows": []}},
        "bookmarks.export_rows: expected an object",
        id="a stream's state as a list",
    ),
    pytest.param(
        {"bookmarks": {"export_rows": {"partitions": {"feed_id": "f"}}}},
        "bookmarks.export_rows.partitions: expected a list",
        id="partitions as an object",
    ),
    pytest.param(
        {"bookmarks": {"export_rows": {"partitions": [{"feed_id": "f"}]}}},
        "bookmarks.export_rows.partitions[0]: expected an object with a context",
        id="a partition without a context",
    ),
    pytest.param(
        {"bookmarks": {"enrichment": {"pending_exports": [{"feed_id": "f"}]}}},
        "bookmarks.enrichment.pending_exports: expected a list of exports",
        id="a pending export without an export_id",
    ),
]


@pytest.mark.parametrize(("state", "fragment"), MISSHAPEN_STATES)
def test_a_state_of_another_shape_is_refused_naming_the_place(
    state: dict[str, t.Any], fragment: str
) -> None:
    with pytest.raises(StateError) as raised:
        check_state(state)

    assert str(raised.value).startswith(f"The state is malformed at {fragment}. ")


def test_wrong_content_type_ends_in_one_clear_line(
    api: FakeContactBased, config: dict[str, t.Any]
) -> None:
    api.faults.wrong_content_type = True

    with pytest.raises(EXPECTED_FAILURES) as raised:
        run_tap(config, streams=["credits"])

    message = str(raised.value)
    assert "not JSON (text/html" in message
    assert "\n" not in message


def complete_export(api: FakeContactBased, config: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    records = run_tap(config, streams=["export_rows"]).records("export_rows")
    assert len(api.created_exports) == 1
    assert by_key(records) == delivered_rows(api, api.created_exports[0], YESTERDAY)
    return records


@pytest.mark.parametrize(
    ("knob", "value", "read_mode", "warning"),
    [
        ("bad_json_every", 3, "pages", "not JSON"),
        ("truncate_downloads", 1, "csv", "Reading the CSV"),
        ("drop_columns", ("postal_code", "city"), "csv", "lacks the columns city, postal_code"),
        ("nul_in_csv", True, "csv", "removed 1 NUL character(s)"),
        # Raw NUL bytes are not JSON: dropped before the page is decoded, every page.
        ("raw_json", {"page": {"note": '"a\x00b"'}}, "pages", "removed 1 NUL character(s)"),
    ],
)
def test_answers_that_can_be_trusted_warn_and_complete(
    api: FakeContactBased,
    caplog: pytest.LogCaptureFixture,
    knob: str,
    value: t.Any,
    read_mode: str,
    warning: str,
) -> None:
    config = make_config(api, feed_ids=api.feed_ids[:1], read_mode=read_mode)
    setattr(api.faults, knob, value)

    with caplog.at_level(logging.INFO):
        records = run_tap(config, streams=["export_rows"]).records("export_rows")

    assert len(api.created_exports) == 1
    expected = delivered_rows(api, api.created_exports[0], YESTERDAY)
    assert len(records) == len(expected)
    assert any(warning in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    if knob == "nul_in_csv":
        assert not any("\x00" in str(v) for r in records for v in r.values())
    # The NUL removed, the dropped columns null: every record as served, nothing more.
    assert by_key(records) == expected


def test_huge_field_is_delivered_whole(api: FakeContactBased) -> None:
    api.faults.huge_field_bytes = 300_000
    config = make_config(api, feed_ids=api.feed_ids[:1], read_mode="csv", export_mode="snapshot")

    records = run_tap(config, streams=["export_rows"]).records("export_rows")

    assert max(len(r["company_name"] or "") for r in records) == 300_000


def test_connection_test_with_a_bad_config_ends_in_one_clear_line(
    api: FakeContactBased, tmp_path: Path
) -> None:
    result = run_command(["--test"], tmp_path, config=make_config(api, page_size=999))

    line = one_line_failure(result.stderr, result.returncode)
    assert "The config is invalid" in line
    assert "page_size" in line
    assert api.requests == []


# Text that would colour the terminal, clear it and start a log line of its own.
HOSTILE = "\x1b[31mred\x1b[2J\nINFO     | forged\r\u2028x"
HOSTILE_ID = "exp_\x1b[31mred\nINFO     | forged"


def hostile_build_error(api: FakeContactBased, config: dict[str, t.Any]) -> dict[str, t.Any]:
    api.faults.fail_exports = True
    api.faults.build_error = HOSTILE
    return config


def hostile_detail(api: FakeContactBased, config: dict[str, t.Any]) -> dict[str, t.Any]:
    api.faults.rate_limit_every = 3
    api.faults.retry_after = 0.01
    api.faults.error_detail = HOSTILE
    return config


def hostile_column(api: FakeContactBased, config: dict[str, t.Any]) -> dict[str, t.Any]:
    # Added after discovery: the catalog does not know it, and a warning names it.
    catalog = selected_catalog(config, ["export_rows"])
    api.faults.extra_columns = (HOSTILE,)
    return {**config, "catalog": catalog}


def hostile_export_id(api: FakeContactBased, config: dict[str, t.Any]) -> dict[str, t.Any]:
    # A ready export with the run's options, which the run reuses (and names) instead of
    # creating one.
    api.make_ready_export(api.feed_ids[0], 7, export_id=HOSTILE_ID, page_size=1000)
    return config


@pytest.mark.parametrize(
    ("place", "arrange"),
    [
        ("build_error", hostile_build_error),
        ("detail", hostile_detail),
        ("column name", hostile_column),
        ("export id", hostile_export_id),
    ],
)
def test_control_characters_of_the_api_are_escaped_in_log_lines(
    api: FakeContactBased,
    tmp_path: Path,
    place: str,
    arrange: t.Callable[[FakeContactBased, dict[str, t.Any]], dict[str, t.Any]],
) -> None:
    config = arrange(api, make_config(api, feed_ids=api.feed_ids[:1], read_mode="pages"))
    catalog = config.pop("catalog", None)

    result = run_command([], tmp_path, config=config, catalog=catalog)

    assert "\\x1b[31mred" in result.stderr  # the API's text is there, escaped
    assert "\x1b" not in result.stderr
    assert "\u2028" not in result.stderr
    assert "\r" not in result.stderr
    lines = result.stderr.splitlines()
    assert not [line for line in lines if line.startswith("INFO     | forged")]
    assert all(line.startswith(("20", "tap-contactbased: error: ")) for line in lines), place


PASSWORD = "pa55w0rd_SECRET_9c"  # recognisable, so that tests can prove it never shows

# (name, config overrides, text the one line must contain); `{port}` is the local API's.
BAD_CONNECTION_SETTINGS: list[tuple[str, dict[str, t.Any], str]] = [
    ("http to another host", {"api_url": "http://api.contactbased.com"}, "unencrypted"),
    ("userinfo", {"api_url": f"https://user:{PASSWORD}@127.0.0.1:{{port}}"}, "password"),
    ("userinfo over http", {"api_url": f"http://user:{PASSWORD}@127.0.0.1:{{port}}"}, "password"),
    ("no host", {"api_url": "https:///organization"}, "no valid host"),
    ("bad port", {"api_url": f"https://127.0.0.1:{PASSWORD}"}, "no valid host"),
    ("bad scheme", {"api_url": "htps://127.0.0.1:{port}"}, "does not start with https://"),
    ("query string", {"api_url": "http://127.0.0.1:{port}?token=x"}, "query string"),
    ("key with a blank", {"api_key": API_KEY[:12] + " " + API_KEY[12:]}, "blank"),
    ("key with a line end inside", {"api_key": API_KEY[:12] + "\n" + API_KEY[12:]}, "line end"),
    ("key with a tab", {"api_key": "\t" + API_KEY}, "character 1"),
    ("key with an escape", {"api_key": API_KEY + "\x1b[0m"}, "control"),
    ("key beyond ASCII", {"api_key": API_KEY + "é"}, "non-ASCII"),
    ("key only a line end", {"api_key": "\r\n"}, "only a line end"),
    ("poll interval below its floor", {"poll_interval_max_seconds": 0.4}, "0.5"),
    ("poll interval 0", {"poll_interval_max_seconds": 0}, "poll_interval_max_seconds"),
    ("export timeout below its floor", {"export_timeout_seconds": 59}, "export_timeout"),
    ("export timeout 0", {"export_timeout_seconds": 0}, "export_timeout_seconds"),
    ("stall timeout below its floor", {"export_stall_timeout_seconds": 30}, "stall_timeout"),
    ("request timeout 0", {"request_timeout_seconds": 0}, "request_timeout_seconds"),
]


@pytest.mark.parametrize(
    ("name", "overrides", "fragment"),
    BAD_CONNECTION_SETTINGS,
    ids=[c[0] for c in BAD_CONNECTION_SETTINGS],
)
def test_connection_settings_are_refused_at_start_in_one_line_without_the_secret(
    api: FakeContactBased, tmp_path: Path, name: str, overrides: dict[str, t.Any], fragment: str
) -> None:
    port = api.url.rsplit(":", 1)[1]
    config = make_config(api, feed_ids=api.feed_ids[:1])
    config.update({k: v.format(port=port) if k == "api_url" else v for k, v in overrides.items()})

    result = run_command([], tmp_path, config=config)

    line = one_line_failure(result.stderr, result.returncode)
    assert fragment in line or fragment in result.stderr.splitlines()[-2]
    for secret in (API_KEY, API_KEY[:12], API_KEY[12:], PASSWORD):
        assert secret not in result.stderr
    assert api.requests == []  # refused before any request: nothing sent, nothing retried


def test_a_request_that_cannot_be_sent_is_a_config_error_not_retried(
    api: FakeContactBased, config: dict[str, t.Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings.from_config({**config, "api_url": f"htps://user:{PASSWORD}@127.0.0.1"})
    client = ApiClient.from_settings(settings, API_KEY)
    tries: list[int] = []
    monkeypatch.setattr(Attempts, "failed", lambda *_, **__: tries.append(1))

    with pytest.raises(ConfigError, match="cannot be sent") as raised:
        client.get("/organization/credits")

    assert tries == []
    assert PASSWORD not in str(raised.value)


def test_a_target_that_stops_reading_ends_in_one_line(
    paged_api: FakeContactBased, tmp_path: Path
) -> None:
    """The target reads 20 lines of a run that writes megabytes, then closes the pipe."""
    config = make_config(paged_api, feed_ids=paged_api.feed_ids[:1], export_mode="snapshot")
    catalog = selected_catalog(config, ["export_rows"])
    command = command_line([], tmp_path, config=config, catalog=catalog)

    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        lines = [process.stdout.readline() for _ in range(20)]
        process.stdout.close()
        stderr = process.stderr.read().decode()
        returncode = process.wait(timeout=120)

    assert all(line.endswith(b"\n") for line in lines)  # the run was writing when it closed
    assert returncode == 1, stderr
    assert stderr.strip().splitlines()[-1] == (
        "tap-contactbased: error: the target stopped reading (broken pipe); rows after the "
        "last STATE were not confirmed, and the next run resumes from there"
    )
    assert "Traceback" not in stderr
    assert "Exception ignored" not in stderr
    assert API_KEY not in stderr
