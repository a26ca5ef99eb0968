"""Checks of existing exports: summaries, statuses, a page, a download URL, the CSV."""

from __future__ import annotations

import codecs
import csv
import datetime
import io
import typing as t
import urllib.parse
from collections import Counter

from tap_contactbased.probe.checks_feeds import row_columns
from tap_contactbased.probe.observe import CsvSample, Observations, feed_items
from tap_contactbased.probe.points import (
    BOTH_SPELLINGS,
    NO_EXPORT_YET,
    NO_READY_EXPORT,
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
    as_timestamp,
    is_int,
    kind,
    match_fields,
    merged_shape,
    respelled,
    shape,
    status_key,
)

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from tap_contactbased.probe.report import Finding

SUMMARY_FIELDS = (
    "export_id",
    "feed_id",
    "status",
    "build_progress",
    "build_error",
    "start_date",
    "end_date",
    "total_rows",
    "total_pages",
    "columns",
    "records_reserved",
    "created_at",
    "updated_at",
)
OPTION_FIELDS = (
    "lookback_days",
    "page_size",
    "max_rows",
    "require_contact_id",
    "consumer_filters",
    "enrichment_bundles",
)
OPTION_NAMES = frozenset(OPTION_FIELDS) | {respelled(n) for n in OPTION_FIELDS}
PAGE_ONLY_FIELDS = ("page", "rows")
STATUSES = ("building", "ready", "failed")
SUMMARY_SECTION = "Feed exports: Export summary"

# What the tap does without each summary field: (verdict maker, note).
_MISSING_SUMMARY_FIELD: dict[str, tuple[t.Callable[[str], Finding], str]] = {
    "export_id": (differs, "Without export_id the tap cannot read, resume or reuse an export."),
    "feed_id": (
        differs,
        "Without feed_id the tap cannot tell which feed an export belongs to and never reuses "
        "one: a run whose state was lost would pay for a new export.",
    ),
    "status": (differs, "Without status the tap cannot tell when an export is ready."),
    "start_date": (
        differs,
        "Without start_date and end_date find-or-create cannot match an export's window: a "
        "run whose state was lost would pay for a new export.",
    ),
    "total_rows": (
        tolerated,
        "Without total_rows or total_pages the tap reads until the data ends and cross-checks "
        "what it read against the counts it has.",
    ),
    "columns": (tolerated, "Without columns the tap takes the CSV header or the page rows' keys."),
    "build_progress": (
        tolerated,
        "Without build_progress the stall deadline sees no progress: a build longer than "
        "export_stall_timeout_seconds stops the run, and the next run resumes it.",
    ),
    "build_error": (tolerated, "A failed export then stops the run with 'no reason given'."),
    "records_reserved": (tolerated, "The cost receipt then uses the pre-create count."),
    "created_at": (tolerated, passed_through("exports")),
}
_MISSING_SUMMARY_FIELD["end_date"] = _MISSING_SUMMARY_FIELD["start_date"]
_MISSING_SUMMARY_FIELD["total_pages"] = _MISSING_SUMMARY_FIELD["total_rows"]
_MISSING_SUMMARY_FIELD["updated_at"] = _MISSING_SUMMARY_FIELD["created_at"]


def summaries(obs: Observations) -> list[Mapping[str, t.Any]]:
    """Every export summary seen: the exports list's items and page 1's summary fields."""
    found = list(feed_items(obs.exports))
    page = obs.page.body if obs.page is not None else None
    if isinstance(page, dict):
        found.append({k: v for k, v in page.items() if k not in PAGE_ONLY_FIELDS})
    return found


def _no_summary(point: str, expected: str, obs: Observations) -> Check:
    reason = failure("The exports list", obs.exports) if obs.exports.error else NO_EXPORT_YET
    return unchecked(point, SUMMARY_SECTION, expected, reason)


