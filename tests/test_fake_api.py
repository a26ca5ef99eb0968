"""The local ContactBased API behaves as the contract says, knobs included."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

from tests.fake_api import BUNDLE_KEYS, CONTRACT_COLUMNS, FakeContactBased, Faults
from tests.fake_api.faults import Hit

KEY = "cbk_test_key"
TODAY = dt.date(2026, 11, 27)
ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def wait_until(check: Callable[[], T | None], timeout: float = 5.0) -> T:
    """Poll a condition until it gives a truthy value, failing at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
    pytest.fail(f"condition not met within {timeout} s")


class Client:
    """A small client for the fake: JSON calls with the key, export helpers."""

    def __init__(self, api: FakeContactBased) -> None:
        self.api = api
        self.session = requests.Session()
        self.session.headers["X-API-Key"] = KEY

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.api.url + path, params=params, timeout=10)

    def post(self, path: str, body: Any) -> requests.Response:
        return self.session.post(self.api.url + path, json=body, timeout=10)

    def create(self, **options: Any) -> dict[str, Any]:
        response = self.post("/intent/feeds/exports", options)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def summary(self, export_id: str) -> dict[str, Any]:
        body = {"export_ids": [export_id]}
        items = self.post("/intent/feeds/exports/list", body).json()["items"]
        return dict(items[0])

    def wait_built(self, export_id: str) -> dict[str, Any]:
        def built() -> dict[str, Any] | None:
            summary = self.summary(export_id)
            return None if summary["status"] == "building" else summary

        return wait_until(built)

    def ready_export(self, **options: Any) -> dict[str, Any]:
        summary = self.wait_built(self.create(**options)["export_id"])
        assert summary["status"] == "ready", summary
        return summary

    def page(self, export_id: str, page: int) -> requests.Response:
        return self.post("/intent/feeds/exports/page", {"export_id": export_id, "page": page})

    def all_page_rows(self, summary: dict[str, Any]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for page in range(1, summary["total_pages"] + 1):
            response = self.page(summary["export_id"], page)
            assert response.status_code == 200, response.text
            rows.extend(response.json()["rows"])
        return rows

    def download_url(self, export_id: str, page: int | None = None) -> str:
        body: dict[str, Any] = {"export_id": export_id}
        if page is not None:
            body["page"] = page
        response = self.post("/intent/feeds/exports/download-url", body)
        assert response.status_code == 200, response.text
        return str(response.json()["url"])

    def csv_rows(self, export_id: str, page: int | None = None) -> list[dict[str, Any]]:
        response = requests.get(self.download_url(export_id, page), timeout=10)  # no key needed
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert response.headers["Transfer-Encoding"] == "chunked"
        reader = csv.DictReader(io.StringIO(response.content.decode("utf-8"), newline=""))
        return [{k: (v if v != "" else None) for k, v in row.items()} for row in reader]


@pytest.fixture
def api() -> Iterator[FakeContactBased]:
    with FakeContactBased(today=TODAY, build_seconds=0.05, rows_per_day=(40, 80)) as fake:
        yield fake


@pytest.fixture
def client(api: FakeContactBased) -> Iterator[Client]:
    made = Client(api)
    yield made
    made.session.close()


def window(api: FakeContactBased, lookback: int = 3, feed: int = 0) -> dict[str, Any]:
    return {"feed_id": api.feed_ids[feed], "lookback_days": lookback}


# Auth, routing, validation


def test_missing_or_wrong_key_is_401(api: FakeContactBased) -> None:
    missing = requests.get(api.url + "/organization/credits", timeout=10)
    wrong = requests.get(
        api.url + "/organization/credits", headers={"X-API-Key": "nope"}, timeout=10
    )
    assert missing.status_code == wrong.status_code == 401
    assert isinstance(missing.json()["detail"], str)
    assert isinstance(wrong.json()["detail"], str)


def test_unknown_routes_are_404_and_wrong_methods_405(client: Client) -> None:
    assert client.get("/nowhere").status_code == 404
    assert client.get("/enrich/telepathy").status_code == 404
    response = client.get("/intent/feeds/exports")
    assert response.status_code == 405
    assert response.json() == {"detail": "Method Not Allowed"}


def test_invalid_bodies_are_422_in_fastapi_style(api: FakeContactBased, client: Client) -> None:
    missing = client.post("/intent/feeds/exports", {"lookback_days": 3}).json()["detail"]
    assert missing[0]["loc"] == ["body", "feed_id"]
    assert missing[0]["type"] == "missing"
    for bad in (
        {**window(api), "page_size": 999},
        {**window(api), "page_size": 50_001},
        {**window(api), "lookback_days": 0},
        {**window(api), "consumer_filters": [{"field": "shoe_size", "op": "eq", "value": "9"}]},
        {**window(api), "consumer_filters": [{"field": "country", "op": "like", "value": "U"}]},
        {**window(api), "consumer_filters": [{"field": "intent_score", "op": "contains"}]},
    ):
        response = client.post("/intent/feeds/exports", bad)
        assert response.status_code == 422, bad
        assert {"loc", "msg", "type"} <= set(response.json()["detail"][0])
    broken = client.session.post(
        api.url + "/intent/feeds/exports",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert broken.status_code == 422
    assert broken.json()["detail"][0]["type"] == "json_invalid"
    assert api.created_exports == []


def test_feed_access_and_lookback_cap(api: FakeContactBased, client: Client) -> None:
    feed = api.feeds[0]
    too_long = client.post(
        "/intent/feeds/search", {**window(api), "lookback_days": feed["max_lookback_days"] + 1}
    )
    assert too_long.status_code == 403
    assert str(feed["max_lookback_days"]) in too_long.json()["detail"]
    assert str(feed["max_lookback_days"] + 1) in too_long.json()["detail"]
    foreign = client.post(
        "/intent/feeds/search", {"feed_id": api.foreign_feed_id, "lookback_days": 1}
    )
    assert foreign.status_code == 403
    unknown = {"feed_id": "00000000-0000-4000-8000-000000000000", "lookback_days": 1}
    assert client.post("/intent/feeds/search", unknown).status_code == 404


# Organization and feeds


def test_feeds_are_paginated_and_searchable() -> None:
    with FakeContactBased(today=TODAY, feed_count=5) as api:
        client = Client(api)
        pages = [client.get("/organization/feeds", page=p, page_size=2).json() for p in (1, 2, 3)]
        assert [len(p["items"]) for p in pages] == [2, 2, 1]
        assert {p["total"] for p in pages} == {5}
        assert [f["feed_id"] for p in pages for f in p["items"]] == api.feed_ids
        assert client.get("/organization/feeds").json()["page_size"] == 50
        too_big = client.get("/organization/feeds", page_size=201)
        assert too_big.status_code == 422
        assert too_big.json()["detail"][0]["loc"] == ["query", "page_size"]
        found = client.get("/organization/feeds", search="payroll").json()
        assert [f["name"] for f in found["items"]] == ["Payroll Switchers"]
        feed = pages[0]["items"][0]
        assert re.fullmatch(r"[0-9a-f-]{36}", feed["feed_id"])
        assert feed["kind"] in ("domains", "topics", "free_text")
        assert min(f["max_lookback_days"] for f in api.feeds) >= 30
        assert len({f["max_lookback_days"] for f in api.feeds}) > 1


def test_feed_builder_saves_within_the_limit(api: FakeContactBased, client: Client) -> None:
    preview = client.post("/intent/feeds/builder", {"query": "payroll tools"}).json()
    assert preview["domain_count"] > 0
    assert preview["domains"]
    assert "feed" not in preview
    for _ in range(api.feed_limit):
        saved = client.post("/intent/feeds/builder", {"query": "payroll tools", "save": True})
        assert saved.json()["feed"]["feed_id"] in api.feed_ids
    limit = client.get("/organization/feed-limit").json()
    assert limit == {"feed_limit": 3, "feeds_created": 3, "feeds_remaining": 0}
    refused = client.post("/intent/feeds/builder", {"query": "more", "save": True})
    assert refused.status_code == 403
    assert "limit" in refused.json()["detail"]


def test_filter_fields_and_values(client: Client) -> None:
    fields = client.post("/intent/feeds/filters/fields", {}).json()["fields"]
    by_name = {f["field"]: f for f in fields}
    assert {"industry", "seniority", "department", "country", "intent_score"} <= set(by_name)
    assert "between" in by_name["intent_score"]["operators"]
    values = client.post("/intent/feeds/filters/values", {"field": "country", "limit": 3}).json()
    counts = [v["count"] for v in values["values"]]
    assert len(counts) == 3
    assert counts == sorted(counts, reverse=True)
    prefixed = client.post("/intent/feeds/filters/values", {"field": "city", "search": "mü"})
    assert [v["value"] for v in prefixed.json()["values"]] == ["München"]
    unknown = client.post("/intent/feeds/filters/values", {"field": "shoe_size"})
    assert unknown.status_code == 422


# Search, preview, count


def test_search_counters_and_daily_counts_match_the_export(
    api: FakeContactBased, client: Client
) -> None:
    search = client.post(
        "/intent/feeds/search", {**window(api, 5), "include_daily_counts": True}
    ).json()
    assert search["end_date"] == TODAY.isoformat()
    assert search["start_date"] == (TODAY - dt.timedelta(days=4)).isoformat()
    rows = client.all_page_rows(client.ready_export(**window(api, 5)))
    assert search["total_records"] == len(rows)
    with_id = sum(1 for r in rows if r["contact_id"])
    assert search["records_with_contact_id"] == with_id
    assert search["records_without_contact_id"] == len(rows) - with_id
    per_day = Counter(r["signal_date"] for r in rows)
    assert search["daily_counts"] == [
        {"date": d["date"], "count": per_day[d["date"]]} for d in search["daily_counts"]
    ]
    assert [d["date"] for d in search["daily_counts"]] == sorted(per_day)


def test_search_can_create_an_export(api: FakeContactBased, client: Client) -> None:
    search = client.post("/intent/feeds/search", {**window(api, 2), "auto_export": True}).json()
    assert search["export"]["status"] == "building"
    assert api.created_exports == [search["export"]["export_id"]]


def test_today_has_only_its_fraction_of_rows() -> None:
    with FakeContactBased(today=TODAY, today_fraction=0.25, rows_per_day=(40, 80)) as api:
        search = Client(api).post(
            "/intent/feeds/search", {**window(api, 2), "include_daily_counts": True}
        )
        yesterday, today = search.json()["daily_counts"]
        full = api.dataset.day_count(api.feed_ids[0], TODAY)
        assert today["count"] == int(full * 0.25)
        assert yesterday["count"] == api.dataset.day_count(api.feed_ids[0], TODAY - dt.timedelta(1))


def test_preview_and_count_spend_nothing(api: FakeContactBased, client: Client) -> None:
    before = api.credits
    expected = api.expected_rows(api.feed_ids[0], TODAY - dt.timedelta(days=2), TODAY)
    preview = client.post("/intent/feeds/exports/preview", {**window(api), "preview_rows": 7})
    assert preview.json()["columns"] == list(CONTRACT_COLUMNS)
    assert preview.json()["rows"] == expected[:7]
    assert preview.json()["estimated_rows"] == len(expected)
    skipped = client.post("/intent/feeds/exports/preview", {**window(api), "skip_count": True})
    assert skipped.json()["estimated_rows"] is None
    assert len(skipped.json()["rows"]) == 25
    too_many = client.post("/intent/feeds/exports/preview", {**window(api), "preview_rows": 101})
    assert too_many.status_code == 422
    count = client.post("/intent/feeds/exports/count", window(api)).json()
    assert count["total_rows"] == count["records_required"] == len(expected)
    assert count["rows_with_contact_id"] == sum(1 for r in expected if r["contact_id"])
    assert api.credits == before
    assert api.created_exports == []
    assert api.count_requests("POST", "/intent/feeds/exports/preview") == 3


# Export lifecycle and credits


def test_export_builds_with_rising_progress_then_is_ready() -> None:
    with FakeContactBased(today=TODAY, build_seconds=0.3, rows_per_day=(40, 80)) as api:
        client = Client(api)
        required = client.post("/intent/feeds/exports/count", window(api)).json()
        created = client.create(**window(api))
        assert created["status"] == "building"
        assert created["total_rows"] is created["columns"] is None
        assert created["page_size"] == 10_000
        assert re.fullmatch(r"exp_[0-9a-f]+", created["export_id"])
        assert api.credits["records_reserved"] == required["records_required"]
        progress: list[float] = []

        def ready() -> dict[str, Any] | None:
            summary = client.summary(created["export_id"])
            progress.append(summary["build_progress"])
            return summary if summary["status"] == "ready" else None

        summary = wait_until(ready)
        assert progress == sorted(progress)
        assert any(0 < p < 1 for p in progress)
        assert summary["build_progress"] == 1.0
        assert summary["total_rows"] == required["total_rows"]
        assert summary["total_pages"] == 1
        assert summary["columns"] == list(CONTRACT_COLUMNS)
        credits = api.credits
        assert credits["records_reserved"] == 0
        assert credits["records_used"] == required["records_required"]
        assert credits["records_remaining"] == 1_000_000 - required["records_required"]


def test_create_is_402_when_credits_are_short() -> None:
    with FakeContactBased(today=TODAY, credits_total=10, rows_per_day=(40, 80)) as api:
        client = Client(api)
        response = client.post("/intent/feeds/exports", window(api))
        assert response.status_code == 402
        required = client.post("/intent/feeds/exports/count", window(api)).json()
        assert str(required["records_required"]) in response.json()["detail"]
        assert "10 remaining" in response.json()["detail"]
        assert api.created_exports == []
        assert api.credits["records_reserved"] == 0


def test_export_list_is_newest_first_and_filters(api: FakeContactBased, client: Client) -> None:
    first = client.create(**window(api, 1, feed=0))["export_id"]
    second = client.create(**window(api, 1, feed=1))["export_id"]
    listed = client.post("/intent/feeds/exports/list", {}).json()
    assert [e["export_id"] for e in listed["items"]] == [second, first]
    assert listed["total"] == 2
    by_feed = client.post("/intent/feeds/exports/list", {"feed_id": api.feed_ids[0]}).json()
    assert [e["export_id"] for e in by_feed["items"]] == [first]
    client.wait_built(first)
    client.wait_built(second)
    ready = client.post("/intent/feeds/exports/list", {"status": "ready", "page_size": 1}).json()
    assert ready["total"] == 2
    assert len(ready["items"]) == 1


def test_pages_equal_the_csv_including_hostile_values(
    api: FakeContactBased, client: Client
) -> None:
    summary = client.ready_export(**window(api, 30), page_size=1000)
    assert summary["total_pages"] > 1
    page_rows = client.all_page_rows(summary)
    assert page_rows == client.csv_rows(summary["export_id"])
    assert page_rows == api.exports[summary["export_id"]].rows()
    assert client.page(summary["export_id"], 2).json()["rows"] == client.csv_rows(
        summary["export_id"], page=2
    )
    assert all(v is None or (isinstance(v, str) and v) for r in page_rows for v in r.values())
    companies = {r["company_name"] for r in page_rows}
    assert "Acme, Inc." in companies
    assert 'The "Best" Widgets' in companies
    assert any(r["job_title"] and "\n" in r["job_title"] for r in page_rows)
    assert any(not v.isascii() for r in page_rows for v in r.values() if v)
    without_id = sum(1 for r in page_rows if r["contact_id"] is None) / len(page_rows)
    assert 0.05 < without_id < 0.15
    for row in page_rows:
        assert row["contact_id"] is None or re.fullmatch(r"id_[0-9a-f]{16}", row["contact_id"])
        assert re.fullmatch(r"\d+\.\d\d", row["intent_score"])
        assert row["first_seen"] <= row["last_seen"]
        assert row["last_seen"].startswith(row["signal_date"] + "T")
        assert row["last_seen"].endswith("Z")
    assert [r["signal_date"] for r in page_rows] == sorted(r["signal_date"] for r in page_rows)
    repeated = Counter(r["contact_id"] for r in page_rows if r["contact_id"])
    assert max(repeated.values()) > 1


def test_reading_beyond_the_last_page_is_404(api: FakeContactBased, client: Client) -> None:
    summary = client.ready_export(**window(api))
    response = client.page(summary["export_id"], summary["total_pages"] + 1)
    assert response.status_code == 404
    assert isinstance(response.json()["detail"], str)
    assert client.page("exp_0000", 1).status_code == 404


def test_pages_while_building_are_empty() -> None:
    with FakeContactBased(today=TODAY, build_seconds=60) as api:
        client = Client(api)
        export_id = client.create(**window(api))["export_id"]
        page = client.page(export_id, 1).json()
        assert page["status"] == "building"
        assert page["rows"] == []
        url = client.post("/intent/feeds/exports/download-url", {"export_id": export_id})
        assert url.status_code == 409


def test_download_urls_expire_and_can_be_renewed(api: FakeContactBased, client: Client) -> None:
    export_id = client.ready_export(**window(api))["export_id"]
    api.faults.expire_urls = 1
    expired = requests.get(client.download_url(export_id), timeout=10)
    assert expired.status_code == 403
    assert "<Code>AccessDenied</Code>" in expired.text
    assert "Request has expired" in expired.text
    assert api.faults.expire_urls == 0
    renewed = client.download_url(export_id)
    assert requests.get(renewed, timeout=10).status_code == 200
    tampered = renewed.replace("signature=", "signature=0")
    assert "SignatureDoesNotMatch" in requests.get(tampered, timeout=10).text
    response = client.post("/intent/feeds/exports/download-url", {"export_id": export_id})
    expires_at = dt.datetime.fromisoformat(response.json()["expires_at"].replace("Z", "+00:00"))
    remaining = expires_at - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(minutes=59) < remaining <= dt.timedelta(hours=1, seconds=1)


def test_exports_are_frozen_when_today_moves(api: FakeContactBased, client: Client) -> None:
    summary = client.ready_export(**window(api))
    before = client.all_page_rows(summary)
    api.today = TODAY + dt.timedelta(days=1)
    assert client.all_page_rows(summary) == before
    assert client.csv_rows(summary["export_id"]) == before
    later = client.ready_export(**window(api))
    assert later["end_date"] == (TODAY + dt.timedelta(days=1)).isoformat()
    old_today = [r for r in client.all_page_rows(later) if r["signal_date"] == TODAY.isoformat()]
    frozen_today = [r for r in before if r["signal_date"] == TODAY.isoformat()]
    assert len(old_today) > len(frozen_today)
    assert old_today[: len(frozen_today)] == frozen_today


def test_expected_rows_and_ready_exports_for_benchmarks(api: FakeContactBased) -> None:
    export_id = api.make_ready_export(api.feed_ids[1], 4, page_size=1000)
    export = api.exports[export_id]
    assert export.summary()["status"] == "ready"
    assert api.created_exports == []  # only what clients created
    assert api.credits["records_used"] == export.total_rows
    start = TODAY - dt.timedelta(days=3)
    assert export.rows() == api.expected_rows(api.feed_ids[1], start, TODAY)
    with_ids = api.expected_rows(api.feed_ids[1], start, TODAY, require_contact_id=True)
    assert with_ids == [r for r in export.rows() if r["contact_id"]]


# Filters and contact-only exports


def test_require_contact_id_keeps_only_rows_with_a_contact(
    api: FakeContactBased, client: Client
) -> None:
    summary = client.ready_export(**window(api, 5), require_contact_id=True)
    rows = client.all_page_rows(summary)
    search = client.post("/intent/feeds/search", window(api, 5)).json()
    assert len(rows) == search["records_with_contact_id"]
    assert all(r["contact_id"] for r in rows)


def test_filters_force_contacts_and_make_the_export_person_distinct(
    api: FakeContactBased, client: Client
) -> None:
    filters = [
        {"field": "country", "op": "in", "value": ["US", "DE"]},
        {"field": "intent_score", "op": "gte", "value": 50},
    ]
    summary = client.ready_export(**window(api, 30), consumer_filters=filters)
    assert summary["require_contact_id"] is True
    assert summary["consumer_filters"] == filters
    rows = client.all_page_rows(summary)
    ids = [r["contact_id"] for r in rows]
    assert rows
    assert None not in ids
    assert len(ids) == len(set(ids))
    assert {r["country"] for r in rows} <= {"US", "DE"}
    assert min(float(r["intent_score"]) for r in rows) >= 50
    everything = api.expected_rows(api.feed_ids[0], summary["start_date"], TODAY)
    first_matches: dict[str, dict[str, Any]] = {}
    for row in everything:
        matching = row["country"] in ("US", "DE") and float(row["intent_score"] or 0) >= 50
        if row["contact_id"] and matching:
            first_matches.setdefault(row["contact_id"], row)
    assert rows == list(first_matches.values())


def test_max_rows_is_a_ceiling(api: FakeContactBased, client: Client) -> None:
    summary = client.ready_export(**window(api, 5), max_rows=17)
    assert summary["total_rows"] == 17
    assert len(client.csv_rows(summary["export_id"])) == 17


# Enrichment


def test_bundles_list_all_eleven_with_enabled_flags(client: Client) -> None:
    bundles = client.get("/enrich/bundles").json()["bundles"]
    assert [b["key"] for b in bundles] == list(BUNDLE_KEYS)
    assert len(bundles) == 11
    assert {b["key"] for b in bundles if b["enabled"]} == {
        "individual-core",
        "emails",
        "phones",
        "location",
        "professional",
    }
    assert bundles[1]["path"] == "/enrich/emails"


def test_a_removed_feed_and_bundle_are_no_longer_listed(
    api: FakeContactBased, client: Client
) -> None:
    gone = api.feed_ids[2]
    kept = api.feed_ids[:2]

    api.remove_feed(gone)
    api.remove_bundle("phones")

    listed = client.get("/organization/feeds", page_size=200).json()["items"]
    assert [f["feed_id"] for f in listed] == kept
    search = client.post("/intent/feeds/search", {"feed_id": gone, "lookback_days": 1})
    assert search.status_code == 404
    bundles = client.get("/enrich/bundles").json()["bundles"]
    assert [b["key"] for b in bundles] == [k for k in BUNDLE_KEYS if k != "phones"]
    enrich = client.post("/enrich/phones", {"contact_ids": [f"id_{1:016x}"]})
    assert enrich.status_code == 403


def test_enrichment_keeps_order_and_reports_unknown_ids(
    api: FakeContactBased, client: Client
) -> None:
    pool_ids = [api.dataset.contact_id(i) for i in range(40)]
    stranger = "id_ffffffffffffffff"
    ids = [*pool_ids[:20], stranger, *pool_ids[20:]]
    answer = client.post("/enrich/emails", {"contact_ids": ids}).json()
    assert answer["bundle"] == "emails"
    assert [r["contact_id"] for r in answer["results"]] == ids
    assert answer["requested"] == 41
    assert answer["found"] + answer["not_found"] == 41
    assert answer["results"][20] == {"contact_id": stranger, "found": False, "data": None}
    found = [r for r in answer["results"] if r["found"]]
    assert 25 < len(found) < 41
    assert all(e["type"] in ("personal", "work") for r in found for e in r["data"]["emails"])
    again = client.post("/enrich/emails", {"contact_ids": ids}).json()
    assert again == answer
    person = client.post("/enrich/individual-core", {"contact_ids": pool_ids[:5]}).json()
    payloads = [r["data"] for r in person["results"] if r["found"]]
    assert payloads
    assert set(payloads[0]) == {"first_name", "last_name", "middle_name", "gender", "birth_year"}


def test_enrichment_rejects_malformed_ids_and_disabled_bundles(
    api: FakeContactBased, client: Client
) -> None:
    malformed = client.post("/enrich/emails", {"contact_ids": ["id_123", "id_ffffffffffffffff"]})
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["loc"] == ["body", "contact_ids", 0]
    assert client.post("/enrich/emails", {"contact_ids": []}).status_code == 422
    too_many = [f"id_{i:016x}" for i in range(1001)]
    assert client.post("/enrich/emails", {"contact_ids": too_many}).status_code == 422
    disabled = client.post("/enrich/auto", {"contact_ids": ["id_ffffffffffffffff"]})
    assert disabled.status_code == 403
    export = client.post("/intent/feeds/exports", {**window(api), "enrichment_bundles": ["auto"]})
    assert export.status_code == 403
    assert api.enrichment_ids_sent["emails"] == 0


def test_enrichment_charges_each_id_once_per_bundle(api: FakeContactBased, client: Client) -> None:
    ids = [api.dataset.contact_id(i) for i in range(10)]
    client.post("/enrich/phones", {"contact_ids": ids[:6]})
    client.post("/enrich/phones", {"contact_ids": ids[3:]})
    client.post("/enrich/location", {"contact_ids": ids[:2]})
    assert api.enrichment_charged["phones"] == set(ids)
    assert api.enrichment_ids_sent["phones"] == 13
    assert api.enrichment_charged["location"] == set(ids[:2])


def test_bundle_columns_hold_the_payload_json(api: FakeContactBased, client: Client) -> None:
    summary = client.ready_export(**window(api), enrichment_bundles=["emails", "location"])
    assert summary["require_contact_id"] is True
    assert summary["columns"][-2:] == ["bundle_emails", "bundle_location"]
    rows = client.all_page_rows(summary)
    assert rows == client.csv_rows(summary["export_id"])
    for row in rows[:20]:
        direct = api.enricher.payload("emails", row["contact_id"])
        assert (json.loads(row["bundle_emails"]) if row["bundle_emails"] else None) == direct
    assert any(row["bundle_location"] for row in rows)


# Faults


def test_rate_limit_with_and_without_retry_after(api: FakeContactBased, client: Client) -> None:
    api.faults.rate_limit_every = 2
    statuses = [client.get("/organization/credits").status_code for _ in range(4)]
    assert statuses == [200, 429, 200, 429]
    api.faults.rate_limit_every = 1
    limited = client.get("/organization/credits")
    assert limited.headers["Retry-After"] == "1"
    assert limited.json() == {"detail": "Rate limit exceeded"}
    api.faults.retry_after = None
    bare = client.get("/organization/credits")
    assert bare.status_code == 429
    assert "Retry-After" not in bare.headers
    created = client.post("/intent/feeds/exports", window(api))
    assert created.status_code == 429
    assert api.created_exports == []


def test_server_errors(api: FakeContactBased, client: Client) -> None:
    api.faults.server_error_every = 3
    statuses = [client.get("/organization/feeds").status_code for _ in range(6)]
    assert statuses == [200, 200, 503, 200, 200, 503]


def test_dropped_connections(api: FakeContactBased, client: Client) -> None:
    api.faults.drop_connection_every = 1
    with pytest.raises(requests.ConnectionError):
        client.post("/enrich/emails", {"contact_ids": ["id_ffffffffffffffff"]})
    assert api.requests[-1].status == 0
    assert api.enrichment_ids_sent["emails"] == 0
    api.faults.drop_connection_every = None
    assert client.get("/organization/credits").status_code == 200


def test_cut_pages(api: FakeContactBased, client: Client) -> None:
    export_id = client.ready_export(**window(api))["export_id"]
    api.faults.cut_page_every = 2
    assert client.page(export_id, 1).status_code == 200
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        client.page(export_id, 1)
    assert client.page(export_id, 1).status_code == 200


def test_truncated_downloads(api: FakeContactBased, client: Client) -> None:
    export_id = client.ready_export(**window(api, 30))["export_id"]
    api.faults.truncate_downloads = 1
    url = client.download_url(export_id)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url, timeout=10)
    assert api.faults.truncate_downloads == 0
    assert requests.get(url, timeout=10).status_code == 200


def test_failed_exports_release_their_credits(api: FakeContactBased, client: Client) -> None:
    api.faults.fail_exports = True
    summary = client.wait_built(client.create(**window(api))["export_id"])
    assert summary["status"] == "failed"
    assert summary["build_error"]
    assert api.credits["records_reserved"] == api.credits["records_used"] == 0
    assert client.page(summary["export_id"], 1).status_code == 404
    api.faults.fail_exports = False
    api.faults.fail_export_feeds = {api.feed_ids[1]}
    assert client.ready_export(**window(api, feed=0))["status"] == "ready"
    other = client.wait_built(client.create(**window(api, feed=1))["export_id"])
    assert other["status"] == "failed"


def test_stalled_exports_stop_making_progress(api: FakeContactBased, client: Client) -> None:
    api.faults.stall_exports = True
    created = client.create(**window(api))
    deadline = time.monotonic() + api.build_seconds * 3
    wait_until(lambda: time.monotonic() > deadline)
    summary = client.summary(created["export_id"])
    assert summary["status"] == "building"
    assert summary["build_progress"] == 0.4
    api.exports[created["export_id"]].stalled = False
    assert client.summary(created["export_id"])["status"] == "ready"


def test_unknown_status(api: FakeContactBased, client: Client) -> None:
    api.faults.unknown_status = "archived"
    export_id = client.create(**window(api))["export_id"]
    assert client.wait_built(export_id)["status"] == "archived"


def test_pages_not_found_although_ready(api: FakeContactBased, client: Client) -> None:
    export_id = client.ready_export(**window(api))["export_id"]
    api.faults.page_not_found = 2
    assert [client.page(export_id, 1).status_code for _ in range(3)] == [404, 404, 200]


def test_short_pages_and_pages_that_end_early(api: FakeContactBased, client: Client) -> None:
    summary = client.ready_export(**window(api, 30), page_size=1000)
    assert summary["total_pages"] == 2
    export_id, total = summary["export_id"], summary["total_rows"]
    full = client.all_page_rows(summary)
    api.faults.short_pages = 1
    assert client.page(export_id, 1).json()["rows"] == full[:999]
    assert api.faults.short_pages == 0
    assert client.page(export_id, 1).json()["rows"] == full[:1000]
    api.faults.page_rows_missing = total - 1000  # the whole last page
    assert client.page(export_id, 2).json()["rows"] == []
    api.faults.page_rows_missing = 3
    assert client.page(export_id, 2).json()["rows"] == full[1000:-3]
    assert len(client.csv_rows(export_id)) == total  # the CSV is not affected


def page_answer(client: Client, export_id: str, page: int) -> int | str:
    """The status of a page's answer; "rows N" for a 200; "cut" when the body broke off."""
    try:
        response = client.page(export_id, page)
    except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError):
        return "cut"
    if response.status_code != 200:
        return response.status_code
    return f"rows {len(response.json()['rows'])}"


