"""The shard helper: stable assignment, organization streams in one shard, what it prints."""

from __future__ import annotations

import io
import json
import shlex
import uuid
from collections import Counter

import pytest
import yaml

from tap_contactbased.shards import (
    FEED_STREAMS,
    ORGANIZATION_STREAMS,
    assign,
    main,
    parse_feed_ids,
    prepare_env,
    render,
    shard_of,
)
from tests.conftest import ALL_STREAMS
from tests.e2e.meltano import project
from tests.fake_api import FakeContactBased

FEEDS = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"feed-{i}")) for i in range(2000)]


def streams_of(env: dict[str, str]) -> set[str]:
    """The streams a shard's run loads: all selected ones unless its select filter says."""
    selected = env.get("TAP_CONTACTBASED__SELECT_FILTER")
    return set(json.loads(selected)) if selected else set(ALL_STREAMS)


def test_a_feed_lands_in_the_same_shard_whatever_the_other_feeds() -> None:
    alone = {feed: shard_of(feed, 5) for feed in FEEDS[:50]}
    together = {feed: s.index for s in assign(FEEDS, 5) for feed in s.feed_ids}
    assert all(together[feed] == shard for feed, shard in alone.items())
    assert shard_of(FEEDS[0].upper(), 5) == shard_of(f"  {FEEDS[0]} ", 5) == alone[FEEDS[0]]


def test_every_feed_is_in_exactly_one_shard_in_the_order_given() -> None:
    feeds = [*FEEDS[:40], FEEDS[3].upper()]  # listed twice: counts once
    shards = assign(feeds, 3)
    flat = [feed for shard in shards for feed in shard.feed_ids]
    assert sorted(flat) == sorted(FEEDS[:40])
    for shard in shards:
        assert list(shard.feed_ids) == [f for f in FEEDS[:40] if f in shard.feed_ids]
    assert [s.suffix for s in shards] == ["shard-0", "shard-1", "shard-2"]


def test_shards_are_balanced_within_a_tenth_for_many_feeds() -> None:
    sizes = [len(s.feed_ids) for s in assign(FEEDS, 4)]
    assert all(abs(size - 500) <= 50 for size in sizes), sizes


def test_one_more_shard_moves_only_the_feeds_it_takes() -> None:
    before = {f: s.index for s in assign(FEEDS, 4) for f in s.feed_ids}
    after = {f: s.index for s in assign(FEEDS, 5) for f in s.feed_ids}
    moved = [f for f in FEEDS if before[f] != after[f]]
    assert all(after[f] == 4 for f in moved)
    assert 300 <= len(moved) <= 500  # about 1 in 5


def test_organization_streams_are_loaded_by_one_shard_and_feed_streams_by_all() -> None:
    # A new stream must be classified, or this claim is untested for it.
    assert sorted(ORGANIZATION_STREAMS + FEED_STREAMS) == sorted(ALL_STREAMS)
    shards = assign(FEEDS[:10], 4)
    loads = Counter(stream for s in shards for stream in streams_of(s.env()))
    assert {stream: loads[stream] for stream in ORGANIZATION_STREAMS} == dict.fromkeys(
        ORGANIZATION_STREAMS, 1
    )
    assert {stream: loads[stream] for stream in FEED_STREAMS} == dict.fromkeys(FEED_STREAMS, 4)
    assert [s.organization for s in shards] == [True, False, False, False]


def test_each_shard_has_its_own_state_id_suffix_and_feed_ids() -> None:
    shards = assign(FEEDS[:10], 3)
    envs = [s.env() for s in shards]
    assert [e["MELTANO_RUN_STATE_ID_SUFFIX"] for e in envs] == ["shard-0", "shard-1", "shard-2"]
    assert [json.loads(e["TAP_CONTACTBASED_FEED_IDS"]) for e in envs] == [
        list(s.feed_ids) for s in shards
    ]


def test_the_prepare_run_exports_nothing_keeps_no_state_and_skips_organization_streams() -> None:
    env = prepare_env()
    assert json.loads(env["TAP_CONTACTBASED_FEED_IDS"]) == []
    assert env["MELTANO_RUN_NO_STATE_UPDATE"] == "true"
    assert streams_of(env) == set(FEED_STREAMS)


def test_the_env_format_is_shell_that_sets_a_shards_variables() -> None:
    shard = assign(FEEDS[:10], 3)[1]
    text = render([shard], "env")
    exported = {}
    for line in text.splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            (exported[name],) = shlex.split(value)
    assert exported == shard.env()


def test_meltano_yml_schedules_are_what_the_helper_prints_for_the_local_feeds() -> None:
    local_feeds = FakeContactBased().feed_ids  # the local API's three feeds (seed 7)
    printed = yaml.safe_load(render(assign(local_feeds, 3), "schedules"))["schedules"]
    meltano = project()
    assert meltano["schedules"] == printed, render(assign(local_feeds, 3), "schedules")
    jobs = {job["name"]: job["tasks"] for job in meltano["jobs"]}
    assert {entry["job"] for entry in printed} <= set(jobs)
    assert jobs["contactbased-to-postgres"] == ["tap-contactbased target-postgres"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('["a", "b"]', ["a", "b"]),
        ("a\nb, c\n\n", ["a", "b", "c"]),
    ],
)
def test_feed_ids_are_read_as_a_json_array_or_a_list_of_words(
    text: str, expected: list[str]
) -> None:
    assert parse_feed_ids(text) == expected


def test_the_command_reads_stdin_and_prints_one_shard(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(FEEDS[:10])))
    assert main(["--shards", "3", "--shard", "2", "--format", "json"]) == 0
    (printed,) = json.loads(capsys.readouterr().out)
    assert printed["shard"] == "shard-2"
    assert printed["env"] == assign(FEEDS[:10], 3)[2].env()


def test_the_command_refuses_a_shard_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--shards", "3", "--shard", "3", FEEDS[0]])
    assert exit_info.value.code == 2
    assert "--shard must be between 0 and 2" in capsys.readouterr().err
