"""Record schemas, typed from the API contract (docs/contactbased-api.md).

Fields are written compactly as `"name other: kind"`: a kind is string, integer, number,
boolean, date, date-time or object (an open one), `[]` after it makes a list of it and `!`
a required field. A field the API adds later never breaks a sync: nested objects keep it
(`additionalProperties`), and a record keeps it in its `extra_fields` object, since many
targets refuse a top-level field that the SCHEMA message does not declare. Every stream
schema names the same JSON Schema dialect (the SDK's).
"""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th

JSONSchema = dict[str, t.Any]
Field: t.TypeAlias = "str | th.Property[t.Any]"

# The dialect the SDK writes on the schemas it builds.
DIALECT: str = th.PropertiesList().to_dict()["$schema"]
EXTRA_FIELDS = "extra_fields"


def open_object(*fields: Field) -> th.ObjectType:
    """An object that keeps fields it does not know."""
    return th.ObjectType(*properties(*fields), additional_properties=True)


KINDS: dict[str, t.Callable[[], th.JSONTypeHelper[t.Any]]] = {
    "string": th.StringType,
    "integer": th.IntegerType,
    "number": th.NumberType,
    "boolean": th.BooleanType,
    "date": th.DateType,
    "date-time": th.DateTimeType,
    "object": open_object,
}


def properties(*fields: Field) -> list[th.Property[t.Any]]:
    """The properties `fields` name: `"name other: kind"` texts, or properties as they are."""
    listed = []
    for field in fields:
        if isinstance(field, th.Property):
            listed.append(field)
            continue
        names, _, kind = field.partition(": ")
        of = kind.rstrip("!")
        item = KINDS[of.removesuffix("[]")]()
        wrapped = th.ArrayType(item) if of.endswith("[]") else item
        listed.extend(th.Property(n, wrapped, required=of != kind) for n in names.split())
    return listed


def schema_of(*fields: Field) -> JSONSchema:
    return th.PropertiesList(*properties(*fields)).to_dict()


def open_schema(*fields: Field) -> JSONSchema:
    """A stream schema whose records keep the fields it does not name in `extra_fields`."""
    return schema_of(
        *fields,
        th.Property(
            EXTRA_FIELDS,
            open_object(),
            description=(
                "Fields the API sent that this schema does not name, by name. "
                "Absent when there are none."
            ),
        ),
    )


def fold_new_fields(record: dict[str, t.Any], schema: JSONSchema) -> dict[str, t.Any]:
    """`record` with the fields `schema` does not name moved into its `extra_fields`."""
    known = schema["properties"]
    new = {name: value for name, value in record.items() if name not in known}
    if not new:
        return record
    folded = {name: value for name, value in record.items() if name in known}
    earlier = folded.get(EXTRA_FIELDS)
    folded[EXTRA_FIELDS] = {**earlier, **new} if isinstance(earlier, dict) else new
    return folded


FEED_KINDS = ("domains", "topics", "free_text")  # the contract's; the tap passes any through
FEED = open_schema(
    "feed_id: string!",
    "name kind query: string",
    "topics: string[]",
    "domain_count max_lookback_days: integer",
    "created_at updated_at: date-time",
)

# Readings of something that changes over time are keyed by their UTC day, so a daily run
# upserts one row per day: a history.
_SNAPSHOT_DATE = th.Property(
    "snapshot_date",
    th.DateType,
    required=True,
    description="UTC day of the reading, on the API's clock (its Date header).",
)
CREDITS = open_schema(
    _SNAPSHOT_DATE,
    "records_total records_used records_reserved records_remaining: integer",
    "period_start period_end: date",
)
FEED_LIMIT = open_schema(_SNAPSHOT_DATE, "feed_limit feeds_created feeds_remaining: integer")
BUNDLE = open_schema("key: string!", "path label: string", "enabled: boolean")
FILTER_FIELD = open_schema("field: string!", "label category type: string", "operators: string[]")
EXPORT_SUMMARY = open_schema(
    "export_id: string!",
    "feed_id status: string",
    "build_progress: number",
    "build_error: string",
    "lookback_days page_size max_rows: integer",
    "require_contact_id: boolean",
    "consumer_filters: object[]",
    "enrichment_bundles: string[]",
    "start_date end_date: date",
    "total_rows total_pages: integer",
    "columns: string[]",
    "records_reserved: integer",
    "created_at updated_at: date-time",
)
FEED_TOTAL = schema_of(
    "feed_id: string!",
    "date: date!",
    "count lookback_days: integer",
    "start_date end_date: date",
)

