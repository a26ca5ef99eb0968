"""The probe's engine: a contract point as data, and the one function that judges it.

A `Point` names what it judges (an answer, the entries of its list, each of several answers
alone, or some objects), the fields `schemas.py` gives them and the tap's way with each missing
or mistyped field (`Coping`); its `rule` judges what is not a field rule.
"""

from __future__ import annotations

import itertools
import typing as t
from dataclasses import dataclass, field

from tap_contactbased import values
from tap_contactbased.probe.report import (
    CANONICAL_ID,
    Check,
    Finding,
    Verdict,
    as_date,
    as_timestamp,
    combine,
    get_either,
    kind,
    merged_shape,
    respelled,
    shape,
)
from tap_contactbased.schemas import EXTRA_FIELDS

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from tap_contactbased.probe.observe import Answer, Observations

Fields = t.Mapping[str, t.Any]  # field name -> its JSON schema
# A finding, or how to make one from the names of the fields concerned and the objects.
Cope = t.Union[Finding, "Callable[[list[str], Sequence[Mapping[str, t.Any]]], Finding]"]


def tolerated(note: str) -> Finding:
    """A difference the tap copes with; `note` says how."""
    return Finding(Verdict.TOLERATED, note)


def differs(note: str) -> Finding:
    """A difference that would break something; `note` says what."""
    return Finding(Verdict.DIFFERS, note)


def failure(what: str, answer: Answer | None) -> str:
    """Why a point was not checked: the request that failed, in one line."""
    if answer is None or answer.error is None:
        return f"{what} was not requested."
    return f"{what} failed: {answer.error}"


@dataclass(frozen=True)
class Coping:
    """The tap's real way with one field: what its absence and a wrong kind mean."""

    missing: Cope | None = None  # None: the point's `otherwise` (without one, absence is fine)
    wrong_kind: Cope | None = None  # None: the kind is not judged
    null_ok: bool = False  # a null is no wrong kind


def copes(note: str, wrong_kind: Cope | None = None, *, null_ok: bool = False) -> Coping:
    """A field whose absence the tap copes with, as `note` says."""
    return Coping(tolerated(note), wrong_kind, null_ok)


def breaks(note: str, wrong_kind: Cope | None = None) -> Coping:
    """A field whose absence breaks something, as `note` says."""
    return Coping(differs(note), wrong_kind)


@dataclass
class Judging:
    """One point being judged: what its rule reads, and the seen parts and findings so far."""

    obs: Observations
    body: t.Any = None  # the answer judged, when there is one
    objects: list[Mapping[str, t.Any]] = field(default_factory=list)  # whose fields are matched
    extra: list[str] = field(default_factory=list)  # names of `objects` not in the contract
    seen: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    answer: Answer | None = None  # of a point that judges each of its answers alone ...
    label: str = ""  # ... and its label

    def holds(self, note: str) -> None:
        self.findings.append(Finding(Verdict.HOLDS, note))

    def tolerated(self, note: str) -> None:
        self.findings.append(tolerated(note))

    def differs(self, note: str) -> None:
        self.findings.append(differs(note))


@dataclass(frozen=True)
class Point:
    """One contract point, one row of the report. Its rule returns why it is not checked."""

    name: str
    section: str
    expected: str = ""  # without one, the kinds of `fields` (`listed`)
    skip: Callable[[Observations], str | None] | None = None  # why not, before any answer
    answer: Callable[[Observations], Answer | None] | None = None
    what: str = ""  # the request in "... failed: ..." or "... was not requested." (the section)
    entries: str = ""  # judge the objects of this list of the answer
    no_list: Finding | None = None  # without that list (None: as an empty one)
    answers: Callable[[Observations], list[tuple[str, Answer]]] | None = None  # each alone
    objects: Callable[[Observations], list[Mapping[str, t.Any]]] | None = None
    fields: Fields = field(default_factory=dict)
    copings: Mapping[str, Coping] = field(default_factory=dict)  # their notes in this order
    otherwise: Cope | None = None  # a missing field without a coping of its own
    also_missing: Callable[[Mapping[str, t.Any]], list[str]] | None = None
    describe: bool = False  # the seen ends with the differences of field names
    rule: Callable[[Judging], str | None] | None = None


def judge(point: Point, obs: Observations) -> Check:
    """The row of one point: not checked and why, or judged on its fields and its rule."""
    row = (point.name, point.section, point.expected or listed(point.fields))
    j = Judging(obs)
    reason = point.skip(obs) if point.skip is not None else None
    if reason is None and point.answers is not None:
        reason = _each_answer(point, j, point.answers(obs))
    elif reason is None:
        if (early := _take(point, j, row)) is not None:
            return early
        reason = _fields_and_rule(point, j)
    if reason is not None:
        return Check(*row, "-", Verdict.NOT_CHECKED, reason)
    return Check(*row, "; ".join(j.seen) or "-", *combine(j.findings))


