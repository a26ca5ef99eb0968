"""Temporary (step 4a of the core plan): the table of points judges as the old checks did.

Every case collects `Observations` once (from the local API under a drift, or made by hand
for the branches no drift reaches) and asserts that the old `judge(obs)` and the new
`[engine.judge(p, obs) for p in POINTS]` agree on point, verdict, seen and note, but for the
rewordings of `REWORDED`, each with its reason. Step 4b deletes the old checks and this file.
"""

from __future__ import annotations

import codecs
import dataclasses
import datetime
import typing as t

import pytest

from tap_contactbased.probe import judge as old_judge
from tap_contactbased.probe import probe_api
from tap_contactbased.probe.engine import judge as new_judge
from tap_contactbased.probe.observe import Answer, CsvSample, FeedProbe, Observations, collect
from tap_contactbased.probe.table import POINTS
from tap_contactbased.settings import Settings
from tap_contactbased.tap import TapContactBased
from tests.conftest import API_KEY, TODAY
from tests.fake_api import FakeContactBased, drift
from tests.test_probe import DRIFTS, drift_id, probe_config

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

# (case, point) -> why the new wording differs on purpose. Empty: no rewording.
REWORDED: dict[tuple[str, str], str] = {}
COMPARED: list[str] = []


def observe(api: FakeContactBased, **overrides: t.Any) -> Observations:
    tap = TapContactBased(config=probe_config(api, **overrides), setup_mapper=False)
    return collect(probe_api(tap), Settings.from_config(tap.config))


def disagreements(case: str, obs: Observations) -> list[str]:
    """Where the two judges differ on a case, beyond the listed rewordings."""
    COMPARED.append(case)
    old = old_judge(obs)
    new = [new_judge(p, obs) for p in POINTS]
    assert [c.point for c in new] == [c.point for c in old]
    found = []
    for before, after in zip(old, new, strict=True):
        same = (before.verdict, before.seen, before.note) == (after.verdict, after.seen, after.note)
        if not same and (case, before.point) not in REWORDED:
            found.append(f"{case} / {before.point}:\n  old {before}\n  new {after}")
    return found


@pytest.fixture
def api() -> Iterator[FakeContactBased]:
    """The local API with one ready export, which carries the emails bundle column."""
    with FakeContactBased(api_key=API_KEY, today=TODAY, build_seconds=0.05) as server:
        server.make_ready_export(server.feed_ids[0], 7, enrichment_bundles=["emails"])
        yield server


@pytest.mark.parametrize(("knobs", "_"), DRIFTS, ids=[drift_id(k) for k, _ in DRIFTS])
def test_every_drift_case_of_the_probe_tests(
    api: FakeContactBased, knobs: dict[str, t.Any], _: t.Any
) -> None:
    for name, value in knobs.items():
        setattr(api.faults, name, value)

    assert disagreements(drift_id(knobs), observe(api)) == []


def keys(value: t.Any) -> list[str]:
    return list(value) if isinstance(value, dict) else []


def first(items: t.Any) -> t.Any:
    return items[0] if isinstance(items, list) and items else {}


def family_fields(obs: Observations) -> dict[str, list[str]]:
    """Every field of every drift family, as the local API serves them."""
    probe = obs.feed_probes[0]
    errors = [obs.missing_export.body, obs.invalid_body.body]
    return {
        "summary": keys(first(obs.exports.body["items"])),
        "page": ["page", "rows"],
        "count": keys(probe.count.body),
        "credits": keys(obs.credits.body),
        "envelope": keys(obs.feeds.body),
        "preview": keys(probe.preview.body),
        "search": keys(obs.search.body if obs.search else None)
        + keys(first((obs.search.body if obs.search else {}).get("daily_counts"))),
        "feed": keys(first(obs.feeds.body["items"])),
        "bundles": ["bundles", *keys(first(obs.bundles.body["bundles"]))],
        "download_url": keys(obs.download.body if obs.download else None),
        "enrich": ["bundle", "requested", "found", "not_found", "results", "contact_id", "data"],
        "error": sorted({k for b in errors for k in keys(b)} | {"loc", "msg", "type"}),
        "feed_limit": keys(obs.feed_limit.body),
        "filter_fields": ["fields", *keys(first(obs.filter_fields.body["fields"]))],
        "payload:emails": ["emails", "address", "type", "last_seen"],
    }


FAMILIES = [*sorted(drift.FAMILIES), "payload:emails"]


@pytest.mark.parametrize("family", FAMILIES)
def test_every_field_of_a_drift_family_dropped_and_respelled(
    api: FakeContactBased, family: str
) -> None:
    fields = family_fields(observe(api))[family]
    assert fields, family
    found = []
    for name in fields:
        for new in (None, f"{name}_respelled"):
            api.faults.drift = {family: {name: new}}
            found += disagreements(f"{family}.{name} -> {new}", observe(api))
    print(f"{family}: {2 * len(fields)} cases")  # counted for the commit message
    assert found == []


