"""The local ContactBased API as a separate process, with one ready export to read."""

from __future__ import annotations

import datetime as dt
import math
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import requests

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "cbk_test_key"
FEED_INDEX = 0  # "Cloud Security Buyers": its max_lookback_days (90) allows 30 days
LOOKBACK_DAYS = 30
PAGE_SIZE = 10_000
BUNDLES = ("emails", "phones")
EXTRA_COLUMNS = ("crm_owner", "lead_source")
CONTACT_SHARE = 0.9  # the fake gives 9 rows in 10 a contact_id; bundles keep only those


class BenchError(RuntimeError):
    """The benchmark cannot trust its figures: it stops loudly."""


@dataclass(frozen=True)
class ReadyExport:
    """The export that both programs read."""

    export_id: str
    feed_id: str
    total_rows: int
    total_pages: int
    page_size: int
    columns: tuple[str, ...]


def tap_config(api_url: str, export: ReadyExport, read_mode: str) -> dict[str, Any]:
    """Settings that make the tap read the ready export in `read_mode` and emit all its rows.

    They are the export's own options, so the tap reuses it instead of creating one.
    """
    return {
        "api_url": api_url,
        "api_key": API_KEY,
        "feed_ids": [export.feed_id],
        "lookback_days": LOOKBACK_DAYS,
        "export_mode": "snapshot",
        "export_bundles": list(BUNDLES),
        "read_mode": read_mode,
        "page_size": export.page_size,
    }


def rows_per_day(rows: int) -> int:
    """Rows per day of the feed so that the 30-day export holds about `rows` rows."""
    return max(1, math.ceil(rows / LOOKBACK_DAYS / CONTACT_SHARE))


class FakeApi:
    """`python -m tests.fake_api` started with one ready export; stopped on exit."""

    def __init__(self, *, rows: int, seed: int, log_path: Path, page_size: int = PAGE_SIZE) -> None:
        """Describe the fake; `start()` runs it."""
        self.rows = rows
        self.page_size = page_size
        self.seed = seed
        self.log_path = log_path
        self.url = ""
        self.export: ReadyExport | None = None
        self._process: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None
        self._session = requests.Session()
        self._session.headers["X-API-Key"] = API_KEY

    def command(self) -> list[str]:
        """The command line of the fake."""
        today = dt.datetime.now(dt.timezone.utc).date()  # fixed, so midnight changes nothing
        return [
            sys.executable,
            "-m",
            "tests.fake_api",
            "--seed",
            str(self.seed),
            "--feed-count",
            "1",
            "--rows-per-day",
            str(rows_per_day(self.rows)),
            "--today",
            today.isoformat(),
            "--today-fraction",
            "1",
            "--build-seconds",
            "0",
            "--credits-total",
            str(max(10 * self.rows, 1_000_000)),
            "--extra-columns",
            ",".join(EXTRA_COLUMNS),
            "--export-bundles",
            ",".join(BUNDLES),
            "--export-page-size",
            str(self.page_size),
            "--ready-export",
            f"{FEED_INDEX}:{LOOKBACK_DAYS}",
        ]

    def start(self) -> FakeApi:
        """Start the fake and wait for its ready export."""
        self._log = self.log_path.open("w", encoding="utf-8")
        self._process = subprocess.Popen(
            self.command(), cwd=ROOT, stdout=subprocess.PIPE, stderr=self._log, text=True
        )
        assert self._process.stdout is not None
        self.url = self._line().strip()
        words = self._line().split()
        if words[0::2] != ["export", "feed", "rows"]:
            raise BenchError(f"unexpected line from the fake API: {' '.join(words)!r}")
        summary = self.summary(words[1])
        self.export = ReadyExport(
            export_id=words[1],
            feed_id=words[3],
            total_rows=int(words[5]),
            total_pages=int(summary["total_pages"]),
            page_size=int(summary["page_size"]),
            columns=tuple(summary["columns"]),
        )
        return self

    def _line(self) -> str:
        assert self._process is not None
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise BenchError(f"the fake API did not start; see {self.log_path}")
        return line

    def stop(self) -> None:
        """Stop the fake (SIGTERM; it exits 0)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """Kill the fake at once (SIGKILL): it answers nothing more, and refuses connections."""
        assert self._process is not None
        self._process.kill()
        self._process.wait()

    def __enter__(self) -> FakeApi:
        """Start."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop."""
        self.stop()

    @property
    def pid(self) -> int:
        """Process id of the fake."""
        assert self._process is not None
        return self._process.pid

    def cpu_seconds(self) -> float | None:
        """CPU time (user + sys) the fake has used so far; None where /proc is missing."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        return ticks / os.sysconf("SC_CLK_TCK")

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """POST to the API, failing on an error status."""
        response = self._session.post(self.url + path, json=body, timeout=60)
        response.raise_for_status()
        return response.json()

    def summary(self, export_id: str) -> dict[str, Any]:
        """The export summary as the API lists it."""
        items = self.post("/intent/feeds/exports/list", {"export_ids": [export_id]})["items"]
        if len(items) != 1:
            raise BenchError(f"the fake API does not list export {export_id}")
        return dict(items[0])

    def export_ids(self) -> list[str]:
        """Every export the API holds (a client-created one would show up here)."""
        ids: list[str] = []
        page = 1
        while True:
            answer = self.post("/intent/feeds/exports/list", {"page": page, "page_size": 100})
            ids.extend(item["export_id"] for item in answer["items"])
            if page * 100 >= answer["total"]:
                return ids
            page += 1

    def credits(self) -> dict[str, Any]:
        """GET /organization/credits."""
        response = self._session.get(self.url + "/organization/credits", timeout=60)
        response.raise_for_status()
        return dict(response.json())

    def check_nothing_created(self, after: str) -> None:
        """Fail loudly when anything but the ready export exists or credits moved."""
        assert self.export is not None
        ids = self.export_ids()
        if ids != [self.export.export_id]:
            created = [i for i in ids if i != self.export.export_id]
            raise BenchError(f"{after} created export(s) {created}: the figures are not comparable")
        credits = self.credits()
        if credits["records_reserved"] != 0 or credits["records_used"] != self.export.total_rows:
            raise BenchError(f"{after} changed the records credits: {credits}")
