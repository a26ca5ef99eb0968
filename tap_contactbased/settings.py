"""The tap's settings: declared once as a JSON schema, read once into a typed object.

The schema is the single source of truth: `--about`, the README settings table and
`meltano.yml` are checked against it, and the defaults below are read from it, so that a
config that skipped validation (discovery) behaves like one that did not.
"""

from __future__ import annotations

import dataclasses
import typing as t

from singer_sdk import typing as th

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
CONTACT_ID_PATTERN = r"^id_[0-9a-f]{16}$"
FILTER_OPERATORS = ["eq", "neq", "in", "not_in", "gte", "lte", "between", "contains", "exists"]
SNAPSHOT = "snapshot"
EXPORT_MODES = ["incremental", SNAPSHOT]
READ_MODES = ["csv", "pages"]
# Floors of the timing settings. Polls of a building export at most about twice a second
# (`0` sent 1,895 list requests in 3.7 s); no export created (and billed) only to be given
# up at once; no request abandoned before an answer can arrive.
MIN_POLL_INTERVAL_SECONDS = 0.5
MIN_EXPORT_TIMEOUT_SECONDS = 60
MIN_STALL_TIMEOUT_SECONDS = 60
MIN_REQUEST_TIMEOUT_SECONDS = 1
MIN_RETRY_SECONDS = 1

CONFIG_SCHEMA: dict[str, t.Any] = th.PropertiesList(
    th.Property(
        "api_key",
        th.StringType(min_length=1),
        required=True,
        secret=True,
        title="API key",
        description="ContactBased API key, sent as the X-API-Key header. Never logged.",
    ),
    th.Property(
        "api_url",
        th.URIType,
        default="https://api.contactbased.com",
        title="API URL",
        description=(
            "Base URL of the ContactBased Data API: https://, or http:// to a loopback "
            "address only; no user or password in it."
        ),
    ),
    th.Property(
        "request_timeout_seconds",
        th.IntegerType(minimum=MIN_REQUEST_TIMEOUT_SECONDS),
        default=120,
        title="Request timeout (seconds)",
        description=(
            "Seconds to wait for an answer to one request before retrying it (at least "
            f"{MIN_REQUEST_TIMEOUT_SECONDS})."
        ),
    ),
    th.Property(
        "retry_max_seconds",
        th.NumberType(minimum=MIN_RETRY_SECONDS),
        default=120,
        title="Retry time budget (seconds)",
        description=(
            "Longest time one request (or one page, or the CSV while it makes no progress) "
            "is tried again after its first failure, with at most 8 tries; then the run, or "
            f"for an export's rows its feed, stops with one line (at least {MIN_RETRY_SECONDS})."
        ),
    ),
    th.Property(
        "feed_ids",
        th.ArrayType(th.StringType(pattern=UUID_PATTERN)),
        default=[],
        title="Feed IDs",
        description=(
            "Feeds to export (UUIDs, see the `feeds` stream). Empty: the export streams "
            "emit nothing."
        ),
        examples=[["6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"]],
    ),
    th.Property(
        "lookback_days",
        th.IntegerType(minimum=1),
        default=30,
        title="Lookback days",
        description=(
            "Days of signals in the first export of a feed, ending today (UTC). Later "
            "incremental runs ask only for the days since the last one, up to the feed's "
            "max_lookback_days."
        ),
    ),
    th.Property(
        "page_size",
        th.IntegerType(minimum=1000, maximum=50000),
        default=10000,
        title="Page size",
        description="Rows per export page (1,000 to 50,000), fixed when an export is created.",
    ),
    th.Property(
        "max_rows",
        th.IntegerType(minimum=1),
        title="Max rows",
        description="Ceiling on the rows of each export. Empty: no ceiling.",
    ),
    th.Property(
        "require_contact_id",
        th.BooleanType,
        default=False,
        title="Require contact ID",
        description=(
            "Export only rows that carry a contact_id. Forced on by consumer_filters "
            "and export_bundles."
        ),
    ),
    th.Property(
        "consumer_filters",
        th.ArrayType(
            th.ObjectType(
                th.Property("field", th.StringType(min_length=1), required=True),
                th.Property("op", th.StringType(allowed_values=FILTER_OPERATORS), required=True),
                th.Property("value", th.AnyType()),
                additional_properties=False,
            )
        ),
        default=[],
        title="Consumer filters",
        description=(
            'Export filters, each {"field", "op", "value"} (see the filter_fields stream). '
            "Filters make an export person-distinct: at most one row per contact."
        ),
        examples=[[{"field": "seniority", "op": "in", "value": ["VP", "C-Level"]}]],
    ),
    th.Property(
        "export_bundles",
        th.ArrayType(th.StringType(min_length=1)),
        default=[],
        title="Bundles appended to export rows",
        description=(
            "Enrichment bundle keys whose data the export appends to each row as a "
            "bundle_<key> column (billed with the export)."
        ),
        examples=[["emails", "phones"]],
    ),
    th.Property(
        "export_mode",
        th.StringType(allowed_values=EXPORT_MODES),
        default="incremental",
        title="Export mode",
        description=(
            "incremental: deliver each complete day once, one day late. snapshot: export "
            "the whole lookback window, today included, on every run."
        ),
    ),
    th.Property(
        "emit_activate_version_messages",
        th.BooleanType,
        default=False,
        title="Emit ACTIVATE_VERSION messages",
        description=(
            "Versioned full-table loads: feeds, bundles, filter_fields and, in snapshot "
            "mode, export_rows send a version with their records and activate it (the "
            "target drops or soft-deletes older rows) once the stream was delivered whole, "
            "never at its start and never after a failure. Off: for targets that do not "
            "know the message."
        ),
    ),
    th.Property(
        "read_mode",
        th.StringType(allowed_values=READ_MODES),
        default="csv",
        title="Read mode",
        description=(
            "csv: stream the export's full CSV in one request. pages: read it page by "
            "page through the API."
        ),
    ),
    th.Property(
        "max_records_per_run",
        th.IntegerType(minimum=0),
        title="Max records credits per run",
        description=(
            "Refuse to create exports that would reserve more records credits than this "
            "in one run. Empty: no cap beyond the credits left."
        ),
    ),
    th.Property(
        "plan_only",
        th.BooleanType,
        default=False,
        title="Plan only",
        description=(
            "Preview and count each configured export, report what it would spend, and "
            "create nothing."
        ),
    ),
    th.Property(
        "max_concurrent_exports",
        th.IntegerType(minimum=1),
        default=4,
        title="Max concurrent exports",
        description=(
            "Most exports of this run building on the API at the same time. All feeds are "
            "planned and checked first; then their exports are created up to this many at "
            "once, and each is read as soon as it is ready."
        ),
    ),
    th.Property(
        "export_timeout_seconds",
        th.NumberType(minimum=MIN_EXPORT_TIMEOUT_SECONDS),
        default=7200,
        title="Export timeout (seconds)",
        description=(
            f"Longest wait for an export to become ready (at least {MIN_EXPORT_TIMEOUT_SECONDS})."
        ),
    ),
    th.Property(
        "export_stall_timeout_seconds",
        th.NumberType(minimum=MIN_STALL_TIMEOUT_SECONDS),
        default=1800,
        title="Export stall timeout (seconds)",
        description=(
            "Longest wait without any rise of an export's build_progress (at least "
            f"{MIN_STALL_TIMEOUT_SECONDS})."
        ),
    ),
    th.Property(
        "poll_interval_max_seconds",
        # The SDK types `minimum` as an int; JSON Schema takes any number.
        th.NumberType(minimum=t.cast("int", MIN_POLL_INTERVAL_SECONDS)),
        default=30,
        title="Max poll interval (seconds)",
        description=(
            "Cap of the growing interval between two status checks of an export (at least "
            f"{MIN_POLL_INTERVAL_SECONDS:g})."
        ),
    ),
    th.Property(
        "enrichment_bundles",
        th.ArrayType(th.StringType(min_length=1)),
        default=[],
        title="Enrichment bundles",
        description=(
            "Bundle keys to request for each contact the exports produce (for example "
            "emails, phones). Empty: the enrichment stream emits nothing."
        ),
        examples=[["emails", "phones"]],
    ),
    th.Property(
        "enrichment_max_contacts",
        th.IntegerType(minimum=0),
        title="Max contacts enriched per run",
        description=(
            "Cap on the unique contacts sent for enrichment in one run (each costs one "
            "enrichment per bundle). Empty: no cap."
        ),
    ),
    th.Property(
        "enrichment_contact_ids",
        th.ArrayType(th.StringType(pattern=CONTACT_ID_PATTERN)),
        default=[],
        title="Extra contact IDs to enrich",
        description="Contact ids (id_ + 16 hex) to enrich in every run, with or without an export.",
    ),
).to_dict()


