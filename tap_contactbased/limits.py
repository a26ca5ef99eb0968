"""The most the tap holds of any answer: every cap in one place.

An answer larger, deeper or with a number larger than these is not data the contract
describes: it is refused in one line, never retried (the same request gets the same
answer) and never buffered first. The caps are far above anything a legitimate export
holds; the README ("What an answer may cost") has the margins measured on the local API.
"""

from __future__ import annotations

import typing as t

KIB = 1024
MIB = 1024 * KIB

# A page answer (POST /intent/feeds/exports/page): 5x the largest page measured.
MAX_PAGE_BYTES = 512 * MIB
# Any other JSON answer, error bodies included.
MAX_ANSWER_BYTES = 64 * MIB
# One line of an export's CSV, decompressed (3,000x the longest row measured): the csv
# module takes whole lines, so a line without an end would otherwise be held whole.
MAX_CSV_LINE_BYTES = 8 * MIB
# One CSV field, in characters; a quoted field may span lines.
MAX_CSV_FIELD_CHARS = 8 * MIB
# Levels of nested arrays and objects in an answer or a bundle cell: 40x the deepest answer,
# yet far from Python's recursion limit, so that the recursive code downstream (the SDK's
# stream maps and flattening took 250 levels) copes; a bundle cell of up to 512 characters
# cannot nest this deep and is never walked to find out.
MAX_JSON_DEPTH = 256


def deeper_than(value: t.Any, limit: int) -> bool:
    """Whether a decoded JSON value nests arrays and objects more than `limit` levels.

    Iterative, level by level: the point is to judge values too deep for a recursive walk.
    """
    level = [value] if isinstance(value, (dict, list)) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, (dict, list))
        ]
    return False


def size_text(size: int) -> str:
    """`8 MiB` for a cap in messages."""
    for unit, name in ((MIB, "MiB"), (KIB, "KiB")):
        if size >= unit:
            return f"{size / unit:g} {name}"
    return f"{size:,} bytes"
