"""The probe: free requests only, one verdict per contract point, each drift moves its point.

The local API holds one ready export (made by the test, not by the probe) so that page,
download and CSV points are checked too. Every probe here is followed by a look at the
API's request log: nothing created, nothing enriched, nothing spent.
"""

from __future__ import annotations

import json
import typing as t

import pytest

from tap_contactbased import redaction
from tap_contactbased.probe import ProbeReport, Verdict, engine, probe_client, run_probe
from tap_contactbased.probe.engine import Point
from tap_contactbased.probe.observe import Answer, CostlyRequestError, Observations
from tap_contactbased.probe.report import Check
from tap_contactbased.settings import Settings
from tests.conftest import API_KEY, TODAY, make_config
from tests.fake_api import FakeContactBased

if t.TYPE_CHECKING:
    from collections.abc import Iterator

H, T, D, N = Verdict.HOLDS, Verdict.TOLERATED, Verdict.DIFFERS, Verdict.NOT_CHECKED
NEVER_CHECKED = {"enrichment answers", "create refusals"}
POINTS = [
    "API key",
    "error bodies",
    "list envelope and pagination",
    "credits counters",
    "feed limit",
    "feed fields",
    "today and the inclusive window",
    "search counters",
    "filter fields",
    "preview columns and id spelling",
    "count fields",
    "export summary fields",
    "echoed options",
    "status values",
    "page rows",
    "download URL and expires_at",
    "CSV header and quoting",
    "bundle list",
    "bundle_<key> columns",
    "enrichment answers",
    "create refusals",
]
BASELINE = {point: N if point in NEVER_CHECKED else H for point in POINTS}
# From the summary's fields to the CSV: the points that need an export.
NEED_AN_EXPORT = set(
    POINTS[POINTS.index("export summary fields") : POINTS.index("CSV header and quoting") + 1]
)


@pytest.fixture
def api() -> Iterator[FakeContactBased]:
    """The local API with one ready export, which carries the emails bundle column."""
    with FakeContactBased(api_key=API_KEY, today=TODAY, build_seconds=0.05) as server:
        server.make_ready_export(server.feed_ids[0], 7, enrichment_bundles=["emails"])
        yield server


def probe_config(api: FakeContactBased, **overrides: t.Any) -> dict[str, t.Any]:
    settings = {"export_bundles": ["emails"], "enrichment_bundles": ["emails"], **overrides}
    return make_config(api, **settings)


def probe(api: FakeContactBased, **overrides: t.Any) -> ProbeReport:
    return run_probe(Settings.from_config(probe_config(api, **overrides)), API_KEY)


def verdicts(report: ProbeReport) -> dict[str, Verdict]:
    return {check.point: check.verdict for check in report.checks}


def assert_spent_nothing(api: FakeContactBased, exports_before: int = 1) -> None:
    """The request log shows only free requests: no create, no enrichment, no saved feed."""
    assert api.created_exports == []
    assert len(api.exports) == exports_before
    assert sum(api.enrichment_ids_sent.values()) == 0
    calls = [(r.method, r.path) for r in api.requests]
    assert ("POST", "/intent/feeds/exports") not in calls
    assert ("POST", "/intent/feeds/builder") not in calls
    assert [p for _, p in calls if p.startswith("/enrich/") and p != "/enrich/bundles"] == []
    searches = [r.body for r in api.requests if r.path == "/intent/feeds/search"]
    assert searches
    assert not any((body or {}).get("auto_export") for body in searches)


def test_against_the_contract_every_point_holds_or_says_why_not(api: FakeContactBased) -> None:
    report = probe(api)

    assert [c.point for c in report.checks] == POINTS
    assert verdicts(report) == BASELINE
    assert all(c.note for c in report.checks if c.verdict is N)
    assert report.exit_code == 0
    assert_spent_nothing(api)
    # It did read the ready export: a page, a download URL, the CSV.
    assert api.count_requests("POST", "/intent/feeds/exports/page") == 2  # + the provoked 404
    assert api.count_requests("POST", "/intent/feeds/exports/download-url") == 1
    assert len(api.issued_signatures) == 1


def test_without_exports_the_export_points_are_not_checked_and_say_why() -> None:
    with FakeContactBased(api_key=API_KEY, today=TODAY) as api:
        report = probe(api)
        assert_spent_nothing(api, exports_before=0)
    unchecked = {c.point: c.note for c in report.checks if c.verdict is N}
    assert set(unchecked) == NEVER_CHECKED | NEED_AN_EXPORT
    assert "No export exists yet" in unchecked["status values"]
    assert "No ready export" in unchecked["page rows"]
    assert report.exit_code == 0


