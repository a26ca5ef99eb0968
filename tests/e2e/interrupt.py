"""Hold the local API's answer to one page read: a precise moment to kill a run at."""

from __future__ import annotations

import dataclasses
import threading

from tests.fake_api import FakeContactBased
from tests.fake_api.faults import Decision


class PageReads:
    """Counts the page reads the API receives, and holds its answer to one of them.

    Held, the tap is blocked on that answer with its earlier rows and state written out:
    a precise moment, while the export is being read, to kill it at.
    """

    def __init__(self, api: FakeContactBased, hold: int, seconds: float) -> None:
        """Wrap the API's fault engine; the `hold`-th page read waits `seconds` more."""
        self.count = 0
        self.held = threading.Event()
        self._lock = threading.Lock()
        decide = api.fault_engine.decide

        def deciding(
            *,
            download: bool = False,
            page: bool = False,
            endpoint: str | None = None,
            page_number: object = None,
        ) -> Decision:
            decision = decide(
                download=download, page=page, endpoint=endpoint, page_number=page_number
            )
            if not page:
                return decision
            with self._lock:
                self.count += 1
                number = self.count
            if number != hold:
                return decision
            self.held.set()
            return dataclasses.replace(decision, delay=decision.delay + seconds)

        api.fault_engine.decide = deciding  # type: ignore[method-assign]
