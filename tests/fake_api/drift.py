"""Contract drift: respell or drop the [assumed] fields of answers, as a real API might.

`Faults.drift` maps a response family to `{field: new name, or None to drop it}`; renaming a
field that is absent does nothing. `Faults.status_spelling` replaces served status texts, and
`Faults.id_column = "cb_id"` also respells the id inside field names (`require_cb_id`,
`rows_with_cb_id`, `records_with_cb_id`, enrichment results' `cb_id`).

The families, and what each reaches:
- `summary`: every export summary (create, search's `export`, list items, page answers);
- `page`: the page-only fields of a page answer (`page`, `rows`);
- `count`, `credits`, `preview`, `download_url`, `feed_limit`, `filter_fields`: those answers;
- `search`: the search answer and each of its `daily_counts` entries;
- `envelope`: `items`, `page`, `page_size`, `total` of the feeds list and the exports list;
- `feed`: each Feed object (feeds list, a saved builder feed);
- `bundles`: each entry of GET /enrich/bundles, and that answer itself;
- `enrich`: the enrichment answer and each of its results;
- `error`: every JSON error body, and each item of a 422's `detail` list;
- `payload:<bundle>`: a bundle's `data`, at every depth (the e-mail entries inside
  `data["emails"]` too), in enrichment answers and in `bundle_<key>` export columns.

`Faults.echo_request` makes every error body repeat the request it refuses (`echo_request`).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .faults import Faults

Renames = Mapping[str, str | None]

FAMILIES = frozenset(
    {
        "summary",
        "page",
        "count",
        "credits",
        "envelope",
        "preview",
        "search",
        "feed",
        "bundles",
        "download_url",
        "enrich",
        "error",
        "feed_limit",
        "filter_fields",
    }
)
PAYLOAD_PREFIX = "payload:"
CANONICAL_ID = "contact_id"


@dataclass(frozen=True)
class RawJson:
    """A value served as this JSON text, verbatim (the `raw_json` knob)."""

    text: str


def encode_json(payload: Any) -> bytes:
    """The JSON of an answer, each `RawJson` in it written as its text."""
    raws: dict[str, str] = {}

    def placeholder(value: Any) -> str:
        if not isinstance(value, RawJson):
            raise TypeError(type(value).__name__)
        token = f"raw-json-{secrets.token_hex(8)}"
        raws[token] = value.text
        return token

    text = json.dumps(payload, ensure_ascii=False, default=placeholder)
    for token, raw in raws.items():
        text = text.replace(f'"{token}"', raw)
    return text.encode("utf-8")


def unknown_families(drift: Mapping[str, Any]) -> list[str]:
    """Families of a drift setting that no answer has (a typo would silently test nothing)."""
    return sorted(
        name for name in drift if name not in FAMILIES and not name.startswith(PAYLOAD_PREFIX)
    )


def respell(obj: dict[str, Any], renames: Renames) -> dict[str, Any]:
    """Return the object with fields renamed or dropped, keeping their order."""
    if not renames or not any(name in obj for name in renames):
        return obj
    out: dict[str, Any] = {}
    for name, value in obj.items():
        if name not in renames:
            out[name] = value
            continue
        new = renames[name]
        if new is not None:
            out[new] = value
    return out


def respell_deep(value: Any, renames: Renames) -> Any:
    """Respell the fields of every object inside a JSON value."""
    if isinstance(value, dict):
        return respell({k: respell_deep(v, renames) for k, v in value.items()}, renames)
    if isinstance(value, list):
        return [respell_deep(item, renames) for item in value]
    return value


def id_field(faults: Faults, name: str) -> str:
    """Spell a field name that contains the id the way the API spells the id."""
    return name.replace(CANONICAL_ID, faults.id_column)


class Drift:
    """Applies the drift knobs of a `Faults`, read live on every call."""

    def __init__(self, faults: Faults) -> None:
        """Read the knobs of these faults."""
        self.faults = faults

    def family(self, name: str, obj: dict[str, Any], feed_id: str | None = None) -> dict[str, Any]:
        """Respell one object of a family, then put the family's `raw_json` values in it.

        `feed_id` names the feed the answer is about, for `hostile_feeds`.
        """
        served = respell(obj, self.faults.drift.get(name) or {})
        raw = self.faults.raw_json.get(name)
        hostile = self.faults.hostile_feeds
        if raw and (not hostile or feed_id in hostile):
            served = {**served, **{key: RawJson(text) for key, text in raw.items()}}
        return served

    def hostile(self, feed_id: str) -> bool:
        """Whether the hostile knobs reach answers about this feed."""
        return not self.faults.hostile_feeds or feed_id in self.faults.hostile_feeds

    def payload(self, bundle: str, data: Any) -> Any:
        """Respell a bundle's data, nested entries included."""
        renames = self.faults.drift.get(PAYLOAD_PREFIX + bundle)
        return respell_deep(data, renames) if renames else data

    def status(self, status: str) -> str:
        """The served text of a status."""
        return self.faults.status_spelling.get(status, status)

    def summary(self, summary: dict[str, Any]) -> dict[str, Any]:
        """Serve an export summary: status spelling, id spelling, then field drift."""
        served = dict(summary)
        served["status"] = self.status(summary["status"])
        echoed = "require_contact_id"
        served = respell(served, {echoed: id_field(self.faults, echoed)})
        return self.family("summary", served)

    def envelope(self, envelope: dict[str, Any]) -> dict[str, Any]:
        """Serve a list envelope."""
        return self.family("envelope", envelope)

    def error(self, body: Any) -> Any:
        """Serve an error body, and the items of a 422 list; then the `raw_json` values."""
        raw = self.faults.raw_json.get("error")
        if raw and isinstance(body, dict):
            body = {**body, **{key: RawJson(text) for key, text in raw.items()}}
        renames = self.faults.drift.get("error")
        if not renames or not isinstance(body, dict):
            return body
        served = respell(body, renames)
        return {
            k: [respell(i, renames) if isinstance(i, dict) else i for i in v]
            if isinstance(v, list)
            else v
            for k, v in served.items()
        }


