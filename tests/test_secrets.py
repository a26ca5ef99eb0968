"""The API key and signed download URLs never appear in output, logs, state or files.

Every scenario runs the tap as a process with a recognisable key and scans everything it
wrote: Singer messages (records and state), every log line, the probe's report and the
BATCH files. The scenarios cover the usual runs at debug level, and the runs that once
printed secrets: a key that ends in a line end, a key of the wrong type, and an API whose
error answers repeat the request they refuse (key, URL with query string, headers), in
sync, `--test`, `--discover` and `--probe`, at debug and at the default level.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import typing as t
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from singer_sdk.exceptions import ConfigValidationError

from tap_contactbased.errors import ConfigError
from tap_contactbased.tap import TapContactBased
from tests.conftest import API_KEY, make_config
from tests.fake_api import FakeContactBased
from tests.secret_checks import DEBUG, WRONG_KEY, leaks
from tests.singer_run import SyncResult, run_command

NUMBER_KEY = 731255907319
LIST_KEY = ["cbk_live_SECRET_in_a_list_5e1"]
LEVELS = {"debug": DEBUG, "default": {}}
COMMANDS = {"sync": [], "--test": ["--test"], "--discover": ["--discover"], "--probe": ["--probe"]}

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


# The runs that printed secrets before: each command, at each level.


@dataclass(frozen=True)
class Case:
    """One run of a command whose output must hold no secret."""

    command: str
    level: str
    config: dict[str, t.Any] = field(default_factory=dict)  # overrides
    faults: dict[str, t.Any] = field(default_factory=dict)
    batch: bool = False  # a sync that writes BATCH files, scanned too

    def run(self, api: FakeContactBased, tmp: Path) -> tuple[SyncResult, str]:
        """Run it; the result, and its output with the probe's report and BATCH files."""
        for name, value in self.faults.items():
            setattr(api.faults, name, value)
        if self.command == "--probe":
            api.make_ready_export(api.feed_ids[0], 7)
        args = list(COMMANDS[self.command])
        report = tmp / "probe.json"
        if self.command == "--probe":
            args += ["--probe-report", str(report)]
        overrides = dict(self.config)
        if self.batch:
            overrides["batch_config"] = {
                "encoding": {"format": "jsonl", "compression": "gzip"},
                "storage": {"root": f"file://{tmp / 'files'}", "prefix": "batch-"},
            }
        config = {**make_config(api, feed_ids=api.feed_ids[:1]), **overrides}
        result = run_command(args, tmp, config=config, env=LEVELS[self.level])
        written = result.stdout + result.stderr
        if report.exists():
            written += report.read_text()
        for path in (tmp / "files").glob("*"):
            written += path.name + gzip.decompress(path.read_bytes()).decode()
        return result, written


def last_line(result: SyncResult) -> str:
    assert "Traceback" not in result.stderr
    return result.stderr.strip().splitlines()[-1]


# Errors that repeat the request: rate limits on the way (retried, logged by the retry
# loop), refusals at the end (the last line), expired download URLs (the signed URL
# in an object-storage error), the probe's provoked 404 and 422 (its table and report).
ECHO_CASES = {
    f"{command}, {level}, detail as {shape}": Case(
        command,
        level,
        config={"export_bundles": ["auto"]} if command == "--discover" else {},
        faults={
            "echo_request": shape,
            "rate_limit_every": 3,
            "retry_after": 0.01,
            **({"expire_urls": 1} if command == "sync" else {}),
        },
        batch=command == "sync" and level == "default",
    )
    for (command, level), shape in zip(
        [(c, lv) for c in COMMANDS for lv in LEVELS],
        ["text", "list", "object", "text", "list", "object", "text", "list"],
        strict=True,
    )
}
ECHO_CASES["sync, default, refused key, detail as text"] = Case(
    "sync", "default", config={"api_key": WRONG_KEY}, faults={"echo_request": "text"}
)


@pytest.mark.parametrize("name", list(ECHO_CASES))
def test_errors_that_repeat_the_request_are_never_printed(
    api: FakeContactBased, tmp_path: Path, name: str
) -> None:
    case = ECHO_CASES[name]

    result, written = case.run(api, tmp_path)

    assert api.fault_engine.faults.echo_request  # the fault was on ...
    assert any(r.status >= 400 for r in api.requests)  # ... and errors were answered
    assert leaks(api, written) == []
    assert "{'url': " not in written  # no repr of the echoed `request` objects
    if case.level == "debug":
        assert "DEBUG" in written
    if "refused key" in name:
        assert "401 Unauthorized (Invalid or inactive API key -- " in last_line(result)
    elif case.command == "sync":
        assert result.returncode == 0, result.stderr
        assert api.issued_signatures  # a signed URL was in play
        assert " again in " in written  # the retry warning repeated the detail
        assert "<redacted>" in written
    if case.batch:
        assert list((tmp_path / "files").glob("*.jsonl.gz"))


