"""One source of truth: the tap's config schema; meltano.yml and the README follow it."""

from __future__ import annotations

import copy
import subprocess
import sys
import typing as t
from pathlib import Path

import yaml

from tap_contactbased.settings import CONFIG_SCHEMA
from tap_contactbased.tap import TapContactBased
from tests.e2e.meltano import MELTANO_YML, PLUGIN_DEFINITION, REPO, plugin

README = REPO / "README.md"
# The top-level keys of an extractor in Meltano Hub's plugin definitions
# (meltano/hub, schemas/plugin_definitions/extractors.schema.json), and those its common
# schema requires.
HUB_EXTRACTOR_KEYS = {
    "name", "pip_url", "variant", "namespace", "label", "description", "executable",
    "settings", "docs", "repo", "logo_url", "hidden", "settings_group_validation", "commands",
    "capabilities", "metadata", "schema", "select", "maintenance_status", "domain_url",
    "keywords", "requires", "definition", "next_steps", "settings_preamble", "usage", "prereq",
}  # fmt: skip
HUB_REQUIRED_KEYS = ("name", "namespace", "variant", "label")
START, END = "<!-- settings:start -->", "<!-- settings:end -->"
# The SDK's own settings that meltano.yml exposes. faker_config is left out: the tap does not
# ship the `faker` extra, so `fake` is not available to stream maps.
EXPOSED_BUILTINS = (
    "stream_maps",
    "stream_map_config",
    "flattening_enabled",
    "flattening_max_depth",
    "flattening_max_key_length",
    "flattening_separator",
    "batch_config",
)
# JSON schema type -> Meltano setting kind. A JSON number is `integer` in meltano.yml: Meltano
# 4.4.1 turns a `decimal` setting read from an environment variable into a Decimal that it
# then fails to write to the tap's config ("Object of type Decimal is not JSON serializable"),
# while `integer` passes whole numbers from variables and any number from meltano.yml.
KINDS = {
    "string": "string",
    "integer": "integer",
    "number": "integer",
    "boolean": "boolean",
    "array": "array",
    "object": "object",
}


def builtin_names() -> set[str]:
    """Settings the SDK appends to the tap's schema for its capabilities."""
    schema: dict[str, t.Any] = {"type": "object", "properties": {}}
    TapContactBased.append_builtin_config(schema)
    return set(schema["properties"])


def full_schema() -> dict[str, t.Any]:
    """The tap's schema with the SDK's settings, as `--about` prints it."""
    schema = copy.deepcopy(CONFIG_SCHEMA)
    TapContactBased.append_builtin_config(schema)
    return schema


def expected_setting(name: str, spec: dict[str, t.Any]) -> dict[str, t.Any]:
    """The meltano.yml entry that mirrors one property of the schema."""
    types = [kind for kind in spec["type"] if kind != "null"]
    entry: dict[str, t.Any] = {"name": name, "label": spec["title"]}
    if "enum" in spec:
        entry["kind"] = "options"
        entry["options"] = [{"label": value, "value": value} for value in spec["enum"]]
    else:
        entry["kind"] = KINDS[types[0]]
    if spec.get("secret") or spec.get("writeOnly"):
        entry["sensitive"] = True
    entry["description"] = spec["description"]
    return entry


def expected_settings() -> list[dict[str, t.Any]]:
    """meltano.yml's extractor settings, derived from the schema, in its order."""
    properties = full_schema()["properties"]
    own = [name for name in CONFIG_SCHEMA["properties"] if name not in builtin_names()]
    return [expected_setting(name, properties[name]) for name in (*own, *EXPOSED_BUILTINS)]


def test_exposed_builtins_are_settings_the_sdk_gives_the_tap() -> None:
    assert set(EXPOSED_BUILTINS) <= builtin_names()


def assert_settings_mirror_the_schema(actual: list[dict[str, t.Any]], where: Path) -> None:
    """Fail, printing the settings block to paste, when `actual` differs from the schema's."""
    expected = expected_settings()
    hint = (
        f"{where} and the tap's config schema disagree. The settings block that "
        "mirrors the schema is:\n"
        + yaml.safe_dump(expected, sort_keys=False, width=96, allow_unicode=True)
    )
    assert [s["name"] for s in actual] == [s["name"] for s in expected], hint
    for mine, theirs in zip(actual, expected, strict=True):
        assert mine == theirs, hint
    assert all(s.get("kind") != "password" for s in actual), "use sensitive: true instead"