ECHO_SHAPES = ("text", "list", "object")


def echo_request(
    body: Any, shape: str, request_line: str, url: str, headers: Mapping[str, str]
) -> dict[str, Any]:
    """An error body that repeats the request: key, URL with query string, headers.

    `detail` in the given shape (text, FastAPI-like list, or object), and the same again
    in `message`, `error` and a field of the API's own (`request`).
    """
    if shape not in ECHO_SHAPES:
        raise ValueError(f"echo_request is one of {ECHO_SHAPES}, not {shape!r}")
    key = headers.get("X-API-Key", "")
    said = body.get("detail") if isinstance(body, dict) else None
    text = f"{said} -- {request_line} {url} with X-API-Key: {key}; headers {dict(headers)}"
    request = {"url": url, "headers": dict(headers), "api_key": key}
    detail: Any = {
        "text": text,
        "list": [
            {"loc": ["header", "X-API-Key", key], "msg": text, "type": "echo", "input": request}
        ],
        "object": request,
    }[shape]
    return {"detail": detail, "message": text, "error": {"request": request}, "request": request}


def bundle_text_with_drift(
    plain: Callable[[str, str], str], payload: Callable[[str, str], Any], drift: Mapping[str, Any]
) -> Callable[[str, str], str]:
    """The `bundle_<key>` column text of exports created under payload drift.

    `drift` is a snapshot taken at creation: like the other column knobs, an export's
    bundle columns stay as they were built.
    """
    renames = {
        name[len(PAYLOAD_PREFIX) :]: dict(value)
        for name, value in drift.items()
        if name.startswith(PAYLOAD_PREFIX) and value
    }
    if not renames:
        return plain
    cache: dict[tuple[str, str], str] = {}

    def text(bundle: str, contact_id: str) -> str:
        if bundle not in renames:
            return plain(bundle, contact_id)
        key = (bundle, contact_id)
        if key not in cache:
            data = payload(bundle, contact_id) if contact_id else None
            cache[key] = (
                ""
                if data is None
                else json.dumps(
                    respell_deep(data, renames[bundle]), ensure_ascii=False, separators=(",", ":")
                )
            )
        return cache[key]

    return text
