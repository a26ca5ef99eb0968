"""enrichment: each unique, well-formed contact enriched once per bundle, within the cap."""

from __future__ import annotations

import json
import logging
import typing as t

import pytest

from tap_contactbased.errors import ApiError, ConfigError
from tap_contactbased.streams.enrichment import EnrichmentStream
from tap_contactbased.tap import TapContactBased
from tests.conftest import API_KEY, TODAY, make_config
from tests.fake_api import BUNDLE_KEYS, FakeContactBased
from tests.singer_run import CollectingWriter, SyncResult, run_tap, selected_catalog


def pool_ids(api: FakeContactBased, count: int) -> list[str]:
    return [api.dataset.contact_id(i) for i in range(count)]


def unknown_ids(count: int) -> list[str]:
    return [f"id_{n:016x}" for n in range(10**9, 10**9 + count)]


@pytest.fixture
def large_pool() -> t.Iterator[FakeContactBased]:
    with FakeContactBased(
        api_key=API_KEY, today=TODAY, build_seconds=0.05, contact_pool=3000
    ) as api:
        yield api


@pytest.mark.parametrize(
    ("contacts", "requests_per_bundle"), [(0, 0), (1, 1), (1000, 1), (1001, 2), (2500, 3)]
)
def test_one_request_per_batch_of_1000_per_bundle(
    large_pool: FakeContactBased, contacts: int, requests_per_bundle: int
) -> None:
    ids = pool_ids(large_pool, contacts)
    config = make_config(
        large_pool, feed_ids=[], enrichment_bundles=["emails", "phones"], enrichment_contact_ids=ids
    )

    result = run_tap(config, streams=["enrichment"])

    for bundle in ("emails", "phones"):
        assert large_pool.count_requests("POST", f"/enrich/{bundle}") == requests_per_bundle
        assert large_pool.enrichment_ids_sent[bundle] == contacts
    records = result.records("enrichment")
    assert len(records) == 2 * contacts
    assert {(r["contact_id"], r["bundle"]) for r in records} == {
        (i, b) for i in ids for b in ("emails", "phones")
    }