@pytest.mark.parametrize(
    "knobs",
    [
        {"id_column": "cb_id"},
        {"status_spelling": {"ready": "READY"}},
        {"status_spelling": {"ready": " Ready "}},
        {"status_spelling": {"ready": "done"}},
        {"status_spelling": {"building": "Building", "ready": "ready "}},
    ],
    ids=drift_id,
)
def test_the_id_spelling_and_status_spellings(
    api: FakeContactBased, knobs: dict[str, t.Any]
) -> None:
    api.make_building_export(api.feed_ids[1], 3)
    for name, value in knobs.items():
        setattr(api.faults, name, value)

    assert disagreements(drift_id(knobs), observe(api)) == []


def test_the_api_without_exports() -> None:
    with FakeContactBased(api_key=API_KEY, today=TODAY) as api:
        assert disagreements("no exports", observe(api)) == []


SETTINGS: dict[str, dict[str, t.Any]] = {
    "no feed configured": {"feed_ids": []},
    "a feed the API does not list": {"feed_ids": ["0f0f0f0f-0000-4000-8000-000000000000"]},
    "a filter on an unlisted field": {
        "consumer_filters": [{"field": "no_such_field", "op": "eq", "value": "x"}]
    },
    "no export bundles": {"export_bundles": [], "enrichment_bundles": []},
    "a bundle that is not enabled": {"export_bundles": ["auto"]},
}


@pytest.mark.parametrize("name", list(SETTINGS))
def test_settings_that_move_a_point(api: FakeContactBased, name: str) -> None:
    assert disagreements(name, observe(api, **SETTINGS[name])) == []


# Hand-made observations: the branches no drift of the local API reaches.
Edit = t.Callable[[Observations], Observations]


def at(path: str, value: t.Any) -> Edit:
    """Replace one answer (a field of Observations) with `value`."""
    return lambda obs: dataclasses.replace(obs, **{path: value})


def body(path: str, edit: Callable[[t.Any], t.Any]) -> Edit:
    """Change the body of one answer."""

    def change(obs: Observations) -> Observations:
        answer = getattr(obs, path)
        return dataclasses.replace(
            obs, **{path: dataclasses.replace(answer, body=edit(answer.body))}
        )

    return change


def merged(path: str, **fields: t.Any) -> Edit:
    return body(path, lambda b: {**b, **fields})


def dropped(path: str, *names: str) -> Edit:
    return body(path, lambda b: {k: v for k, v in b.items() if k not in names})


def probes(edit: Callable[[int, FeedProbe], FeedProbe]) -> Edit:
    return lambda obs: dataclasses.replace(
        obs, feed_probes=[edit(n, p) for n, p in enumerate(obs.feed_probes)]
    )


def in_list(path: str, key: str, edit: Callable[[list[t.Any]], list[t.Any]]) -> Edit:
    return body(path, lambda b: {**b, key: edit(list(b[key]))})


def csv(data: bytes, *, complete: bool = True, content_type: str = "text/csv") -> Edit:
    return at("csv", Answer(CsvSample(data, complete, content_type)))


def summary_items(edit: Callable[[dict[str, t.Any]], dict[str, t.Any]]) -> Edit:
    return in_list("exports", "items", lambda items: [edit(dict(i)) for i in items])


