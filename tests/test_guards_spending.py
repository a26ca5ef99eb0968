"""Each guard of the spend proven on its own, naming the guard that acted.

Resume from the state, find-or-create's option comparison, the preflight against
`max_records_per_run` (costs known or not) and against the credit pool (`records_remaining`
given or computed), and the create that looks for its export before it pays again. Every
test sets up the API so that no neighbouring guard can keep the money in its place: the
summaries do not echo the options when resume is proven, the API's own 402 would come too
late to tell refusals apart, and the faults aimed at the create are checked to have hit it.
"""

from __future__ import annotations

import datetime
import logging
import typing as t

import pytest

from tap_contactbased import endpoints, retry
from tap_contactbased.client import ContactBasedStream
from tap_contactbased.lifecycle import ExportLifecycle, preview
from tap_contactbased.summary import ExportOptions, ExportSummary, Match
from tap_contactbased.tap import TapContactBased

if t.TYPE_CHECKING:
    from tap_contactbased.api_client import ApiClient
from tests.conftest import TODAY, YESTERDAY, make_config
from tests.export_checks import by_key, delivered_rows
from tests.fake_api import FakeContactBased
from tests.fake_api import exports as fake_exports
from tests.fake_api.faults import Hit
from tests.run_checks import cost_receipt, listed, one_clear_line, partition
from tests.singer_run import SyncResult, run_tap

LOOKBACK_DAYS = 7
PAGE_SIZE = 1000
CREATE = f"POST {endpoints.EXPORTS}"
START = TODAY - datetime.timedelta(days=LOOKBACK_DAYS - 1)


def config_of(api: FakeContactBased, **overrides: t.Any) -> dict[str, t.Any]:
    return make_config(
        api,
        feed_ids=api.feed_ids[:1],
        lookback_days=LOOKBACK_DAYS,
        page_size=PAGE_SIZE,
        **overrides,
    )


def creates(api: FakeContactBased) -> list[int]:
    """The statuses of the create requests, in order (0: the connection was dropped)."""
    return [r.status for r in api.requests if (r.method, r.path) == ("POST", endpoints.EXPORTS)]


# Resume from the state