def check_summary_fields(obs: Observations) -> Check:
    """The fields of export summaries (options apart)."""
    point = "export summary fields"
    expected = (
        "export_id, feed_id, status, build_progress, build_error, start_date, end_date, "
        "total_rows, total_pages, columns (null while building), records_reserved, "
        "created_at, updated_at"
    )
    seen_summaries = summaries(obs)
    if not seen_summaries:
        return _no_summary(point, expected, obs)
    findings: list[Finding] = []
    missing = {n for s in seen_summaries for n in SUMMARY_FIELDS if n not in s}
    ready = [s for s in seen_summaries if status_key(s.get("status")) == "ready"]
    # On a ready export a null count or column list is as good as none.
    missing |= {
        n for s in ready for n in ("total_rows", "total_pages", "columns") if s.get(n) is None
    }
    for name in SUMMARY_FIELDS:
        if name in missing:
            make, note = _MISSING_SUMMARY_FIELD[name]
            findings.append(make(note))
    if any(
        as_date(s[n]) is None for s in seen_summaries for n in ("start_date", "end_date") if n in s
    ):
        findings.append(
            differs("start_date or end_date is not a date; find-or-create compares them.")
        )
    if any(s.get("total_rows") is not None and not is_int(s["total_rows"]) for s in seen_summaries):
        findings.append(differs("total_rows is not an integer; the tap counts with it."))
    names = [n for s in seen_summaries for n in s]
    match = match_fields(names, SUMMARY_FIELDS)
    extra = [n for n in match.extra if n not in OPTION_NAMES]
    plain = {n: None for s in seen_summaries for n in s if n in SUMMARY_FIELDS or n in extra}
    shown = [{n: s[n] for n in plain if n in s} for s in seen_summaries]
    seen = f"{merged_shape(shown)} ({len(seen_summaries)} summaries)"
    if extra:
        seen += f"; not in the contract: {', '.join(extra)}"
    return judged(point, SUMMARY_SECTION, expected, seen, findings or [holds()])


def check_echoed_options(obs: Observations) -> Check:
    """The options each summary echoes, which find-or-create compares."""
    point = "echoed options"
    expected = f"the options the export was made with: {', '.join(OPTION_FIELDS)}"
    seen_summaries = summaries(obs)
    if not seen_summaries:
        return _no_summary(point, expected, obs)
    findings: list[Finding] = []
    names = [n for s in seen_summaries for n in s if n in OPTION_NAMES]
    match = match_fields(names, OPTION_FIELDS)
    if match.respelled:
        findings.append(tolerated(BOTH_SPELLINGS))
    missing = {
        n for s in seen_summaries for n in OPTION_FIELDS if n not in s and respelled(n) not in s
    }
    if missing:
        findings.append(
            tolerated(
                f"Not echoed: {', '.join(sorted(missing))}. The tap does not reuse an export "
                "whose options it cannot compare unless its id is in the state; a run that "
                "lost its state creates a new one."
            )
        )
    options = [{n: v for n, v in s.items() if n in OPTION_NAMES} for s in seen_summaries]
    seen = merged_shape(options)
    if match.describe():
        seen += f"; {match.describe()}"
    return judged(point, SUMMARY_SECTION, expected, seen, findings or [holds()])


def check_statuses(obs: Observations) -> Check:
    """The status texts of the summaries seen."""
    point = "status values"
    expected = "building | ready | failed"
    seen_summaries = summaries(obs)
    if not seen_summaries:
        return _no_summary(point, expected, obs)
    statuses = [s["status"] for s in seen_summaries if "status" in s]
    if not statuses:
        return unchecked(point, SUMMARY_SECTION, expected, "No summary carries a status.")
    exact = Counter(s for s in statuses if s in STATUSES)
    loose = [s for s in statuses if s not in STATUSES and status_key(s) in STATUSES]
    unknown = [s for s in statuses if status_key(s) not in STATUSES or not isinstance(s, str)]
    findings: list[Finding] = []
    if loose:
        findings.append(
            tolerated("The tap compares statuses ignoring case and surrounding spaces.")
        )
    if unknown:
        findings.append(
            differs(
                "A status the tap does not know stops the run on that export (which still "
                "counts as the tap's own, so a rerun stops on it rather than paying again)."
            )
        )
    parts = [f"{name} x{n}" for name, n in sorted(exact.items())]
    parts += [f"{len(loose)} spelled otherwise (case or spaces)"] if loose else []
    parts += [f"{len(unknown)} unknown"] if unknown else []
    seen = f"{len(statuses)} statuses: {', '.join(parts)}"
    return judged(point, SUMMARY_SECTION, expected, seen, findings or [holds()])


