"""BATCH messages: export rows in JSON Lines files, confirmed only once announced.

`batch_files.py` writes the files of export_rows; every other stream keeps the SDK's batcher.
"""

from __future__ import annotations

import gzip
import json
import typing as t
from pathlib import Path

import pytest

from scripts.readme_stream_maps import readme_stream_maps
from tap_contactbased.batch_files import BatchFiles
from tap_contactbased.errors import ConfigError
from tap_contactbased.sdk_internals import BatchConfig
from tests.conftest import YESTERDAY, make_config
from tests.export_checks import by_key, delivered_rows, without
from tests.fake_api import FakeContactBased
from tests.kill_harness import KillPoint, flights, run_with_kills, while_building
from tests.singer_run import deselect_property, run_tap, selected_catalog

PAGE_SIZE = 1000


def batch_config(root: Path, compression: str = "gzip") -> dict[str, t.Any]:
    return {
        "encoding": {"format": "jsonl", "compression": compression},
        "storage": {"root": f"file://{root}", "prefix": "batch-"},
    }


def read_file(url: str, compression: str | None) -> list[dict[str, t.Any]]:
    path = Path(url.removeprefix("file://"))
    opener = gzip.open if compression == "gzip" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def batch_records(
    messages: list[dict[str, t.Any]], stream: str = "export_rows"
) -> list[dict[str, t.Any]]:
    """The records of the files the BATCH messages of `stream` announced, in their order."""
    return [
        record
        for message in messages
        if message["type"] == "BATCH" and message["stream"] == stream
        for url in message["manifest"]
        for record in read_file(url, message["encoding"].get("compression"))
    ]


def per_export(records: list[dict[str, t.Any]]) -> dict[str, list[dict[str, t.Any]]]:
    """Records grouped by export, each export's in the order written."""
    grouped: dict[str, list[dict[str, t.Any]]] = {}
    for record in records:
        grouped.setdefault(record["export_id"], []).append(record)
    return grouped


def expected_rows(api: FakeContactBased) -> dict[tuple[str, int], dict[str, t.Any]]:
    expected: dict[tuple[str, int], dict[str, t.Any]] = {}
    for export_id in api.created_exports:
        expected.update(delivered_rows(api, export_id, YESTERDAY))
    return expected


