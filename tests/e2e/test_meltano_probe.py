"""`meltano invoke tap-contactbased:probe`: the plugin command of meltano.yml runs the probe.

Meltano gives the command the extractor's settings (the `local` environment's included) as
TAP_CONTACTBASED_* variables; the probe reads them with `--config ENV`.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import tap_env
from tests.e2e.meltano import Meltano
from tests.fake_api import FakeContactBased


@pytest.mark.parametrize(
    ("drift", "exit_code", "differing"),
    [({}, 0, []), ({"error": {"detail": "reason"}}, 1, ["error bodies"])],
    ids=["as the contract says", "error bodies without detail"],
)
def test_the_meltano_command_probes_and_spends_nothing(
    api: FakeContactBased,
    meltano: Meltano,
    drift: dict[str, dict[str, str | None]],
    exit_code: int,
    differing: list[str],
) -> None:
    api.make_ready_export(api.feed_ids[0], 3)
    api.faults.drift = drift
    meltano.set(**tap_env(api, feed_ids=api.feed_ids[:1], lookback_days=3))

    result = meltano("invoke", "tap-contactbased:probe", check=False)

    assert result.returncode == exit_code, result.tail()
    assert "ContactBased API probe of" in result.stdout
    rows = [line.split(" | ") for line in result.stdout.splitlines() if line.startswith("| ")]
    assert [r[0].strip("| ") for r in rows if r[4] == "differs"] == differing
    assert sum(1 for r in rows if r[4] in ("holds", "differs but tolerated")) >= 15
    assert api.created_exports == []
    assert api.count_requests("POST", "/intent/feeds/exports") == 0
    assert sum(api.enrichment_ids_sent.values()) == 0
