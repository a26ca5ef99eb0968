"""The base of the streams that share one run: settings, receipt, contacts, checkpoints."""

from __future__ import annotations

import logging
import typing as t

from tap_contactbased.client import ContactBasedStream
from tap_contactbased.sdk_internals import write_state_now

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from singer_sdk import Tap

    from tap_contactbased.run import RunContext
    from tap_contactbased.settings import Settings


class RunStream(ContactBasedStream):
    """A stream that shares the run's context with the others."""

    def __init__(self, tap: Tap, run: RunContext, schema: dict[str, t.Any] | None = None) -> None:
        """Create the stream for `tap`, sharing `run`."""
        self.run = run
        super().__init__(tap, schema=schema)

    @property
    def settings(self) -> Settings:
        """The typed settings of the run."""
        return self.run.settings

    def receipt_on_failure(self, records: Iterator[dict[str, t.Any]]) -> Iterator[dict[str, t.Any]]:
        """`records`, with the cost receipt logged if they end in a failure or interruption.

        A failed or interrupted run must still say what it created and reserved.
        """
        try:
            yield from records
        except BaseException:
            self.run.receipt.log_once(logging.getLogger(self.tap_name))
            raise

    def write_checkpoint(self) -> None:
        """Emit a STATE message now.

        In BATCH mode the SDK writes state after each batch file instead: a state written
        earlier would confirm rows still waiting in an unwritten file.
        """
        if self.get_batch_config(self.config) is None:
            write_state_now(self)
