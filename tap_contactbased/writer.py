"""The Singer message writer: the SDK's msgspec writer, flushing on state, not per record.

The SDK's `MsgSpecWriter` flushes stdout after every message, one system call per record.
Records may wait in the buffer: only a STATE message confirms them, and every message that
is not a record (STATE first of all) flushes what came before it, in order. A run killed
with records still buffered loses only records no state had confirmed yet.
"""

from __future__ import annotations

import sys
import typing as t

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import RecordMessage

if t.TYPE_CHECKING:
    from singer_sdk.singerlib.encoding.simple import Message


class StateFlushingWriter(MsgSpecWriter):
    """msgspec-encoded messages; stdout is flushed by every message but RECORD."""

    def write_message(self, message: Message) -> None:
        """Write one message; flush unless it is a record."""
        sys.stdout.buffer.write(self.format_message(message))
        if not isinstance(message, RecordMessage):
            sys.stdout.flush()