def _no_ready_reason(obs: Observations) -> str:
    return failure("The exports list", obs.exports) if obs.exports.error else NO_READY_EXPORT


def check_page(obs: Observations) -> Check:
    """Page 1 of a ready export: rows keyed by column, text or null, page_size of them."""
    point, section = "page rows", "POST /intent/feeds/exports/page"
    expected = (
        "the summary fields plus page and rows: objects keyed by column, every value text "
        "or null; every page but the last holds page_size rows"
    )
    ready = obs.ready
    if ready is None:
        return unchecked(point, section, expected, _no_ready_reason(obs))
    body = object_body(point, section, expected, obs.page, "Page 1 of the ready export")
    if isinstance(body, Check):
        return body
    rows = body.get("rows")
    page_part = {k: body[k] for k in body if k in PAGE_ONLY_FIELDS or k not in ready}
    seen = [shape(page_part)]
    findings: list[Finding] = []
    if "page" not in body:
        findings.append(tolerated("Without `page` the tap counts pages itself."))
    if not isinstance(rows, list):
        findings.append(
            differs(
                "No rows list: read_mode pages cannot read the export and stops (read_mode csv "
                "is not affected)."
            )
        )
        return judged(point, section, expected, "; ".join(seen), findings)
    objects = [r for r in rows if isinstance(r, dict)]
    if len(objects) < len(rows):
        findings.append(differs("Rows that are not objects: read_mode pages cannot read them."))
    values = {kind(v) for r in objects for v in r.values()}
    if values - {"string", "null", "date", "timestamp"}:
        findings.append(
            differs(
                "Values that are not text or null: read_mode pages reads values as text and "
                "cannot read this page (read_mode csv is not affected)."
            )
        )
    columns = ready.get("columns")
    if isinstance(columns, list) and any(list(r) != columns for r in objects):
        findings.append(
            tolerated("Row keys differ from the summary's columns: the rows' own keys decide.")
        )
    size, total = ready.get("page_size"), ready.get("total_rows")
    if is_int(size) and is_int(total) and len(rows) < min(size, total):
        findings.append(
            differs(
                "Page 1 holds fewer rows than page_size although the export has more: the tap "
                "takes a short page as the last one."
            )
        )
    keys = len(row_columns(body) or [])
    seen.append(
        f"{len(rows)} rows keyed by {keys} columns, values {' | '.join(sorted(values)) or 'none'}"
    )
    return judged(point, section, expected, "; ".join(seen), findings or [holds()])


def check_download(obs: Observations) -> Check:
    """The download URL answer: a signed URL (never shown) and when it expires."""
    point, section = "download URL and expires_at", "POST /intent/feeds/exports/download-url"
    expected = '{"export_id", "url": signed URL, "expires_at": timestamp about an hour ahead}'
    ready = obs.ready
    if ready is None:
        return unchecked(point, section, expected, _no_ready_reason(obs))
    body = object_body(point, section, expected, obs.download, "The download-url request")
    if isinstance(body, Check):
        return body
    seen = [shape(body)]
    findings: list[Finding] = []
    url = body.get("url")
    try:
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    except ValueError:  # an unbalanced [ of an IPv6 address: no usable URL either
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        findings.append(
            differs(
                "No absolute url that parses: read_mode csv stops, asking for read_mode pages "
                "(which is not affected)."
            )
        )
    else:
        params = len(urllib.parse.parse_qs(parts.query))
        seen.append(f"url: absolute {parts.scheme} URL with {params} query parameter(s)")
    expires = as_timestamp(body.get("expires_at"))
    if expires is None:
        findings.append(
            tolerated(
                "The tap does not read expires_at: an expired URL answers 403 and the tap asks "
                "for a new one."
            )
        )
    else:
        minutes = (expires - datetime.datetime.now(datetime.timezone.utc)).total_seconds() / 60
        seen.append(f"expires_at about {round(minutes)} min ahead")
        if minutes <= 0:
            findings.append(
                tolerated("The URL was issued expired; the tap asks for a new one on 403.")
            )
    if "export_id" not in body:
        findings.append(tolerated("The tap does not read export_id from this answer."))
    return judged(point, section, expected, "; ".join(seen), findings or [holds()])


