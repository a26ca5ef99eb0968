"""What the probe says: one check per contract point, as a Markdown table or a JSON report.

A check names fields and the kinds of their values (`int`, `date`, `list[object]`, ...), never
a value, so that a report is safe to paste into an issue; every text of a check is redacted
when the check is made (`redaction.clean`).
"""

from __future__ import annotations

import datetime
import enum
import json
import re
import typing as t
from dataclasses import asdict, dataclass

from tap_contactbased import values
from tap_contactbased.redaction import clean
from tap_contactbased.schemas import CONTACT_ID_ALIASES

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

CANONICAL_ID, OLD_ID = CONTACT_ID_ALIASES
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}.*")
LIST_SAMPLE = 50  # elements of a list whose kinds are described
_KINDS = {type(None): "null", bool: "bool", int: "int", float: "number", dict: "object"}


class Verdict(str, enum.Enum):
    """How the API compares with one point of the contract, worst last."""

    HOLDS = "holds"
    TOLERATED = "differs but tolerated"
    DIFFERS = "differs"
    NOT_CHECKED = "not checked"  # a point's verdict, never a finding's


@dataclass(frozen=True)
class Finding:
    """One observation within a point: its verdict and a sentence on what it means."""

    verdict: Verdict
    note: str = ""


@dataclass(frozen=True)
class Check:
    """One row of the probe's table."""

    point: str
    section: str
    expected: str
    seen: str
    verdict: Verdict
    note: str

    def __post_init__(self) -> None:
        for name in ("point", "section", "expected", "seen", "note"):
            object.__setattr__(self, name, clean(getattr(self, name)))

    def as_dict(self) -> dict[str, str]:
        """The row as the JSON report writes it."""
        return {**asdict(self), "verdict": self.verdict.value}


def combine(findings: Iterable[Finding]) -> tuple[Verdict, str]:
    """The worst verdict of some findings, and their notes, most severe first."""
    found = sorted(findings, key=lambda f: -list(Verdict).index(f.verdict))
    notes = dict.fromkeys(f.note for f in found if f.note)
    return (found[0].verdict if found else Verdict.HOLDS), " ".join(notes)


@dataclass(frozen=True)
class ProbeReport:
    """Every check, and where they were made."""

    checks: Sequence[Check]
    tap_version: str
    api_host: str

    @property
    def exit_code(self) -> int:
        """0 when nothing differs in a way the tap cannot cope with, else 1."""
        return 1 if any(c.verdict is Verdict.DIFFERS for c in self.checks) else 0

    def to_json(self) -> str:
        """The JSON report, indented."""
        report = {
            "checks": [c.as_dict() for c in self.checks],
            "tap_version": self.tap_version,
            "api_host": clean(self.api_host),
        }
        return json.dumps(report, indent=2, ensure_ascii=False) + "\n"

    def to_table(self) -> str:
        """A Markdown table: readable in a terminal, pasteable into an issue."""
        header = ("Point", "Section", "Contract says", "Seen", "Verdict", "Note")
        rows = [header, tuple(":--" for _ in header), *(c.as_dict().values() for c in self.checks)]
        counts = [f"{sum(c.verdict is v for c in self.checks)} {v.value}" for v in Verdict]
        title = f"ContactBased API probe of {clean(self.api_host)} by tap-contactbased "
        lines = [title + self.tap_version, "", *map(_row, rows), "", ", ".join(counts) + "."]
        return "\n".join(lines) + "\n"


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(" ".join(c.replace("|", "\\|").split()) or "-" for c in cells) + " |"


def kind(value: t.Any) -> str:
    """The kind of a JSON value, without the value."""
    if isinstance(value, str):
        if _DATE.fullmatch(value):
            return "date"
        return "timestamp" if _TIMESTAMP.fullmatch(value) else "string"
    if isinstance(value, list):
        kinds = dict.fromkeys(kind(v) for v in value[:LIST_SAMPLE])
        return f"list[{' | '.join(kinds)}]"
    return _KINDS.get(type(value), type(value).__name__)


def shape(obj: t.Any) -> str:
    """`name: kind` for each field of an object, in the order served."""
    return "{}" if obj == {} else merged_shape([obj])


def merged_shape(objects: Iterable[t.Any]) -> str:
    """The fields of several objects of one kind, each with every kind it took."""
    kinds: dict[str, dict[str, None]] = {}
    others: dict[str, None] = {}
    for obj in objects:
        if not isinstance(obj, dict):
            others[kind(obj)] = None
            continue
        for name, value in obj.items():
            kinds.setdefault(name, {})[kind(value)] = None
    fields = ", ".join(f"{name}: {' | '.join(k)}" for name, k in kinds.items())
    return " | ".join(([f"{{{fields}}}"] if kinds else []) + list(others)) or "nothing"


def respelled(name: str) -> str:
    """The older spelling of a field name that holds the id."""
    return name.replace(CANONICAL_ID, OLD_ID)


def get_either(obj: Mapping[str, t.Any], name: str) -> t.Any:
    """A field under its contract name or its cb_id spelling."""
    return obj.get(name, obj.get(respelled(name)))


def as_date(value: t.Any) -> datetime.date | None:
    """The date a `YYYY-MM-DD` text names, or None (the contract's spelling only)."""
    return values.date_or_none(value) if kind(value) == "date" else None


def as_timestamp(value: t.Any) -> datetime.datetime | None:
    """The UTC time an ISO 8601 text of the contract's spelling names, or None."""
    return values.timestamp_or_none(value) if kind(value) == "timestamp" else None