# Answers the tap reads but does not stream, as the contract states them; the probe checks
# the API against these.
SEARCH_ANSWER = schema_of(
    "feed_id: string",
    "lookback_days: integer",
    "start_date end_date: date",
    "total_records records_with_contact_id records_without_contact_id: integer",
    th.Property("daily_counts", th.ArrayType(open_object("date: date", "count: integer"))),
)
PREVIEW_ANSWER = schema_of("columns: string[]", "rows: object[]", "estimated_rows: integer")
COUNT_ANSWER = schema_of("total_rows rows_with_contact_id records_required: integer")
# A page answer is an export summary plus these.
PAGE_FIELDS = schema_of("page: integer", "rows: object[]")


def list_of(name: str, *fields: Field) -> th.Property[t.Any]:
    return th.Property(name, th.ArrayType(open_object(*fields)))


# Bundle payloads. The contract (docs/contactbased-api.md) documents only that email records
# carry `last_seen`; the rest is our reading [assumed], so every object keeps the fields it
# does not know.
BUNDLE_DATA: dict[str, th.ObjectType] = {
    "individual-core": open_object(
        "first_name last_name middle_name gender: string", "birth_year: integer"
    ),
    "emails": open_object(list_of("emails", "address type: string", "last_seen: date")),
    "phones": open_object(list_of("phones", "number type line_type: string", "last_seen: date")),
    "location": open_object(
        "address_line city state postal_code country: string", "latitude longitude: number"
    ),
    "professional": open_object(
        "job_title seniority department company_name company_domain linkedin_url: string"
    ),
    "auto": open_object(list_of("vehicles", "make model: string", "year: integer")),
    "interests": open_object("interests: string[]"),
    "donor": open_object("causes: string[]", "donor_flag: boolean"),
    "household": open_object("household_size: integer", "children_present home_owner: boolean"),
    "purchases": open_object("categories: string[]", "last_purchase_date: date"),
    "financial": open_object("income_range net_worth_range credit_range: string"),
}
BUNDLE_KEYS = tuple(BUNDLE_DATA)


def bundle_data_schema(bundle: str) -> JSONSchema:
    """The schema of one bundle's payload; an open object for a bundle we do not know."""
    known = BUNDLE_DATA.get(bundle)
    schema: JSONSchema = (known or open_object()).type_dict
    schema["type"] = ["object", "null"]
    return schema


def enrichment_schema(bundles: t.Iterable[str]) -> JSONSchema:
    """One record per contact and bundle; `data` holds the union of the bundles' fields.

    Each bundle's payload has its own top-level keys, so the union stays unambiguous.
    """
    fields = [f for b in bundles if b in BUNDLE_DATA for f in BUNDLE_DATA[b].wrapped.values()]
    return schema_of(
        "contact_id bundle: string!",
        "found: boolean!",
        th.Property("data", th.ObjectType(*fields, additional_properties=True)),
        "enriched_at: date-time!",
    )


# Export rows. The CSV header is the truth; these are the columns the contract names, in
# its order, with the types their values take. A column this list does not know is kept
# as a string in `extra_columns`.
ROW_COLUMNS = (
    "contact_id domain company_name industry employee_range revenue_range topic: string",
    "intent_score: number",
    "signal_date: date",
    "first_seen last_seen: date-time",
    "first_name last_name job_title seniority department linkedin_url: string",
    "city state country postal_code: string",
)
ROW_COLUMN_TYPES: dict[str, JSONSchema] = schema_of(*ROW_COLUMNS)["properties"]
CONTACT_ID_ALIASES = ("contact_id", "cb_id")
BUNDLE_COLUMN_PREFIX = "bundle_"
EXTRA_COLUMNS = "extra_columns"


def record_name(column: str) -> str:
    """The record property of a column: the id is `contact_id` whatever the API calls it."""
    return "contact_id" if column in CONTACT_ID_ALIASES else column


def export_row_schema(columns: t.Iterable[str] = (), bundles: t.Iterable[str] = ()) -> JSONSchema:
    """The export_rows schema: keys, the contract's columns, bundle columns, `columns` seen."""
    schema = schema_of("export_id feed_id: string!", "export_row: integer!", *ROW_COLUMNS)
    props = schema["properties"]
    for bundle in bundles:
        props[f"{BUNDLE_COLUMN_PREFIX}{bundle}"] = bundle_data_schema(bundle)
    for column in columns:
        name = record_name(column)
        if name in props:
            continue
        if name.startswith(BUNDLE_COLUMN_PREFIX):
            props[name] = bundle_data_schema(name[len(BUNDLE_COLUMN_PREFIX) :])
        else:
            props[name] = {"type": ["string", "null"]}
    props[EXTRA_COLUMNS] = {
        "type": ["object", "null"],
        "additionalProperties": {"type": ["string", "null"]},
        "description": (
            "Columns of the export that the catalog does not know, and values that did not "
            "fit their type, as text. Absent when there are none."
        ),
    }
    return schema
