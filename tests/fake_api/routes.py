"""The endpoints of the contract: a request in, a reply out; no HTTP details here."""

from __future__ import annotations

import datetime as dt
import hmac
import math
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .data import iso_timestamp
from .drift import id_field, unknown_families
from .enrichment import BUNDLE_KEYS, CONTACT_ID_PATTERN, bundle_catalogue
from .exports import (
    Export,
    as_objects,
    plan_values,
    read_export_options,
    read_feed_window,
    rows_with_contact,
    spoil_first_row,
)
from .filters import FILTER_FIELDS
from .validation import ApiError, BodyReader, QueryReader, error_item

if TYPE_CHECKING:
    from .fake import FakeContactBased


@dataclass(frozen=True)
class Request:
    """A received request; `body` is the parsed JSON (None when empty)."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    api_key: str | None
    body: Any = None
    body_error: dict[str, Any] | None = None  # the 422 item when the body is not JSON


@dataclass(frozen=True)
class RequestRecord:
    """One request the server received; `status` is 0 when the connection was dropped."""

    method: str
    path: str
    status: int
    body: Any | None


@dataclass(frozen=True)
class JsonReply:
    """A JSON answer."""

    status: int
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CsvReply:
    """A CSV file streamed from an export: the whole export, or one page."""

    export: Export
    page: int | None


@dataclass(frozen=True)
class XmlReply:
    """An object-storage error, in the style of S3."""

    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


Reply = JsonReply | CsvReply | XmlReply
Handler = Callable[["FakeContactBased", Request], Reply]


def ok(payload: Any, status: int = 200) -> JsonReply:
    """A successful JSON answer."""
    return JsonReply(status, payload)


def _envelope(items: Sequence[Any], page: int, page_size: int) -> dict[str, Any]:
    start = (page - 1) * page_size
    return {
        "items": list(items[start : start + page_size]),
        "page": page,
        "page_size": page_size,
        "total": len(items),
    }


def _grown(api: FakeContactBased, obj: Mapping[str, Any]) -> dict[str, Any]:
    """An object with the fields a newer API adds (the `new_fields` knob)."""
    return {**obj, **api.faults.new_fields}


def _export(api: FakeContactBased, export_id: str | None) -> Export:
    export = api.exports.get(export_id or "")
    if export is None:
        raise ApiError(404, f"Export {export_id} not found")
    return export


# Organization


def list_feeds(api: FakeContactBased, req: Request) -> Reply:
    """GET /organization/feeds."""
    query = QueryReader(req.query)
    search = query.string("search")
    page = query.integer("page", 1, ge=1) or 1
    page_size = query.integer("page_size", 50, ge=1, le=200) or 50
    query.check()
    needle = (search or "").casefold()
    drift = api.drift
    feeds = [
        drift.family("feed", _grown(api, f)) for f in api.feeds if needle in f["name"].casefold()
    ]
    return ok(drift.envelope(_envelope(feeds, page, page_size)))


def get_credits(api: FakeContactBased, _req: Request) -> Reply:
    """GET /organization/credits."""
    return ok(api.drift.family("credits", _grown(api, api.credits)))


def get_feed_limit(api: FakeContactBased, _req: Request) -> Reply:
    """GET /organization/feed-limit."""
    return ok(api.drift.family("feed_limit", _grown(api, api.feed_limit_info())))


# Intent feeds


def feed_builder(api: FakeContactBased, req: Request) -> Reply:
    """POST /intent/feeds/builder: preview a free-text feed, or save it."""
    body = BodyReader(req.body)
    query = body.string("query", required=True, min_length=1)
    name = body.string("name")
    save = body.boolean("save", False)
    body.check()
    assert query is not None
    answer = api.dataset.builder_preview(query)
    if save:
        answer["feed"] = api.drift.family("feed", api.save_feed(query, name))
    return ok(answer)


def feed_search(api: FakeContactBased, req: Request) -> Reply:
    """POST /intent/feeds/search: window totals, optionally creating an export."""
    body = BodyReader(req.body)
    include_daily = body.boolean("include_daily_counts", False)
    if body.boolean("auto_export", False):
        options = read_export_options(body, api.faults.id_column)
        feed_id, lookback = options.feed_id, options.lookback_days
    else:
        options = None
        feed_id, lookback = read_feed_window(body)
    body.check()
    if options is None:
        api.check_window(feed_id, lookback)
    else:
        api.check_options(options)
    days = api.window(lookback)
    counts = [api.visible_count(feed_id, day) for day in days]
    with_id = sum(
        sum(1 for contact in api.dataset.contact_column(feed_id, day)[:count] if contact >= 0)
        for day, count in zip(days, counts, strict=True)
    )
    total = sum(counts)
    drift = api.drift
    answer: dict[str, Any] = {
        "feed_id": feed_id,
        "lookback_days": lookback,
        "start_date": days[0].isoformat(),
        "end_date": days[-1].isoformat(),
        "total_records": total,
        id_field(api.faults, "records_with_contact_id"): with_id,
        id_field(api.faults, "records_without_contact_id"): total - with_id,
        "daily_counts": [
            drift.family("search", {"date": day.isoformat(), "count": count})
            for day, count in zip(days, counts, strict=True)
        ]
        if include_daily
        else None,
    }
    if options is not None:
        answer["export"] = drift.summary(api.create_export(options).summary(just_created=True))
    return ok(drift.family("search", answer))


# Filters


def filter_fields(api: FakeContactBased, req: Request) -> Reply:
    """POST /intent/feeds/filters/fields."""
    body = BodyReader({} if req.body is None else req.body)
    feed_id = body.uuid("feed_id")
    body.check()
    if feed_id is not None:
        api.feed(feed_id)
    drift = api.drift
    fields = [
        drift.family("filter_fields", _grown(api, spec.as_dict()))
        for spec in FILTER_FIELDS.values()
    ]
    return ok(drift.family("filter_fields", {"fields": fields}))


def filter_values(api: FakeContactBased, req: Request) -> Reply:
    """POST /intent/feeds/filters/values: known values of a string field, most common first."""
    body = BodyReader(req.body)
    name = body.string("field", required=True)
    search = body.string("search") or ""
    limit = body.integer("limit", 50, ge=1, le=1000) or 50
    feed_id = body.uuid("feed_id")
    spec = FILTER_FIELDS.get(name or "")
    if name is not None and spec is None:
        body.fail("field", f"Value error, unknown filter field {name!r}", "value_error", name)
    elif spec is not None and spec.type != "string":
        body.fail(
            "field",
            f"Value error, {spec.type} field {name!r} has no value list",
            "value_error",
            name,
        )
    body.check()
    assert spec is not None
    if feed_id is not None:
        api.feed(feed_id)
    counts = api.dataset.value_counts(spec.field)
    prefix = search.casefold()
    values = sorted(
        (value, count) for value, count in counts.items() if value.casefold().startswith(prefix)
    )
    values.sort(key=lambda item: -item[1])
    return ok(
        {"field": spec.field, "values": [{"value": v, "count": c} for v, c in values[:limit]]}
    )


# Exports


def export_preview(api: FakeContactBased, req: Request) -> Reply:
    """POST /intent/feeds/exports/preview: first rows and an estimate, free of charge."""
    body = BodyReader(req.body)
    options = read_export_options(body, api.faults.id_column)
    preview_rows = body.integer("preview_rows", 25, ge=1, le=100) or 25
    skip_count = body.boolean("skip_count", False)
    body.check()
    api.check_options(options)
    plan = api.plan(options)
    layout = api.layout(options.enrichment_bundles)
    rows = as_objects(layout.columns, plan_values(api.dataset, plan, layout, 0, preview_rows))
    answer = {
        "columns": list(layout.columns),
        "rows": rows,
        "estimated_rows": None if skip_count else plan.total,
    }
    return ok(api.drift.family("preview", answer))


def export_count(api: FakeContactBased, req: Request) -> Reply:
    """POST /intent/feeds/exports/count: what an export would cost, free of charge."""
    body = BodyReader(req.body)
    options = read_export_options(body, api.faults.id_column)
    body.check()
    api.check_options(options)
    plan = api.plan(options)
    answer = {
        "total_rows": plan.total,
        id_field(api.faults, "rows_with_contact_id"): rows_with_contact(api.dataset, plan),
        "records_required": plan.total,
    }
    return ok(api.drift.family("count", answer, options.feed_id))


def export_create(api: FakeContactBased, req: Request) -> Reply:
    """POST /intent/feeds/exports: reserve credits and start building."""
    body = BodyReader(req.body)
    options = read_export_options(body, api.faults.id_column)
    body.check()
    api.check_options(options)
    return ok(api.drift.summary(api.create_export(options).summary(just_created=True)), 201)


def export_list(api: FakeContactBased, req: Request) -> Reply:
    """POST /intent/feeds/exports/list: newest first."""
    body = BodyReader({} if req.body is None else req.body)
    feed_id = body.uuid("feed_id")
    export_ids = body.string_list("export_ids")
    status = body.string("status")
    page = body.integer("page", 1, ge=1) or 1
    page_size = body.integer("page_size", 50, ge=1, le=200) or 50
    body.check()
    drift = api.drift
    summaries = [export.summary() for export in reversed(list(api.exports.values()))]
    # The filter takes a status as the API serves it, or its canonical text.
    items = [
        drift.summary(_grown(api, s))
        for s in summaries
        if (feed_id is None or s["feed_id"] == feed_id)
        and (export_ids is None or s["export_id"] in export_ids)
        and (status is None or status in (s["status"], drift.status(s["status"])))
    ]
    return ok(drift.envelope(_envelope(items, page, page_size)))


def _readable(export: Export, page: int | None) -> None:
    """Fail unless the export is built and has that page."""
    status, _ = export.state()
    if status == "failed":
        raise ApiError(404, f"Export {export.export_id} failed: {export.fate.build_error}")
    if status == "building":
        raise ApiError(409, f"Export {export.export_id} is not ready yet (status building)")
    if page is not None and page > export.total_pages:
        raise ApiError(
            404,
            f"Page {page} does not exist: export {export.export_id} has {export.total_pages} pages",
        )


def export_page(api: FakeContactBased, req: Request) -> Reply:
    """POST /intent/feeds/exports/page: one page of rows (none while building)."""
    body = BodyReader(req.body)
    export_id = body.string("export_id", required=True)
    page = body.integer("page", 1, ge=1) or 1
    body.check()
    export = _export(api, export_id)
    drift = api.drift
    summary = drift.summary(export.summary())
    if export.state()[0] == "building":
        return ok({**summary, **drift.family("page", {"page": page, "rows": []})})
    engine, endpoint = api.fault_engine, f"{req.method} {req.path}"
    if export.built and (engine.take("page_not_found") or engine.page_fails(endpoint, page, "404")):
        raise ApiError(404, f"Page {page} of export {export.export_id} not found")
    _readable(export, page)
    start, stop = export.page_bounds(page)
    stop = max(start, min(stop, export.total_rows - api.faults.page_rows_missing))
    if stop > start and (engine.take("short_pages") or engine.page_fails(endpoint, page, "short")):
        stop -= 1
    values = list(export.iter_values(start, stop))
    huge, texts = api.faults.huge_field_bytes, api.faults.first_row_texts
    cell = api.faults.bundle_cell_text
    if start == 0 and values and (huge > 0 or texts or cell is not None):
        values[0] = spoil_first_row(
            values[0], export.columns, nul=False, huge_bytes=huge, texts=texts, bundle_text=cell
        )
    rows = as_objects(export.columns, values)
    served = drift.family("page", {"page": page, "rows": rows}, export.feed_id)
    return ok({**summary, **served})


def export_download_url(api: FakeContactBased, req: Request) -> Reply:
    """POST /intent/feeds/exports/download-url: a signed URL for the CSV of an export or page."""
    body = BodyReader(req.body)
    export_id = body.string("export_id", required=True)
    page = body.integer("page", None, ge=1)
    body.check()
    export = _export(api, export_id)
    _readable(export, page)
    now = time.time()
    if api.fault_engine.take("expire_urls"):
        expires = math.floor(now) - 1
    else:
        expires = math.ceil(now + api.url_ttl_seconds)
    params: dict[str, Any] = {} if page is None else {"page": page}
    signature = api.sign(export.export_id, page, expires)
    api.issued_signatures.append(signature)
    params.update(expires=expires, signature=signature)
    origin = api.download_origin or api.url
    url = f"{origin}/files/{export.export_id}.csv?{urllib.parse.urlencode(params)}"
    if api.faults.malformed_download_urls:
        url = url.replace("://", "://[", 1)
    expires_at = iso_timestamp(dt.datetime.fromtimestamp(expires, dt.timezone.utc))
    answer = {"export_id": export.export_id, "url": url, "expires_at": expires_at}
    return ok(api.drift.family("download_url", answer))


_FILE_PATH = re.compile(r"/files/(exp_[0-9a-f]+)\.csv")
_NO_SUCH_KEY = XmlReply(404, "NoSuchKey", "The specified key does not exist.")


def download(api: FakeContactBased, req: Request) -> Reply:
    """GET on a signed URL: the CSV, with object-storage errors."""
    match = _FILE_PATH.fullmatch(req.path)
    if match is None:
        return _NO_SUCH_KEY
    export_id = match.group(1)
    params = {key: values[-1] for key, values in req.query.items()}
    expires_text, signature = params.get("expires"), params.get("signature")
    if not expires_text or not signature:
        return XmlReply(
            403,
            "AccessDenied",
            "Query-string authentication requires the Signature and Expires parameters",
        )
    page_text = params.get("page")
    valid_numbers = expires_text.isdigit() and (page_text is None or page_text.isdigit())
    page = int(page_text) if page_text and valid_numbers else None
    expected = api.sign(export_id, page, int(expires_text)) if valid_numbers else ""
    if not valid_numbers or not hmac.compare_digest(expected, signature):
        return XmlReply(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    if int(expires_text) < time.time():
        return XmlReply(403, "AccessDenied", "Request has expired")
    export = api.exports.get(export_id)
    if export is None or not export.built or (page is not None and page > export.total_pages):
        return _NO_SUCH_KEY
    return CsvReply(export, page)


# Enrichment


def list_bundles(api: FakeContactBased, _req: Request) -> Reply:
    """GET /enrich/bundles."""
    drift = api.drift
    bundles = [
        drift.family("bundles", _grown(api, b))
        for b in bundle_catalogue(api.enabled_bundles)
        if b["key"] not in api.withdrawn_bundles
    ]
    return ok(drift.family("bundles", {"bundles": bundles}))


def enrich(api: FakeContactBased, req: Request) -> Reply:
    """POST /enrich/<key>: look contacts up, in input order."""
    key = req.path.rsplit("/", 1)[-1]
    body = BodyReader(req.body)
    # An API that spells the id cb_id may also take `cb_ids`.
    ids_name = id_field(api.faults, "contact_ids")
    name = ids_name if body.has(ids_name) and not body.has("contact_ids") else "contact_ids"
    contact_ids = body.string_list(
        name, required=True, min_items=1, max_items=1000, pattern=CONTACT_ID_PATTERN
    )
    body.check()
    api.check_bundle(key)
    return ok(_served_enrichment(api, key, api.enrich(key, contact_ids or [])))


def _served_enrichment(api: FakeContactBased, key: str, answer: dict[str, Any]) -> dict[str, Any]:
    """Spell the id, and apply the payload and enrich drift, to an enrichment answer."""
    drift = api.drift
    id_name = id_field(api.faults, "contact_id")
    results = [
        drift.family(
            "enrich",
            {
                id_name: r["contact_id"],
                "found": r["found"],
                "data": drift.payload(key, r["data"]),
            },
        )
        for r in answer["results"]
    ]
    return drift.family("enrich", {**answer, "results": results})


ROUTES: dict[str, dict[str, Handler]] = {
    "/organization/feeds": {"GET": list_feeds},
    "/organization/credits": {"GET": get_credits},
    "/organization/feed-limit": {"GET": get_feed_limit},
    "/intent/feeds/builder": {"POST": feed_builder},
    "/intent/feeds/search": {"POST": feed_search},
    "/intent/feeds/filters/fields": {"POST": filter_fields},
    "/intent/feeds/filters/values": {"POST": filter_values},
    "/intent/feeds/exports/preview": {"POST": export_preview},
    "/intent/feeds/exports/count": {"POST": export_count},
    "/intent/feeds/exports": {"POST": export_create},
    "/intent/feeds/exports/list": {"POST": export_list},
    "/intent/feeds/exports/page": {"POST": export_page},
    "/intent/feeds/exports/download-url": {"POST": export_download_url},
    "/enrich/bundles": {"GET": list_bundles},
    **{f"/enrich/{key}": {"POST": enrich} for key in BUNDLE_KEYS},
}
PAGE_PATH = "/intent/feeds/exports/page"
FILES_PREFIX = "/files/"


def dispatch(api: FakeContactBased, req: Request) -> Reply:
    """Route a request, check the API key and turn errors into FastAPI-style answers."""
    if req.path.startswith(FILES_PREFIX):
        if req.method != "GET":
            return XmlReply(405, "MethodNotAllowed", "The specified method is not allowed.")
        return download(api, req)
    unknown = unknown_families(api.faults.drift)
    if unknown:  # a misspelt family would otherwise silently test nothing
        return JsonReply(500, {"detail": f"fake API misconfigured: unknown drift family {unknown}"})
    methods = ROUTES.get(req.path)
    if methods is None:
        return JsonReply(404, {"detail": "Not Found"})
    handler = methods.get(req.method)
    if handler is None:
        return JsonReply(405, {"detail": "Method Not Allowed"}, {"Allow": ", ".join(methods)})
    if not req.api_key:
        return JsonReply(401, {"detail": "Missing API key: send it in the X-API-Key header"})
    if not hmac.compare_digest(req.api_key.encode(), api.api_key.encode()):
        return JsonReply(401, {"detail": "Invalid or inactive API key"})
    if req.method == "POST" and req.body_error is not None:
        return JsonReply(422, {"detail": [req.body_error]})
    try:
        return handler(api, req)
    except ApiError as error:
        return JsonReply(error.status, {"detail": error.detail}, error.headers)


def json_error_item(position: int, message: str) -> dict[str, Any]:
    """The 422 item FastAPI gives for a body that is not valid JSON."""
    return error_item(["body", position], "JSON decode error", "json_invalid", {}, error=message)
