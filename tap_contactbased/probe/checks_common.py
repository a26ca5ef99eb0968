"""Checks of the contract's common rules: auth, error bodies, list envelopes, windows."""

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
    differs,
    failure,
    holds,
    judged,
    object_body,
    tolerated,
    unchecked,
)
from tap_contactbased.probe.report import Check
from tap_contactbased.probe.shapes import as_date, is_int, kind, merged_shape, shape

if t.TYPE_CHECKING:
    from tap_contactbased.probe.report import Finding

NO_DETAIL = (
    "Error bodies without `detail`: the tap's one-line errors would lose the API's "
    "explanation (which setting, which limit); they never repeat `message`, `error` or other "
    "fields, where an API may echo the request and its key."
)
STOPS_ON_LIST = "every run stops there, rather than read the list as empty."


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


def _detail_findings(body: t.Any) -> tuple[t.Any, list[Finding]]:
    """The explanation of an error body (its `detail`), and how the tap would read it."""
    if not isinstance(body, dict) or "detail" not in body:
        return None, [differs(NO_DETAIL)]
    return body["detail"], []


def _not_found_findings(answer: Answer) -> list[Finding]:
    findings = _status_findings(answer.status or 0, 404, "An unknown export")
    findings += _detail_findings(answer.body)[1]
    return findings or [holds()]


def _invalid_findings(answer: Answer) -> list[Finding]:
    findings = _status_findings(answer.status or 0, 422, "An invalid body")
    detail, more = _detail_findings(answer.body)
    findings += more
    if isinstance(detail, str):
        findings.append(tolerated("A 422 explanation is text, not a list; the tap shows it."))
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
        detail = _detail_findings(body)[0]
        items = f", its items {merged_shape(detail)}" if isinstance(detail, list) else ""
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
        ("feeds", obs.feeds, FEEDS_PAGE_SIZE, STOPS_ON_LIST),
        ("exports", obs.exports, EXPORTS_PAGE_SIZE, STOPS_ON_LIST),
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
    body = object_body(point, section, expected, answer, "The one-day search")
    if isinstance(body, Check):
        return body
    start, end = as_date(body.get("start_date")), as_date(body.get("end_date"))
    seen = [
        f"start_date: {kind(body.get('start_date'))}",
        f"end_date: {kind(body.get('end_date'))}",
    ]
    findings: list[Finding] = []
    if end is None:
        findings.append(
            tolerated(
                "Without a date in end_date the tap takes the one-day window's start_date as "
                "today, else this machine's UTC date (a day off the API's around midnight)."
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