FAILED = Answer(error="POST /x: 500 Internal Server Error")
NOT_OBJECT = Answer(body=[{"a": 1}])
BOM_CSV = codecs.BOM_UTF8 + b"contact_id,domain\r\nid_1,a.com\r\n"
HAND_MADE: dict[str, Edit] = {
    "credits not an object": at("credits", Answer(body=[1])),
    "credits counters as text": merged("credits", records_total="12", records_used=True),
    "credits counter null": merged("credits", records_reserved=None),
    "credits dates not dates": merged("credits", period_start="soon", period_end=3),
    "credits remaining and used missing": dropped("credits", "records_remaining", "records_used"),
    "credits remaining missing, total mistyped": lambda obs: merged("credits", records_total="x")(
        dropped("credits", "records_remaining")(obs)
    ),
    "feeds failed": at("feeds", FAILED),
    "feeds not an object": at("feeds", NOT_OBJECT),
    "feeds without items": at("feeds", Answer(body={"page": 1})),
    "feeds empty": in_list("feeds", "items", lambda _: []),
    "feeds with a stray entry": in_list("feeds", "items", lambda i: [*i, 7]),
    "feeds cap as text": in_list(
        "feeds", "items", lambda i: [{**f, "max_lookback_days": "30"} for f in i]
    ),
    "feeds cap null": in_list("feeds", "items", lambda i: [{**i[0], "max_lookback_days": None}]),
    "feeds kind unknown, name missing": in_list(
        "feeds",
        "items",
        lambda i: [{k: v for k, v in {**f, "kind": "people"}.items() if k != "name"} for f in i],
    ),
    "feeds id missing and cap mistyped": in_list(
        "feeds",
        "items",
        lambda i: [
            {k: v for k, v in {**f, "max_lookback_days": 1.5}.items() if k != "feed_id"} for f in i
        ],
    ),
    "feeds page not 1": merged("feeds", page=2),
    "feeds short page with total": merged("feeds", total=500),
    "feeds short page without total": lambda obs: dropped("feeds", "total")(
        merged("feeds", page_size=2)(obs)
    ),
    "feeds items not a list": merged("feeds", items={"a": 1}),
    "exports failed": at("exports", FAILED),
    "exports not an object": at("exports", Answer(body="text")),
    "both lists failed": lambda obs: at("exports", FAILED)(at("feeds", FAILED)(obs)),
    "feed limit failed": at("feed_limit", FAILED),
    "feed limit not an object": at("feed_limit", Answer(body=None)),
    "feed limit mistyped and missing": lambda obs: merged("feed_limit", feed_limit="3")(
        dropped("feed_limit", "feeds_created")(obs)
    ),
    "bundles failed": at("bundles", FAILED),
    "bundles not an object": at("bundles", Answer(body=[])),
    "bundles without list": at("bundles", Answer(body={"items": []})),
    "bundles stray entry": in_list("bundles", "bundles", lambda b: [*b, "emails"]),
    "bundles unknown key, disabled": in_list(
        "bundles", "bundles", lambda b: [*[{**e, "enabled": False} for e in b], {"key": "zzz"}]
    ),
    "bundles enabled and path missing": in_list(
        "bundles",
        "bundles",
        lambda b: [{k: v for k, v in e.items() if k not in ("enabled", "path")} for e in b],
    ),
    "filter fields failed": at("filter_fields", FAILED),
    "filter fields not an object": at("filter_fields", Answer(body=5)),
    "filter fields stray entry": in_list("filter_fields", "fields", lambda f: [*f, None]),
    "filter fields odd types and operators": in_list(
        "filter_fields",
        "fields",
        lambda f: [{**e, "type": "uuid", "operators": ["eq", "like", 3]} for e in f],
    ),
    "filter fields without field and label": in_list(
        "filter_fields",
        "fields",
        lambda f: [{k: v for k, v in e.items() if k not in ("field", "label")} for e in f],
    ),
    "search none": at("search", None),
    "search failed": at("search", FAILED),
    "search not an object": at("search", NOT_OBJECT),
    "search dates not dates": merged("search", start_date="x", end_date=None),
    "search spans two days": merged(
        "search", start_date=(TODAY - datetime.timedelta(days=1)).isoformat()
    ),
    "search end ahead": lambda obs: dataclasses.replace(
        obs, machine_today=obs.machine_today - datetime.timedelta(days=2)
    ),
    "search end behind": lambda obs: dataclasses.replace(
        obs, machine_today=obs.machine_today + datetime.timedelta(days=1)
    ),
    "search start missing, end mistyped": lambda obs: merged("search", end_date="soon")(
        dropped("search", "start_date")(obs)
    ),
    "search daily entries without count": in_list(
        "search", "daily_counts", lambda d: [{"date": e.get("date")} for e in d]
    ),
    "search daily counts off the total": merged("search", total_records=10**9),
    "search daily counts not a list, counters missing": lambda obs: merged(
        "search", daily_counts="many"
    )(dropped("search", "total_records", "feed_id")(obs)),
    "no feed probed": at("feed_probes", []),
    "every preview failed": probes(lambda _, p: dataclasses.replace(p, preview=FAILED)),
    "one preview failed": probes(
        lambda n, p: dataclasses.replace(p, preview=FAILED) if n == 0 else p
    ),
    "a preview not an object": probes(lambda _, p: dataclasses.replace(p, preview=NOT_OBJECT)),
    "a preview without columns, rows": probes(
        lambda _, p: dataclasses.replace(p, preview=Answer(body={"estimated_rows": 3}))
    ),
    "a preview without the id column": probes(
        lambda _, p: dataclasses.replace(
            p, preview=Answer(body={"columns": ["domain", "x_new", "bundle_auto"], "rows": []})
        )
    ),
    "a preview with rows only": probes(
        lambda _, p: dataclasses.replace(
            p, preview=Answer(body={"rows": [{"cb_id": "1", "bundle_emails": "{bad"}]})
        )
    ),
    "every count failed": probes(lambda _, p: dataclasses.replace(p, count=FAILED)),
    "one count failed": probes(lambda n, p: dataclasses.replace(p, count=FAILED) if n else p),
    "a count not an object": probes(lambda _, p: dataclasses.replace(p, count=NOT_OBJECT)),
    "counts mistyped": probes(
        lambda _, p: dataclasses.replace(
            p,
            count=Answer(
                body={"total_rows": "12", "rows_with_cb_id": True, "records_required": None}
            ),
        )
    ),
    "count off the estimate": probes(
        lambda _, p: dataclasses.replace(
            p, count=Answer(body={**p.count.body, "total_rows": 10**9})
        )
    ),
    "count without records_required and rows_with_contact_id": probes(
        lambda _, p: dataclasses.replace(p, count=Answer(body={"total_rows": 3}))
    ),
    "summaries mistyped": summary_items(
        lambda s: {**s, "start_date": "yesterday", "total_rows": "12", "extra_one": 1}
    ),
    "summaries null on ready": summary_items(
        lambda s: {**s, "total_rows": None, "columns": None, "total_pages": None}
    ),
    "summaries without several fields": summary_items(
        lambda s: {
            k: v
            for k, v in s.items()
            if k not in ("created_at", "build_error", "status", "lookback_days", "max_rows")
        }
    ),
    "summaries with a non-text status": summary_items(lambda s: {**s, "status": 1}),
    "summaries with respelled options": summary_items(
        lambda s: {("page_size_v2" if k == "page_size" else k): v for k, v in s.items()}
    ),
    "page none": at("page", None),
    "page failed": at("page", FAILED),
    "page not an object": at("page", NOT_OBJECT),
    "page rows not a list": merged("page", rows="many"),
    "page rows odd": merged("page", rows=[1, {"contact_id": 5, "domain": None}]),
    "page short": merged("page", rows=[]),
    "page without page": dropped("page", "page"),
    "download none": at("download", None),
    "download failed": at("download", FAILED),
    "download not an object": at("download", Answer(body=None)),
    "download url unparseable": merged("download", url="http://[::1/x"),
    "download url relative": merged("download", url="/files/x.csv"),
    "download issued expired": merged("download", expires_at="2001-01-01T00:00:00Z"),
    "download expires_at not a time": merged("download", expires_at="soon"),
    "download without export_id and expires_at": dropped("download", "export_id", "expires_at"),
    "csv none, download fine": at("csv", None),
    "csv none, download failed": lambda obs: at("csv", None)(at("download", FAILED)(obs)),
    "csv failed": at("csv", FAILED),
    "csv not a sample": at("csv", Answer(body={"a": 1})),
    "csv with a BOM": csv(BOM_CSV),
    "csv not UTF-8": csv(b"contact_id,domain\r\nid,\xff\xfe\r\n"),
    "csv empty": csv(b""),
    "csv cut in a quote": csv(b'contact_id,domain\r\n"id', complete=False),
    "csv LF and NUL": csv(b"contact_id,domain\nid_1,a\x00.com\n", content_type=""),
    "csv ragged": csv(b"contact_id,domain\r\nid_1\r\nid_2,a,b\r\n"),
    "csv header unlike the columns": csv(b"a,b\r\n1,2\r\n"),
    "both refusals failed": lambda obs: at("missing_export", FAILED)(
        at("invalid_body", FAILED)(obs)
    ),
    "the 404 failed": at("missing_export", FAILED),
    "the 404 answered 200": at("missing_export", Answer({"detail": "x"}, status=200)),
    "the 404 answered 400 without detail": at("missing_export", Answer({"error": "x"}, status=400)),
    "the 404 body not JSON": at("missing_export", Answer(None, status=404)),
    "the 422 with text": at("invalid_body", Answer({"detail": "bad"}, status=422)),
    "the 422 items without msg": at(
        "invalid_body", Answer({"detail": [{"loc": []}, 3]}, status=422)
    ),
    "the 422 as 400 with an object": at("invalid_body", Answer({"detail": {"a": 1}}, status=400)),
    "no ready export": at("ready", None),
    "no ready export, exports failed": lambda obs: at("ready", None)(at("exports", FAILED)(obs)),
    "no bundle columns anywhere": lambda obs: dataclasses.replace(
        obs,
        settings=dataclasses.replace(obs.settings, export_bundles=()),
        page=None,
        feed_probes=[],
    ),
}


@pytest.fixture(scope="module")
def base() -> Iterator[Observations]:
    """What the probe saw of two configured feeds, a ready export and a building one."""
    with FakeContactBased(api_key=API_KEY, today=TODAY, build_seconds=0.05) as server:
        server.make_ready_export(server.feed_ids[0], 7, enrichment_bundles=["emails"])
        server.make_building_export(server.feed_ids[1], 3)
        yield observe(server, feed_ids=server.feed_ids[:2])


@pytest.mark.parametrize("name", list(HAND_MADE))
def test_hand_made_observations(base: Observations, name: str) -> None:
    assert disagreements(name, HAND_MADE[name](base)) == []