KEY_SHAPE_CASES = {
    **{
        f"{command}, key ending in \\n, debug": Case(
            command, "debug", config={"api_key": API_KEY + "\n"}
        )
        for command in COMMANDS
    },
    **{
        f"{command}, key ending in \\r\\n, default": Case(
            command, "default", config={"api_key": API_KEY + "\r\n"}, batch=command == "sync"
        )
        for command in COMMANDS
    },
}


@pytest.mark.parametrize("name", list(KEY_SHAPE_CASES))
def test_a_key_ending_in_a_line_end_works_with_a_warning_and_is_never_printed(
    api: FakeContactBased, tmp_path: Path, name: str
) -> None:
    case = KEY_SHAPE_CASES[name]

    result, written = case.run(api, tmp_path)

    assert leaks(api, written) == []
    assert "Invalid header value" not in written
    assert "Traceback" not in result.stderr
    assert "ended in a line end" in result.stderr
    if case.command in ("sync", "--probe"):
        assert result.returncode == 0, result.stderr  # sent without its line end: accepted
        assert all(r.status != 401 for r in api.requests)


WRONG_TYPE_CASES = {
    **{
        f"{command}, key as a number, debug": Case(command, "debug", {"api_key": NUMBER_KEY})
        for command in COMMANDS
    },
    **{
        f"{command}, key as a list, default": Case(command, "default", {"api_key": LIST_KEY})
        for command in COMMANDS
    },
}


@pytest.mark.parametrize("name", list(WRONG_TYPE_CASES))
def test_a_key_of_the_wrong_type_is_refused_without_its_value(
    api: FakeContactBased, tmp_path: Path, name: str
) -> None:
    case = WRONG_TYPE_CASES[name]

    result, written = case.run(api, tmp_path)

    assert str(NUMBER_KEY) not in written
    assert LIST_KEY[0] not in written
    assert result.returncode != 0
    assert "api_key" in result.stderr
    assert "not shown" in result.stderr
    assert api.requests == []


@pytest.mark.parametrize(("key", "kind"), [(NUMBER_KEY, "a number"), (LIST_KEY, "a list")])
def test_a_key_that_is_no_text_is_refused_in_the_same_line_at_sync_and_at_discovery(
    key: object, kind: str
) -> None:
    line = (
        f"The api_key setting is {kind}, not a text (its value is not shown): "
        "set it to the key as a text"
    )
    config = {"api_key": key}

    with pytest.raises(ConfigValidationError) as at_sync:  # a sync enforces the schema
        TapContactBased(config=config, validate_config=True)
    with pytest.raises(ConfigError) as at_discovery:  # discovery does not: check_api_key
        TapContactBased(config=config, validate_config=False)

    assert at_sync.value.errors == [line]
    assert str(at_discovery.value) == line


@pytest.mark.parametrize("level", list(LEVELS))
@pytest.mark.parametrize("command", ["sync", "--probe"])
def test_a_download_url_that_cannot_be_parsed_is_one_line_that_never_shows_it(
    api: FakeContactBased, tmp_path: Path, command: str, level: str
) -> None:
    api.faults.malformed_download_urls = True

    result, written = Case(command, level, config={"read_mode": "csv"}).run(api, tmp_path)

    assert api.issued_signatures  # signed URLs were given out ...
    assert leaks(api, written) == []  # ... and none shows, not even in the debug traceback
    if level == "default":
        assert "Traceback" not in result.stderr
    if command == "--probe":
        report = (tmp_path / "probe.json").read_text()
        assert "the API gave a download URL that cannot be used (InvalidURL)" in report
    else:
        assert "the API gave a download URL that cannot be used" in result.stderr.splitlines()[-1]


def test_the_http_libraries_are_required_past_their_known_cves() -> None:
    # For installs without the lock: requests < 2.32.4 sends .netrc credentials to the wrong
    # host (CVE-2024-47081); urllib3 < 2.5 follows redirects it was told not to
    # (CVE-2025-50181), and before 2.7 may decompress a whole body a read did not ask for.
    required = {
        (r := Requirement(line)).name: r.specifier
        for line in importlib.metadata.requires("tap-contactbased") or []
    }

    assert "2.32.3" not in required["requests"]
    assert "2.32.4" in required["requests"]
    assert "2.4.0" not in required["urllib3"]
    assert "1.26.20" not in required["urllib3"]
    assert "2.6.3" not in required["urllib3"]
    assert "2.7.0" in required["urllib3"]
