"""Checks of the organization, feed and filter endpoints, and of error bodies."""

from __future__ import annotations

import typing as t

from tap_contactbased.probe.observe import (
    EXPORTS_PAGE_SIZE,
    FEEDS_PAGE_SIZE,
    Answer,
    Observations,
    feed_items,
)
from tap_contactbased.probe.points import (
    BOTH_SPELLINGS,
    differs,
    failure,
    holds,
    judged,
    passed_through,
    tolerated,
    unchecked,
)
from tap_contactbased.probe.shapes import (
    as_date,
    get_either,
    is_int,
    kind,
    match_fields,
    merged_shape,
    shape,
)

if t.TYPE_CHECKING:
    from tap_contactbased.probe.report import Check, Finding

NO_DETAIL = (
    "Error bodies without `detail`: the tap's one-line errors read only `detail`, so they "
    "would lose the API's explanation (which setting, which limit)."
)


def check_auth(obs: Observations) -> Check:
    """The key was accepted: the first request answered."""
    return judged(
        "API key",
        "Common rules: auth",
        "X-API-Key on every request; a missing or refused key answers 401",
        f"GET /organization/credits with X-API-Key answered {kind(obs.credits.body)}",
        [holds()],
    )


def _status_findings(status: int, expected: int, what: str) -> list[Finding]:
    if status < 400:
        return [differs(f"{what} answered {status}, not an error.")]
    if status != expected:
        note = f"{what} answered {status}, not {expected}; the tap's error lines name any status."
        return [tolerated(note)]
    return []


def _not_found_findings(answer: Answer) -> list[Finding]:
    body = answer.body
    findings = _status_findings(answer.status or 0, 404, "An unknown export")
    if not isinstance(body, dict) or "detail" not in body:
        findings.append(differs(NO_DETAIL))
    return findings or [holds()]


def _invalid_findings(answer: Answer) -> list[Finding]:
    body = answer.body
    findings = _status_findings(answer.status or 0, 422, "An invalid body")
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(body, dict) or "detail" not in body:
        findings.append(differs(NO_DETAIL))
    elif isinstance(detail, str):
        findings.append(tolerated("A 422 `detail` is text, not a list; the tap shows it as it is."))
    elif isinstance(detail, list) and not all(isinstance(i, dict) and "msg" in i for i in detail):
        findings.append(
            differs("422 items without `msg`: the tap's error lines would not say what was wrong.")
        )
    return findings or [holds()]


def check_error_bodies(obs: Observations) -> Check:
    """A free 404 (page of an unknown export) and a free 422 (count without a body)."""
    point, section = "error bodies", "Common rules: errors (FastAPI)"
    expected = (
        '404 for an unknown export with {"detail": text}; 422 for an invalid body with '
        '{"detail": [{"loc", "msg", "type"}]}'
    )
    answers = {"404": obs.missing_export, "422": obs.invalid_body}
    if all(a.error for a in answers.values()):
        reason = " ".join(failure(f"The provoked {k}", a) for k, a in answers.items())
        return unchecked(point, section, expected, reason)
    seen, findings = [], []
    for label, answer, judge in (
        ("unknown export", obs.missing_export, _not_found_findings),
        ("invalid body", obs.invalid_body, _invalid_findings),
    ):
        if answer.error:
            findings.append(tolerated(failure(f"The {label} request", answer)))
            continue
        body = answer.body
        detail = body.get("detail") if isinstance(body, dict) else None
        items = f", detail items {merged_shape(detail)}" if isinstance(detail, list) else ""
        seen.append(f"{label}: {answer.status} {shape(body)}{items}")
        findings += judge(answer)
    return judged(point, section, expected, "; ".join(seen), findings)


def _envelope_findings(answer: Answer, asked: int, noun: str, loss: str) -> list[Finding]:
    body = answer.body
    if not isinstance(body, dict):
        return [differs(f"The {noun} list is not an object: {loss}")]
    items = body.get("items")
    if not isinstance(items, list):
        return [differs(f"The {noun} list has no `items` list: {loss}")]
    findings: list[Finding] = []
    total, page, page_size = body.get("total"), body.get("page"), body.get("page_size")
    if "total" not in body:
        findings.append(tolerated("Without `total` the tap reads pages until a short one."))
    if "page" not in body:
        findings.append(tolerated("Without `page` the tap counts pages itself."))
    elif page != 1:
        findings.append(
            differs(f"Asked for page 1 of {noun}, the API answered another page number.")
        )
    if "page_size" not in body:
        findings.append(tolerated("Without `page_size` the tap keeps the size it asked for."))
    # A short page is the last one for the tap; it must not be short while more exist.
    if is_int(total):
        short = len(items) < min(asked, total)
    else:
        short = is_int(page_size) and len(items) >= page_size and page_size < asked
    if short:
        findings.append(
            differs(
                f"A page of {noun} held fewer items than asked while more exist: the tap "
                "takes a short page as the last one and would miss the rest."
            )
        )
    return findings or [holds()]


