"""`meltano config` resolves the tap's settings from TAP_CONTACTBASED_* variables."""

from __future__ import annotations

import json
import typing as t

from tests.e2e.meltano import Meltano, project

FEED = "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"


def printed_config(meltano: Meltano, environment: str, *, unsafe: bool = False) -> t.Any:
    """The tap's config as `meltano config print` shows it for an environment."""
    flags = ("--unsafe",) if unsafe else ()
    result = meltano(f"--environment={environment}", "config", *flags, "print", "tap-contactbased")
    return json.loads(result.stdout)


def test_environment_variables_reach_the_tap_config_typed(meltano: Meltano) -> None:
    stream_maps = {"enrichment": {"data": "__NULL__"}}
    meltano.set(
        TAP_CONTACTBASED_API_URL="http://127.0.0.1:9",
        TAP_CONTACTBASED_API_KEY="cbk_from_the_environment",
        TAP_CONTACTBASED_FEED_IDS=json.dumps([FEED]),
        TAP_CONTACTBASED_LOOKBACK_DAYS="5",
        TAP_CONTACTBASED_PLAN_ONLY="true",
        TAP_CONTACTBASED_READ_MODE="pages",
        TAP_CONTACTBASED_EXPORT_TIMEOUT_SECONDS="900",
        TAP_CONTACTBASED_CONSUMER_FILTERS=json.dumps(
            [{"field": "seniority", "op": "in", "value": ["VP"]}]
        ),
        TAP_CONTACTBASED_STREAM_MAPS=json.dumps(stream_maps),
    )

    config = printed_config(meltano, "local", unsafe=True)

    assert config["api_url"] == "http://127.0.0.1:9"
    assert config["api_key"] == "cbk_from_the_environment"
    assert config["feed_ids"] == [FEED]
    assert config["lookback_days"] == 5
    assert config["plan_only"] is True
    assert config["read_mode"] == "pages"
    assert config["export_timeout_seconds"] == 900
    assert config["consumer_filters"] == [{"field": "seniority", "op": "in", "value": ["VP"]}]
    assert config["stream_maps"] == stream_maps


def test_the_local_environment_needs_no_variable(meltano: Meltano) -> None:
    config = printed_config(meltano, "local", unsafe=True)

    local = next(e for e in project()["environments"] if e["name"] == "local")
    defaults = local["config"]["plugins"]["extractors"][0]["config"]
    assert config["api_url"] == defaults["api_url"]
    assert config["api_key"] == defaults["api_key"]
    assert config["feed_ids"] == defaults["feed_ids"]


def test_prod_reads_the_key_from_the_environment_and_never_prints_it(meltano: Meltano) -> None:
    meltano.set(TAP_CONTACTBASED_API_KEY="cbk_live_do_not_print")

    result = meltano("--environment=prod", "config", "print", "tap-contactbased")

    config = json.loads(result.stdout)
    assert config["api_url"] == "https://api.contactbased.com"
    assert config["api_key"] != "cbk_live_do_not_print"  # masked: the setting is sensitive
    assert "cbk_live_do_not_print" not in result.stdout + result.log


def test_without_an_environment_a_key_from_the_shell_goes_to_the_https_api_only(
    meltano: Meltano,
) -> None:
    # `local` (http://127.0.0.1:8787) must be chosen by name: a real key exported in the
    # shell never goes to whatever listens on that port because an environment was forgotten.
    del meltano.env["MELTANO_ENVIRONMENT"]
    meltano.set(TAP_CONTACTBASED_API_KEY="cbk_live_from_the_shell")

    result = meltano("invoke", "--dump=config", "tap-contactbased")

    config = json.loads(result.stdout)
    assert config["api_url"] == "https://api.contactbased.com"
    assert config["api_key"] == "cbk_live_from_the_shell"
    assert "Environment 'prod' is active" in result.log
