"""The README's PII stream map hashes every e-mail address, whatever the entry calls it.

Quick, in-process companion of `tests/e2e/test_stream_maps.py` (which loads the same block
into PostgreSQL): more entry shapes, and every byte the tap writes is searched.
"""

from __future__ import annotations

import hashlib

import pytest

from scripts.readme_stream_maps import readme_stream_maps
from tests.conftest import make_config
from tests.fake_api import FakeContactBased
from tests.singer_run import run_tap

SHAPES: dict[str, dict[str, str | None]] = {
    "as the contract assumes": {},
    "address called email": {"address": "email"},
    "address called value, type called kind": {"address": "value", "type": "kind"},
}


def canonical_addresses(api: FakeContactBased, ids: list[str]) -> set[str]:
    """The addresses of these contacts, from the canonical payload (not the served shape)."""
    return {
        str(entry["address"])
        for contact_id in ids
        for entry in (api.enricher.payload("emails", contact_id) or {}).get("emails", [])
    }


@pytest.mark.parametrize("renames", list(SHAPES.values()), ids=list(SHAPES))
def test_every_address_is_hashed_and_none_is_written(
    api: FakeContactBased, renames: dict[str, str | None]
) -> None:
    api.faults.drift = {"payload:emails": renames}
    ids = [api.dataset.contact_id(i) for i in range(30)]
    config = make_config(
        api,
        feed_ids=[],
        enrichment_bundles=["emails", "phones"],
        enrichment_contact_ids=ids,
        stream_maps=readme_stream_maps(),
    )

    result = run_tap(config, streams=["enrichment"])

    addresses = canonical_addresses(api, ids)
    assert addresses, "no contact has an e-mail address: the test would prove nothing"
    written = result.stdout_text().lower()
    leaked = sorted(a for a in addresses if a.lower() in written)
    assert not leaked, f"{len(leaked)} address(es) written: {leaked[:3]}"
    entries = [
        entry
        for record in result.records("enrichment")
        if record["bundle"] == "emails" and record["data"]
        for entry in record["data"]["emails"]
    ]
    digests = {hashlib.sha256(a.strip().lower().encode()).hexdigest() for a in addresses}
    assert {e["address_sha256"] for e in entries} == digests
    assert all(set(e) == {"address_sha256", "type", "last_seen"} for e in entries)
    phones = [r for r in result.records("enrichment") if r["bundle"] == "phones" and r["data"]]
    assert phones
    assert all(r["data"]["phones"] for r in phones)  # other bundles pass unchanged
