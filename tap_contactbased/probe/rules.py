"""The points' extra rules: what a contract point says beyond its fields and their kinds.

A rule reads the `Judging` the engine filled, adds seen parts and findings (their notes say how
the tap copes, or what would break), and returns why the point cannot be checked, or None;
`data_rules` holds those about an export's data.
"""

from __future__ import annotations

import dataclasses
import typing as t
from collections import Counter

from tap_contactbased import endpoints
from tap_contactbased.api_client import DETAIL_KEY
from tap_contactbased.endpoints import EXPORTS_LIST_PAGE_SIZE, FEEDS_PAGE_SIZE
from tap_contactbased.probe.engine import failure
from tap_contactbased.probe.observe import feed_items
from tap_contactbased.probe.report import (
    CANONICAL_ID,
    OLD_ID,
    as_date,
    get_either,
    kind,
    merged_shape,
    respelled,
    shape,
)
from tap_contactbased.schemas import BUNDLE_COLUMN_PREFIX, FEED_KINDS, PAGE_FIELDS, ROW_COLUMN_TYPES
from tap_contactbased.settings import FILTER_OPERATORS
from tap_contactbased.summary import ExportOptions, ExportStatus
from tap_contactbased.values import is_int

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from tap_contactbased.probe.engine import Judging
    from tap_contactbased.probe.observe import Observations

NO_PAGE = "Without `page` the tap counts pages itself."
PAGE_ONLY = tuple(PAGE_FIELDS["properties"])
OPTION_FIELDS = tuple(f.name for f in dataclasses.fields(ExportOptions) if f.name != "feed_id")
OPTION_NAMES = frozenset(OPTION_FIELDS) | {respelled(n) for n in OPTION_FIELDS}
STATUSES = tuple(s.value for s in ExportStatus)
SEARCH_OWN = ("start_date", "end_date", "daily_counts")  # judged by rules, not copings
REFUSALS = {"unknown export": 404, "invalid body": 422}  # the provoked errors' statuses


def passed_through(stream: str) -> str:
    """How the tap copes with a field it does not get, in a stream nothing else reads."""
    return f"The {stream} stream passes through the fields it gets; nothing else reads them."


def summaries(obs: Observations) -> list[Mapping[str, t.Any]]:
    """Every export summary seen: the exports list's items and page 1's summary fields."""
    page = obs.page.body if obs.page is not None else None
    rest = [{k: v for k, v in page.items() if k not in PAGE_ONLY}] if isinstance(page, dict) else []
    return [*feed_items(obs.exports), *rest]


def no_summary(obs: Observations) -> str | None:
    """Why the summary points cannot be checked, if no summary was seen."""
    if summaries(obs):
        return None
    return _exports_failed(obs) or (
        "No export exists yet: probe again after a run that creates one (not plan_only)."
    )


def no_ready(obs: Observations) -> str | None:
    """Why the points of a ready export cannot be checked, if none was read."""
    if obs.ready is not None:
        return None
    return _exports_failed(obs) or "No ready export to read: probe again once an export is ready."


def _exports_failed(obs: Observations) -> str | None:
    return failure("The exports list", obs.exports) if obs.exports.error else None


def ready_nulls(summary: Mapping[str, t.Any]) -> list[str]:
    """On a ready export a null count or column list is as good as none."""
    if ExportStatus.parse(summary.get("status")) is not ExportStatus.READY:
        return []
    return [n for n in ("total_rows", "total_pages", "columns") if summary.get(n) is None]


def no_feed(obs: Observations) -> str | None:
    """Why no feed was searched, previewed or counted."""
    return None if obs.feed_probes else "No feed: feed_ids is empty and the organization has none."


def row_columns(body: t.Any) -> list[str] | None:
    """The columns an answer names: its `columns`, else the keys of its first row."""
    columns = body.get("columns") if isinstance(body, dict) else None
    if isinstance(columns, list) and all(isinstance(c, str) for c in columns):
        return list(columns)
    rows = body.get("rows") if isinstance(body, dict) else None
    return list(rows[0]) if isinstance(rows, list) and rows and isinstance(rows[0], dict) else None


def auth(j: Judging) -> None:
    """The key was accepted: the first request answered."""
    j.seen.append(f"GET {endpoints.CREDITS} with X-API-Key answered {kind(j.obs.credits.body)}")