DRIFTS: list[t.Any] = [
    ({"drift": {"summary": {"total_rows": None}}}, {"export summary fields": T}),
    ({"drift": {"summary": {"columns": "column_names"}}}, {"export summary fields": T}),
    ({"drift": {"summary": {"start_date": None}}}, {"export summary fields": D}),
    ({"drift": {"summary": {"require_contact_id": None}}}, {"echoed options": T}),
    ({"drift": {"summary": {"page_size": "rows_per_page"}}}, {"echoed options": T}),
    ({"drift": {"page": {"rows": "data"}}}, {"page rows": D}),
    ({"drift": {"page": {"page": None}}}, {"page rows": T}),
    ({"drift": {"count": {"records_required": None}}}, {"count fields": T}),
    ({"drift": {"count": {"records_required": None, "total_rows": None}}}, {"count fields": D}),
    ({"drift": {"credits": {"records_remaining": None}}}, {"credits counters": T}),
    (
        {"drift": {"credits": {"records_remaining": None, "records_total": None}}},
        {"credits counters": D},
    ),
    ({"drift": {"envelope": {"total": None}}}, {"list envelope and pagination": T}),
    ({"drift": {"envelope": {"page_size": None}}}, {"list envelope and pagination": T}),
    ({"drift": {"preview": {"columns": None}}}, {"preview columns and id spelling": T}),
    ({"drift": {"search": {"end_date": None}}}, {"today and the inclusive window": T}),
    ({"drift": {"search": {"daily_counts": "days"}}}, {"search counters": D}),
    ({"drift": {"feed": {"max_lookback_days": None}}}, {"feed fields": T}),
    ({"drift": {"feed": {"feed_id": "id"}}}, {"feed fields": D}),
    ({"drift": {"bundles": {"enabled": None}}}, {"bundle list": T}),
    ({"drift": {"bundles": {"key": "name"}}}, {"bundle list": D}),
    ({"drift": {"download_url": {"expires_at": None}}}, {"download URL and expires_at": T}),
    # Without a URL there is no CSV to look at.
    (
        {"drift": {"download_url": {"url": "signed_url"}}},
        {"download URL and expires_at": D, "CSV header and quoting": N},
    ),
    ({"drift": {"error": {"detail": "message"}}}, {"error bodies": D}),  # never repeated
    ({"drift": {"error": {"detail": "reason"}}}, {"error bodies": D}),
    ({"drift": {"feed_limit": {"feeds_remaining": None}}}, {"feed limit": T}),
    ({"drift": {"filter_fields": {"operators": None}}}, {"filter fields": T}),
    ({"drift": {"payload:emails": {"address": "email"}}}, {"bundle_<key> columns": T}),
    ({"drift": {"enrich": {"results": "items"}}}, {}),  # the probe never enriches
    ({"status_spelling": {"ready": "READY"}}, {"status values": T}),
    ({"status_spelling": {"ready": " Ready "}}, {"status values": T}),
    # A status the tap does not know: no export counts as ready, so none is read.
    (
        {"status_spelling": {"ready": "done"}},
        {
            "status values": D,
            "page rows": N,
            "download URL and expires_at": N,
            "CSV header and quoting": N,
        },
    ),
    (
        {"id_column": "cb_id"},
        {
            "preview columns and id spelling": T,
            "count fields": T,
            "search counters": T,
            "echoed options": T,
        },
    ),
]


def drift_id(knobs: dict[str, t.Any]) -> str:
    return json.dumps(knobs, separators=(",", ":"))


@pytest.mark.parametrize(("knobs", "changed"), DRIFTS, ids=[drift_id(k) for k, _ in DRIFTS])
def test_each_drift_moves_its_point_and_no_other(
    api: FakeContactBased, knobs: dict[str, t.Any], changed: dict[str, Verdict]
) -> None:
    for name, value in knobs.items():
        setattr(api.faults, name, value)

    report = probe(api)

    moved = {p: v for p, v in verdicts(report).items() if v is not BASELINE[p]}
    assert moved == changed
    notes = {c.point: c.note for c in report.checks}
    assert all(notes[p] for p in changed)  # every change says how the tap copes or breaks
    assert report.exit_code == (1 if D in changed.values() else 0)
    assert_spent_nothing(api)


# Values of a kind no rule expects (the `raw_json` knob): each is judged, none stops the probe.
HOSTILE: list[t.Any] = [
    (
        {"envelope": {"items": "7"}},
        {"list envelope and pagination": D, "feed fields": N, **dict.fromkeys(NEED_AN_EXPORT, N)},
        ("list envelope and pagination", "has no `items` list"),
    ),
    ({"filter_fields": {"field": "[]"}}, {}, ("filter fields", "")),
    (
        {"filter_fields": {"operators": "1.5"}},
        {},
        ("filter fields", "Some operators are not in the contract's list."),
    ),
    (
        {"search": {"count": '"x"'}},
        {},
        ("search counters", "The daily counts do not add up to total_records."),
    ),
]


