"""An export already on the API for the same feed and window is reused only if made alike.

Reusing one made with other options would deliver its rows as the window's: one made with
`max_rows: 17` would deliver 17 rows, exit 0 and move the bookmark. Each case puts on the
API, before the run, an export of exactly the window the run plans that differs from the
run's settings in ONE option, so that the comparison of that option alone decides: where
the difference would otherwise also show in `require_contact_id` (filters and bundles force
it), both sides set it. The read mode plays no part in the decision: the cases read in the
default one.
"""

from __future__ import annotations

import datetime
import typing as t
from dataclasses import dataclass, field

import pytest

from tests.conftest import TODAY, YESTERDAY, make_config, shorten_export_waits
from tests.export_checks import by_key, delivered_rows
from tests.fake_api import FakeContactBased
from tests.singer_run import SyncResult, run_tap

VPS = [{"field": "seniority", "op": "in", "value": ["VP"]}]
CHIEFS = [{"field": "seniority", "op": "in", "value": ["C-Level"]}]
READS = ("/intent/feeds/exports/page", "/intent/feeds/exports/download-url")
# What find-or-create logs when an export may be the same but does not echo every option:
# a case decided there would pass for the wrong reason.
UNPROVEN = "cannot prove it has the same options"


@dataclass(frozen=True)
class Options:
    """The options of the export on the API (a create body) and the run's settings."""

    on_api: dict[str, t.Any]
    run: dict[str, t.Any] = field(default_factory=dict)
    id_column: str = "contact_id"  # "cb_id": the API echoes require_cb_id


DIFFERENT = {
    "page_size 10,000 on the API, 1,000 in the run": Options({"page_size": 10_000}),
    "max_rows 17 on the API only": Options({"max_rows": 17}),
    "max_rows 17 in the run only": Options({}, {"max_rows": 17}),
    "consumer_filters on the API only": Options(
        {"consumer_filters": VPS, "require_contact_id": True}, {"require_contact_id": True}
    ),
    "other consumer_filters": Options({"consumer_filters": VPS}, {"consumer_filters": CHIEFS}),
    "bundles on the API only": Options(
        {"enrichment_bundles": ["emails"]}, {"require_contact_id": True}
    ),
    "other bundles": Options({"enrichment_bundles": ["phones"]}, {"export_bundles": ["emails"]}),
    "require_contact_id on the API only": Options({"require_contact_id": True}),
    "require_cb_id on the API only": Options({"require_cb_id": True}, id_column="cb_id"),
    "require_contact_id in the run only": Options({}, {"require_contact_id": True}),
    "require_cb_id false on the API, required by the run": Options(
        {}, {"require_contact_id": True}, id_column="cb_id"
    ),
}
SAME = {
    "max_rows 17": Options({"max_rows": 17}, {"max_rows": 17}),
    "consumer_filters": Options({"consumer_filters": VPS}, {"consumer_filters": VPS}),
    "bundles": Options({"enrichment_bundles": ["emails"]}, {"export_bundles": ["emails"]}),
    "require_contact_id": Options({"require_contact_id": True}, {"require_contact_id": True}),
    "require_cb_id, required by the run": Options(
        {"require_cb_id": True}, {"require_contact_id": True}, id_column="cb_id"
    ),
}
STATUSES = ("ready", "building")


def put_on_api(
    api: FakeContactBased, options: Options, status: str, config: dict[str, t.Any]
) -> str:
    """The export of the run's window and page size with `options.on_api`, in `status`.

    A building one stays building until a test releases it.
    """
    api.faults.id_column = options.id_column
    feed_id, lookback = config["feed_ids"][0], config["lookback_days"]
    body = {"page_size": config["page_size"], **options.on_api}
    if status == "ready":
        export_id = api.make_ready_export(feed_id, lookback, **body)
    else:
        export_id = api.make_building_export(feed_id, lookback, **body)
    served = api.drift.summary(api.exports[export_id].summary())
    assert served["status"] == status
    # The fault is served as meant: the option the case is about is echoed, in its spelling.
    for name, value in body.items():
        assert served[name] == value, (name, served)
    if options.id_column == "cb_id":
        assert "require_cb_id" in served
        assert "require_contact_id" not in served
    return export_id


def config_for(api: FakeContactBased, options: Options) -> dict[str, t.Any]:
    return make_config(api, feed_ids=api.feed_ids[:1], **options.run)


def export_ids_read(api: FakeContactBased) -> set[str]:
    return {r.body["export_id"] for r in api.requests if r.path in READS and r.body}


def bookmark(result: SyncResult) -> dict[str, t.Any]:
    assert result.last_state is not None
    (partition,) = result.last_state["bookmarks"]["export_rows"]["partitions"]
    return t.cast("dict[str, t.Any]", partition)


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("case", list(DIFFERENT))
def test_an_export_made_with_other_options_is_not_reused(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture, case: str, status: str
) -> None:
    options = DIFFERENT[case]
    config = config_for(api, options)
    other = put_on_api(api, options, status, config)

    with caplog.at_level("INFO"):
        result = run_tap(config, streams=["export_rows"])

    assert len(api.created_exports) == 1, f"the export made with {case} was reused"
    created = api.created_exports[0]
    expected = delivered_rows(api, created, YESTERDAY)
    assert by_key(result.records("export_rows")) == expected
    assert export_ids_read(api) == {created}
    assert bookmark(result) == {
        "context": {"feed_id": api.feed_ids[0]},
        "delivered_through": YESTERDAY.isoformat(),
        "last_export_id": created,
    }
    # The option comparison refused it as different, not as unproven, and the run counted
    # and created its own export.
    assert UNPROVEN not in caplog.text
    assert "Reusing" not in caplog.text
    assert api.count_requests("POST", "/intent/feeds/exports/count") == 1
    assert api.exports[other].status == status  # still so: no run read or waited for it
    if "max_rows 17 on the API" in case:
        # Reusing it would have delivered 17 rows: visibly fewer than the window holds.
        assert api.exports[other].total_rows == 17 < len(expected)


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("case", list(SAME))
def test_an_export_made_with_the_same_options_is_reused(
    api: FakeContactBased,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    status: str,
) -> None:
    shorten_export_waits(monkeypatch, stall_timeout_seconds=0.3)
    options = SAME[case]
    config = config_for(api, options)
    same = put_on_api(api, options, status, config)

    with caplog.at_level("INFO"):
        first = run_tap(config, streams=["export_rows"], raise_errors=False)

    window = f"{TODAY - datetime.timedelta(days=6)}..{TODAY}"
    reused = f"Reusing export {same} of feed {api.feed_ids[0]} ({window})"
    assert f"{reused} ({status}) instead of creating one" in caplog.text
    results = [first]
    if status == "building":
        # It was waited for, not replaced: the run stops on its stall and leaves it in the
        # state; once it builds, the next run reads it.
        assert "made no progress" in str(first.error)
        assert bookmark(first)["in_flight"]["export_id"] == same
        api.exports[same].stalled = False
        results.append(run_tap(config, streams=["export_rows"], state=first.last_state))
    else:
        assert first.error is None, first.error

    assert api.count_requests("POST", "/intent/feeds/exports") == 0
    assert api.created_exports == []
    records = [r for result in results for r in result.records("export_rows")]
    assert by_key(records) == delivered_rows(api, same, YESTERDAY)
    assert bookmark(results[-1])["last_export_id"] == same
