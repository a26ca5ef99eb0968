"""Record schemas, typed from the API contract (docs/contactbased-api.md).

Shared fragments are named objects. A field the API adds later never breaks a sync: nested
objects keep it (`additionalProperties`), and a record keeps it in its `extra_fields` object,
since many targets refuse a top-level field that the SCHEMA message does not declare.
Every stream schema names the same JSON Schema dialect.
"""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th

JSONSchema = dict[str, t.Any]

# The dialect the SDK writes on the schemas it builds; the hand-built schemas name it too.
DIALECT: str = th.PropertiesList().to_dict()["$schema"]
EXTRA_FIELDS = "extra_fields"


def open_object(*properties: th.Property[t.Any]) -> th.ObjectType:
    """An object that keeps fields it does not know."""
    return th.ObjectType(*properties, additional_properties=True)


def open_schema(*properties: th.Property[t.Any]) -> JSONSchema:
    """A stream schema whose records keep the fields it does not name in `extra_fields`."""
    return th.PropertiesList(
        *properties,
        th.Property(
            EXTRA_FIELDS,
            open_object(),
            description=(
                "Fields the API sent that this schema does not name, by name. "
                "Absent when there are none."
            ),
        ),
    ).to_dict()


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
    th.Property("feed_id", th.StringType, required=True),
    th.Property("name", th.StringType),
    th.Property("kind", th.StringType),
    th.Property("query", th.StringType),
    th.Property("topics", th.ArrayType(th.StringType)),
    th.Property("domain_count", th.IntegerType),
    th.Property("max_lookback_days", th.IntegerType),
    th.Property("created_at", th.DateTimeType),
    th.Property("updated_at", th.DateTimeType),
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
    th.Property("records_total", th.IntegerType),
    th.Property("records_used", th.IntegerType),
    th.Property("records_reserved", th.IntegerType),
    th.Property("records_remaining", th.IntegerType),
    th.Property("period_start", th.DateType),
    th.Property("period_end", th.DateType),
)

FEED_LIMIT = open_schema(
    _SNAPSHOT_DATE,
    th.Property("feed_limit", th.IntegerType),
    th.Property("feeds_created", th.IntegerType),
    th.Property("feeds_remaining", th.IntegerType),
)

BUNDLE = open_schema(
    th.Property("key", th.StringType, required=True),
    th.Property("path", th.StringType),
    th.Property("label", th.StringType),
    th.Property("enabled", th.BooleanType),
)

FILTER_FIELD = open_schema(
    th.Property("field", th.StringType, required=True),
    th.Property("label", th.StringType),
    th.Property("category", th.StringType),
    th.Property("type", th.StringType),
    th.Property("operators", th.ArrayType(th.StringType)),
)

EXPORT_SUMMARY = open_schema(
    th.Property("export_id", th.StringType, required=True),
    th.Property("feed_id", th.StringType),
    th.Property("status", th.StringType),
    th.Property("build_progress", th.NumberType),
    th.Property("build_error", th.StringType),
    th.Property("lookback_days", th.IntegerType),
    th.Property("page_size", th.IntegerType),
    th.Property("max_rows", th.IntegerType),
    th.Property("require_contact_id", th.BooleanType),
    th.Property("consumer_filters", th.ArrayType(open_object())),
    th.Property("enrichment_bundles", th.ArrayType(th.StringType)),
    th.Property("start_date", th.DateType),
    th.Property("end_date", th.DateType),
    th.Property("total_rows", th.IntegerType),
    th.Property("total_pages", th.IntegerType),
    th.Property("columns", th.ArrayType(th.StringType)),
    th.Property("records_reserved", th.IntegerType),
    th.Property("created_at", th.DateTimeType),
    th.Property("updated_at", th.DateTimeType),
)

FEED_TOTAL = th.PropertiesList(
    th.Property("feed_id", th.StringType, required=True),
    th.Property("date", th.DateType, required=True),
    th.Property("count", th.IntegerType),
    th.Property("lookback_days", th.IntegerType),
    th.Property("start_date", th.DateType),
    th.Property("end_date", th.DateType),
).to_dict()