@pytest.mark.parametrize(
    ("fault", "answer"), [("503", 503), ("404", 404), ("short", "rows 999"), ("cut", "cut")]
)
def test_a_failing_page_fails_that_page_of_every_export_each_time(
    api: FakeContactBased, client: Client, fault: str, answer: int | str
) -> None:
    summaries = [client.ready_export(**window(api, 30, feed), page_size=1000) for feed in (0, 1)]
    api.faults.failing_page = (1, fault)
    for summary in summaries:
        export_id = summary["export_id"]
        assert [page_answer(client, export_id, 1) for _ in range(2)] == [answer, answer]
        assert page_answer(client, export_id, 2) == f"rows {summary['total_rows'] - 1000}"
    hit = Hit("POST /intent/feeds/exports/page", f"page 1: {fault}")
    assert api.fault_engine.hits == [hit] * 4


def test_csv_cut_at_a_row_ends_every_download_before_it(
    api: FakeContactBased, client: Client
) -> None:
    export_id = client.ready_export(**window(api, 30))["export_id"]
    api.faults.csv_cut_at_row = 11
    for _ in range(2):
        response = requests.get(client.download_url(export_id), timeout=10, stream=True)
        lines: list[bytes] = []
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            lines.extend(response.iter_lines())
        assert len(lines) == 1 + 10  # the header and rows 1 to 10


