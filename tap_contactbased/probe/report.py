"""The probe's result: one check per contract point, a Markdown table and a JSON report.

Checks carry field names and kinds, never values, so that a report is safe to paste into an
issue; every text of a check is redacted when the check is made (`redaction.clean`).
"""

from __future__ import annotations

import enum
import json
import typing as t
from dataclasses import asdict, dataclass

from tap_contactbased.redaction import clean

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


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
        row = asdict(self)
        row["verdict"] = self.verdict.value
        return row


def combine(findings: Iterable[Finding]) -> tuple[Verdict, str]:
    """The worst verdict of some findings, and their notes, most severe first."""
    found = sorted(findings, key=lambda f: -list(Verdict).index(f.verdict))
    if not found:
        return Verdict.HOLDS, ""
    notes = list(dict.fromkeys(f.note for f in found if f.note))
    return found[0].verdict, " ".join(notes)


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
        lines = [
            f"ContactBased API probe of {clean(self.api_host)} by tap-contactbased "
            f"{self.tap_version}",
            "",
            _row(header),
            _row(tuple(":--" for _ in header)),
        ]
        lines += [_row(tuple(c.as_dict().values())) for c in self.checks]
        counts = [f"{sum(c.verdict is v for c in self.checks)} {v.value}" for v in Verdict]
        return "\n".join([*lines, "", ", ".join(counts) + "."]) + "\n"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(" ".join(c.replace("|", "\\|").split()) or "-" for c in cells) + " |"