@pytest.mark.parametrize(
    ("raw_json", "changed", "note"), HOSTILE, ids=[drift_id(k) for k, *_ in HOSTILE]
)
def test_a_value_of_an_unexpected_kind_is_judged_not_a_crash(
    api: FakeContactBased,
    raw_json: dict[str, dict[str, str]],
    changed: dict[str, Verdict],
    note: tuple[str, str],
) -> None:
    api.faults.raw_json = raw_json

    report = probe(api)

    moved = {p: v for p, v in verdicts(report).items() if v is not BASELINE[p]}
    assert moved == changed
    point, text = note
    assert text in next(c.note for c in report.checks if c.point == point)
    assert_spent_nothing(api)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/intent/feeds/exports", {"feed_id": "x", "lookback_days": 1}),
        ("POST", "/enrich/emails", {"contact_ids": ["id_0123456789abcdef"]}),
        ("POST", "/intent/feeds/search", {"feed_id": "x", "lookback_days": 1, "auto_export": True}),
        ("POST", "/intent/feeds/builder", {"query": "payroll", "save": True}),
    ],
)
def test_a_costly_request_is_refused_before_it_leaves(
    api: FakeContactBased, method: str, path: str, body: dict[str, t.Any]
) -> None:
    client = probe_client(Settings.from_config(probe_config(api)), API_KEY)

    with pytest.raises(CostlyRequestError):
        client.post(path, body)
    with pytest.raises(CostlyRequestError):
        client.refusal(path, body)

    assert api.requests == []


def test_the_report_holds_names_and_kinds_never_values(api: FakeContactBased) -> None:
    report = probe(api)

    text = report.to_table() + report.to_json()
    export = next(iter(api.exports.values()))
    values = [
        *api.feed_ids,
        export.export_id,
        TODAY.isoformat(),
        *(str(v) for v in api.credits.values()),
        *(v for row in export.rows()[:20] for v in row.values() if v),
    ]
    # Short values (a count of 133, a country code) could match a row count by chance.
    values = [v for v in values if len(v) > 3]
    assert [v for v in values if v in text] == []
    assert API_KEY not in text
    assert "signature" not in text


def test_the_json_report_has_the_documented_shape(api: FakeContactBased) -> None:
    report = json.loads(probe(api).to_json())

    assert set(report) == {"checks", "tap_version", "api_host"}
    assert report["api_host"] == api.url.removeprefix("http://")
    assert [c["point"] for c in report["checks"]] == POINTS
    assert all(
        set(c) == {"point", "section", "expected", "seen", "verdict", "note"}
        for c in report["checks"]
    )
    assert {c["verdict"] for c in report["checks"]} == {"holds", "not checked"}


def test_a_csv_longer_than_the_sample_is_judged_on_its_whole_rows(
    api: FakeContactBased,
) -> None:
    # 30 days of hostile values (quoted commas, quotes, newlines): far more than 64 KB.
    api.make_ready_export(api.feed_ids[1], 30)

    report = probe(api, feed_ids=api.feed_ids[1:2], export_bundles=[])

    csv_check = next(c for c in report.checks if c.point == "CSV header and quoting")
    assert csv_check.verdict is H, csv_check
    assert "complete rows in the first 65536 bytes" in csv_check.seen
    assert_spent_nothing(api, exports_before=2)


@pytest.mark.parametrize(
    ("answer", "verdict", "seen", "note"),
    [
        (None, N, "-", "Page 1 was not requested."),
        (Answer(error="HTTP 500"), N, "-", "Page 1 failed: HTTP 500"),
        (Answer(body=[{"rows": []}]), D, "list[object]", "Not an object."),
        (Answer(body=None), D, "null", "Not an object."),
        (Answer(body={"rows": [], "page": 1}), H, "{rows: list[], page: int}", ""),
    ],
)
def test_a_point_on_one_answer_is_unchecked_differs_or_holds_by_its_body(
    answer: Answer | None, verdict: Verdict, seen: str, note: str
) -> None:
    point = Point("page rows", "POST /page", "an object", answer=lambda _: answer, what="Page 1")

    row = engine.judge(point, t.cast("Observations", None))

    assert (row.point, row.verdict, row.seen, row.note) == ("page rows", verdict, seen, note)


def test_a_check_holds_no_secret_and_no_control_character_whatever_it_was_given() -> None:
    redaction.register_secret(API_KEY)
    hostile = f"{API_KEY} at https://u:pw@host/f.csv?signature=abc \x1b[2J\nforged"
    check = Check("point", "section", "expected", hostile, Verdict.DIFFERS, hostile)
    report = ProbeReport([check], "0.1.0", "host\x1b")

    written = report.to_table() + report.to_json()

    for text in (API_KEY, "pw@", "signature=", "\x1b", "\nforged"):
        assert text not in written
    assert "<redacted> at https://<redacted>@host/f.csv?<redacted> \\x1b[2J\\nforged" in written