@pytest.mark.parametrize("read", ["page", "download"])
def test_an_api_that_dies_mid_read_answers_the_first_read_then_nothing(
    api: FakeContactBased, client: Client, read: str
) -> None:
    export_id = client.ready_export(**window(api, 30))["export_id"]
    url = client.download_url(export_id)
    api.faults.dies_mid_read = True
    assert client.get("/organization/credits").status_code == 200  # not a read: answered
    if read == "page":
        assert client.page(export_id, 1).status_code == 200
    else:
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            requests.get(url, timeout=10).raise_for_status()  # cut halfway
    assert api.fault_engine.died.is_set()
    with pytest.raises(requests.ConnectionError):
        client.get("/organization/credits")
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=10)
    assert [r.status for r in api.requests[-2:]] == [0, 0]


def test_faults_aimed_at_an_endpoint_strike_only_there_and_are_logged(
    api: FakeContactBased, client: Client
) -> None:
    create = "POST /intent/feeds/exports"
    api.faults.aimed = {create: ["503", "429", "409", "drop", "hold"]}
    api.faults.hold_seconds = 0.5
    api.faults.retry_after = 0.5
    assert client.post("/intent/feeds/exports/count", window(api)).status_code == 200
    assert client.post("/intent/feeds/exports", window(api)).status_code == 503
    limited = client.post("/intent/feeds/exports", window(api))
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "0.5")
    assert client.post("/intent/feeds/exports", window(api)).status_code == 409
    with pytest.raises(requests.ConnectionError):
        client.post("/intent/feeds/exports", window(api))
    assert api.created_exports == []  # refused or dropped before they were served
    with pytest.raises(requests.Timeout):
        client.session.post(f"{api.url}/intent/feeds/exports", json=window(api), timeout=0.1)
    api.wait_idle()
    assert len(api.created_exports) == 1  # held back past the client's timeout, then served
    assert api.requests[-1].status == 201
    assert client.post("/intent/feeds/exports", window(api)).status_code == 201
    assert [(hit.endpoint, hit.fault) for hit in api.fault_engine.hits] == [
        (create, "503"),
        (create, "429"),
        (create, "409"),
        (create, "drop"),
        (create, "hold"),
    ]
    assert api.fault_engine.delayed_answers == 1
    assert len(api.created_exports) == 2


