"""Checks of what a feed's export would hold: preview, count, bundles and bundle columns."""

from __future__ import annotations

import json
import typing as t

from tap_contactbased.probe.observe import Observations
from tap_contactbased.probe.points import (
    BOTH_SPELLINGS,
    differs,
    failure,
    holds,
    judged,
    passed_through,
    tolerated,
    unchecked,
)
from tap_contactbased.probe.shapes import (
    CANONICAL_ID,
    OLD_ID,
    get_either,
    is_int,
    match_fields,
    merged_shape,
    shape,
)
from tap_contactbased.schemas import (
    BUNDLE_COLUMN_PREFIX,
    BUNDLE_KEYS,
    ROW_COLUMN_TYPES,
    bundle_data_schema,
)

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from tap_contactbased.probe.report import Check, Finding

CONTRACT_COLUMNS = tuple(ROW_COLUMN_TYPES)
PREVIEW_FIELDS = ("columns", "rows", "estimated_rows")
COUNT_FIELDS = ("total_rows", "rows_with_contact_id", "records_required")


def row_columns(answer_body: t.Any) -> list[str] | None:
    """The columns an answer names: its `columns`, else the keys of its first row."""
    if not isinstance(answer_body, dict):
        return None
    columns = answer_body.get("columns")
    if isinstance(columns, list) and all(isinstance(c, str) for c in columns):
        return list(columns)
    rows = answer_body.get("rows")
    if isinstance(rows, list) and rows and isinstance(rows[0], dict):
        return list(rows[0])
    return None


def column_findings(columns: list[str]) -> tuple[str, list[Finding]]:
    """How a list of export columns compares with the contract's, and what it means."""
    findings: list[Finding] = []
    if CANONICAL_ID in columns:
        spelled = CANONICAL_ID
    elif OLD_ID in columns:
        spelled = OLD_ID
        findings.append(
            tolerated(
                "The id column is spelled cb_id: records name it contact_id whatever the API "
                "calls it."
            )
        )
    else:
        spelled = "absent"
        findings.append(
            differs(
                "No contact_id (or cb_id) column: records would carry no contact id, so "
                "require_contact_id, consumer_filters and enrichment would find no contacts."
            )
        )
    plain = [c for c in columns if not c.startswith(BUNDLE_COLUMN_PREFIX)]
    known = set(CONTRACT_COLUMNS) | {OLD_ID}
    missing = [c for c in CONTRACT_COLUMNS if c != CANONICAL_ID and c not in columns]
    extra = [c for c in plain if c not in known]
    if missing:
        findings.append(tolerated(f"Missing columns ({', '.join(missing)}) are null in records."))
    if extra:
        findings.append(
            tolerated(
                f"Columns the contract does not name ({', '.join(extra)}) are kept as text in "
                "extra_columns."
            )
        )
    bundles = len(columns) - len(plain)
    seen = (
        f"{len(plain)} columns (id {spelled}, {len(missing)} of the contract's missing, "
        f"{len(extra)} not in it) and {bundles} bundle_ column(s)"
    )
    return seen, findings


def check_preview(obs: Observations) -> Check:
    """The free preview of each probed feed: its fields, columns and id spelling."""
    point = "preview columns and id spelling"
    section = "POST /intent/feeds/exports/preview; Identifiers; Export rows"
    expected = (
        '{"columns", "rows", "estimated_rows"}; the contract\'s columns, the id spelled '
        "contact_id (cb_id in older material), bundle_<key> columns last"
    )
    probes = obs.feed_probes
    if not probes:
        reason = "No feed to preview: feed_ids is empty and the organization has no feeds."
        return unchecked(point, section, expected, reason)
    if all(p.preview.error for p in probes):
        return unchecked(point, section, expected, failure("The preview", probes[0].preview))
    seen, findings = [], []
    for n, probe in enumerate(probes, 1):
        label = f"{'configured ' if probe.configured else 'first listed '}feed {n}"
        body = probe.preview.body
        if probe.preview.error:
            findings.append(tolerated(failure(f"The preview of {label}", probe.preview)))
            continue
        if not isinstance(body, dict):
            findings.append(differs(f"The preview of {label} is not an object."))
            continue
        match = match_fields(body, PREVIEW_FIELDS)
        if match.missing:
            findings.append(
                tolerated(
                    f"Without {', '.join(match.missing)}: discovery keeps the contract's "
                    "columns, and the export's own header decides when rows are read."
                )
            )
        columns = row_columns(body)
        described = f"{label}: {shape(body)}"
        if columns is not None:
            columns_seen, more = column_findings(columns)
            described += f"; {columns_seen}"
            findings += more
        seen.append(described)
    return judged(point, section, expected, "; ".join(seen), findings or [holds()])


