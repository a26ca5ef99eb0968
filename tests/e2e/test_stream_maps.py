"""The stream map the README recommends keeps e-mail addresses out of the warehouse.

The contract only assumes that an e-mail entry calls its address `address`; the recipe must
work, and leak nothing, when the API calls it `email` instead.
"""

from __future__ import annotations

import hashlib

import pytest

from scripts.readme_stream_maps import readme_stream_maps
from tests.e2e.conftest import SCHEMA, postgres_env, tables_of, tap_env
from tests.e2e.meltano import Meltano
from tests.e2e.postgres import ConnectionInfo
from tests.fake_api import FakeContactBased

# The API's e-mail entries as the contract assumes them, and with the address respelled.
ENTRY_SHAPES: dict[str, dict[str, dict[str, str | None]]] = {
    "address": {},
    "email": {"payload:emails": {"address": "email"}},
}


def served_addresses(api: FakeContactBased) -> set[str]:
    """Every e-mail address the local API answered an enrichment request with.

    Read from the canonical payload, so the same addresses whatever the drift knob served.
    """
    addresses: set[str] = set()
    for contact_id in api.enrichment_charged["emails"]:
        payload = api.enricher.payload("emails", contact_id) or {}
        addresses.update(str(e["address"]) for e in payload.get("emails", []))
    return addresses


def warehouse_text(info: ConnectionInfo) -> str:
    """Every row of every table of the schema, as PostgreSQL prints it, lower-cased."""
    lines: list[str] = []
    with info.connect() as connection:
        for table in sorted(tables_of(info)):
            rows = connection.execute(f"SELECT t::text FROM {SCHEMA}.{table} AS t").fetchall()
            lines.extend(str(row) for (row,) in rows)
    return "\n".join(lines).lower()


@pytest.mark.parametrize("address_field", sorted(ENTRY_SHAPES))
def test_hashed_emails_reach_the_warehouse_and_addresses_do_not(
    api: FakeContactBased, warehouse: ConnectionInfo, meltano: Meltano, address_field: str
) -> None:
    api.faults.drift = ENTRY_SHAPES[address_field]
    meltano.set(
        **tap_env(
            api,
            feed_ids=api.feed_ids[:1],
            lookback_days=2,
            enrichment_bundles=["emails"],
            stream_maps=readme_stream_maps(),
        ),
        **postgres_env(warehouse),
    )

    meltano("run", "tap-contactbased", "target-postgres")

    addresses = served_addresses(api)
    assert addresses, "the local API served no e-mail address: the test would prove nothing"
    text = warehouse_text(warehouse)
    leaked = sorted(a for a in addresses if a.lower() in text)
    assert not leaked, f"{len(leaked)} e-mail address(es) reached the warehouse: {leaked[:3]}"
    # The enrichment rows did land, with the hashes in place of the addresses.
    digests = {hashlib.sha256(a.strip().lower().encode()).hexdigest() for a in addresses}
    assert all(d in text for d in digests)
    with warehouse.connect() as connection:
        count = connection.execute(f"SELECT count(*) FROM {SCHEMA}.enrichment").fetchone()
    assert count == (len(api.enrichment_charged["emails"]),)