def test_older_id_column_spelling(api: FakeContactBased, client: Client) -> None:
    api.faults.id_column = "cb_id"
    search = client.post("/intent/feeds/search", window(api)).json()
    assert "records_with_cb_id" in search
    assert "records_without_cb_id" in search
    assert "records_with_contact_id" not in search
    preview = client.post("/intent/feeds/exports/preview", window(api)).json()
    assert preview["columns"][0] == "cb_id"
    summary = client.ready_export(**window(api))
    assert summary["columns"][0] == "cb_id"
    rows = client.all_page_rows(summary)
    assert "cb_id" in rows[0]
    assert "contact_id" not in rows[0]
    assert client.csv_rows(summary["export_id"]) == rows


def test_extra_and_dropped_columns(api: FakeContactBased, client: Client) -> None:
    api.faults.extra_columns = ("lead_source",)
    api.faults.drop_columns = ("postal_code", "revenue_range")
    summary = client.ready_export(**window(api), enrichment_bundles=["phones"])
    columns = summary["columns"]
    assert columns[-2:] == ["lead_source", "bundle_phones"]
    assert "postal_code" not in columns
    assert "revenue_range" not in columns
    rows = client.all_page_rows(summary)
    assert all(isinstance(r["lead_source"], str) for r in rows)
    assert client.csv_rows(summary["export_id"]) == rows
    api.faults.extra_columns = ()
    api.faults.drop_columns = ()
    assert client.all_page_rows(summary) == rows  # columns are fixed at creation