def test_an_export_the_state_names_is_resumed_although_nothing_else_could_find_it(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    feed = api.feed_ids[0]
    export_id = api.make_ready_export(feed, LOOKBACK_DAYS, page_size=PAGE_SIZE)
    api.faults.drift = {"summary": {"lookback_days": None}}
    summary = listed(api, export_id)
    # Find-or-create cannot prove this export the one the run wants: only the state can.
    wanted = ExportOptions(feed, LOOKBACK_DAYS, PAGE_SIZE)
    assert wanted.compare(ExportSummary(summary)) == (Match.UNPROVEN, ["lookback_days"])
    flight = {
        "export_id": export_id,
        "start_date": START.isoformat(),
        "end_date": TODAY.isoformat(),
        "deliver_through": YESTERDAY.isoformat(),
        "rows_done": 100,
    }
    entry = {"context": {"feed_id": feed}, "in_flight": flight}
    state = {"bookmarks": {"export_rows": {"partitions": [entry]}}}

    with caplog.at_level(logging.INFO):
        result = run_tap(config_of(api), streams=["export_rows"], state=state)

    assert creates(api) == []
    assert f"Resuming export {export_id} of feed {feed}" in caplog.text
    assert "after row 100" in caplog.text
    expected = delivered_rows(api, export_id, YESTERDAY)
    after_100 = {key: record for key, record in expected.items() if key[1] > 100}
    assert by_key(result.records("export_rows")) == after_100
    assert partition(result.last_state, feed)["last_export_id"] == export_id


# Find-or-create: only an export proven to have the run's options is reused

FILTER = {"field": "country", "op": "eq", "value": "United States"}
OTHER_FILTER = {"field": "country", "op": "eq", "value": "Canada"}
CONTACTS = {"require_contact_id": True}  # what filters and bundles force: the same either way
# (what the run asks for, what the export on the API was made with; None: left unset).
OTHER_OPTIONS = {
    "max_rows set on the API": ({}, {"max_rows": 17}),
    "max_rows set by the run": ({"max_rows": 17}, {"max_rows": None}),
    "max_rows other": ({"max_rows": 17}, {"max_rows": 18}),
    "require_contact_id set on the API": ({}, CONTACTS),
    "require_contact_id set by the run": (CONTACTS, {"require_contact_id": False}),
    "consumer_filters set on the API": (CONTACTS, {"consumer_filters": [FILTER]}),
    "consumer_filters set by the run": ({"consumer_filters": [FILTER]}, {"consumer_filters": None}),
    "consumer_filters other": (
        {"consumer_filters": [FILTER]},
        {"consumer_filters": [OTHER_FILTER]},
    ),
    "enrichment_bundles set on the API": (CONTACTS, {"enrichment_bundles": ["emails"]}),
    "enrichment_bundles set by the run": (
        {"enrichment_bundles": ["emails"]},
        {"enrichment_bundles": None},
    ),
    "enrichment_bundles other": (
        {"enrichment_bundles": ["emails"]},
        {"enrichment_bundles": ["phones"]},
    ),
    "page_size": ({}, {"page_size": 2 * PAGE_SIZE}),
}


@pytest.fixture
def lifecycle(api: FakeContactBased) -> ExportLifecycle:
    """The tap's export operations on the local API."""
    stream = TapContactBased(config=config_of(api)).streams["export_rows"]
    assert isinstance(stream, ContactBasedStream)
    return ExportLifecycle(stream.client, logging.getLogger("test"))


def run_options(api: FakeContactBased, **options: t.Any) -> ExportOptions:
    filters = tuple(options.pop("consumer_filters", ()))
    bundles = tuple(options.pop("enrichment_bundles", ()))
    return ExportOptions(
        api.feed_ids[0],
        LOOKBACK_DAYS,
        options.pop("page_size", PAGE_SIZE),
        consumer_filters=filters,
        enrichment_bundles=bundles,
        **options,
    )


def api_options(run: ExportOptions, **options: t.Any) -> dict[str, t.Any]:
    """The create body of the run's options, some of them changed (None: left unset)."""
    return {k: v for k, v in {**run.body(), **options}.items() if v is not None}


@pytest.mark.parametrize(("asked", "made"), OTHER_OPTIONS.values(), ids=list(OTHER_OPTIONS))
def test_an_export_of_the_same_window_made_with_another_option_is_not_reused(
    api: FakeContactBased,
    lifecycle: ExportLifecycle,
    asked: dict[str, t.Any],
    made: dict[str, t.Any],
) -> None:
    options = run_options(api, **asked)
    same = api.make_ready_export(**api_options(options))
    other = api.make_ready_export(**api_options(options, **made))
    assert listed(api, other)["start_date"] == START.isoformat()  # the same window

    found = lifecycle.find_reusable(options, START, TODAY)

    # The list is newest first: a comparison that let the other one through returns it.
    assert found is not None
    assert found.export_id == same


@pytest.fixture
def same_options(api: FakeContactBased) -> ExportOptions:
    return run_options(api)


def test_a_failed_export_with_the_same_options_is_not_reused(
    api: FakeContactBased, lifecycle: ExportLifecycle, same_options: ExportOptions
) -> None:
    ready = api.make_ready_export(**api_options(same_options))
    api.faults.fail_exports = True
    failed = api.make_ready_export(**api_options(same_options))
    assert listed(api, failed)["status"] == "failed"

    found = lifecycle.find_reusable(same_options, START, TODAY)

    assert found is not None
    assert found.export_id == ready


def test_an_export_the_run_excludes_is_not_reused(
    api: FakeContactBased, lifecycle: ExportLifecycle, same_options: ExportOptions
) -> None:
    older = api.make_ready_export(**api_options(same_options))
    delivered = api.make_ready_export(**api_options(same_options))

    found = lifecycle.find_reusable(same_options, START, TODAY, exclude={delivered})

    assert found is not None
    assert found.export_id == older


@pytest.mark.parametrize(
    ("field", "day"),
    [
        pytest.param("start_date", START - datetime.timedelta(days=1), id="start_date"),
        # After the API's midnight: an export made then ends a day after the run's window.
        pytest.param("end_date", TODAY + datetime.timedelta(days=1), id="end_date"),
    ],
)
def test_an_export_whose_window_starts_or_ends_another_day_is_not_reused(
    api: FakeContactBased,
    lifecycle: ExportLifecycle,
    same_options: ExportOptions,
    field: str,
    day: datetime.date,
) -> None:
    made = api.make_ready_export(**api_options(same_options))
    # The summary shows the run's options and lookback, one end of its window elsewhere.
    api.faults.new_fields = {field: day.isoformat()}
    assert listed(api, made)[field] == day.isoformat()

    assert lifecycle.find_reusable(same_options, START, TODAY) is None

    api.faults.new_fields = {}
    found = lifecycle.find_reusable(same_options, START, TODAY)
    assert found is not None
    assert found.export_id == made


def test_an_export_that_does_not_echo_an_option_the_run_sets_is_not_reused(
    api: FakeContactBased,
    lifecycle: ExportLifecycle,
    same_options: ExportOptions,
    caplog: pytest.LogCaptureFixture,
) -> None:
    made = api.make_ready_export(**api_options(same_options))
    api.faults.drift = {"summary": {"page_size": None}}

    with caplog.at_level(logging.WARNING):
        found = lifecycle.find_reusable(same_options, START, TODAY)

    assert found is None
    assert f"Export {made} of feed {api.feed_ids[0]} has the same window" in caplog.text
    assert "does not echo page_size" in caplog.text


def test_an_export_whose_summary_shows_another_lookback_is_different() -> None:
    # The API's window always follows lookback_days, so only a summary can disagree.
    options = ExportOptions("feed", LOOKBACK_DAYS, PAGE_SIZE)
    raw = {"export_id": "exp_1", "feed_id": "feed", "page_size": PAGE_SIZE}
    raw["require_contact_id"] = False

    assert options.compare(ExportSummary({**raw, "lookback_days": 7})) == (Match.SAME, [])
    assert options.compare(ExportSummary({**raw, "lookback_days": 8})) == (Match.DIFFERENT, [])
    assert options.compare(ExportSummary({**raw, "feed_id": "other", "lookback_days": 7})) == (
        Match.DIFFERENT,
        [],
    )


def test_a_summary_proves_the_options_in_every_form_an_echo_may_take() -> None:
    raw = {"export_id": "exp_1", "feed_id": "feed", "lookback_days": 7, "page_size": PAGE_SIZE}
    filtered = ExportOptions("feed", LOOKBACK_DAYS, PAGE_SIZE, consumer_filters=(FILTER,))
    reordered = dict(reversed(FILTER.items()))  # the same filter, its keys in another order
    echo = {**raw, "require_contact_id": True, "consumer_filters": [reordered]}
    assert filtered.compare(ExportSummary(echo)) == (Match.SAME, [])

    plain = ExportOptions("feed", LOOKBACK_DAYS, PAGE_SIZE)
    raw["require_contact_id"] = False
    # Options the run leaves unset, echoed as null: unset there too.
    unset = {**raw, "consumer_filters": None, "enrichment_bundles": None}
    assert plain.compare(ExportSummary(unset)) == (Match.SAME, [])
    # An echo that is no list of filters is not the run's (no filters) either.
    assert plain.compare(ExportSummary({**raw, "consumer_filters": 5})) == (Match.DIFFERENT, [])
    # What the summary does not echo is named, the feed first.
    unnamed = {k: v for k, v in raw.items() if k not in ("feed_id", "lookback_days")}
    assert plain.compare(ExportSummary(unnamed)) == (
        Match.UNPROVEN,
        ["feed_id", "lookback_days"],
    )


def test_a_summarys_columns_are_read_only_from_a_list() -> None:
    assert ExportSummary({"columns": ["contact_id", 7]}).columns == ["contact_id", "7"]
    assert ExportSummary({"columns": "contact_id"}).columns == []


def test_only_identical_exports_created_within_the_overlap_time_are_others_like_mine(
    api: FakeContactBased, lifecycle: ExportLifecycle
) -> None:
    options = ExportOptions(api.feed_ids[0], LOOKBACK_DAYS, PAGE_SIZE)
    mine, near, far = (api.make_ready_export(**options.body()) for _ in range(3))
    created = api.exports[mine].created_at
    api.exports[near].created_at = created - datetime.timedelta(seconds=60)  # on the edge
    api.exports[far].created_at = created - datetime.timedelta(seconds=61)
    summary = lifecycle.summaries([mine])[mine]

    others = lifecycle.others_like(summary, options, within_seconds=60)

    assert [other.export_id for other in others] == [near]
    # A summary without its window has no others to compare with.
    assert (
        lifecycle.others_like(ExportSummary({"export_id": mine}), options, within_seconds=60) == []
    )


def test_an_export_whose_creation_time_is_unknown_is_counted_as_like_mine(
    api: FakeContactBased, lifecycle: ExportLifecycle
) -> None:
    options = ExportOptions(api.feed_ids[0], LOOKBACK_DAYS, PAGE_SIZE)
    mine, far = (api.make_ready_export(**options.body()) for _ in range(2))
    api.exports[far].created_at = api.exports[mine].created_at - datetime.timedelta(days=1)
    summary = lifecycle.summaries([mine])[mine]
    untimed = ExportSummary({k: v for k, v in summary.raw.items() if k != "created_at"})
    api.faults.drift = {"summary": {"created_at": None}}

    # Without a time on either side, the overlap cannot be ruled out.
    assert [s.export_id for s in lifecycle.others_like(summary, options, within_seconds=60)] == [
        far
    ]
    assert [s.export_id for s in lifecycle.others_like(untimed, options, within_seconds=60)] == [
        far
    ]


# The export operations that find what the run must not pay for twice


LARGEST_LIST_PAGE = 200  # the lists' page_size maximum (docs/contactbased-api.md)


class ExportsList:
    """An exports list of `count` exports, newest first; its API may ignore `export_ids`."""

    def __init__(self, count: int, *, honours_ids: bool, end_date: str = "2026-01-01") -> None:
        self.exports = [
            {"export_id": f"exp_{n:03}", "feed_id": "feed", "status": "ready", "end_date": end_date}
            for n in range(count)
        ]
        self.honours_ids = honours_ids
        self.asked: list[dict[str, t.Any]] = []

    def post(self, path: str, body: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
        assert path == endpoints.EXPORTS_LIST
        self.asked.append(dict(body))
        ids = body.get("export_ids") if self.honours_ids else None
        listed = [e for e in self.exports if ids is None or e["export_id"] in ids]
        page, size = body["page"], body["page_size"]
        items = listed[(page - 1) * size : page * size]
        return {"items": items, "page": page, "page_size": size, "total": len(listed)}

    def lifecycle(self) -> ExportLifecycle:
        return ExportLifecycle(t.cast("ApiClient", self), logging.getLogger("test"))


def test_summaries_are_asked_for_in_lists_of_at_most_the_ids_one_request_holds() -> None:
    api = ExportsList(LARGEST_LIST_PAGE + 1, honours_ids=True)
    wanted = [e["export_id"] for e in api.exports]

    found = api.lifecycle().summaries(wanted)

    assert sorted(found) == wanted
    # Two requests, and no look through every page: the API kept to the filter.
    assert [len(body["export_ids"]) for body in api.asked] == [LARGEST_LIST_PAGE, 1]


def test_an_api_ignoring_the_ids_filter_is_looked_through_only_until_the_export_is_found() -> None:
    api = ExportsList(2 * endpoints.EXPORTS_LIST_PAGE_SIZE + 1, honours_ids=False)

    found = api.lifecycle().summaries(["exp_001"])

    assert list(found) == ["exp_001"]
    assert [body.get("export_ids") for body in api.asked] == [["exp_001"], None]  # one page


def test_the_search_for_a_window_stops_at_the_first_export_made_before_it() -> None:
    api = ExportsList(endpoints.EXPORTS_LIST_PAGE_SIZE + 1, honours_ids=True)
    options = ExportOptions("feed", LOOKBACK_DAYS, PAGE_SIZE)

    assert api.lifecycle().candidates(options, START, TODAY) == []
    assert len(api.asked) == 1  # the exports after the first are older still: not read


def test_a_preview_asks_for_one_row_and_no_count() -> None:
    class Poster:
        body: t.Mapping[str, t.Any] = {}

        def post(self, path: str, body: t.Mapping[str, t.Any]) -> t.Any:
            self.body = body

    poster = Poster()
    preview(poster, ExportOptions("feed", LOOKBACK_DAYS, PAGE_SIZE))
    assert (poster.body["preview_rows"], poster.body["skip_count"]) == (1, True)


def test_an_export_is_the_feeds_as_its_summary_says_or_else_as_the_feeds_list_says(
    api: FakeContactBased, lifecycle: ExportLifecycle
) -> None:
    mine_feed, other_feed = api.feed_ids[:2]
    mine = api.make_ready_export(mine_feed, LOOKBACK_DAYS, page_size=PAGE_SIZE)
    theirs = api.make_ready_export(other_feed, LOOKBACK_DAYS, page_size=PAGE_SIZE)
    summaries = lifecycle.summaries([mine, theirs])
    unnamed = {
        export_id: ExportSummary({k: v for k, v in s.raw.items() if k != "feed_id"})
        for export_id, s in summaries.items()
    }

    assert lifecycle.is_export_of(summaries[mine], mine_feed)
    assert not lifecycle.is_export_of(summaries[theirs], mine_feed)
    assert lifecycle.is_export_of(unnamed[mine], mine_feed)
    assert not lifecycle.is_export_of(unnamed[theirs], mine_feed)


def test_the_apis_today_is_the_start_of_a_one_day_window_when_it_gives_no_end(
    api: FakeContactBased, lifecycle: ExportLifecycle
) -> None:
    api.faults.drift = {"search": {"end_date": None}}
    assert lifecycle.api_today(api.feed_ids[0]) == TODAY


def test_the_credits_left_are_computed_when_the_api_does_not_say(
    api: FakeContactBased, lifecycle: ExportLifecycle
) -> None:
    api.make_ready_export(api.feed_ids[0], LOOKBACK_DAYS, page_size=PAGE_SIZE)  # reserves some
    credits = api.credits
    api.faults.drift = {"credits": {"records_remaining": None}}
    left = credits["records_total"] - credits["records_used"] - credits["records_reserved"]
    assert lifecycle.credits_remaining() == left
    api.faults.drift["credits"].update(records_used=None, records_reserved=None)
    assert lifecycle.credits_remaining() == credits["records_total"]


# The preflight: max_records_per_run and the credit pool


def export_cost(api: FakeContactBased) -> int:
    """What the run's export will reserve, as the API counts it before creation."""
    return api.plan(fake_exports.ExportOptions(api.feed_ids[0], LOOKBACK_DAYS, PAGE_SIZE)).total


def refused(result: SyncResult, api: FakeContactBased) -> str:
    """The run was refused by the tap itself: nothing asked of the create endpoint."""
    one_clear_line(result.error)
    assert creates(api) == []
    assert api.created_exports == []
    return str(result.error)


@pytest.mark.parametrize("limit", ["max_records_per_run", "the credit pool"])
def test_a_run_that_costs_exactly_what_is_allowed_goes_one_record_more_is_refused(
    api: FakeContactBased, limit: str
) -> None:
    cost = export_cost(api)

    def run(allowed: int) -> SyncResult:
        if limit == "the credit pool":
            api.credit_pool.total = api.credit_pool.used + api.credit_pool.reserved + allowed
            return run_tap(config_of(api), streams=["export_rows"], raise_errors=False)
        config = config_of(api, max_records_per_run=allowed)
        return run_tap(config, streams=["export_rows"], raise_errors=False)

    message = refused(run(cost - 1), api)
    assert f"This run would reserve {cost:,} records credits" in message
    if limit == "the credit pool":
        assert f"only {cost - 1:,} are left in the credit pool" in message
    else:
        assert f"more than max_records_per_run ({cost - 1:,})" in message

    done = run(cost)

    assert done.error is None
    assert creates(api) == [201]


def test_a_run_whose_cost_the_count_does_not_say_is_refused_under_max_records_per_run(
    api: FakeContactBased,
) -> None:
    api.faults.drift = {"count": {"records_required": None, "total_rows": None}}
    # A cap no known cost could reach: only the unknown cost can refuse the run.
    config = config_of(api, max_records_per_run=10**9)

    message = refused(run_tap(config, streams=["export_rows"], raise_errors=False), api)

    assert f"did not say what the export of feed(s) {api.feed_ids[0]} would reserve" in message
    assert "cannot be held to max_records_per_run (1,000,000,000)" in message


def test_without_records_required_the_cost_is_the_rows_the_count_gives(
    api: FakeContactBased,
) -> None:
    api.faults.drift = {"count": {"records_required": None}}
    cost = export_cost(api)
    config = config_of(api, max_records_per_run=cost - 1)

    message = refused(run_tap(config, streams=["export_rows"], raise_errors=False), api)

    assert f"This run would reserve {cost:,} records credits" in message
    assert "did not say" not in message


def test_without_a_cap_an_export_whose_cost_the_count_does_not_say_is_created_with_a_warning(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    api.faults.drift = {"count": {"records_required": None, "total_rows": None}}

    with caplog.at_level(logging.WARNING):
        result = run_tap(config_of(api), streams=["export_rows"])

    assert (
        f"did not say what the export of feed(s) {api.feed_ids[0]} would reserve; they are "
        "created without that check."
    ) in caplog.text
    assert creates(api) == [201]
    assert by_key(result.records("export_rows")) == delivered_rows(
        api, api.created_exports[0], YESTERDAY
    )


@pytest.fixture
def pool_without_remaining(api: FakeContactBased) -> int:
    """A pool whose answer lacks records_remaining, with credits used and reserved elsewhere.

    Returns the credits another export of another feed holds reserved while it builds.
    """
    other_feed = api.feed_ids[2]
    api.make_ready_export(other_feed, 3)  # used
    api.faults.stall_exports = True
    building = api.create_export(
        fake_exports.ExportOptions(other_feed, LOOKBACK_DAYS), by_client=False
    )
    api.faults.stall_exports = False
    credits = api.credits
    assert credits["records_used"] > 0
    assert credits["records_reserved"] == building.total_rows > 0
    api.faults.drift = {"credits": {"records_remaining": None}}
    return building.total_rows


@pytest.mark.parametrize("spare", [-1, 0])
def test_without_records_remaining_what_is_left_is_the_total_less_used_and_reserved(
    api: FakeContactBased, pool_without_remaining: int, spare: int
) -> None:
    cost = export_cost(api)
    pool = api.credit_pool
    pool.total = pool.used + pool.reserved + cost + spare
    assert pool_without_remaining > -spare  # the reserved credits alone decide the verdict

    result = run_tap(config_of(api), streams=["export_rows"], raise_errors=False)

    if spare < 0:
        message = refused(result, api)
        assert f"only {cost + spare:,} are left in the credit pool" in message
    else:
        assert result.error is None
        assert creates(api) == [201]


def test_a_pool_that_says_nothing_of_what_is_left_leaves_the_refusal_to_the_api(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    api.faults.drift = {"credits": {"records_remaining": None, "records_total": None}}

    with caplog.at_level(logging.WARNING):
        result = run_tap(config_of(api), streams=["export_rows"])

    assert "GET /organization/credits did not say what is left" in caplog.text
    assert creates(api) == [201]
    assert result.records("export_rows")


# The create that looks before it creates again


def looks(api: FakeContactBased) -> list[int]:
    """Where in the request log the tap looked through the feed's exports for its own."""
    return [
        i
        for i, r in enumerate(api.requests)
        if r.path == endpoints.EXPORTS_LIST and "feed_id" in (r.body or {})
    ]


def create_requests(api: FakeContactBased) -> list[int]:
    return [i for i, r in enumerate(api.requests) if r.path == endpoints.EXPORTS]


@pytest.mark.parametrize(
    ("fault", "statuses"),
    [
        # Held past the request timeout, then served: the export exists, the tap cannot know.
        pytest.param("hold", [201], id="answer held past the timeout"),
        # Closed before it was served: nothing exists, the look finds nothing, then creates.
        pytest.param("drop", [0, 201], id="connection dropped"),
    ],
)
def test_after_an_unsure_create_the_tap_waits_and_looks_before_creating_again(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture, fault: str, statuses: list[int]
) -> None:
    api.faults.aimed = {CREATE: [fault]}
    api.faults.hold_seconds = 1.5  # past the 1 s timeout, well before the tap looks again
    config = config_of(api, request_timeout_seconds=1)

    with caplog.at_level(logging.WARNING):
        result = run_tap(config, streams=["export_rows"])
    api.wait_idle()  # the held create has been served: a second export would show now

    assert api.fault_engine.hits == [Hit(CREATE, fault)]
    assert creates(api) == statuses
    assert len(api.created_exports) == 1
    assert "looking for it on the API, then trying again" in caplog.text
    failed, *again = create_requests(api)
    assert [i for i in looks(api) if i > failed]  # it looked after the failure
    assert all(any(failed < i < j for i in looks(api)) for j in again)  # before a new one
    expected = delivered_rows(api, api.created_exports[0], YESTERDAY)
    assert by_key(result.records("export_rows")) == expected


@pytest.mark.parametrize(
    ("fault", "times"),
    [
        # The limit of exports building at once may take longer than the retries of a
        # failure, so those refusals do not count towards the tries.
        pytest.param("429", retry.MAX_TRIES, id="429"),
        pytest.param("409", retry.MAX_TRIES, id="409"),
        pytest.param("503", 1, id="503"),
    ],
)
def test_a_refused_create_is_tried_again_without_looking_for_it(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture, fault: str, times: int
) -> None:
    api.faults.aimed = {CREATE: [fault] * times}
    api.faults.retry_after = 0.01
    config = config_of(api, request_timeout_seconds=1)

    with caplog.at_level(logging.WARNING):
        result = run_tap(config, streams=["export_rows"])
    api.wait_idle()  # the held create has been served: a second export would show now

    assert api.fault_engine.hits == [Hit(CREATE, fault)] * times
    assert creates(api) == [int(fault)] * times + [201]
    assert len(api.created_exports) == 1
    assert "looking for it" not in caplog.text
    assert "trying again in" in caplog.text
    requests_made = create_requests(api)
    assert requests_made == list(range(requests_made[0], requests_made[-1] + 1))  # nothing else
    assert result.records("export_rows")


@pytest.mark.parametrize("failures", [retry.MAX_TRIES - 1, retry.MAX_TRIES])
def test_a_create_that_fails_is_given_up_after_exactly_max_tries(
    api: FakeContactBased, failures: int
) -> None:
    api.faults.aimed = {CREATE: ["503"] * failures}
    api.faults.retry_after = 0.01

    result = run_tap(config_of(api), streams=["export_rows"], raise_errors=False)

    assert api.fault_engine.hits == [Hit(CREATE, "503")] * failures
    if failures < retry.MAX_TRIES:
        assert result.error is None
        assert creates(api) == [503] * failures + [201]
        expected = delivered_rows(api, api.created_exports[0], YESTERDAY)
        assert by_key(result.records("export_rows")) == expected
    else:
        one_clear_line(result.error)
        assert f"creating the export of feed {api.feed_ids[0]} failed {failures} time(s)" in str(
            result.error
        )
        assert creates(api) == [503] * failures
        assert api.created_exports == []


def test_an_identical_export_made_between_the_count_and_the_create_is_reused(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = ExportLifecycle.count
    made: list[str] = []

    def another_run_creates_it(lifecycle: ExportLifecycle, options: ExportOptions) -> t.Any:
        counted = count(lifecycle, options)
        made.append(api.make_ready_export(**options.body()))  # after the plan's own search
        return counted

    monkeypatch.setattr(ExportLifecycle, "count", another_run_creates_it)

    with caplog.at_level(logging.INFO):
        result = run_tap(config_of(api), streams=["export_rows"])

    (appeared,) = made
    assert creates(api) == []
    assert (
        f"Reusing export {appeared} of feed {api.feed_ids[0]} ({START}..{TODAY}), which "
        "appeared since the run was planned, instead of creating one."
    ) in caplog.text
    assert by_key(result.records("export_rows")) == delivered_rows(api, appeared, YESTERDAY)
    assert partition(result.last_state, api.feed_ids[0])["last_export_id"] == appeared
    receipt = cost_receipt(caplog)
    assert (receipt["reused"], receipt["exports_created"]) == ([appeared], 0)
    # Checkpointed before anything is read: a run killed now resumes the export that appeared.
    first_record = next(i for i, m in enumerate(result.messages) if m["type"] == "RECORD")
    early = [m["value"] for m in result.messages[:first_record] if m["type"] == "STATE"]
    assert [partition(s, api.feed_ids[0]).get("in_flight", {}).get("export_id") for s in early][
        -1
    ] == appeared


def test_a_create_refused_for_good_is_sent_once_and_stops_only_its_feed(
    api: FakeContactBased,
) -> None:
    api.faults.aimed = {CREATE: ["403"]}
    config = {**config_of(api), "feed_ids": api.feed_ids[:2]}

    result = run_tap(config, streams=["export_rows"], raise_errors=False)

    assert api.fault_engine.hits == [Hit(CREATE, "403")]
    assert creates(api) == [403, 201]  # refused for good: never sent again
    one_clear_line(result.error)
    feed = next(
        t.cast("dict[str, str]", r.body)["feed_id"] for r in api.requests if r.status == 403
    )
    assert f"creating the export of feed {feed} was refused" in str(result.error)
    (other,) = set(api.feed_ids[:2]) - {feed}
    assert {r["feed_id"] for r in result.records("export_rows")} == {other}
    assert "delivered_through" not in partition(result.last_state, feed)


@pytest.mark.parametrize(
    "said",
    ["by the create", "by the count only", "by neither"],
)
def test_the_receipt_holds_what_the_create_reserved_or_else_what_the_count_required(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture, said: str
) -> None:
    # [assumed] fields: an API that does not say what it reserved, nor what a count requires.
    if said != "by the create":
        api.faults.drift = {"summary": {"records_reserved": None}}
    if said == "by neither":
        api.faults.drift["count"] = {"records_required": None, "total_rows": None}

    with caplog.at_level(logging.INFO):
        run_tap(config_of(api), streams=["export_rows"])

    (made,) = api.created_exports
    # The local API reserves what its count required: the total rows of the export.
    reserved = 0 if said == "by neither" else api.exports[made].plan.total
    assert cost_receipt(caplog)["created"] == [
        {"export_id": made, "feed_id": api.feed_ids[0], "records_reserved": reserved}
    ]


def test_the_receipt_holds_what_the_create_reserved_even_when_the_count_said_otherwise(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    api.faults.raw_json = {"summary": {"records_reserved": "4321"}}

    with caplog.at_level(logging.INFO):
        run_tap(config_of(api), streams=["export_rows"])

    (made,) = api.created_exports
    assert api.exports[made].plan.total != 4321  # what the count required
    assert cost_receipt(caplog)["created"] == [
        {"export_id": made, "feed_id": api.feed_ids[0], "records_reserved": 4321}
    ]


def test_an_identical_export_created_by_another_run_at_the_same_time_is_warned_of(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API has no lock: two shards given the same feed both create, and both are billed."""
    create = ExportLifecycle.create
    theirs: list[str] = []

    def another_run_creates_it_too(lifecycle: ExportLifecycle, options: ExportOptions) -> t.Any:
        theirs.append(api.make_ready_export(**options.body()))  # after this run looked
        return create(lifecycle, options)

    monkeypatch.setattr(ExportLifecycle, "create", another_run_creates_it_too)

    with caplog.at_level(logging.INFO):
        result = run_tap(config_of(api), streams=["export_rows"])

    (other,) = theirs
    (mine,) = set(api.created_exports) - {other}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        f"Overlap: this run created export {mine} of feed {api.feed_ids[0]} while {other}, "
        "identical, was created by another run within"
    ) in " ".join(warnings)
    assert by_key(result.records("export_rows")) == delivered_rows(api, mine, YESTERDAY)


def test_a_create_waiting_for_its_next_try_holds_back_no_other_feed(
    api: FakeContactBased,
) -> None:
    # One export builds at a time. The first feed's create gets no answer, so it waits a
    # request timeout and looks before trying again; meanwhile the others go ahead.
    api.faults.aimed = {CREATE: ["drop"]}
    config = {
        **config_of(api),
        "feed_ids": api.feed_ids[:3],
        "max_concurrent_exports": 1,
        "request_timeout_seconds": 2,
    }

    result = run_tap(config, streams=["export_rows"])

    sent = [
        (t.cast("dict[str, str]", r.body)["feed_id"], r.status)
        for r in api.requests
        if (r.method, r.path) == ("POST", endpoints.EXPORTS)
    ]
    first, second, third = api.feed_ids[:3]
    assert api.fault_engine.hits == [Hit(CREATE, "drop")]
    assert sent == [(first, 0), (second, 201), (third, 201), (first, 201)]
    assert {r["feed_id"] for r in result.records("export_rows")} == {first, second, third}