def error_body(j: Judging) -> None:
    """A free 404 (page of an unknown export) or a free 422 (count without a body)."""
    assert j.answer is not None  # the point judges its answers alone
    status, body, label, expected = j.answer.status or 0, j.body, j.label, REFUSALS[j.label]
    detail = body.get(DETAIL_KEY) if isinstance(body, dict) else None
    items = f", its items {merged_shape(detail)}" if isinstance(detail, list) else ""
    j.seen = [f"{label}: {j.answer.status} {shape(body)}{items}"]
    if status < 400:
        j.differs(f"An {label} answered {status}, not an error.")
    elif status != expected:
        j.tolerated(
            f"An {label} answered {status}, not {expected}; the tap's error lines name any status."
        )
    if not isinstance(body, dict) or DETAIL_KEY not in body:
        j.differs("Error bodies without `detail`: the tap's errors lose the API's explanation.")
    elif expected == 422 and isinstance(detail, str):
        j.tolerated("A 422 explanation is text, not a list; the tap shows it.")
    elif (
        expected == 422
        and isinstance(detail, list)
        and not all(isinstance(i, dict) and "msg" in i for i in detail)
    ):
        j.differs("422 items without `msg`: the tap's error lines would not say what was wrong.")


def envelope(j: Judging) -> None:
    """The list envelope of the feeds list or the exports list, and its page size."""
    assert j.answer is not None  # the point judges its answers alone
    body, noun = j.body, j.label
    asked = FEEDS_PAGE_SIZE if noun == "feeds" else EXPORTS_LIST_PAGE_SIZE
    j.seen = [f"{noun}: {shape(body)} ({len(feed_items(j.answer))} items for page_size {asked})"]
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        what = "is not an object" if not isinstance(body, dict) else "has no `items` list"
        j.differs(f"The {noun} list {what}: every run stops there.")
        return
    total, page, page_size = body.get("total"), body.get("page"), body.get("page_size")
    if "total" not in body:
        j.tolerated("Without `total` the tap reads pages until a short one.")
    if "page" not in body:
        j.tolerated(NO_PAGE)
    elif page != 1:
        j.differs(f"Asked for page 1 of {noun}, the API answered another page number.")
    if "page_size" not in body:
        j.tolerated("Without `page_size` the tap keeps the size it asked for.")
    # A short page is the last one for the tap; it must not be short while more exist.
    if is_int(total):
        short = len(items) < min(asked, total)
    else:
        short = is_int(page_size) and len(items) >= page_size and page_size < asked
    if short:
        j.differs(f"A page of {noun} is short while more exist: the tap would miss the rest.")


def today(j: Judging) -> None:
    """A one-day search: its window is today alone, and "today" is the API's."""
    start, end = as_date(j.body.get("start_date")), as_date(j.body.get("end_date"))
    j.seen = [f"{n}: {kind(j.body.get(n))}" for n in ("start_date", "end_date")]
    if end is None:
        j.tolerated("Without end_date the tap takes start_date, or this machine's date, as today.")
    elif (shift := (end - j.obs.machine_today).days) == 0:
        j.seen.append("end_date is this machine's UTC date")
    else:
        j.seen.append(
            f"end_date is {abs(shift)} day(s) {'ahead of' if shift > 0 else 'behind'} this "
            "machine's UTC date (the tap follows the API's)"
        )
    if start is None:
        j.tolerated("Without start_date the window cannot be confirmed; the tap does not read it.")
    elif end is not None:
        days = (end - start).days + 1
        j.seen.append(f"a one-day search spans {days} day(s)")
        if days != 1:
            j.differs(
                f"A one-day search spans {days} days: runs would deliver some days twice or never."
            )


def feeds(j: Judging) -> str | None:
    """Feed kinds, and whether the configured feeds are on the first page."""
    if not j.objects:
        return "The organization has no feeds."
    if any("kind" in f and f["kind"] not in FEED_KINDS for f in j.objects):
        j.tolerated("A kind the contract does not list; " + passed_through("feeds"))
    listed = {str(f.get("feed_id", "")).lower() for f in j.objects}
    absent = [f for f in j.obs.settings.feed_ids if f.lower() not in listed]
    if absent and all("feed_id" in f for f in j.objects):
        j.holds(f"{len(absent)} configured feed(s) are not on the first page of feeds.")
    j.seen = [f"{merged_shape(j.objects)} ({len(j.objects)} feeds)"]
    return None


