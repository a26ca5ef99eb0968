"""The contract points, one row each, in the order of the report.

A row names what it judges, its fields from `schemas.py`, the tap's way with each missing or
mistyped field (notes in the order given), and the rule for the rest.
"""

from __future__ import annotations

import typing as t

from tap_contactbased import endpoints, schemas
from tap_contactbased.probe import data_rules, rules
from tap_contactbased.probe.engine import (
    Coping,
    Point,
    breaks,
    contract_fields,
    copes,
    differs,
    tolerated,
)

if t.TYPE_CHECKING:
    from tap_contactbased.probe.report import Finding

Objects = t.Sequence[t.Mapping[str, t.Any]]


def _remaining(_: list[str], credits: Objects) -> Finding:
    if all("records_total" in c for c in credits):
        return tolerated(
            "Without records_remaining the tap computes it as records_total - records_used - "
            "records_reserved."
        )
    return differs(
        "Without records_remaining or records_total the tap cannot check credits before creating; "
        "the API's 402 is the only guard."
    )


def _cost(missing: list[str], _: Objects) -> Finding:
    if len(missing) == 2:
        return differs(
            "Without total_rows and records_required an export's cost is unknown: a run with "
            "max_records_per_run stops before creating, others rely on the API's 402."
        )
    if missing == ["records_required"]:
        return tolerated("Without records_required the tap takes the row count as the cost.")
    return tolerated("Without total_rows the tap reads until the data ends.")


def _not_integers(why: str) -> t.Callable[[list[str], Objects], Finding]:
    return lambda names, _: differs(f"{', '.join(names)} not integers{why}")


_CREDITS_INT = Coping(wrong_kind=_not_integers(": the credit preflight reads them as such."))
_PERIOD = Coping(
    wrong_kind=tolerated("Period bounds are not dates; the credits stream passes them.")
)
_COUNT_INT = _not_integers(": the tap computes with them.")
_WINDOW = breaks(
    "Without start_date and end_date the tap cannot match an export's window: a run that lost "
    "its state pays for a new export.",
    differs("start_date or end_date is not a date; find-or-create compares them."),
)
_SIZE = "Without total_rows or total_pages the tap reads until the data ends."
SUMMARY = "Feed exports: Export summary"
_SUMMARY_FIELDS = contract_fields(schemas.EXPORT_SUMMARY, drop=rules.OPTION_FIELDS)