def check_envelope(obs: Observations) -> Check:
    """The list envelope of the feeds list and the exports list, and their page sizes."""
    point = "list envelope and pagination"
    section = "Common rules: pagination; GET /organization/feeds; POST /intent/feeds/exports/list"
    expected = (
        '{"items", "page", "page_size", "total"}; page as asked, up to page_size items, '
        "total counting every item"
    )
    lists = (
        ("feeds", obs.feeds, FEEDS_PAGE_SIZE, "configured feeds would be refused as unknown."),
        ("exports", obs.exports, EXPORTS_PAGE_SIZE, "find-or-create would never reuse one."),
    )
    if all(a.error for _, a, _, _ in lists):
        reason = " ".join(failure(f"The {noun} list", a) for noun, a, _, _ in lists)
        return unchecked(point, section, expected, reason)
    seen, findings = [], []
    for noun, answer, asked, loss in lists:
        if answer.error:
            findings.append(tolerated(failure(f"The {noun} list", answer)))
            continue
        count = len(feed_items(answer))
        seen.append(f"{noun}: {shape(answer.body)} ({count} items for page_size {asked})")
        findings += _envelope_findings(answer, asked, noun, loss)
    return judged(point, section, expected, "; ".join(seen), findings)


CREDIT_COUNTERS = ("records_total", "records_used", "records_reserved", "records_remaining")
CREDIT_DATES = ("period_start", "period_end")


def check_credits(obs: Observations) -> Check:
    """The records credit pool's counters."""
    point, section = "credits counters", "GET /organization/credits"
    expected = f"{', '.join(CREDIT_COUNTERS)}: int; {', '.join(CREDIT_DATES)}: date"
    body = obs.credits.body
    if not isinstance(body, dict):
        return judged(point, section, expected, kind(body), [differs("Not an object.")])
    match = match_fields(body, (*CREDIT_COUNTERS, *CREDIT_DATES))
    findings: list[Finding] = []
    if "records_remaining" in match.missing:
        if "records_total" in body:
            findings.append(
                tolerated(
                    "Without records_remaining the tap computes it as records_total - "
                    "records_used - records_reserved."
                )
            )
        else:
            findings.append(
                differs(
                    "Without records_remaining or records_total the credit preflight cannot "
                    "tell what is left: exports would be created unchecked, with the API's "
                    "402 as the only guard."
                )
            )
    if [m for m in match.missing if m != "records_remaining"]:
        findings.append(tolerated(passed_through("credits")))
    wrong = [n for n in CREDIT_COUNTERS if n in body and not is_int(body[n])]
    if wrong:
        findings.append(
            differs(f"{', '.join(wrong)} not integers: the credit preflight reads them as such.")
        )
    if [n for n in CREDIT_DATES if n in body and as_date(body[n]) is None]:
        findings.append(tolerated("Period bounds are not dates; the credits stream passes them."))
    seen = shape(body) + (f"; {match.describe()}" if match.describe() else "")
    return judged(point, section, expected, seen, findings or [holds()])


FEED_LIMIT_FIELDS = ("feed_limit", "feeds_created", "feeds_remaining")


def check_feed_limit(obs: Observations) -> Check:
    """The self-serve feed limit."""
    point, section = "feed limit", "GET /organization/feed-limit"
    expected = f"{', '.join(FEED_LIMIT_FIELDS)}: int"
    answer = obs.feed_limit
    if answer.error:
        return unchecked(point, section, expected, failure("GET /organization/feed-limit", answer))
    body = answer.body
    if not isinstance(body, dict):
        return judged(point, section, expected, kind(body), [differs("Not an object.")])
    match = match_fields(body, FEED_LIMIT_FIELDS)
    findings: list[Finding] = []
    if match.missing:
        findings.append(tolerated(passed_through("feed_limit")))
    wrong = [n for n in FEED_LIMIT_FIELDS if n in body and not is_int(body[n])]
    if wrong:
        findings.append(
            differs(f"{', '.join(wrong)} not integers, as the feed_limit stream types them.")
        )
    seen = shape(body) + (f"; {match.describe()}" if match.describe() else "")
    return judged(point, section, expected, seen, findings or [holds()])


