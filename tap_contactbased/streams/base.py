"""The base of the streams that share one run: settings, receipt, contacts, checkpoints."""

from __future__ import annotations

import typing as t

from tap_contactbased.client import ContactBasedStream
from tap_contactbased.sdk_internals import write_state_now

if t.TYPE_CHECKING:
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
        return self.run.settings

    def write_checkpoint(self) -> None:
        """Emit a STATE message now.

        In BATCH mode the SDK writes state after each batch file instead: a state written
        earlier would confirm rows still waiting in an unwritten file.
        """
        if self.get_batch_config(self.config) is None:
            write_state_now(self)