def default_of(name: str) -> t.Any:
    """The schema's default for a setting (None when it has none)."""
    return CONFIG_SCHEMA["properties"][name].get("default")


@dataclasses.dataclass(frozen=True)
class Settings:
    """The config, typed, with the schema's defaults filled in.

    `emit_activate_version_messages` is read by the streams (`sdk_internals.ActivatedAtEnd`).
    """

    api_url: str
    request_timeout_seconds: int
    retry_max_seconds: float
    feed_ids: tuple[str, ...]
    lookback_days: int
    page_size: int
    max_rows: int | None
    require_contact_id: bool
    consumer_filters: tuple[dict[str, t.Any], ...]
    export_bundles: tuple[str, ...]
    export_mode: str
    read_mode: str
    max_records_per_run: int | None
    plan_only: bool
    max_concurrent_exports: int
    export_timeout_seconds: float
    export_stall_timeout_seconds: float
    poll_interval_max_seconds: float
    enrichment_bundles: tuple[str, ...]
    enrichment_max_contacts: int | None
    enrichment_contact_ids: tuple[str, ...]

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any]) -> Settings:
        """Read the settings the tap uses, as their fields' types; the API key stays out."""
        read: dict[str, t.Any] = {}
        for setting in dataclasses.fields(cls):
            value = config.get(setting.name)
            value = default_of(setting.name) if value is None else value
            read[setting.name] = None if value is None else READERS[str(setting.type)](value)
        settings = cls(**read)
        return dataclasses.replace(
            settings,
            api_url=settings.api_url.rstrip("/"),
            feed_ids=tuple(dict.fromkeys(str(f).lower() for f in settings.feed_ids)),
            enrichment_bundles=tuple(dict.fromkeys(settings.enrichment_bundles)),
            enrichment_contact_ids=tuple(dict.fromkeys(settings.enrichment_contact_ids)),
        )


# How a config value becomes the type of its Settings field (as the annotation spells it).
READERS: dict[str, t.Callable[[t.Any], t.Any]] = {
    "str": str,
    "int": int,
    "int | None": int,
    "float": float,
    "bool": bool,
    "tuple[str, ...]": tuple,
    "tuple[dict[str, t.Any], ...]": lambda filters: tuple(dict(f) for f in filters),
}