def check_count(obs: Observations) -> Check:
    """The free count of each probed feed."""
    point, section = "count fields", "POST /intent/feeds/exports/count"
    expected = "total_rows, rows_with_contact_id, records_required: int"
    probes = obs.feed_probes
    if not probes:
        reason = "No feed to count: feed_ids is empty and the organization has no feeds."
        return unchecked(point, section, expected, reason)
    if all(p.count.error for p in probes):
        return unchecked(point, section, expected, failure("The count", probes[0].count))
    seen, findings = [], []
    for n, probe in enumerate(probes, 1):
        body = probe.count.body
        if probe.count.error:
            findings.append(tolerated(failure(f"The count of feed {n}", probe.count)))
            continue
        if not isinstance(body, dict):
            findings.append(differs(f"The count of feed {n} is not an object."))
            continue
        match = match_fields(body, COUNT_FIELDS)
        seen.append(f"feed {n}: {shape(body)}")
        findings += _count_findings(body, match.missing, bool(match.respelled))
        preview = probe.preview.body
        estimate = preview.get("estimated_rows") if isinstance(preview, dict) else None
        total = body.get("total_rows")
        if is_int(estimate) and is_int(total) and estimate != total:
            findings.append(
                holds("The preview's estimated_rows and the count's total_rows differ.")
            )
    return judged(point, section, expected, "; ".join(seen), findings or [holds()])


def _count_findings(body: Mapping[str, t.Any], missing: list[str], old: bool) -> list[Finding]:
    findings: list[Finding] = [tolerated(BOTH_SPELLINGS)] if old else []
    if "total_rows" in missing and "records_required" in missing:
        findings.append(
            differs(
                "Without total_rows and records_required the credit preflight cannot tell what "
                "an export costs: a run with max_records_per_run stops before creating, "
                "others rely on the API's 402."
            )
        )
    elif "records_required" in missing:
        findings.append(
            tolerated("Without records_required the tap takes the row count as the cost.")
        )
    elif "total_rows" in missing:
        findings.append(
            tolerated(
                "Without total_rows the tap reads an export until its data ends and "
                "cross-checks what it read against the counts it has."
            )
        )
    if "rows_with_contact_id" in missing:
        findings.append(tolerated("The tap does not read rows_with_contact_id."))
    wrong = [n for n in COUNT_FIELDS if (v := get_either(body, n)) is not None and not is_int(v)]
    if wrong:
        findings.append(differs(f"{', '.join(wrong)} not integers: the tap computes with them."))
    return findings


BUNDLE_FIELDS = ("key", "path", "label", "enabled")


def check_bundle_list(obs: Observations) -> Check:
    """The bundles the organization has, and whether the configured ones are enabled."""
    point, section = "bundle list", "GET /enrich/bundles"
    expected = '{"bundles": [{"key", "path", "label", "enabled": bool}]}'
    answer = obs.bundles
    if answer.error:
        return unchecked(point, section, expected, failure("GET /enrich/bundles", answer))
    body = answer.body
    bundles = body.get("bundles") if isinstance(body, dict) else None
    if not isinstance(bundles, list):
        note = (
            "No bundles list: the tap would find no enabled bundle and refuse every bundle of "
            "export_bundles and enrichment_bundles."
        )
        return judged(point, section, expected, shape(body), [differs(note)])
    entries = [b for b in bundles if isinstance(b, dict)]
    findings: list[Finding] = []
    if len(entries) < len(bundles) or any("key" not in b for b in entries):
        findings.append(
            differs("Entries without `key`: the tap knows bundles by key and would refuse them.")
        )
    if any("enabled" not in b for b in entries):
        findings.append(
            tolerated(
                "Without `enabled` the tap takes a listed bundle as enabled; the API's 403 "
                "stops a run that asks for one that is not."
            )
        )
    if any(n not in b for b in entries for n in ("path", "label")):
        findings.append(tolerated(passed_through("bundles")))
    enabled = {str(b.get("key")) for b in entries if b.get("enabled", True)}
    if any(str(b.get("key")) not in BUNDLE_KEYS for b in entries):
        findings.append(holds("Some bundle keys are not among the contract's eleven."))
    wanted = set(obs.settings.export_bundles) | set(obs.settings.enrichment_bundles)
    if wanted - enabled:
        findings.append(
            holds(
                f"{len(wanted - enabled)} configured bundle(s) are not enabled: a run would "
                "stop before spending anything."
            )
        )
    seen = (
        f"{shape(body)}; entries: {merged_shape(entries)} ({len(entries)}, {len(enabled)} enabled)"
    )
    return judged(point, section, expected, seen, findings or [holds()])


