"""The rules of the points about an export's data: page rows, download URL, CSV, bundles."""

from __future__ import annotations

import codecs
import csv
import datetime
import io
import json
import typing as t
import urllib.parse

from tap_contactbased.probe.engine import failure
from tap_contactbased.probe.report import as_timestamp, kind, merged_shape, shape
from tap_contactbased.probe.rules import PAGE_ONLY, no_ready, row_columns
from tap_contactbased.schemas import BUNDLE_COLUMN_PREFIX, BUNDLE_KEYS, bundle_data_schema
from tap_contactbased.values import is_int

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from tap_contactbased.probe.engine import Judging
    from tap_contactbased.probe.observe import CsvSample, Observations


def page(j: Judging) -> None:
    """Page 1 of a ready export: rows keyed by column, text or null, page_size of them."""
    body, ready = j.body, j.obs.ready or {}
    rows = body.get("rows")
    j.seen = [shape({k: body[k] for k in body if k in PAGE_ONLY or k not in ready})]
    if not isinstance(rows, list):
        j.differs("No rows list: read_mode pages stops; use read_mode csv.")
        return
    objects = [r for r in rows if isinstance(r, dict)]
    if len(objects) < len(rows):
        j.differs("Rows that are not objects: read_mode pages cannot read them.")
    values = {kind(v) for r in objects for v in r.values()}
    if values - {"string", "null", "date", "timestamp"}:
        j.differs("Values that are not text or null: read_mode pages stops; use read_mode csv.")
    columns = ready.get("columns")
    if isinstance(columns, list) and any(list(r) != columns for r in objects):
        j.tolerated("Row keys differ from the summary's columns: the rows' own keys decide.")
    size, total = ready.get("page_size"), ready.get("total_rows")
    if is_int(size) and is_int(total) and len(rows) < min(size, total):
        j.differs("Page 1 is short although the export has more rows: the tap would stop there.")
    keys = len(row_columns(body) or [])
    shown = " | ".join(sorted(values)) or "none"
    j.seen.append(f"{len(rows)} rows keyed by {keys} columns, values {shown}")


def download(j: Judging) -> None:
    """The download URL answer: a signed URL (never shown) and when it expires."""
    url = j.body.get("url")
    try:
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    except ValueError:  # an unbalanced [ of an IPv6 address: no usable URL either
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        j.differs("No absolute url that parses: read_mode csv stops; use read_mode pages.")
    else:
        params = len(urllib.parse.parse_qs(parts.query))
        j.seen.append(f"url: absolute {parts.scheme} URL with {params} query parameter(s)")
    expires = as_timestamp(j.body.get("expires_at"))
    if expires is None:
        j.tolerated("The tap does not read expires_at: it asks for a new URL on 403.")
    else:
        minutes = (expires - datetime.datetime.now(datetime.timezone.utc)).total_seconds() / 60
        j.seen.append(f"expires_at about {round(minutes)} min ahead")
        if minutes <= 0:
            j.tolerated("The URL was issued expired; the tap asks for a new one on 403.")
    if "export_id" not in j.body:
        j.tolerated("The tap does not read export_id from this answer.")


def no_csv(obs: Observations) -> str | None:
    """Why the CSV cannot be judged: no ready export, no URL, or a failed download."""
    if (reason := no_ready(obs)) is not None:
        return reason
    if obs.csv is None and (obs.download is None or obs.download.error):
        return failure("The download-url request", obs.download)
    if obs.csv is None:
        return "The download-url answer gave no absolute url to download from."
    if obs.csv.error:
        return failure("The CSV download", obs.csv)
    return None


def csv_sample(j: Judging) -> None:
    """The first bytes of the CSV: UTF-8, a header row, RFC 4180 quoting."""
    assert j.obs.csv is not None  # no_csv skipped the point otherwise
    sample: CsvSample = j.obs.csv.body
    if sample.data.startswith(codecs.BOM_UTF8):
        j.seen.append("UTF-8 with a BOM")
        j.differs("The CSV starts with a byte-order mark: the tap would misname the first column.")
        return
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(sample.data, final=sample.complete)
    except UnicodeDecodeError:
        j.seen.append("not UTF-8")
        j.differs("The CSV is not UTF-8.")
        return
    rows: list[list[str]] = []
    try:
        rows.extend(csv.reader(io.StringIO(text, newline="")))
        if not sample.complete:
            del rows[-1:]  # the last row may be cut short
    except csv.Error:
        # A sample may end inside a quoted field, and the rows before it are whole; a whole
        # file that does not parse has no header to trust.
        if sample.complete:
            rows = []
    if not rows:
        j.seen.append(f"{len(sample.data)} bytes")
        j.differs("No complete header row could be read: the tap could not name the columns.")
        return
    header, body_rows = rows[0], rows[1:]
    crlf = "\r\n" in text[: text.find("\n") + 1]
    if not crlf:
        j.tolerated("Lines end with LF only; the csv module reads both.")
    if "\x00" in text:
        j.tolerated("NUL characters: the tap removes them.")
    if ragged := sum(1 for r in body_rows if len(r) != len(header)):
        j.differs(f"{ragged} row(s) not as wide as the header: values would shift columns.")
    reference = (j.obs.ready or {}).get("columns")
    if not isinstance(reference, list):
        reference = row_columns(j.obs.page.body if j.obs.page is not None else None)
    if reference is not None and header != reference:
        j.tolerated("The header differs from the summary's columns; the header is the truth.")
    relation = "as" if reference is not None and header == reference else "unlike"
    j.seen.append(
        f"UTF-8, {'CRLF' if crlf else 'LF'} line ends; header of {len(header)} columns "
        f"({relation} the summary's columns); {len(body_rows)} complete rows in the first "
        f"{len(sample.data)} bytes; Content-Type {sample.content_type.split(';')[0] or 'none'}"
    )