FEED_FIELDS = (
    "feed_id",
    "name",
    "kind",
    "query",
    "topics",
    "domain_count",
    "max_lookback_days",
    "created_at",
    "updated_at",
)
FEED_KINDS = ("domains", "topics", "free_text")


def check_feeds(obs: Observations) -> Check:
    """The fields of each Feed on the first page."""
    point, section = "feed fields", "GET /organization/feeds: Feed"
    expected = (
        "feed_id: uuid, name, kind (domains | topics | free_text), query, topics: list, "
        "domain_count: int, max_lookback_days: int, created_at, updated_at"
    )
    feeds = feed_items(obs.feeds)
    if obs.feeds.error:
        return unchecked(point, section, expected, failure("The feeds list", obs.feeds))
    if not feeds:
        return unchecked(point, section, expected, "The organization has no feeds.")
    names = [n for f in feeds for n in f]
    match = match_fields(names, FEED_FIELDS)
    missing = {n for f in feeds for n in FEED_FIELDS if n not in f}
    findings: list[Finding] = []
    if "feed_id" in missing:
        findings.append(
            differs(
                "Feeds without feed_id: the tap could not match feed_ids to the organization's "
                "feeds and would refuse every configured feed as unknown."
            )
        )
    caps = [f.get("max_lookback_days") for f in feeds if "max_lookback_days" in f]
    if "max_lookback_days" in missing:
        findings.append(
            tolerated(
                "Without max_lookback_days the tap takes lookback_days as the cap; a window "
                "above the real cap is refused by the API (403) and the run stops with one line."
            )
        )
    if any(not is_int(c) for c in caps):
        findings.append(differs("max_lookback_days is not an integer; the tap computes with it."))
    if missing - {"feed_id", "max_lookback_days"}:
        findings.append(tolerated(passed_through("feeds")))
    if any("kind" in f and f["kind"] not in FEED_KINDS for f in feeds):
        findings.append(tolerated("A kind the contract does not list; " + passed_through("feeds")))
    listed = {str(f.get("feed_id", "")).lower() for f in feeds}
    absent = [f for f in obs.settings.feed_ids if f.lower() not in listed]
    if absent and "feed_id" not in missing:
        findings.append(
            holds(f"{len(absent)} configured feed(s) are not on the first page of feeds.")
        )
    seen = f"{merged_shape(feeds)} ({len(feeds)} feeds)"
    if match.describe():
        seen += f"; {match.describe()}"
    return judged(point, section, expected, seen, findings or [holds()])


def check_today(obs: Observations) -> Check:
    """A one-day search: its window is today alone, and "today" is the API's."""
    point = "today and the inclusive window"
    section = "Common rules: lookback windows; POST /intent/feeds/search"
    expected = (
        "lookback_days ends today (UTC) and includes it: a one-day search has "
        "start_date = end_date = the API's today"
    )
    answer = obs.search
    if answer is None:
        return unchecked(point, section, expected, "No feed to search: the organization has none.")
    if answer.error:
        return unchecked(point, section, expected, failure("The one-day search", answer))
    body = answer.body
    if not isinstance(body, dict):
        return judged(point, section, expected, kind(body), [differs("Not an object.")])
    start, end = as_date(body.get("start_date")), as_date(body.get("end_date"))
    seen = [
        f"start_date: {kind(body.get('start_date'))}",
        f"end_date: {kind(body.get('end_date'))}",
    ]
    findings: list[Finding] = []
    if end is None:
        findings.append(
            tolerated(
                "Without a date in end_date the tap takes this machine's UTC date as today, "
                "which can be a day off the API's around midnight."
            )
        )
    else:
        shift = (end - obs.machine_today).days
        relation = (
            "this machine's UTC date"
            if shift == 0
            else f"{abs(shift)} day(s) {'ahead of' if shift > 0 else 'behind'} this machine's "
            "UTC date (the tap follows the API's)"
        )
        seen.append(f"end_date is {relation}")
    if start is None:
        findings.append(
            tolerated(
                "Without start_date the window cannot be confirmed; the tap does not read it."
            )
        )
    if start is not None and end is not None:
        days = (end - start).days + 1
        seen.append(f"a one-day search spans {days} day(s)")
        if days != 1:
            findings.append(
                differs(
                    f"A one-day search spans {days} days: windows are not 'lookback_days "
                    "ending today, today included', so each would hold days the tap does not "
                    "plan, and incremental runs would deliver some days twice or never."
                )
            )
    return judged(point, section, expected, "; ".join(seen), findings or [holds()])


