"""One spelling of the contact id in everything the API answers.

Older material of the API calls the contact id `cb_id`, and an API that does so spells it
that way inside field names too (`require_cb_id`, `rows_with_cb_id`)
[assumed, docs/contactbased-api.md]. Every JSON answer is read through
`normalise_id_spelling`, so the rest of the tap knows only `contact_id`. Export rows are
not touched here: their header is the truth, and the row typer maps the id column itself.
"""

from __future__ import annotations

import re
import typing as t

OLD_ID = re.compile(r"(?<![A-Za-z0-9])cb_id(s?)(?![A-Za-z0-9])")


def normalise_id_spelling(value: t.Any) -> t.Any:
    """`value` with every object key spelled with `contact_id`; a key already spelled so wins."""
    if isinstance(value, dict):
        renamed: dict[str, t.Any] = {}
        for key, item in value.items():
            name = (
                OLD_ID.sub(r"contact_id\1", key) if isinstance(key, str) and "cb_id" in key else key
            )
            if name != key and name in value:
                continue
            renamed[name] = normalise_id_spelling(item)
        return renamed
    if isinstance(value, list):
        return [normalise_id_spelling(item) for item in value]
    return value
