"""A tap killed at any point resumes the same export: no row lost, no second export."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest

from tests.conftest import YESTERDAY, make_config
from tests.export_checks import by_key, delivered_rows
from tests.fake_api import FakeContactBased
from tests.kill_harness import (
    after_messages,
    between_pages,
    mid_page,
    run_with_kills,
    while_building,
)
from tests.singer_run import selected_catalog

PAGE_SIZE = 1000


@pytest.mark.parametrize("read_mode", ["csv", "pages"])
def test_killed_at_each_kind_of_point_finishes_the_same_exports(
    paged_api: FakeContactBased, tmp_path: Path, read_mode: str
) -> None:
    config = make_config(paged_api, read_mode=read_mode, page_size=PAGE_SIZE)
    catalog = selected_catalog(config, ["export_rows"])
    kill_points = [
        while_building(),
        between_pages(),
        mid_page(137),
        after_messages(600),
        mid_page(500),
    ]

    campaign = run_with_kills(config, catalog, kill_points, tmp_path)

    assert campaign.kills == len(kill_points)
    assert len(paged_api.created_exports) == len(config["feed_ids"])
    expected: dict[tuple[str, int], dict[str, t.Any]] = {}
    for export_id in paged_api.created_exports:
        expected.update(delivered_rows(paged_api, export_id, YESTERDAY))
    records = campaign.records("export_rows")
    assert by_key(records) == expected
    # Re-sent rows come only from pages the last state had not confirmed.
    assert len(records) - len(expected) <= campaign.kills * PAGE_SIZE