def _take(point: Point, j: Judging, row: tuple[str, str, str]) -> Check | None:
    """Put what the point judges in `j`; or the row, when an answer is no object or no list."""
    if point.objects is not None:
        j.objects = point.objects(j.obs)
        j.seen = [merged_shape(j.objects)]
    if point.answer is None:
        return None
    answer = point.answer(j.obs)
    if answer is None or answer.error:
        return Check(*row, "-", Verdict.NOT_CHECKED, failure(point.what or point.section, answer))
    body = j.body = answer.body
    if not point.entries:
        if not isinstance(body, dict):
            return Check(*row, kind(body), Verdict.DIFFERS, "Not an object.")
        j.objects, j.seen = [body], [shape(body)]
        return None
    listed = body.get(point.entries) if isinstance(body, dict) else None
    if not isinstance(listed, list):
        if point.no_list is not None:
            return Check(*row, shape(body), point.no_list.verdict, point.no_list.note)
        listed = []  # judged as an empty list; the point of its envelope says what is wrong
    j.seen, j.objects = [shape(body)], [e for e in listed if isinstance(e, dict)]
    key = point.copings.get(next(iter(point.fields), ""), Coping()).missing
    if point.no_list is not None and key is not None and len(j.objects) < len(listed):
        j.findings.append(_cope(key, [], j.objects))  # an entry that is no object has no key
    return None


def _each_answer(point: Point, j: Judging, answers: list[tuple[str, Answer]]) -> str | None:
    """Judge each answer that came alone into the point's row; why not, if none came."""
    if all(a.error for _, a in answers):
        return " ".join(failure(f"The {label} {point.what}", a) for label, a in answers)
    for label, answer in answers:
        body = answer.body
        if answer.error:
            j.tolerated(failure(f"The {label} {point.what}", answer))
        elif point.fields and not isinstance(body, dict):
            j.differs(f"The {label} {point.what} is not an object.")
        else:
            objects: list[Mapping[str, t.Any]] = [body] if isinstance(body, dict) else []
            seen = [f"{label}: {shape(body)}"]
            one = Judging(j.obs, body, objects, seen=seen, answer=answer, label=label)
            _fields_and_rule(point, one)
            j.seen += one.seen
            j.findings += one.findings
    return None


def _fields_and_rule(point: Point, j: Judging) -> str | None:
    differences = ""
    if point.fields:
        names = list(dict.fromkeys(n for o in j.objects for n in o))
        absent = [n for n in point.fields if n not in names]
        old = [n for n in absent if CANONICAL_ID in n and respelled(n) in names]
        j.extra = [n for n in names if n not in {*point.fields, *map(respelled, old)}]
        if old:
            j.tolerated(
                "The tap accepts both spellings (contact_id and cb_id) in every field name."
            )
        j.findings += _copings(point, j.objects)
        parts = [
            ("spelled with cb_id", old),
            ("missing", [n for n in absent if n not in old]),
            ("not in the contract", j.extra),
        ]
        differences = "; ".join(f"{what}: {', '.join(ns)}" for what, ns in parts if ns)
    reason = point.rule(j) if point.rule is not None else None
    if point.describe and differences:
        j.seen.append(differences)
    return reason


def _copings(point: Point, objects: list[Mapping[str, t.Any]]) -> list[Finding]:
    """One finding per coping of the missing fields, then one per kind of wrong kind."""
    missing = {n for n in point.fields for o in objects if n not in o and respelled(n) not in o}
    if point.also_missing is not None:
        missing |= {n for o in objects for n in point.also_missing(o)}
    lacking: dict[Cope, list[str]] = {}
    wrong: dict[Cope, list[str]] = {}
    for name in dict.fromkeys([*point.copings, *point.fields]):
        cope = point.copings.get(name, Coping()).missing or point.otherwise
        if name in missing and cope is not None:
            lacking.setdefault(cope, []).append(name)
    for name, spec in point.fields.items():
        coping = point.copings.get(name, Coping())
        seen = [get_either(o, name) for o in objects if name in o or respelled(name) in o]
        if coping.wrong_kind is not None and any(
            not (v is None and coping.null_ok) and not of_kind(spec, v) for v in seen
        ):
            wrong.setdefault(coping.wrong_kind, []).append(name)
    return [_cope(c, names, objects) for c, names in (*lacking.items(), *wrong.items())]


def _cope(cope: Cope, names: list[str], objects: Sequence[Mapping[str, t.Any]]) -> Finding:
    return cope if isinstance(cope, Finding) else cope(names, objects)


def of_kind(spec: Mapping[str, t.Any], value: t.Any) -> bool:
    """Whether a value has the kind its JSON schema gives (integers, dates and times)."""
    if "integer" in spec.get("type", []):
        return values.is_int(value)
    parse = {"date": as_date, "date-time": as_timestamp}.get(spec.get("format", ""))
    return parse is None or parse(value) is not None


def listed(fields: Fields) -> str:
    """Fields by their kinds as the contract lists them: `a, b: int; c, d: date`."""
    kinds = {n: "int" if "integer" in s["type"] else s.get("format") for n, s in fields.items()}
    return "; ".join(f"{', '.join(names)}: {k}" for k, names in itertools.groupby(kinds, kinds.get))


def contract_fields(schema: Fields, *, drop: Iterable[str] = ()) -> Fields:
    """The fields of a schema in the contract's order; `extra_fields` and `drop` left out."""
    return {n: s for n, s in schema["properties"].items() if n not in {EXTRA_FIELDS, *drop}}
