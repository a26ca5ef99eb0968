"""Adopt the tap as a user would: a new Meltano project, the plugin definition, the wheel.

Nothing of this repository's Meltano project is used: `meltano init` makes a project in a
temporary folder, `meltano add --from-ref` adds the tap from plugin/tap-contactbased.yml with
its pip_url pointed at the wheel `uv build` just made, and target-jsonl from a definition
as complete (Meltano Hub is out of reach). The key and the URL go in with `meltano config
set`, the rest as TAP_CONTACTBASED_* variables; then `meltano run` against the local API.
It shares nothing with this repository's Meltano project (.meltano/), so it runs beside the
tests/e2e process rather than in it (scripts/test).
"""

from __future__ import annotations

import json
import os
import typing as t
from pathlib import Path

import yaml

from tests.conftest import API_KEY, YESTERDAY
from tests.distributions import Distributions, project_version
from tests.e2e.meltano import ISOLATED_PREFIXES, PLUGIN_DEFINITION, Meltano, plugin
from tests.export_checks import delivered_rows
from tests.fake_api import FakeContactBased

EXPECTED_FILES = {
    "bundles",
    "credits",
    "export_rows",
    "exports",
    "feed_limit",
    "feed_totals",
    "feeds",
    "filter_fields",
}  # enrichment emits nothing: no enrichment_bundles


def fresh_env() -> dict[str, str]:
    """This process's environment without any Meltano or plugin setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ISOLATED_PREFIXES)}
    env.update(
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        MELTANO_CLI_DISABLE_VERSION_CHECK="true",
        NO_COLOR="1",
    )
    return env


def write_yaml(path: Path, content: dict[str, t.Any]) -> None:
    path.write_text(yaml.safe_dump(content, sort_keys=False))


def jsonl_lines(path: Path) -> list[dict[str, t.Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_new_meltano_project_adds_the_built_wheel_and_syncs(
    api: FakeContactBased, dists: Distributions, tmp_path: Path
) -> None:
    (tmp_path / "logs").mkdir()
    meltano = Meltano(tmp_path / "logs", fresh_env(), project=tmp_path)
    meltano("init", "project", "--no-usage-stats")
    meltano.project = project = tmp_path / "project"

    # The published definition, its pip_url pointed at the wheel, as the README says.
    definition = yaml.safe_load(PLUGIN_DEFINITION.read_text())
    definition["pip_url"] = str(dists.wheel)
    write_yaml(project / "tap-contactbased.yml", definition)
    meltano(
        "add",
        "--plugin-type",
        "extractor",
        "--from-ref",
        "tap-contactbased.yml",
        "tap-contactbased",
    )
    jsonl = {k: v for k, v in plugin("loaders", "target-jsonl").items() if k != "config"}
    write_yaml(project / "target-jsonl.yml", {**jsonl, "variant": "andyh1203"})
    meltano("add", "--plugin-type", "loader", "--from-ref", "target-jsonl.yml", "target-jsonl")
    # The key from a file, so that it is in no command line (`ps` shows those).
    (tmp_path / "key").write_text(API_KEY)
    meltano("config", "set", "tap-contactbased", "api_key", "--from-file", str(tmp_path / "key"))
    meltano("config", "set", "tap-contactbased", "api_url", api.url)
    out = tmp_path / "jsonl"
    out.mkdir()
    meltano.set(
        TAP_CONTACTBASED_FEED_IDS=json.dumps(api.feed_ids[:2]),
        TAP_CONTACTBASED_LOOKBACK_DAYS="3",
        TARGET_JSONL_DESTINATION_PATH=str(out),
        TARGET_JSONL_DO_TIMESTAMP_FILE="false",
    )
    meltano("run", "tap-contactbased", "target-jsonl")

    # The project holds the definition as published, but for the wheel; the key is in .env.
    project_file = yaml.safe_load((project / "meltano.yml").read_text())
    (extractor,) = project_file["plugins"]["extractors"]
    assert extractor["pip_url"] == str(dists.wheel)
    assert extractor["variant"] == definition["variant"]
    assert extractor["settings"] == definition["settings"]
    assert extractor["capabilities"] == definition["capabilities"]
    assert "utilities" not in project_file["plugins"]
    assert API_KEY not in (project / "meltano.yml").read_text()
    assert API_KEY in (project / ".env").read_text()
    # The tap Meltano runs is the wheel installed as a package, not an editable checkout.
    venv = project / ".meltano" / "extractors" / "tap-contactbased" / "venv"
    dist_info = f"tap_contactbased-{project_version()}.dist-info"
    (direct_url,) = venv.glob(f"lib/python*/site-packages/{dist_info}/direct_url.json")
    origin = json.loads(direct_url.read_text())
    assert origin["url"].endswith(dists.wheel.name), origin
    assert "dir_info" not in origin, "installed from a folder (editable?), not the wheel"

    # Rows landed: every stream's file, and exactly the export rows the API served.
    assert {p.stem for p in out.glob("*.jsonl")} == EXPECTED_FILES
    expected: dict[tuple[str, int], dict[str, t.Any]] = {}
    for export_id in api.created_exports:
        expected.update(delivered_rows(api, export_id, YESTERDAY))
    assert expected, "the local API served no row: the test would prove nothing"
    rows = jsonl_lines(out / "export_rows.jsonl")
    assert sorted((r["export_id"], r["export_row"]) for r in rows) == sorted(expected)
    assert len(jsonl_lines(out / "feeds.jsonl")) == len(api.feeds)