def _bundle_rows(obs: Observations) -> Iterator[Mapping[str, t.Any]]:
    """Rows that may carry bundle columns: previews and page 1 of the ready export."""
    answers = [p.preview for p in obs.feed_probes]
    if obs.page is not None:
        answers.append(obs.page)
    for answer in answers:
        rows = answer.body.get("rows") if isinstance(answer.body, dict) else None
        if isinstance(rows, list):
            yield from (r for r in rows if isinstance(r, dict))


def field_paths(value: t.Any) -> set[str]:
    """`name` and `name[].sub` paths of a payload or of a payload schema's properties."""
    paths: set[str] = set()
    if not isinstance(value, dict):
        return paths
    for name, inner in value.items():
        paths.add(name)
        items = inner if isinstance(inner, list) else []
        for item in items:
            if isinstance(item, dict):
                paths.update(f"{name}[].{sub}" for sub in item)
    return paths


def schema_paths(bundle: str) -> set[str]:
    """The payload paths the tap's schema names for a bundle."""
    paths: set[str] = set()
    for name, spec in bundle_data_schema(bundle).get("properties", {}).items():
        paths.add(name)
        items = spec.get("items", {}) if isinstance(spec, dict) else {}
        paths.update(f"{name}[].{sub}" for sub in items.get("properties", {}))
    return paths


def _payloads(rows: Iterable[Mapping[str, t.Any]]) -> tuple[dict[str, list[t.Any]], list[str]]:
    """Parsed bundle column values per bundle key, and the columns whose values do not parse."""
    parsed: dict[str, list[t.Any]] = {}
    broken: list[str] = []
    for row in rows:
        for column, text in row.items():
            if not column.startswith(BUNDLE_COLUMN_PREFIX) or text in (None, ""):
                continue
            key = column[len(BUNDLE_COLUMN_PREFIX) :]
            try:
                value = json.loads(text) if isinstance(text, str) else None
            except ValueError:
                value = None
            if isinstance(value, dict):
                parsed.setdefault(key, []).append(value)
            elif column not in broken:
                broken.append(column)
    return parsed, broken


def check_bundle_columns(obs: Observations) -> Check:
    """bundle_<key> columns: present for export_bundles, holding JSON payloads."""
    point = "bundle_<key> columns"
    section = "Export options: enrichment_bundles; Export rows; Enrichment bundles"
    expected = (
        "one bundle_<key> column per export bundle, holding the bundle's payload as JSON text "
        "(payload fields other than e-mail last_seen are assumed)"
    )
    rows = list(_bundle_rows(obs))
    seen_columns = sorted(
        {c for r in rows for c in r if c.startswith(BUNDLE_COLUMN_PREFIX)}
        | {
            c
            for p in obs.feed_probes
            for c in row_columns(p.preview.body) or []
            if c.startswith(BUNDLE_COLUMN_PREFIX)
        }
    )
    wanted = obs.settings.export_bundles
    if not wanted and not seen_columns:
        reason = "export_bundles is empty, and nothing read had a bundle_ column."
        return unchecked(point, section, expected, reason)
    findings: list[Finding] = []
    previewed = [c for p in obs.feed_probes if (c := row_columns(p.preview.body)) is not None]
    for key in wanted:
        if previewed and any(f"{BUNDLE_COLUMN_PREFIX}{key}" not in c for c in previewed):
            findings.append(
                differs(
                    f"A preview lacks bundle_{key} although export_bundles asks for it: that "
                    "bundle's data would not reach export rows."
                )
            )
    payloads, broken = _payloads(rows)
    if broken:
        findings.append(
            differs(
                f"{', '.join(broken)} hold(s) values that are not JSON objects: every such "
                "value would land as text in extra_columns instead of its column."
            )
        )
    seen = [f"columns: {', '.join(seen_columns) or 'none'}"]
    for key, values in payloads.items():
        entries = [
            e for v in values for inner in v.values() if isinstance(inner, list) for e in inner
        ]
        payload_seen = f"{key}: {merged_shape(values)}"
        if entries:
            payload_seen += f", entries {merged_shape(entries)}"
        seen.append(payload_seen)
        got = set().union(*(field_paths(v) for v in values))
        expected_paths = schema_paths(key)
        if expected_paths and got != expected_paths:
            note = (
                f"Payload fields of {key} differ from the tap's reading: unknown ones are kept, "
                "missing ones are null."
            )
            if key == "emails":
                note += " The README's stream map hashes whichever field holds the address."
            findings.append(tolerated(note))
    if not payloads and not broken:
        findings.append(holds("No row read had bundle data to look into."))
    return judged(point, section, expected, "; ".join(seen), findings or [holds()])
