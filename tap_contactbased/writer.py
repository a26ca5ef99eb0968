"""The Singer message writer: the SDK's msgspec writer, flushing on state, not per record.

The SDK's `MsgSpecWriter` writes and flushes stdout for every message: one system call per
record (and stdout itself is unbuffered where `PYTHONUNBUFFERED` is set, as in many
containers). This writer collects records in a buffer of its own and writes them out when
it is full and before every other message, STATE first of all, so that order is kept and a
state never reaches the target before the records it confirms. A run killed with records
still buffered loses only records that no state had confirmed yet.
"""

from __future__ import annotations

import atexit
import sys
import typing as t

from singer_sdk.contrib.msgspec import MsgSpecWriter, encoder, serialize_jsonl
from singer_sdk.singerlib import RecordMessage

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from singer_sdk.singerlib.encoding.simple import Message

BUFFER_BYTES = 256 * 1024


class RecordBufferingWriter(MsgSpecWriter):
    """msgspec-encoded messages; records are buffered, every other message flushes."""

    def __init__(self) -> None:
        """Start with an empty buffer, written out at exit at the latest."""
        super().__init__()
        self._pending = bytearray()
        self._frame: tuple[t.Any, ...] | None = None
        self._head = self._tail = b""
        atexit.register(self.flush)

    @override
    def write_message(self, message: Message) -> None:
        """Buffer a record; write anything else at once, after what was buffered."""
        if type(message) is RecordMessage:
            self._append_record(message)
            if len(self._pending) >= BUFFER_BYTES:
                self.flush()
            return
        self._pending += self.format_message(message)
        self.flush()

    def _append_record(self, message: RecordMessage) -> None:
        """The bytes `format_message` would give, with the record encoded in place.

        Only the record differs from one message to the next: the fields around it are
        encoded once per stream, version and extraction time, by the SDK's own encoder.
        """
        frame = (message.stream, message.version, message.time_extracted)
        if frame != self._frame:
            self._frame = frame
            empty = serialize_jsonl({**message.to_dict(), "record": {}})
            head, tail = bytes(empty).split(b'"record":{}', 1)
            self._head, self._tail = head + b'"record":', tail
        pending = self._pending
        pending += self._head
        encoder.encode_into(message.record, pending, -1)
        pending += self._tail

    def flush(self) -> None:
        """Write the buffered messages to stdout (resolved now, so redirections apply)."""
        if self._pending:
            sys.stdout.buffer.write(self._pending)
            self._pending.clear()
        sys.stdout.flush()