POINTS: tuple[Point, ...] = (
    Point(
        "API key",
        "Common rules: auth",
        "X-API-Key on every request; a missing or refused key answers 401",
        rule=rules.auth,
    ),
    Point(
        "error bodies",
        "Common rules: errors (FastAPI)",
        '404 for an unknown export with {"detail": text}; 422 for an invalid body with '
        '{"detail": [{"loc", "msg", "type"}]}',
        answers=lambda obs: [
            ("unknown export", obs.missing_export),
            ("invalid body", obs.invalid_body),
        ],
        what="request",
        rule=rules.error_body,
    ),
    Point(
        "list envelope and pagination",
        f"Common rules: pagination; GET {endpoints.FEEDS}; POST {endpoints.EXPORTS_LIST}",
        '{"items", "page", "page_size", "total"}; page as asked, up to page_size items, total '
        "counting every item",
        answers=lambda obs: [("feeds", obs.feeds), ("exports", obs.exports)],
        what="list",
        rule=rules.envelope,
    ),
    Point(
        "credits counters",
        f"GET {endpoints.CREDITS}",
        answer=lambda obs: obs.credits,
        fields=contract_fields(schemas.CREDITS, drop=["snapshot_date"]),
        copings={
            "records_remaining": Coping(_remaining, _CREDITS_INT.wrong_kind),
            **dict.fromkeys(("records_total", "records_used", "records_reserved"), _CREDITS_INT),
            **dict.fromkeys(("period_start", "period_end"), _PERIOD),
        },
        otherwise=tolerated(rules.passed_through("credits")),
        describe=True,
    ),
    Point(
        "feed limit",
        f"GET {endpoints.FEED_LIMIT}",
        answer=lambda obs: obs.feed_limit,
        fields=contract_fields(schemas.FEED_LIMIT, drop=["snapshot_date"]),
        copings=dict.fromkeys(
            ("feed_limit", "feeds_created", "feeds_remaining"),
            copes(
                rules.passed_through("feed_limit"),
                _not_integers(", as the feed_limit stream types them."),
            ),
        ),
        describe=True,
    ),
    Point(
        "feed fields",
        f"GET {endpoints.FEEDS}: Feed",
        f"feed_id: uuid, name, kind ({' | '.join(schemas.FEED_KINDS)}), query, topics: list, "
        "domain_count: int, max_lookback_days: int, created_at, updated_at",
        answer=lambda obs: obs.feeds,
        what="The feeds list",
        entries="items",
        fields=contract_fields(schemas.FEED),
        copings={
            "feed_id": breaks(
                "Feeds without feed_id: the tap refuses every configured feed as unknown."
            ),
            "max_lookback_days": copes(
                "Without max_lookback_days the tap keeps lookback_days; the API refuses a window "
                "too long (403).",
                differs("max_lookback_days is not an integer; the tap computes with it."),
            ),
        },
        otherwise=tolerated(rules.passed_through("feeds")),
        describe=True,
        rule=rules.feeds,
    ),
    Point(
        "today and the inclusive window",
        f"Common rules: lookback windows; POST {endpoints.SEARCH}",
        "lookback_days ends today (UTC) and includes it: a one-day search has start_date = "
        "end_date = the API's today",
        skip=rules.no_feed,
        answer=lambda obs: obs.search,
        what="The one-day search",
        rule=rules.today,
    ),
    Point(
        "search counters",
        f"POST {endpoints.SEARCH}",
        "total_records, records_with_contact_id, records_without_contact_id: int; "
        'daily_counts: [{"date", "count"}] when asked for',
        skip=rules.no_feed,
        answer=lambda obs: obs.search,
        what="The search",
        fields=contract_fields(schemas.SEARCH_ANSWER),
        # The window's point judges the dates; the rule says what no daily_counts breaks.
        copings=dict.fromkeys(
            contract_fields(schemas.SEARCH_ANSWER, drop=rules.SEARCH_OWN),
            copes("The tap does not read the search counters, only daily_counts."),
        ),
        describe=True,
        rule=rules.search,
    ),
    Point(
        "filter fields",
        f"POST {endpoints.FILTER_FIELDS}",
        '{"fields": [{"field", "label", "category", "type", "operators"}]}',
        answer=lambda obs: obs.filter_fields,
        what="The filter fields",
        entries="fields",
        no_list=differs("Without a fields list the filter_fields stream stops with one line."),
        fields=contract_fields(schemas.FILTER_FIELD),
        copings={"field": breaks("Entries without `field`, the key of filter_fields records.")},
        otherwise=tolerated(rules.passed_through("filter_fields")),
        rule=rules.filter_fields,
    ),
    Point(
        "preview columns and id spelling",
        f"POST {endpoints.EXPORTS_PREVIEW}; Identifiers; Export rows",
        '{"columns", "rows", "estimated_rows"}; the contract\'s columns, the id spelled '
        "contact_id (cb_id in older material), bundle_<key> columns last",
        skip=rules.no_feed,
        answers=lambda obs: [
            (f"{'configured' if p.configured else 'first listed'} feed {n}", p.preview)
            for n, p in enumerate(obs.feed_probes, 1)
        ],
        what="preview",
        fields=contract_fields(schemas.PREVIEW_ANSWER),
        otherwise=lambda missing, _: tolerated(
            f"Without {', '.join(missing)}: discovery keeps the contract's columns; the "
            "export's own header decides when reading."
        ),
        rule=rules.preview,
    ),
    Point(
        "count fields",
        f"POST {endpoints.EXPORTS_COUNT}",
        skip=rules.no_feed,
        answers=lambda obs: [(f"feed {n}", p.count) for n, p in enumerate(obs.feed_probes, 1)],
        what="count",
        fields=contract_fields(schemas.COUNT_ANSWER),
        copings={
            "total_rows": Coping(_cost, _COUNT_INT, null_ok=True),
            "records_required": Coping(_cost, _COUNT_INT, null_ok=True),
            "rows_with_contact_id": copes(
                "The tap does not read rows_with_contact_id.", _COUNT_INT, null_ok=True
            ),
        },
        rule=rules.count,
    ),
    Point(
        "export summary fields",
        SUMMARY,
        ", ".join(_SUMMARY_FIELDS).replace("columns", "columns (null while building)"),
        skip=rules.no_summary,
        objects=rules.summary_part(options=False),
        fields=_SUMMARY_FIELDS,
        copings={
            "export_id": breaks(
                "Without export_id the tap cannot read, resume or reuse an export."
            ),
            "feed_id": breaks(
                "Without feed_id the tap cannot tell an export's feed: a run that lost its state "
                "pays for a new export."
            ),
            "status": breaks("Without status the tap cannot tell when an export is ready."),
            "build_progress": copes(
                "Without build_progress a build longer than export_stall_timeout_seconds stops "
                "the run; the next run resumes it."
            ),
            "build_error": copes("A failed export then stops the run with 'no reason given'."),
            "start_date": _WINDOW,
            "end_date": _WINDOW,
            "total_rows": copes(
                _SIZE,
                differs("total_rows is not an integer; the tap counts with it."),
                null_ok=True,
            ),
            "total_pages": copes(_SIZE),
            "columns": copes(
                "Without columns the tap takes the CSV header or the page rows' keys."
            ),
            "records_reserved": copes("The cost receipt then uses the pre-create count."),
        },
        otherwise=tolerated(rules.passed_through("exports")),
        also_missing=rules.ready_nulls,
        rule=rules.summary_fields,
    ),
    Point(
        "echoed options",
        SUMMARY,
        f"the options the export was made with: {', '.join(rules.OPTION_FIELDS)}",
        skip=rules.no_summary,
        objects=rules.summary_part(options=True),
        fields=contract_fields(schemas.EXPORT_SUMMARY, drop=_SUMMARY_FIELDS),
        otherwise=lambda missing, _: tolerated(
            f"Not echoed: {', '.join(sorted(missing))}. The tap reuses such an export only if "
            "its id is in the state; else it creates a new one."
        ),
        describe=True,
    ),
    Point(
        "status values",
        SUMMARY,
        " | ".join(rules.STATUSES),
        skip=rules.no_summary,
        rule=rules.statuses,
    ),
    Point(
        "page rows",
        f"POST {endpoints.EXPORTS_PAGE}",
        "the summary fields plus page and rows: objects keyed by column, every value text or "
        "null; every page but the last holds page_size rows",
        skip=rules.no_ready,
        answer=lambda obs: obs.page,
        what="Page 1 of the ready export",
        fields=contract_fields(schemas.PAGE_FIELDS),
        copings={"page": copes(rules.NO_PAGE)},  # the rule judges rows
        rule=data_rules.page,
    ),
    Point(
        "download URL and expires_at",
        f"POST {endpoints.EXPORTS_DOWNLOAD_URL}",
        '{"export_id", "url": signed URL, "expires_at": timestamp about an hour ahead}',
        skip=rules.no_ready,
        answer=lambda obs: obs.download,
        what="The download-url request",
        rule=data_rules.download,
    ),
    Point(
        "CSV header and quoting",
        f"POST {endpoints.EXPORTS_DOWNLOAD_URL} (CSV)",
        "a header row, RFC 4180 quoting (CRLF line ends), UTF-8",
        skip=data_rules.no_csv,
        rule=data_rules.csv_sample,
    ),
    Point(
        "bundle list",
        f"GET {endpoints.BUNDLES}",
        '{"bundles": [{"key", "path", "label", "enabled": bool}]}',
        answer=lambda obs: obs.bundles,
        entries="bundles",
        no_list=differs("No bundles list: the tap refuses every bundle a run asks for."),
        fields=contract_fields(schemas.BUNDLE),
        copings={
            "key": breaks("Entries without `key`: the tap knows bundles by key and refuses them."),
            "enabled": copes(
                "Without `enabled` the tap takes listed bundles as enabled; the API refuses others."
            ),
        },
        otherwise=tolerated(rules.passed_through("bundles")),
        rule=data_rules.bundle_list,
    ),
    Point(
        "bundle_<key> columns",
        "Export options: enrichment_bundles; Export rows; Enrichment bundles",
        "one bundle_<key> column per export bundle, holding the bundle's payload as JSON text "
        "(payload fields other than e-mail last_seen are assumed)",
        rule=data_rules.bundle_columns,
    ),
    Point(
        "enrichment answers",
        "Enrichment: POST /enrich/<key>",
        '{"bundle", "requested", "found", "not_found", "results": [{"contact_id", "found", '
        '"data"}]}, input order kept',
        skip=lambda _: "Enrichment is billed per contact and bundle: the probe never calls it.",
    ),
    Point(
        "create refusals",
        f"Feed exports: POST {endpoints.EXPORTS}",
        "402 when records_required exceeds records_remaining; 429 (Retry-After) or 409 at the "
        "concurrent-build limit, with a detail saying so",
        skip=lambda _: "Only creating an export shows them, and the probe never creates one.",
    ),
)