def bundle_list(j: Judging) -> None:
    """Bundle keys, and whether the configured bundles are enabled."""
    enabled = {str(b.get("key")) for b in j.objects if b.get("enabled", True)}
    if any(str(b.get("key")) not in BUNDLE_KEYS for b in j.objects):
        j.holds("Some bundle keys are not among the contract's eleven.")
    settings = j.obs.settings
    if off := (set(settings.export_bundles) | set(settings.enrichment_bundles)) - enabled:
        j.holds(
            f"{len(off)} configured bundle(s) are not enabled: a run would stop before spending "
            "anything."
        )
    j.seen.append(f"entries: {merged_shape(j.objects)} ({len(j.objects)}, {len(enabled)} enabled)")


def _payload_paths(value: Mapping[str, t.Any]) -> set[str]:
    """`name` and `name[].sub` paths of a bundle payload."""
    lists = [(n, v) for n, v in value.items() if isinstance(v, list)]
    return {*value, *(f"{n}[].{s}" for n, v in lists for i in v if isinstance(i, dict) for s in i)}


def _schema_paths(bundle: str) -> set[str]:
    """`name` and `name[].sub` paths of the tap's reading of a bundle's payload."""
    fields = bundle_data_schema(bundle).get("properties", {})
    entries = [(n, s.get("items", {}).get("properties", {})) for n, s in fields.items()]
    return {*fields, *(f"{n}[].{sub}" for n, inner in entries for sub in inner)}


def _payloads(rows: Iterable[Mapping[str, t.Any]]) -> tuple[dict[str, list[t.Any]], list[str]]:
    """Parsed bundle column values per bundle key, and the columns whose values do not parse."""
    parsed: dict[str, list[t.Any]] = {}
    broken: dict[str, None] = {}
    for column, text in ((c, v) for row in rows for c, v in row.items()):
        if not column.startswith(BUNDLE_COLUMN_PREFIX) or text in (None, ""):
            continue
        try:
            value = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            value = None
        if isinstance(value, dict):
            parsed.setdefault(column[len(BUNDLE_COLUMN_PREFIX) :], []).append(value)
        else:
            broken[column] = None
    return parsed, list(broken)


def bundle_columns(j: Judging) -> str | None:
    """bundle_<key> columns: present for export_bundles, holding JSON payloads."""
    obs = j.obs
    answers = [p.preview.body for p in obs.feed_probes] + [obs.page.body if obs.page else None]
    rows = [
        r
        for b in answers
        if isinstance(b, dict) and isinstance(b.get("rows"), list)
        for r in b["rows"]
        if isinstance(r, dict)
    ]
    previewed = [c for p in obs.feed_probes if (c := row_columns(p.preview.body)) is not None]
    names = {c for r in rows for c in r} | {c for columns in previewed for c in columns}
    seen_columns = sorted(c for c in names if c.startswith(BUNDLE_COLUMN_PREFIX))
    if not obs.settings.export_bundles and not seen_columns:
        return "export_bundles is empty, and nothing read had a bundle_ column."
    for key in obs.settings.export_bundles:
        if previewed and any(f"{BUNDLE_COLUMN_PREFIX}{key}" not in c for c in previewed):
            j.differs(f"A preview lacks bundle_{key}: that bundle's data would not reach records.")
    payloads, broken = _payloads(rows)
    if broken:
        j.differs(f"{', '.join(broken)} hold(s) values that are not JSON objects: kept as text.")
    j.seen.append(f"columns: {', '.join(seen_columns) or 'none'}")
    for key, values in payloads.items():
        entries = [
            e for v in values for inner in v.values() if isinstance(inner, list) for e in inner
        ]
        j.seen.append(
            f"{key}: {merged_shape(values)}"
            + (f", entries {merged_shape(entries)}" if entries else "")
        )
        expected = _schema_paths(key)
        if expected and set().union(*(_payload_paths(v) for v in values)) != expected:
            j.tolerated(
                f"Payload fields of {key} differ: unknown ones are kept, missing ones are null."
            )
    if not payloads and not broken:
        j.holds("No row read had bundle data to look into.")
    return None