@pytest.mark.parametrize(("read_mode", "compression"), [("csv", "gzip"), ("pages", "none")])
def test_files_hold_exactly_the_records_of_record_mode(
    paged_api: FakeContactBased, tmp_path: Path, read_mode: str, compression: str
) -> None:
    config = make_config(paged_api, read_mode=read_mode, page_size=PAGE_SIZE)
    in_records = run_tap(config, streams=["export_rows"])
    created = list(paged_api.created_exports)

    # A second run with no state reuses the same ready exports.
    batched = run_tap(
        {**config, "batch_config": batch_config(tmp_path, compression)}, streams=["export_rows"]
    )

    assert paged_api.created_exports == created
    assert batched.records("export_rows") == []
    records = in_records.records("export_rows")
    assert by_key(records) == expected_rows(paged_api)
    files = batch_records(batched.messages)
    assert per_export(files) == per_export(records)
    manifests = [m["manifest"] for m in batched.messages if m["type"] == "BATCH"]
    # One file per page of each export.
    pages = sum(-(-len(rows) // PAGE_SIZE) for rows in per_export(records).values())
    assert len(manifests) == pages
    assert all(
        len(urls) == 1 and urls[0].startswith(f"file://{tmp_path}/batch-") for urls in manifests
    )


def test_no_state_confirms_a_row_before_the_file_holding_it_is_announced(
    paged_api: FakeContactBased, tmp_path: Path
) -> None:
    config = make_config(paged_api, page_size=PAGE_SIZE, batch_config=batch_config(tmp_path))

    result = run_tap(config, streams=["export_rows"])

    expected = expected_rows(paged_api)
    announced: set[tuple[str, int]] = set()
    confirmations = 0
    for message in result.messages:
        if message["type"] == "BATCH":
            announced |= set(by_key(batch_records([message])))
        if message["type"] != "STATE":
            continue
        for partition in message["value"]["bookmarks"]["export_rows"]["partitions"]:
            flight = partition.get("in_flight")
            if flight is not None:
                confirmed = {
                    key
                    for key in expected
                    if key[0] == flight["export_id"] and key[1] <= flight["rows_done"]
                }
            elif "last_export_id" in partition:
                confirmed = {key for key in expected if key[0] == partition["last_export_id"]}
            else:
                continue
            assert confirmed <= announced, f"{len(confirmed - announced)} rows confirmed early"
            confirmations += bool(confirmed)
    assert announced == set(expected)
    assert confirmations > len(config["feed_ids"]), "too few states to prove anything"


def test_files_have_the_shape_of_records_under_selection_and_stream_maps(
    api: FakeContactBased, tmp_path: Path
) -> None:
    stream_maps = {
        "export_rows": {"first_name": "__NULL__", "company_upper": "str(company_name).upper()"},
        "hot_rows": {
            "__source__": "export_rows",
            "__filter__": "intent_score is not None and intent_score >= 60",
            "__else__": "__NULL__",
            "export_id": "export_id",
            "export_row": "export_row",
            "intent_score": "intent_score",
        },
    }
    config = make_config(api, stream_maps=stream_maps)
    catalog = selected_catalog(config, ["export_rows"])
    deselect_property(catalog, "export_rows", "job_title")

    in_records = run_tap(config, catalog=catalog)
    batched = run_tap({**config, "batch_config": batch_config(tmp_path)}, catalog=catalog)

    for stream in ("export_rows", "hot_rows"):
        records = in_records.records(stream)
        assert records, f"no {stream} record: the test would prove nothing"
        assert per_export(batch_records(batched.messages, stream)) == per_export(records)
    rows = batch_records(batched.messages)
    assert not any("job_title" in r or "first_name" in r for r in rows)
    assert all("company_upper" in r for r in rows)
    hot = batch_records(batched.messages, "hot_rows")
    assert all(set(r) == {"export_id", "export_row", "intent_score"} for r in hot)
    assert len(hot) < len(rows)


def batch_files_of(messages: list[dict[str, t.Any]]) -> list[str]:
    return [url for m in messages if m["type"] == "BATCH" for url in m["manifest"]]


def after_batches(count: int) -> KillPoint:
    """Kill right after the `count`-th BATCH message, before the state that follows it."""
    return lambda messages: (
        messages[-1]["type"] == "BATCH" and (sum(m["type"] == "BATCH" for m in messages) >= count)
    )


def test_killed_while_exports_build_resumes_them_without_creating_again(
    paged_api: FakeContactBased, tmp_path: Path
) -> None:
    config = make_config(
        paged_api, page_size=PAGE_SIZE, batch_config=batch_config(tmp_path / "files")
    )
    catalog = selected_catalog(config, ["export_rows"])

    campaign = run_with_kills(config, catalog, [while_building()], tmp_path / "runs")

    # The state written before the wait names the building exports: the rerun resumes them.
    assert campaign.kills == 1
    killed = campaign.attempts[0].messages
    assert batch_files_of(killed) == []
    in_flight = {f["export_id"] for m in killed if m["type"] == "STATE" for f in flights(m)}
    assert in_flight == set(paged_api.created_exports)
    assert len(paged_api.created_exports) == len(config["feed_ids"])
    assert by_key(batch_records(campaign.messages)) == expected_rows(paged_api)


def test_killed_between_two_batch_files_loses_nothing_and_creates_nothing(
    paged_api: FakeContactBased, tmp_path: Path
) -> None:
    config = make_config(
        paged_api, page_size=PAGE_SIZE, batch_config=batch_config(tmp_path / "files")
    )
    catalog = selected_catalog(config, ["export_rows"])

    campaign = run_with_kills(config, catalog, [after_batches(2)], tmp_path / "runs")

    assert campaign.kills == 1
    assert len(batch_files_of(campaign.attempts[0].messages)) == 2
    assert len(paged_api.created_exports) == len(config["feed_ids"])
    expected = expected_rows(paged_api)
    records = batch_records(campaign.messages)
    assert by_key(records) == expected
    # Only the file the kill left unconfirmed is written again.
    assert len(records) - len(expected) <= PAGE_SIZE


def test_a_chunk_whose_reading_fails_leaves_no_file(
    paged_api: FakeContactBased, tmp_path: Path
) -> None:
    paged_api.faults.csv_rows_missing = 10  # every read of the CSV ends short of total_rows
    config = make_config(paged_api, page_size=PAGE_SIZE, batch_config=batch_config(tmp_path))

    result = run_tap(config, streams=["export_rows"], raise_errors=False)

    assert result.error is not None
    announced = batch_files_of(result.messages)
    assert announced, "no page was delivered before the failure: the test would prove nothing"
    assert sorted(path.as_uri() for path in tmp_path.iterdir()) == sorted(announced)
    expected = expected_rows(paged_api)
    files = by_key(batch_records(result.messages))
    assert len(files) < len(expected)
    # The exports stay in flight, confirmed up to the last announced file.
    assert result.last_state is not None
    in_flight = flights({"value": result.last_state})
    assert {f["export_id"] for f in in_flight} == set(paged_api.created_exports)
    for flight in in_flight:
        confirmed = {
            k for k in expected if k[0] == flight["export_id"] and k[1] <= flight["rows_done"]
        }
        assert confirmed
        assert confirmed <= set(files)


def test_a_file_being_written_is_a_partial_file_under_the_prefix(tmp_path: Path) -> None:
    # What a kill in the middle of a page leaves: one `.partial` file that the documented
    # clean-up (every file under the prefix) removes, and nothing under a final name.
    config = BatchConfig.from_dict(batch_config(tmp_path))
    announced: list[str] = []
    files = BatchFiles(config, tap_name="tap-x", announce=lambda _, urls: announced.extend(urls))
    seen_while_writing: list[str] = []

    def records() -> t.Iterator[dict[str, t.Any]]:
        for row in range(1, 2001):
            if row == 1500:
                seen_while_writing.extend(sorted(path.name for path in tmp_path.iterdir()))
            yield {"export_row": row, "text": "x" * 100}

    written = files.write("export_rows", records(), "exp_1-000000001")

    (partial,) = seen_while_writing
    assert partial.startswith("batch-tap-x--export_rows-exp_1-000000001-")
    assert partial.endswith(".jsonl.gz.partial")
    assert written == 2000
    (url,) = announced
    assert url == (tmp_path / partial.removesuffix(".partial")).as_uri()
    assert sorted(path.as_uri() for path in tmp_path.iterdir()) == [url]
    assert [r["export_row"] for r in read_file(url, "gzip")] == list(range(1, 2001))


def test_a_page_whose_records_fail_leaves_no_file_not_even_a_partial_one(tmp_path: Path) -> None:
    config = BatchConfig.from_dict(batch_config(tmp_path, "none"))
    files = BatchFiles(config, tap_name="tap-x", announce=lambda _alias, _urls: None)

    def records() -> t.Iterator[dict[str, t.Any]]:
        yield from ({"export_row": row} for row in range(1, 100_000))
        raise ConnectionError("the page ended early")

    with pytest.raises(ConnectionError):
        files.write("export_rows", records(), "exp_1-000000001")
    with pytest.raises(ConnectionError):
        files.write_mapped((("alias_" + str(n % 2), r) for n, r in enumerate(records())), "l")

    assert list(tmp_path.iterdir()) == []
    assert files.files == files.rows == 0


def test_the_other_streams_files_carry_their_stream_maps_like_their_records(
    api: FakeContactBased, tmp_path: Path
) -> None:
    ids = [api.dataset.contact_id(i) for i in range(30)]
    config = make_config(
        api,
        feed_ids=[],
        enrichment_bundles=["emails"],
        enrichment_contact_ids=ids,
        stream_maps=readme_stream_maps(),
    )

    in_records = run_tap(config, streams=["enrichment"])
    batched = run_tap({**config, "batch_config": batch_config(tmp_path)}, streams=["enrichment"])

    def comparable(records: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
        # Two runs: each stamps its records with its own time.
        return [without(r, {"enriched_at": "the time of each run"}) for r in records]

    files = batch_records(batched.messages, "enrichment")
    assert comparable(files) == comparable(in_records.records("enrichment"))
    text = json.dumps(files)
    assert "address_sha256" in text
    assert "@" not in text


def test_the_other_streams_files_leave_out_deselected_properties(
    api: FakeContactBased, tmp_path: Path
) -> None:
    config = make_config(api, feed_ids=[])
    catalog = selected_catalog(config, ["feeds"])
    deselect_property(catalog, "feeds", "name")

    in_records = run_tap(config, catalog=catalog)
    batched = run_tap({**config, "batch_config": batch_config(tmp_path)}, catalog=catalog)

    files = batch_records(batched.messages, "feeds")
    assert files
    assert files == in_records.records("feeds")
    assert not any("name" in record for record in files)


def test_a_copy_of_another_stream_in_batch_mode_is_refused(
    api: FakeContactBased, tmp_path: Path
) -> None:
    config = make_config(
        api,
        feed_ids=[],
        stream_maps={"feeds_copy": {"__source__": "feeds"}},
        batch_config=batch_config(tmp_path),
    )

    result = run_tap(config, streams=["feeds"], raise_errors=False)

    assert isinstance(result.error, ConfigError)
    assert "feeds_copy" in str(result.error)
    assert not any(tmp_path.iterdir())


def test_batch_files_of_every_stream_are_for_their_owner_only(
    api: FakeContactBased, tmp_path: Path
) -> None:
    root = tmp_path / "files"
    config = make_config(
        api,
        feed_ids=api.feed_ids[:1],
        enrichment_bundles=["emails"],
        batch_config=batch_config(root),
    )

    run_tap(config, streams=["export_rows", "enrichment", "feeds"])

    modes = {path.name: path.stat().st_mode & 0o777 for path in root.iterdir()}
    assert any("--export_rows-" in name for name in modes)  # the tap's own writer
    assert any("--enrichment-" in name for name in modes)  # the SDK's batcher
    assert set(modes.values()) == {0o600}
    assert root.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("alias", ["rows/../../escaped", "..", "rows\\..\\x", "rows\nINFO"])
def test_an_alias_that_could_leave_the_storage_root_is_refused_before_any_export(
    api: FakeContactBased, tmp_path: Path, alias: str
) -> None:
    root = tmp_path / "deep" / "files"
    config = make_config(
        api,
        feed_ids=api.feed_ids[:1],
        stream_maps={"export_rows": {"__alias__": repr(alias)}},  # an expression
        batch_config=batch_config(root),
    )

    result = run_tap(config, streams=["export_rows"], raise_errors=False)

    assert isinstance(result.error, ConfigError)
    message = str(result.error)
    assert "cannot name a BATCH file" in message
    assert "\n" not in message
    assert api.created_exports == []
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_an_export_id_is_encoded_into_a_name_under_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    config = BatchConfig.from_dict(batch_config(root))
    announced: list[str] = []
    files = BatchFiles(config, tap_name="tap-x", announce=lambda _, urls: announced.extend(urls))

    files.write("export_rows", [{"export_row": 1}], "../../exp_1/../x" + "z" * 300 + "-000000001")

    (written,) = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written.parent == root
    assert "-.._.._exp_1_.._xzz" in written.name
    assert len(written.name) < 150
    assert announced == [written.as_uri()]


def test_a_prefix_that_leads_outside_the_root_is_refused(tmp_path: Path) -> None:
    settings = batch_config(tmp_path / "root")
    settings["storage"]["prefix"] = "../outside-"
    files = BatchFiles(
        BatchConfig.from_dict(settings), tap_name="tap-x", announce=lambda _a, _u: None
    )

    with pytest.raises(ConfigError, match=r"outside batch_config\.storage\.root"):
        files.write("export_rows", [{"export_row": 1}], "exp_1-000000001")

    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
