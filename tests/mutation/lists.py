"""The committed lists of surviving mutants: Markdown a person reads, that the run parses.

Each module has a `## <path>` heading; each mutant is a list item with its key (as the run
prints it) in backticks, then a colon and the reason, which may go on over indented lines:

    ## tap_contactbased/job.py

    - `ExportJob.describe | compare | start or '?' -> ...`: equivalent: the text only names it.

A key holding a backtick is fenced by two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HEADING = re.compile(r"^## `?(?P<module>[^`]+?)`?\s*$")
ITEM = re.compile(r"^- (?P<fence>`+) ?(?P<key>.+?) ?(?P=fence)(?::\s*(?P<reason>.*))?$")


@dataclass(frozen=True)
class Entry:
    """A listed mutant and what the list says of it."""

    module: str
    key: str
    reason: str
    line: int

    @property
    def ident(self) -> str:
        """The same name as `Mutant.ident`."""
        return f"{self.module} | {self.key}"


class ListError(Exception):
    """A list the run cannot read: it says where."""


def read_list(path: Path) -> dict[str, Entry]:
    """The entries of a list, by identity; none when the file does not exist."""
    if not path.exists():
        return {}
    entries: dict[str, Entry] = {}
    module: str | None = None
    last: Entry | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if heading := HEADING.match(line):
            module, last = heading["module"], None
        elif item := ITEM.match(line):
            if module is None:
                raise ListError(f"{path}:{number}: a mutant before any '## <module>' heading")
            last = Entry(module, item["key"], (item["reason"] or "").strip(), number)
            if last.ident in entries:
                raise ListError(f"{path}:{number}: {last.key!r} is listed twice")
            entries[last.ident] = last
        elif last is not None and line.startswith("  ") and line.strip():
            last = Entry(last.module, last.key, f"{last.reason} {line.strip()}".strip(), last.line)
            entries[last.ident] = last
        elif not line.strip():
            last = None
    return entries


def format_item(key: str, reason: str = "") -> str:
    """A list item for `key`, fenced so that the key reads back the same."""
    fence = "``" if "`" in key else "`"
    inner = f" {key} " if fence == "``" else key
    return f"- {fence}{inner}{fence}: {reason}".rstrip()