def test_bad_json_and_wrong_content_type(api: FakeContactBased, client: Client) -> None:
    api.faults.bad_json_every = 1
    bad = client.get("/organization/credits")
    assert bad.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        bad.json()
    api.faults.bad_json_every = None
    api.faults.wrong_content_type = True
    html = client.post("/intent/feeds/exports", window(api))
    assert html.status_code == 200
    assert html.headers["Content-Type"].startswith("text/html")
    assert api.created_exports == []


def test_latency(api: FakeContactBased, client: Client) -> None:
    api.faults.latency_seconds = 0.2
    api.faults.latency_every = 2
    timings = []
    for _ in range(2):
        started = time.monotonic()
        client.get("/organization/credits")
        timings.append(time.monotonic() - started)
    assert timings[0] < 0.2 <= timings[1]


def test_nul_and_huge_fields(api: FakeContactBased, client: Client) -> None:
    export_id = client.ready_export(**window(api))["export_id"]
    api.faults.nul_in_csv = True
    raw = requests.get(client.download_url(export_id), timeout=10).content
    assert raw.count(b"\x00") == 1
    api.faults.nul_in_csv = False
    api.faults.huge_field_bytes = 100_000
    first_page = client.page(export_id, 1).json()["rows"]
    assert len(first_page[0]["company_name"]) == 100_000
    assert client.csv_rows(export_id)[0]["company_name"] == first_page[0]["company_name"]