SEARCH_FIELDS = (
    "feed_id",
    "lookback_days",
    "start_date",
    "end_date",
    "total_records",
    "records_with_contact_id",
    "records_without_contact_id",
    "daily_counts",
)


def check_search(obs: Observations) -> Check:
    """The search answer's counters and daily counts."""
    point, section = "search counters", "POST /intent/feeds/search"
    expected = (
        "total_records, records_with_contact_id, records_without_contact_id: int; "
        'daily_counts: [{"date", "count"}] when asked for'
    )
    answer = obs.search
    if answer is None or answer.error:
        reason = "No feed to search." if answer is None else failure("The search", answer)
        return unchecked(point, section, expected, reason)
    body = answer.body
    if not isinstance(body, dict):
        return judged(point, section, expected, kind(body), [differs("Not an object.")])
    match = match_fields(body, SEARCH_FIELDS)
    findings: list[Finding] = []
    if match.respelled:
        findings.append(tolerated(BOTH_SPELLINGS))
    daily = body.get("daily_counts")
    if not isinstance(daily, list):
        findings.append(
            differs(
                "No daily_counts list although include_daily_counts asked for it: the "
                "feed_totals stream would emit nothing."
            )
        )
    elif not all(isinstance(d, dict) and "date" in d and "count" in d for d in daily):
        findings.append(
            differs("daily_counts entries without date or count: feed_totals needs both.")
        )
    counters = [m for m in match.missing if m not in ("daily_counts", "start_date", "end_date")]
    if counters:
        findings.append(tolerated("The tap does not read the search counters, only daily_counts."))
    seen = shape(body)
    if isinstance(daily, list):
        seen += f"; daily_counts entries: {merged_shape(daily)}"
    if match.describe():
        seen += f"; {match.describe()}"
    total = get_either(body, "total_records")
    if isinstance(daily, list) and is_int(total):
        summed = sum(d.get("count") or 0 for d in daily if isinstance(d, dict))
        if summed != total:
            findings.append(holds("The daily counts do not add up to total_records."))
    return judged(point, section, expected, seen, findings or [holds()])


FILTER_FIELD_FIELDS = ("field", "label", "category", "type", "operators")
FILTER_TYPES = ("string", "number", "boolean", "date")
FILTER_OPERATORS = ("eq", "neq", "in", "not_in", "gte", "lte", "between", "contains", "exists")


def check_filter_fields(obs: Observations) -> Check:
    """The fields consumer filters may use."""
    point, section = "filter fields", "POST /intent/feeds/filters/fields"
    expected = '{"fields": [{"field", "label", "category", "type", "operators"}]}'
    answer = obs.filter_fields
    if answer.error:
        return unchecked(point, section, expected, failure("The filter fields", answer))
    body = answer.body
    fields = body.get("fields") if isinstance(body, dict) else None
    if not isinstance(fields, list):
        note = (
            "Without a fields list the filter_fields stream emits nothing; consumer_filters "
            "still go to the API, which validates them."
        )
        return judged(point, section, expected, shape(body), [tolerated(note)])
    items = [f for f in fields if isinstance(f, dict)]
    findings: list[Finding] = []
    if any("field" not in f for f in items) or len(items) < len(fields):
        findings.append(differs("Entries without `field`, the key of filter_fields records."))
    if {n for f in items for n in FILTER_FIELD_FIELDS if n not in f} - {"field"}:
        findings.append(tolerated(passed_through("filter_fields")))
    if any(f.get("type") not in FILTER_TYPES for f in items if "type" in f):
        findings.append(holds("Some types are not among string, number, boolean, date."))
    ops = {o for f in items for o in (f.get("operators") or []) if isinstance(o, str)}
    if ops - set(FILTER_OPERATORS):
        findings.append(holds("Some operators are not in the contract's list."))
    known = {f.get("field") for f in items}
    unknown = [f for f in obs.settings.consumer_filters if f.get("field") not in known]
    if unknown:
        findings.append(holds(f"{len(unknown)} configured consumer filter(s) use unlisted fields."))
    seen = f"{shape(body)}; entries: {merged_shape(items)} ({len(items)} fields)"
    return judged(point, section, expected, seen, findings or [holds()])