def search(j: Judging) -> None:
    """The daily counts: a list of dated counts, adding up to the total."""
    daily = j.body.get("daily_counts")
    if not isinstance(daily, list):
        j.differs("No daily_counts list: the feed_totals stream would emit nothing.")
        return
    if not all(isinstance(d, dict) and "date" in d and "count" in d for d in daily):
        j.differs("daily_counts entries without date or count: feed_totals needs both.")
    j.seen.append(f"daily_counts entries: {merged_shape(daily)}")
    total = get_either(j.body, "total_records")
    counts = [d.get("count") for d in daily if isinstance(d, dict)]
    if is_int(total) and sum(c for c in counts if is_int(c)) != total:
        j.holds("The daily counts do not add up to total_records.")


def filter_fields(j: Judging) -> None:
    """Types, operators, and the fields the configured filters use."""
    items = j.objects
    if any(f["type"] not in ("string", "number", "boolean", "date") for f in items if "type" in f):
        j.holds("Some types are not among string, number, boolean, date.")
    listed = [f.get("operators") or [] for f in items]
    if any(
        not isinstance(ops, list) or {o for o in ops if isinstance(o, str)} - set(FILTER_OPERATORS)
        for ops in listed
    ):
        j.holds("Some operators are not in the contract's list.")
    known = {f.get("field") for f in items if isinstance(f.get("field"), str)}
    if unknown := [f for f in j.obs.settings.consumer_filters if f.get("field") not in known]:
        j.holds(f"{len(unknown)} configured consumer filter(s) use unlisted fields.")
    j.seen.append(f"entries: {merged_shape(items)} ({len(items)} fields)")


def preview(j: Judging) -> None:
    """The columns of a preview and the spelling of its id."""
    columns = row_columns(j.body)
    if columns is None:
        return
    spelled = next((c for c in (CANONICAL_ID, OLD_ID) if c in columns), "absent")
    if spelled == OLD_ID:
        j.tolerated("The id column is spelled cb_id: records name it contact_id.")
    elif spelled == "absent":
        j.differs("No contact_id (or cb_id) column: records would carry no contact id.")
    plain = [c for c in columns if not c.startswith(BUNDLE_COLUMN_PREFIX)]
    missing = [c for c in ROW_COLUMN_TYPES if c != CANONICAL_ID and c not in columns]
    extra = [c for c in plain if c not in ROW_COLUMN_TYPES and c != OLD_ID]
    if missing:
        j.tolerated(f"Missing columns ({', '.join(missing)}) are null in records.")
    if extra:
        j.tolerated(f"Columns the contract does not name ({', '.join(extra)}) go to extra_columns.")
    j.seen.append(
        f"{len(plain)} columns (id {spelled}, {len(missing)} of the contract's missing, "
        f"{len(extra)} not in it) and {len(columns) - len(plain)} bundle_ column(s)"
    )


def count(j: Judging) -> None:
    """The count against the preview's estimate, for any probed feed."""
    for probe in j.obs.feed_probes:
        previewed, counted = probe.preview.body, probe.count.body
        estimate = previewed.get("estimated_rows") if isinstance(previewed, dict) else None
        total = counted.get("total_rows") if isinstance(counted, dict) else None
        if is_int(estimate) and is_int(total) and estimate != total:
            j.holds("The preview's estimated_rows and the count's total_rows differ.")


def summary_fields(j: Judging) -> None:
    """How many summaries were seen, and their fields the contract does not name."""
    j.seen = [f"{merged_shape(j.objects)} ({len(j.objects)} summaries)"]
    if j.extra:
        j.seen.append(f"not in the contract: {', '.join(j.extra)}")


def summary_part(*, options: bool) -> t.Callable[[Observations], list[Mapping[str, t.Any]]]:
    """The options each summary echoes (in either spelling), or its other fields."""
    return lambda obs: [
        {n: v for n, v in s.items() if (n in OPTION_NAMES) is options} for s in summaries(obs)
    ]


def statuses(j: Judging) -> str | None:
    """The status texts of the summaries seen, as the tap parses them."""
    found = [s["status"] for s in summaries(j.obs) if "status" in s]
    if not found:
        return "No summary carries a status."
    exact = Counter(s for s in found if s in STATUSES)
    loose = [s for s in found if s not in STATUSES and ExportStatus.parse(s) is not None]
    unknown = [s for s in found if ExportStatus.parse(s) is None]
    if loose:
        j.tolerated("The tap compares statuses ignoring case and surrounding spaces.")
    if unknown:
        j.differs("A status the tap does not know stops the run on that export.")
    parts = [f"{name} x{n}" for name, n in sorted(exact.items())]
    parts += [f"{len(loose)} spelled otherwise (case or spaces)"] if loose else []
    parts += [f"{len(unknown)} unknown"] if unknown else []
    j.seen.append(f"{len(found)} statuses: {', '.join(parts)}")
    return None