def test_random_faults_are_deterministic() -> None:
    def statuses() -> list[int]:
        faults = Faults(random_rate=0.5, random_seed=3, random_latency_seconds=0.001)
        with FakeContactBased(today=TODAY) as api:
            api.faults = faults
            session = requests.Session()
            session.headers["X-API-Key"] = KEY
            for _ in range(30):
                try:
                    session.get(api.url + "/organization/credits", timeout=10)
                except requests.ConnectionError:
                    session.close()
            return [r.status for r in api.requests]

    first = statuses()
    assert first == statuses()
    assert {200, 429, 503, 0} <= set(first)


def test_a_stopped_api_stops_answering(api: FakeContactBased, client: Client) -> None:
    url = api.url + "/organization/credits"
    assert client.session.get(url, timeout=10).status_code == 200  # keeps a connection open
    api.stop()
    with pytest.raises(requests.ConnectionError):
        client.session.get(url, timeout=10)


# The command


def test_command_prints_its_url_and_ready_exports() -> None:
    command = [
        sys.executable,
        "-m",
        "tests.fake_api",
        "--port",
        "0",
        "--today",
        TODAY.isoformat(),
        "--ready-export",
        "0:3",
    ]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
            export_line = process.stdout.readline().split()
            assert export_line[0::2] == ["export", "feed", "rows"]
            headers = {"X-API-Key": KEY}
            credits = requests.get(url + "/organization/credits", headers=headers, timeout=10)
            assert credits.json()["records_used"] == int(export_line[5])
        finally:
            process.terminate()
        assert process.wait(timeout=10) == 0


