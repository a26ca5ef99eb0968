"""The SDK's standard tap tests, against the local ContactBased API."""

from __future__ import annotations

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_contactbased.tap import TapContactBased
from tests.conftest import API_KEY, TODAY, make_config
from tests.fake_api import FakeContactBased

# `extra_columns` is absent unless an export has columns the catalog does not know, which
# test_export_rows.py::test_column_drift_keeps_new_columns_and_nulls_missing_ones covers;
# `extra_fields` is absent unless the API sends fields a schema does not name, which
# test_organization_streams.py::test_fields_the_api_adds_later_are_kept_in_extra_fields covers.
# Absent rather than null, because SQL targets store a JSON null as the value 'null', not NULL.
pytestmark = [
    pytest.mark.filterwarnings("ignore:No records were available to test.:UserWarning"),
    # The message's own colon would end the filter's message field; "." stands for it.
    pytest.mark.filterwarnings(
        r"ignore:Fields in transformed catalog but not in records. "
        r"\(\{.extra_(columns|fields).\}\)"
        ":UserWarning"
    ),
]

# The standard suite reads its config at import time, so it gets a server of its own.
_API = FakeContactBased(api_key=API_KEY, today=TODAY, build_seconds=0.05).start()
_CONFIG = make_config(_API, feed_ids=_API.feed_ids[:1], enrichment_bundles=["emails"])

TestTapContactBased = get_tap_test_class(
    tap_class=TapContactBased,
    config=_CONFIG,
    # A capped dry run never creates exports (it would pay for rows it then drops), so the
    # suite syncs in full.
    suite_config=SuiteConfig(max_records_limit=None),
)