def test_unknown_ids_are_not_found_without_failing_the_batch(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    known, unknown = pool_ids(api, 3), unknown_ids(2)
    config = make_config(
        api, feed_ids=[], enrichment_bundles=["emails"], enrichment_contact_ids=known + unknown
    )

    with caplog.at_level(logging.INFO):
        result = run_tap(config, streams=["enrichment"])
    records = {r["contact_id"]: r for r in result.records("enrichment")}

    found_count = sum(r["found"] for r in records.values())
    assert f"Enrichment emails: 5 requested, {found_count} found, {5 - found_count} not found." in [
        r.getMessage() for r in caplog.records
    ]

    for contact_id in unknown:
        assert records[contact_id]["found"] is False
        assert records[contact_id]["data"] is None
    found = [records[c] for c in known if records[c]["found"]]
    assert found
    for record in found:
        assert record["data"] == api.enricher.payload("emails", record["contact_id"])
        assert all("last_seen" in email for email in record["data"]["emails"])


def run_with_ledger(config: dict[str, t.Any], ids: list[str]) -> tuple[SyncResult, TapContactBased]:
    """Sync enrichment with `ids` noted as if the export rows of this run had carried them."""
    writer = CollectingWriter()
    tap = TapContactBased(
        config=config, catalog=selected_catalog(config, ["enrichment"]), message_writer=writer
    )
    tap.run.contacts.update(dict.fromkeys(ids))
    tap.sync_all()
    return SyncResult(writer.messages), tap


def test_malformed_ids_are_counted_and_never_sent(api: FakeContactBased) -> None:
    good = pool_ids(api, 2)
    bad = ["ID_0123456789ABCDEF", "id_123", "cb_0123456789abcdef", "id_0123456789abcdeg"]
    config = make_config(api, feed_ids=[], enrichment_bundles=["emails"])

    result, tap = run_with_ledger(config, good + bad)

    sent = [
        i for r in api.requests if r.path == "/enrich/emails" for i in (r.body or {})["contact_ids"]
    ]
    assert sent == good
    assert tap.run.receipt.malformed_contact_ids == len(bad)
    assert {r["contact_id"] for r in result.records("enrichment")} == set(good)


def test_duplicates_are_sent_once(api: FakeContactBased) -> None:
    ids = pool_ids(api, 5)
    config = make_config(
        api, feed_ids=[], enrichment_bundles=["emails"], enrichment_contact_ids=ids[:3]
    )

    result, _ = run_with_ledger(config, ids + ids[::-1])

    assert api.enrichment_ids_sent["emails"] == 5
    assert len(result.records("enrichment")) == 5


def test_disabled_bundle_is_refused_before_anything_is_spent(api: FakeContactBased) -> None:
    config = make_config(api, enrichment_bundles=["emails", "donor"])

    with pytest.raises(
        ConfigError, match=r"enrichment_bundles asks for donor.*enabled bundles: .*emails"
    ):
        run_tap(config, streams=["export_rows", "enrichment"])

    assert api.created_exports == []
    assert sum(api.enrichment_ids_sent.values()) == 0


def test_a_disabled_bundle_without_feeds_gets_the_one_settings_refusal(
    api: FakeContactBased,
) -> None:
    # No feed: export_rows plans nothing, so the enrichment stream is the one to refuse,
    # in the same words as the plan's check of the settings.
    ids = pool_ids(api, 2)
    config = make_config(api, feed_ids=[], enrichment_bundles=["donor"], enrichment_contact_ids=ids)

    with pytest.raises(ConfigError) as refused:
        run_tap(config, streams=["export_rows", "enrichment"])

    assert str(refused.value).startswith(
        "The settings do not fit this organization, so nothing was created: "
        "enrichment_bundles asks for donor, not enabled for this organization"
    )
    assert sum(api.enrichment_ids_sent.values()) == 0


def test_cap_holds_back_contacts_and_says_so(
    large_pool: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    ids = pool_ids(large_pool, 2500)
    config = make_config(
        large_pool,
        feed_ids=[],
        enrichment_bundles=["emails"],
        enrichment_contact_ids=ids,
        enrichment_max_contacts=1500,
    )

    with caplog.at_level(logging.INFO):
        result = run_tap(config, streams=["enrichment"])

    assert large_pool.enrichment_ids_sent["emails"] == 1500
    assert "enrichment_max_contacts is 1500: 1000 of 2500 contact(s) are held back" in caplog.text
    assert len(result.records("enrichment")) == 1500
    receipts = [r for r in caplog.records if r.getMessage().startswith("Cost receipt")]
    assert len(receipts) == 1
    assert "held back by enrichment_max_contacts: 1,000" in receipts[0].getMessage()
    assert receipts[0].__dict__["cost_receipt"]["enrichment_ids_sent"] == {"emails": 1500}


def test_a_cap_the_contacts_just_fit_holds_none_back(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    ids = pool_ids(api, 3)
    config = make_config(api, feed_ids=[], enrichment_bundles=["emails"], enrichment_max_contacts=3)

    with caplog.at_level(logging.INFO):
        result, tap = run_with_ledger(config, ids)

    assert len(result.records("enrichment")) == 3
    assert tap.run.receipt.enrichment_contacts_held_back == 0
    assert "held back this run" not in caplog.text


def test_a_failed_enrichment_still_logs_the_cost_receipt(
    api: FakeContactBased, caplog: pytest.LogCaptureFixture
) -> None:
    api.faults.aimed = {"POST /enrich/emails": ["403"]}
    config = make_config(
        api, feed_ids=[], enrichment_bundles=["emails"], enrichment_contact_ids=pool_ids(api, 2)
    )

    with caplog.at_level(logging.INFO):
        result = run_tap(config, streams=["enrichment"], raise_errors=False)

    assert isinstance(result.error, ApiError), repr(result.error)
    assert [hit.fault for hit in api.fault_engine.hits] == ["403"]
    receipts = [r for r in caplog.records if r.getMessage().startswith("Cost receipt")]
    assert len(receipts) == 1


def test_without_bundles_the_enrichment_schema_shows_every_bundles_fields(
    api: FakeContactBased,
) -> None:
    def data_fields(bundles: list[str]) -> set[str]:
        tap = TapContactBased(config=make_config(api, enrichment_bundles=bundles))
        return set(tap.streams["enrichment"].schema["properties"]["data"]["properties"])

    every = data_fields([])
    assert data_fields(["emails"]) < every
    assert every == set().union(*(data_fields([bundle]) for bundle in BUNDLE_KEYS))


def test_retries_do_not_double_count(large_pool: FakeContactBased) -> None:
    ids = pool_ids(large_pool, 2500)
    config = make_config(
        large_pool, feed_ids=[], enrichment_bundles=["emails"], enrichment_contact_ids=ids
    )
    catalog = selected_catalog(config, ["enrichment"])
    large_pool.faults.rate_limit_every = 2
    large_pool.faults.server_error_every = 3
    large_pool.faults.retry_after = 0.01

    result = run_tap(config, catalog=catalog)

    assert len(result.records("enrichment")) == 2500
    assert large_pool.enrichment_ids_sent["emails"] == 2500
    assert {429, 503} <= {r.status for r in large_pool.requests}


def test_export_rows_feed_enrichment_once_per_unique_contact_and_bundle(
    api: FakeContactBased,
) -> None:
    config = make_config(api, enrichment_bundles=["emails", "phones"])

    result = run_tap(config, streams=["export_rows", "enrichment"])

    contacts = {r["contact_id"] for r in result.records("export_rows") if r["contact_id"]}
    enriched = result.records("enrichment")
    assert len(contacts) > 50
    assert len(enriched) == 2 * len(contacts)
    assert {(r["contact_id"], r["bundle"]) for r in enriched} == {
        (c, b) for c in contacts for b in ("emails", "phones")
    }
    types = [m["type"] for m in result.messages if m.get("stream") in ("export_rows", "enrichment")]
    assert types.index("RECORD") < len(types)
    last_row = max(
        i
        for i, m in enumerate(result.messages)
        if m.get("stream") == "export_rows" and m["type"] == "RECORD"
    )
    first_enriched = min(
        i
        for i, m in enumerate(result.messages)
        if m.get("stream") == "enrichment" and m["type"] == "RECORD"
    )
    assert last_row < first_enriched


def test_contact_ids_never_reach_the_state(api: FakeContactBased) -> None:
    config = make_config(api, enrichment_bundles=["emails"])

    result = run_tap(config, streams=["export_rows", "enrichment"])

    contacts = {r["contact_id"] for r in result.records("enrichment")}
    for state in result.states:
        text = json.dumps(state)
        assert not any(contact_id in text for contact_id in contacts)
    assert "pending_exports" not in json.dumps(result.last_state)


def test_answers_are_matched_by_id_and_a_mismatch_is_an_error(
    api: FakeContactBased, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = TapContactBased(config=make_config(api, enrichment_bundles=["emails"])).streams[
        "enrichment"
    ]
    assert isinstance(stream, EnrichmentStream)
    ids = pool_ids(api, 3)
    real_post = stream.client.post

    def reversed_answer(path: str, body: t.Any) -> t.Any:
        answer = real_post(path, body)
        answer["results"].reverse()
        return answer

    monkeypatch.setattr(stream.client, "post", reversed_answer)
    results = stream._enrich_batch("emails", ids)
    assert list(results) != ids  # the answer came in another order
    assert all(results[i] == api.enricher.payload("emails", i) for i in ids)

    def short_answer(path: str, body: t.Any) -> t.Any:
        answer = real_post(path, body)
        answer["results"].pop()
        return answer

    monkeypatch.setattr(stream.client, "post", short_answer)
    with pytest.raises(ApiError, match="1 id\\(s\\) missing"):
        stream._enrich_batch("emails", ids)

    def answer_with_unnamed_results(path: str, body: t.Any) -> t.Any:
        answer = real_post(path, body)
        answer["results"] += ["not a result", {"found": False}]  # neither names a contact
        return answer

    monkeypatch.setattr(stream.client, "post", answer_with_unnamed_results)
    assert list(stream._enrich_batch("emails", ids)) == ids  # ignored, not a mismatch