# Contract drift and concurrent builds


def test_summary_drift_reaches_every_summary(api: FakeContactBased, client: Client) -> None:
    ready = client.ready_export(**window(api))
    api.faults.drift = {"summary": {"total_rows": None, "columns": "column_names", "nope": "x"}}
    created = client.create(**window(api, 2))
    listed = client.post("/intent/feeds/exports/list", {"export_ids": [ready["export_id"]]})
    page = client.page(ready["export_id"], 1).json()
    searched = client.post("/intent/feeds/search", {**window(api, 2), "auto_export": True})
    for summary in (created, listed.json()["items"][0], page, searched.json()["export"]):
        assert "total_rows" not in summary
        assert "columns" not in summary
        assert "column_names" in summary
        assert "nope" not in summary  # absent fields: nothing happens
        assert "x" not in summary
    assert page["column_names"] == ready["columns"]
    assert list(page)[-2:] == ["page", "rows"]  # page-only fields are not summary fields


def test_page_drift_respells_only_the_page_fields(api: FakeContactBased, client: Client) -> None:
    ready = client.ready_export(**window(api))
    api.faults.drift = {"page": {"rows": "data", "page": None}}
    page = client.page(ready["export_id"], 1).json()
    assert "rows" not in page
    assert "page" not in page
    assert len(page["data"]) == ready["total_rows"]
    assert page["export_id"] == ready["export_id"]
    building = client.page(client.create(**window(api, 2))["export_id"], 1).json()
    assert building["data"] == []


def _answer(client: Client, family: str) -> Any:
    """The answer that serves one family, from free requests (or a ready export)."""
    api = client.api
    if family == "count":
        return client.post("/intent/feeds/exports/count", window(api)).json()
    if family == "credits":
        return client.get("/organization/credits").json()
    if family == "feed_limit":
        return client.get("/organization/feed-limit").json()
    if family == "preview":
        return client.post("/intent/feeds/exports/preview", window(api)).json()
    if family == "search":
        body = {**window(api), "include_daily_counts": True}
        return client.post("/intent/feeds/search", body).json()
    if family in ("envelope", "feed"):
        if not api.exports:
            client.create(**window(api))
        exports = client.post("/intent/feeds/exports/list", {}).json()
        return [client.get("/organization/feeds").json(), exports]
    if family == "bundles":
        return client.get("/enrich/bundles").json()
    if family == "filter_fields":
        return client.post("/intent/feeds/filters/fields", {}).json()
    if family == "download_url":
        ready = next(iter(api.exports), None) or api.make_ready_export(api.feed_ids[0], 2)
        body = {"export_id": ready}
        return client.post("/intent/feeds/exports/download-url", body).json()
    if family == "enrich":
        ids = [api.dataset.contact_id(i) for i in range(3)]
        return client.post("/enrich/phones", {"contact_ids": ids}).json()
    raise AssertionError(family)


def _names(value: Any) -> Counter[str]:
    """Every field name of every object inside a JSON value, counted."""
    if isinstance(value, dict):
        return sum((_names(v) for v in value.values()), Counter(value.keys()))
    if isinstance(value, list):
        return sum((_names(v) for v in value), Counter())
    return Counter()


@pytest.mark.parametrize(
    ("family", "field", "new"),
    [
        ("count", "records_required", None),
        ("count", "total_rows", "row_count"),
        ("credits", "records_remaining", None),
        ("credits", "records_reserved", "records_pending"),
        ("feed_limit", "feeds_remaining", None),
        ("preview", "columns", None),
        ("preview", "estimated_rows", "estimate"),
        ("search", "end_date", None),
        ("search", "count", "records"),
        ("envelope", "total", None),
        ("envelope", "items", "data"),
        ("feed", "max_lookback_days", "lookback_cap"),
        ("bundles", "bundles", "items"),
        ("bundles", "enabled", None),
        ("filter_fields", "operators", "ops"),
        ("download_url", "expires_at", "expires"),
        ("download_url", "url", "signed_url"),
        ("enrich", "results", "items"),
        ("enrich", "data", "payload"),
    ],
)
def test_drift_respells_or_drops_a_field_of_each_family(
    api: FakeContactBased, client: Client, family: str, field: str, new: str | None
) -> None:
    before = _names(_answer(client, family))
    assert before[field] > 0
    api.faults.drift = {family: {field: new}}
    after = _names(_answer(client, family))
    assert after[field] == 0
    if new is not None:
        assert after[new] == before[field]
    others = set(before) - {field}
    assert {name: after[name] for name in others} == {name: before[name] for name in others}


