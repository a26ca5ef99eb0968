"""Building blocks of the checks: one row from findings, and the tap's ways of coping.

The "differs but tolerated" notes say how the tap copes; they are written once here so
that every check says it the same way.
"""

from __future__ import annotations

import typing as t

from tap_contactbased.probe.report import Check, Finding, Verdict, combine
from tap_contactbased.probe.shapes import kind

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from tap_contactbased.probe.observe import Answer

BOTH_SPELLINGS = "The tap accepts both spellings (contact_id and cb_id) in every field name."
NO_EXPORT_YET = (
    "No export exists yet: probe again after the first run that creates one "
    "(plan_only runs create nothing)."
)
NO_READY_EXPORT = (
    "No ready export to read: probe again once an export of the organization is ready."
)


def passed_through(stream: str) -> str:
    """How the tap copes with a field it does not get, in a stream nothing else reads."""
    return f"The {stream} stream passes through the fields it gets; nothing else reads them."


def judged(
    point: str, section: str, expected: str, seen: str, findings: Iterable[Finding]
) -> Check:
    """A row whose verdict is the worst of its findings."""
    verdict, note = combine(findings)
    return Check(point, section, expected, seen or "-", verdict, note)


def unchecked(point: str, section: str, expected: str, reason: str, seen: str = "-") -> Check:
    """A row the probe could not check, and why."""
    return Check(point, section, expected, seen, Verdict.NOT_CHECKED, reason)


def failure(what: str, answer: Answer | None) -> str:
    """Why a point was not checked: the request that failed, in one line."""
    if answer is None or answer.error is None:
        return f"{what} was not requested."
    return f"{what} failed: {answer.error}"


def object_body(
    point: str, section: str, expected: str, answer: Answer | None, what: str
) -> dict[str, t.Any] | Check:
    """The body of `answer` when it is a JSON object; otherwise the row that says why not.

    A request that failed (or was never made, `answer` None) leaves the point unchecked,
    `what` naming the request; any other body than an object differs.
    """
    if answer is None or answer.error:
        return unchecked(point, section, expected, failure(what, answer))
    if not isinstance(answer.body, dict):
        return judged(point, section, expected, kind(answer.body), [differs("Not an object.")])
    return answer.body


def holds(note: str = "") -> Finding:
    """A finding that matches the contract."""
    return Finding(Verdict.HOLDS, note)


def tolerated(note: str) -> Finding:
    """A difference the tap copes with; `note` says how."""
    return Finding(Verdict.TOLERATED, note)


def differs(note: str) -> Finding:
    """A difference that would break something; `note` says what."""
    return Finding(Verdict.DIFFERS, note)
