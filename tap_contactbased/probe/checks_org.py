"""Checks of the organization, feed, search and filter endpoints."""

from __future__ import annotations

import typing as t

from tap_contactbased.probe.observe import Observations, feed_items
from tap_contactbased.probe.points import (
    BOTH_SPELLINGS,
    differs,
    failure,
    holds,
    judged,
    object_body,
    passed_through,
    tolerated,
    unchecked,
)
from tap_contactbased.probe.report import Check
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
    from tap_contactbased.probe.report import Finding

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
                    "tell what is left: the tap warns and creates, with the API's 402 as the "
                    "only guard."
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
    body = object_body(point, section, expected, obs.feed_limit, "GET /organization/feed-limit")
    if isinstance(body, Check):
        return body
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
    if obs.search is None:
        return unchecked(point, section, expected, "No feed to search.")
    body = object_body(point, section, expected, obs.search, "The search")
    if isinstance(body, Check):
        return body
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
            "Without a fields list the filter_fields stream stops with one line rather than "
            "deliver nothing; consumer_filters still go to the API, which validates them."
        )
        return judged(point, section, expected, shape(body), [differs(note)])
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