def test_error_drift_reaches_every_error_body(api: FakeContactBased, client: Client) -> None:
    api.faults.drift = {"error": {"detail": "message", "msg": "text"}}
    not_found = client.post("/intent/feeds/exports/page", {"export_id": "exp_0", "page": 1})
    assert not_found.status_code == 404
    assert not_found.json() == {"message": "Export exp_0 not found"}
    invalid = client.post("/intent/feeds/exports", {"lookback_days": 3}).json()
    assert set(invalid) == {"message"}
    assert "text" in invalid["message"][0]
    assert "msg" not in invalid["message"][0]
    assert client.get("/nowhere").json() == {"message": "Not Found"}
    api.faults.rate_limit_every = 1
    assert client.get("/organization/credits").json() == {"message": "Rate limit exceeded"}


def test_an_unknown_drift_family_is_a_loud_500(api: FakeContactBased, client: Client) -> None:
    api.faults.drift = {"sumary": {"total_rows": None}}
    response = client.get("/organization/credits")
    assert response.status_code == 500
    assert "sumary" in response.json()["detail"]


def test_payload_drift_reaches_nested_email_entries_in_answers_and_columns(
    api: FakeContactBased, client: Client
) -> None:
    api.faults.drift = {"payload:emails": {"address": "email"}}
    summary = client.ready_export(**window(api), enrichment_bundles=["emails", "phones"])
    rows = client.all_page_rows(summary)
    assert rows == client.csv_rows(summary["export_id"])
    entries = [
        e for r in rows if r["bundle_emails"] for e in json.loads(r["bundle_emails"])["emails"]
    ]
    assert entries
    assert all(set(e) == {"email", "type", "last_seen"} for e in entries)
    assert any(json.loads(r["bundle_phones"] or "{}").get("phones") for r in rows)
    ids = [api.dataset.contact_id(i) for i in range(10)]
    answer = client.post("/enrich/emails", {"contact_ids": ids}).json()
    found = [e for r in answer["results"] if r["found"] for e in r["data"]["emails"]]
    assert found
    assert all("email" in e and "address" not in e for e in found)
    api.faults.drift = {}
    assert client.all_page_rows(summary) == rows  # bundle columns are fixed at creation


def test_status_spelling(api: FakeContactBased, client: Client) -> None:
    api.faults.status_spelling = {"ready": " Ready ", "building": "BUILDING"}
    created = client.create(**window(api))
    assert created["status"] == "BUILDING"

    def listed(status: str) -> list[str]:
        body = {"export_ids": [created["export_id"]], "status": status}
        items = client.post("/intent/feeds/exports/list", body).json()["items"]
        return [item["status"] for item in items]

    assert wait_until(lambda: listed(" Ready ")) == [" Ready "]
    assert listed("ready") == [" Ready "]  # the canonical text filters too
    assert client.page(created["export_id"], 1).json()["status"] == " Ready "


def test_the_cb_id_spelling_reaches_field_names(api: FakeContactBased, client: Client) -> None:
    api.faults.id_column = "cb_id"
    created = client.create(**window(api), require_cb_id=True)
    assert created["require_cb_id"] is True
    assert "require_contact_id" not in created
    also = client.create(**window(api, 2), require_contact_id=True)
    assert also["require_cb_id"] is True
    count = client.post("/intent/feeds/exports/count", window(api)).json()
    assert "rows_with_cb_id" in count
    assert "rows_with_contact_id" not in count
    search = client.post("/intent/feeds/search", window(api)).json()
    assert "records_with_cb_id" in search
    built = client.wait_built(created["export_id"])
    rows = client.page(built["export_id"], 1).json()["rows"]
    assert rows
    assert all(r["cb_id"] for r in rows)  # require_cb_id kept only rows with an id
    ids = [api.dataset.contact_id(i) for i in range(3)]
    for body in ({"contact_ids": ids}, {"cb_ids": ids}):
        results = client.post("/enrich/phones", body).json()["results"]
        assert [r["cb_id"] for r in results] == ids
        assert all("contact_id" not in r for r in results)


@pytest.mark.parametrize(("status", "retry_after"), [(429, "1"), (409, None)])
def test_a_create_beyond_the_building_limit_is_refused_and_free(
    status: int, retry_after: str | None
) -> None:
    with FakeContactBased(today=TODAY, build_seconds=60) as api:
        api.faults.max_building_exports = 2
        api.faults.building_limit_status = status
        client = Client(api)
        first = client.create(**window(api, 1))
        client.create(**window(api, 2))
        before = api.credits
        refused = client.post("/intent/feeds/exports", window(api, 3))
        assert refused.status_code == status
        assert refused.headers.get("Retry-After") == retry_after
        assert "limit" in refused.json()["detail"]
        auto = client.post("/intent/feeds/search", {**window(api, 3), "auto_export": True})
        assert auto.status_code == status
        assert api.credits == before
        assert len(api.created_exports) == len(api.exports) == 2
        assert api.max_building_seen == 2
        api.exports[first["export_id"]].finish_now()
        client.create(**window(api, 3))
        assert len(api.created_exports) == 3
        assert api.max_building_seen == 2


def test_without_a_limit_every_create_counts_towards_the_most_seen_building() -> None:
    with FakeContactBased(today=TODAY, build_seconds=60) as api:
        client = Client(api)
        for lookback in (1, 2, 3):
            client.create(**window(api, lookback))
        assert api.max_building_seen == 3
        api.make_ready_export(api.feed_ids[1], 2)  # a helper's export is not a client's
        assert api.max_building_seen == 3