# Answers the tap reads but does not stream, as the contract states them; the probe checks
# the API against these.
SEARCH_ANSWER = th.PropertiesList(
    th.Property("feed_id", th.StringType),
    th.Property("lookback_days", th.IntegerType),
    th.Property("start_date", th.DateType),
    th.Property("end_date", th.DateType),
    th.Property("total_records", th.IntegerType),
    th.Property("records_with_contact_id", th.IntegerType),
    th.Property("records_without_contact_id", th.IntegerType),
    th.Property(
        "daily_counts",
        th.ArrayType(
            open_object(th.Property("date", th.DateType), th.Property("count", th.IntegerType))
        ),
    ),
)
PREVIEW_ANSWER = th.PropertiesList(
    th.Property("columns", th.ArrayType(th.StringType)),
    th.Property("rows", th.ArrayType(open_object())),
    th.Property("estimated_rows", th.IntegerType),
)
COUNT_ANSWER = th.PropertiesList(
    th.Property("total_rows", th.IntegerType),
    th.Property("rows_with_contact_id", th.IntegerType),
    th.Property("records_required", th.IntegerType),
)
# A page answer is an export summary plus these.
PAGE_FIELDS = th.PropertiesList(
    th.Property("page", th.IntegerType),
    th.Property("rows", th.ArrayType(open_object())),
)