def _decode(sample: CsvSample) -> str | None:
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(sample.data, final=sample.complete)
    except UnicodeDecodeError:
        return None


def _parse(text: str, complete: bool) -> list[list[str]] | None:
    """The complete rows of a CSV text; None when a complete text does not parse."""
    rows: list[list[str]] = []
    try:
        rows.extend(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        # A sample may end inside a quoted field; the rows before it are whole.
        return None if complete else rows
    return rows if complete else rows[:-1]  # the last row may be cut short


def check_csv(obs: Observations) -> Check:
    """The first bytes of the CSV: UTF-8, a header row, RFC 4180 quoting."""
    point, section = "CSV header and quoting", "POST /intent/feeds/exports/download-url (CSV)"
    expected = "a header row, RFC 4180 quoting (CRLF line ends), UTF-8"
    ready = obs.ready
    if ready is None:
        return unchecked(point, section, expected, _no_ready_reason(obs))
    answer = obs.csv
    if answer is None:
        download = obs.download
        reason = (
            failure("The download-url request", download)
            if download is None or download.error
            else "The download-url answer gave no absolute url to download from."
        )
        return unchecked(point, section, expected, reason)
    if answer.error or not isinstance(answer.body, CsvSample):
        return unchecked(point, section, expected, failure("The CSV download", answer))
    sample = answer.body
    if sample.data.startswith(codecs.BOM_UTF8):
        note = (
            "The CSV starts with a byte-order mark: the tap reads UTF-8 without one, so the "
            "first column would be misnamed (an id column would not be recognised)."
        )
        return judged(point, section, expected, "UTF-8 with a BOM", [differs(note)])
    text = _decode(sample)
    if text is None:
        return judged(point, section, expected, "not UTF-8", [differs("The CSV is not UTF-8.")])
    rows = _parse(text, sample.complete)
    if not rows:
        note = "No complete header row could be read: the tap could not name the columns."
        return judged(point, section, expected, f"{len(sample.data)} bytes", [differs(note)])
    header, body_rows = rows[0], rows[1:]
    findings: list[Finding] = []
    crlf = "\r\n" in text[: text.find("\n") + 1]
    if not crlf:
        findings.append(tolerated("Lines end with LF only; the csv module reads both."))
    if "\x00" in text:
        findings.append(tolerated("NUL characters: the tap removes them."))
    ragged = sum(1 for r in body_rows if len(r) != len(header))
    if ragged:
        findings.append(
            differs(
                f"{ragged} row(s) do not have as many fields as the header: values would shift "
                "columns (quoting is not RFC 4180 as the csv module reads it)."
            )
        )
    reference = ready.get("columns")
    if not isinstance(reference, list):
        page = obs.page.body if obs.page is not None else None
        reference = row_columns(page)
    if reference is not None and header != reference:
        findings.append(
            tolerated("The header differs from the summary's columns; the header is the truth.")
        )
    relation = "as" if reference is not None and header == reference else "unlike"
    seen = (
        f"UTF-8, {'CRLF' if crlf else 'LF'} line ends; header of {len(header)} columns "
        f"({relation} the summary's columns); {len(body_rows)} complete rows in the first "
        f"{len(sample.data)} bytes; Content-Type {sample.content_type.split(';')[0] or 'none'}"
    )
    return judged(point, section, expected, seen, findings or [holds()])


def check_enrichment() -> Check:
    """Never checked: enrichment costs money."""
    return unchecked(
        "enrichment answers",
        "Enrichment: POST /enrich/<key>",
        '{"bundle", "requested", "found", "not_found", "results": [{"contact_id", "found", '
        '"data"}]}, input order kept',
        "Enrichment is billed per contact and bundle: the probe never calls it. The tap "
        "matches results by contact_id or cb_id and keeps payload fields it does not know.",
    )


def check_create_refusals() -> Check:
    """Never checked: only a create shows them."""
    return unchecked(
        "create refusals",
        "Feed exports: POST /intent/feeds/exports",
        "402 when records_required exceeds records_remaining; 429 (Retry-After) or 409 at the "
        "concurrent-build limit, with a detail saying so",
        "Only creating an export shows them, and the probe never creates one.",
    )