def definition() -> dict[str, t.Any]:
    """The plugin definition that `meltano add --from-ref` takes, parsed."""
    parsed: dict[str, t.Any] = yaml.safe_load(PLUGIN_DEFINITION.read_text())
    return parsed


def test_meltano_yml_settings_mirror_the_config_schema() -> None:
    actual = plugin("extractors", "tap-contactbased")["settings"]
    assert_settings_mirror_the_schema(actual, MELTANO_YML)


def test_meltano_yml_lists_the_tap_capabilities() -> None:
    declared = plugin("extractors", "tap-contactbased")["capabilities"]
    actual = [str(c) for c in TapContactBased.capabilities]
    assert sorted(declared) == sorted(actual)


def test_the_plugin_definition_settings_mirror_the_config_schema() -> None:
    assert_settings_mirror_the_schema(definition()["settings"], PLUGIN_DEFINITION)


def test_the_plugin_definition_declares_what_meltano_yml_does() -> None:
    mine, project_entry = definition(), plugin("extractors", "tap-contactbased")
    for key in ("namespace", "executable", "capabilities", "commands", "settings"):
        assert mine[key] == project_entry[key], key
    assert sorted(mine["capabilities"]) == sorted(str(c) for c in TapContactBased.capabilities)


def test_the_plugin_definition_is_in_meltano_hubs_extractor_format() -> None:
    mine = definition()
    assert set(mine) <= HUB_EXTRACTOR_KEYS, set(mine) - HUB_EXTRACTOR_KEYS
    # Beyond the Hub's required keys, what `meltano add` needs to install and configure it.
    installable = ("pip_url", "executable", "capabilities", "settings", "description")
    for key in (*HUB_REQUIRED_KEYS, *installable, "settings_group_validation"):
        assert mine.get(key), f"{PLUGIN_DEFINITION} has no {key}"
    assert mine["name"] == TapContactBased.name
    assert mine["pip_url"] == TapContactBased.package_name
    for setting in mine["settings"]:
        assert {"name", "kind", "label", "description"} <= set(setting), setting["name"]
    # The settings a run cannot do without: the schema's required properties, each sensitive
    # where the schema says secret.
    required = set(full_schema().get("required", []))
    assert mine["settings_group_validation"] == [sorted(required)]
    secret = {s["name"] for s in mine["settings"] if s.get("sensitive")}
    assert "api_key" in secret


def test_meltano_yml_defines_every_plugin_in_full() -> None:
    # Meltano Hub is out of reach: a plugin needs its own pip_url, executable and namespace.
    plugins = yaml.safe_load(MELTANO_YML.read_text())["plugins"]
    for entry in (*plugins["extractors"], *plugins["loaders"], *plugins["utilities"]):
        assert "variant" not in entry, entry["name"]
        for key in ("namespace", "pip_url", "executable"):
            assert entry.get(key), f"{entry['name']} has no {key}"
        if entry["pip_url"] != "-e .":
            assert "==" in entry["pip_url"], f"{entry['name']}: pin its version"


TAP = Path(sys.executable).with_name("tap-contactbased")


def about_table() -> list[str]:
    """The lines of the settings table of `tap-contactbased --about --format=markdown`."""
    command = [str(TAP), "--about", "--format=markdown"]
    markdown = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return table_lines(markdown.split("## Settings", 1)[1])


def table_lines(text: str) -> list[str]:
    """The lines of the first Markdown table of a text."""
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("|"):
            lines.append(line.rstrip())
        elif lines:
            break
    return lines


def cells(lines: list[str]) -> list[list[str]]:
    """Table lines as stripped cells, so that column padding does not matter."""
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]


def test_readme_settings_table_is_the_about_output() -> None:
    expected = about_table()
    block = "\n".join((START, *expected, END))
    text = README.read_text()

    assert START in text, (
        f"README.md has no settings table between {START} and {END}. Paste this block, "
        f"the table of `tap-contactbased --about --format=markdown`:\n{block}"
    )
    assert END in text.split(START, 1)[1], f"README.md has {START} but no {END} after it"
    actual = table_lines(text.split(START, 1)[1].split(END, 1)[0])
    assert cells(actual) == cells(expected), (
        "README.md's settings table differs from `tap-contactbased --about "
        f"--format=markdown`. Replace the lines from {START} to {END} with:\n{block}"
    )
