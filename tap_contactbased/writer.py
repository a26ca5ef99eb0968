"""The Singer message writer: the SDK's msgspec writer, flushing on state, not per record.

The SDK's `MsgSpecWriter` flushes stdout for every message: a system call per record. This
writer buffers records and writes them out when the buffer is full and before every other
message, so a state never reaches the target before the records it confirms (a run killed
loses only records no state confirmed).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import os
import sys
import typing as t
import weakref

from singer_sdk.contrib.msgspec import MsgSpecWriter, encoder, serialize_jsonl
from singer_sdk.singerlib import RecordMessage
from typing_extensions import override

from tap_contactbased.errors import TargetStoppedReadingError

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk.singerlib.encoding.simple import Message

BUFFER_BYTES = 256 * 1024


class RecordBufferingWriter(MsgSpecWriter):
    """msgspec-encoded messages; records are buffered, every other message flushes."""

    def __init__(self) -> None:
        super().__init__()
        self._pending = bytearray()
        self._frame: tuple[t.Any, ...] | None = None
        self._head = self._tail = b""
        self._gone = False  # the target stopped reading
        # Only onto the stdout this writer was made for: a tap run inside another program
        # (a test under capture) must not write its leftovers to the program's own output.
        self._stdout = sys.stdout
        atexit.register(_flush_at_exit, weakref.ref(self))

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

        The fields around the record are encoded once per stream, version and extraction
        time by the SDK's own encoder; no message object is made per record.
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
        if self._gone:
            self._pending.clear()
            raise TargetStoppedReadingError
        try:
            if self._pending:
                sys.stdout.buffer.write(self._pending)
                self._pending.clear()
            sys.stdout.flush()
        except BrokenPipeError:
            self._pending.clear()
            self._gone = True
            # Stdout to the null device: no later flush trips over the closed pipe again.
            with contextlib.suppress(OSError, ValueError):  # a stdout without a descriptor
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, sys.stdout.fileno())
                os.close(null)
            raise TargetStoppedReadingError from None


def _flush_at_exit(ref: weakref.ReferenceType[RecordBufferingWriter]) -> None:
    """Write what is left, unless the target is gone or stdout is another one by now.

    What is left at exit was never confirmed by a state: worth sending, never a second error.
    """
    writer = ref()
    if writer is None or writer._gone or sys.stdout is not writer._stdout:
        return
    with contextlib.suppress(TargetStoppedReadingError):
        writer.flush()
