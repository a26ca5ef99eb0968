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
import datetime
import sys
import typing as t

from singer_sdk.contrib.msgspec import MsgSpecWriter, encoder, serialize_jsonl
from singer_sdk.singerlib import RecordMessage

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from collections.abc import Iterable

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
            self.write_records(
                message.stream, message.version, message.time_extracted, (message.record,)
            )
            return
        self._pending += self.format_message(message)
        self.flush()

    def write_records(
        self,
        stream: str,
        version: int | None,
        time_extracted: datetime.datetime | None,
        records: Iterable[dict[str, t.Any]],
    ) -> int:
        """RECORD messages of `records`, as `write_message` writes them; how many.

        Only the record differs from one message to the next: the fields around it are
        encoded once per stream, version and extraction time, by the SDK's own encoder, and
        each record is encoded in place between them. No message object is made per record.
        """
        frame = (stream, version, time_extracted)
        if frame != self._frame:
            self._frame = frame
            message = RecordMessage(
                stream=stream, record={}, version=version, time_extracted=time_extracted
            )
            head, tail = bytes(serialize_jsonl(message.to_dict())).split(b'"record":{}', 1)
            self._head, self._tail = head + b'"record":', tail
        head, tail, pending = self._head, self._tail, self._pending
        count = 0
        for record in records:
            pending += head
            encoder.encode_into(record, pending, -1)
            pending += tail
            count += 1
            if len(pending) >= BUFFER_BYTES:
                self.flush()
        return count

    def flush(self) -> None:
        """Write the buffered messages to stdout (resolved now, so redirections apply)."""
        if self._pending:
            sys.stdout.buffer.write(self._pending)
            self._pending.clear()
        sys.stdout.flush()