# Bundle payloads. The contract (docs/contactbased-api.md) documents only that email records
# carry `last_seen`; the rest is our reading [assumed], so every object keeps the fields it
# does not know.
_LAST_SEEN = th.Property("last_seen", th.DateType)
BUNDLE_DATA: dict[str, th.ObjectType] = {
    "individual-core": open_object(
        th.Property("first_name", th.StringType),
        th.Property("last_name", th.StringType),
        th.Property("middle_name", th.StringType),
        th.Property("gender", th.StringType),
        th.Property("birth_year", th.IntegerType),
    ),
    "emails": open_object(
        th.Property(
            "emails",
            th.ArrayType(
                open_object(
                    th.Property("address", th.StringType),
                    th.Property("type", th.StringType),
                    _LAST_SEEN,
                )
            ),
        ),
    ),
    "phones": open_object(
        th.Property(
            "phones",
            th.ArrayType(
                open_object(
                    th.Property("number", th.StringType),
                    th.Property("type", th.StringType),
                    th.Property("line_type", th.StringType),
                    _LAST_SEEN,
                )
            ),
        ),
    ),
    "location": open_object(
        th.Property("address_line", th.StringType),
        th.Property("city", th.StringType),
        th.Property("state", th.StringType),
        th.Property("postal_code", th.StringType),
        th.Property("country", th.StringType),
        th.Property("latitude", th.NumberType),
        th.Property("longitude", th.NumberType),
    ),
    "professional": open_object(
        th.Property("job_title", th.StringType),
        th.Property("seniority", th.StringType),
        th.Property("department", th.StringType),
        th.Property("company_name", th.StringType),
        th.Property("company_domain", th.StringType),
        th.Property("linkedin_url", th.StringType),
    ),
    "auto": open_object(
        th.Property(
            "vehicles",
            th.ArrayType(
                open_object(
                    th.Property("make", th.StringType),
                    th.Property("model", th.StringType),
                    th.Property("year", th.IntegerType),
                )
            ),
        ),
    ),
    "interests": open_object(th.Property("interests", th.ArrayType(th.StringType))),
    "donor": open_object(
        th.Property("causes", th.ArrayType(th.StringType)),
        th.Property("donor_flag", th.BooleanType),
    ),
    "household": open_object(
        th.Property("household_size", th.IntegerType),
        th.Property("children_present", th.BooleanType),
        th.Property("home_owner", th.BooleanType),
    ),
    "purchases": open_object(
        th.Property("categories", th.ArrayType(th.StringType)),
        th.Property("last_purchase_date", th.DateType),
    ),
    "financial": open_object(
        th.Property("income_range", th.StringType),
        th.Property("net_worth_range", th.StringType),
        th.Property("credit_range", th.StringType),
    ),
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
    data: JSONSchema = {"type": ["object", "null"], "properties": {}, "additionalProperties": True}
    for bundle in bundles:
        data["properties"].update(bundle_data_schema(bundle).get("properties", {}))
    return {
        "$schema": DIALECT,
        "type": "object",
        "properties": {
            "contact_id": {"type": ["string"]},
            "bundle": {"type": ["string"]},
            "found": {"type": ["boolean"]},
            "data": data,
            "enriched_at": {"type": ["string"], "format": "date-time"},
        },
        "required": ["contact_id", "bundle", "found", "enriched_at"],
    }


# Export rows. The CSV header is the truth; these are the columns the contract names, in
# its order, with the types their values take. A column this list does not know is kept
# as a string in `extra_columns`.
ROW_COLUMN_TYPES: dict[str, JSONSchema] = {
    "contact_id": {"type": ["string", "null"]},
    "domain": {"type": ["string", "null"]},
    "company_name": {"type": ["string", "null"]},
    "industry": {"type": ["string", "null"]},
    "employee_range": {"type": ["string", "null"]},
    "revenue_range": {"type": ["string", "null"]},
    "topic": {"type": ["string", "null"]},
    "intent_score": {"type": ["number", "null"]},
    "signal_date": {"type": ["string", "null"], "format": "date"},
    "first_seen": {"type": ["string", "null"], "format": "date-time"},
    "last_seen": {"type": ["string", "null"], "format": "date-time"},
    "first_name": {"type": ["string", "null"]},
    "last_name": {"type": ["string", "null"]},
    "job_title": {"type": ["string", "null"]},
    "seniority": {"type": ["string", "null"]},
    "department": {"type": ["string", "null"]},
    "linkedin_url": {"type": ["string", "null"]},
    "city": {"type": ["string", "null"]},
    "state": {"type": ["string", "null"]},
    "country": {"type": ["string", "null"]},
    "postal_code": {"type": ["string", "null"]},
}
CONTACT_ID_ALIASES = ("contact_id", "cb_id")
BUNDLE_COLUMN_PREFIX = "bundle_"
EXTRA_COLUMNS = "extra_columns"


def record_name(column: str) -> str:
    """The record property of a column: the id is `contact_id` whatever the API calls it."""
    return "contact_id" if column in CONTACT_ID_ALIASES else column


def export_row_schema(columns: t.Iterable[str] = (), bundles: t.Iterable[str] = ()) -> JSONSchema:
    """The export_rows schema: keys, the contract's columns, bundle columns, seen columns.

    `columns` are column names seen in previews; unknown ones are typed as strings.
    """
    properties: JSONSchema = {
        "export_id": {"type": ["string"]},
        "feed_id": {"type": ["string"]},
        "export_row": {"type": ["integer"]},
    }
    properties.update({name: dict(spec) for name, spec in ROW_COLUMN_TYPES.items()})
    for bundle in bundles:
        properties[f"{BUNDLE_COLUMN_PREFIX}{bundle}"] = bundle_data_schema(bundle)
    for column in columns:
        name = record_name(column)
        if name in properties:
            continue
        if name.startswith(BUNDLE_COLUMN_PREFIX):
            properties[name] = bundle_data_schema(name[len(BUNDLE_COLUMN_PREFIX) :])
        else:
            properties[name] = {"type": ["string", "null"]}
    properties[EXTRA_COLUMNS] = {
        "type": ["object", "null"],
        "additionalProperties": {"type": ["string", "null"]},
        "description": (
            "Columns of the export that the catalog does not know, and values that did not "
            "fit their type, as text. Absent when there are none."
        ),
    }
    return {
        "$schema": DIALECT,
        "type": "object",
        "properties": properties,
        "required": ["export_id", "feed_id", "export_row"],
    }
