"""Response bodies read ahead by a thread, so that the network and the parsing overlap.

A background thread reads the body in chunks into a bounded queue while the stream parses
and emits what came before; at most `depth` chunks wait in memory, so a body of any size
costs a few megabytes. NUL bytes are dropped on the way (in UTF-8 a NUL byte is only ever
the NUL character): they have no place in text and break warehouse loads. With a line limit,
a line longer than that stops the reading: whoever reads lines would hold it whole.
"""

from __future__ import annotations

import io
import queue
import threading
import typing as t

from tap_contactbased import limits
from tap_contactbased.answers import BadAnswer

CHUNK_BYTES = 256 * 1024
DEPTH = 8
_END = object()
_PUT_WAIT_SECONDS = 0.1


class ReadAhead(io.RawIOBase):
    """A readable binary stream over `source`, filled by a background thread."""

    def __init__(
        self,
        source: t.Any,
        *,
        chunk_bytes: int = CHUNK_BYTES,
        depth: int = DEPTH,
        line_limit: int | None = None,
    ) -> None:
        """Start reading `source` (anything with `read(n)`) ahead of the reader."""
        super().__init__()
        self._source = source
        self._chunk_bytes = chunk_bytes
        self._line_limit = line_limit
        self._line_bytes = 0  # of the line not yet ended, read so far
        self._queue: queue.Queue[t.Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._pending = memoryview(b"")
        self._finished = False
        self.nul_bytes = 0
        self._thread = threading.Thread(
            target=self._pump, name="contactbased-read-ahead", daemon=True
        )
        self._thread.start()

    def _pump(self) -> None:
        try:
            while not self._stop.is_set():
                data = self._source.read(self._chunk_bytes)
                if not data:
                    break
                if self._line_limit is not None:
                    self._check_line(data, self._line_limit)
                self._put(data)
        except BaseException as exc:  # handed to the reader, which decides what it means
            self._put(exc)
            return
        self._put(_END)

    def _check_line(self, data: bytes, limit: int) -> None:
        """Count the bytes since the last line end (CR or LF), at C speed per chunk."""
        end = max(data.rfind(b"\n"), data.rfind(b"\r"))
        self._line_bytes = self._line_bytes + len(data) if end < 0 else len(data) - end - 1
        if self._line_bytes > limit:
            msg = f"has a line longer than {limits.size_text(limit)} (MAX_CSV_LINE_BYTES)"
            raise BadAnswer(msg)

    def _put(self, item: t.Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_PUT_WAIT_SECONDS)
            except queue.Full:
                continue
            return

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: t.Any) -> int:
        # A chunk of NUL bytes only leaves nothing to copy, and 0 would say the body ended.
        while not self._pending:
            if self._finished:
                return 0
            item = self._queue.get()
            if item is _END:
                self._finished = True
                return 0
            if isinstance(item, BaseException):
                self._finished = True
                raise item
            if b"\x00" in item:
                self.nul_bytes += item.count(b"\x00")
                item = item.replace(b"\x00", b"")
            self._pending = memoryview(item)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        """Stop the thread; the caller closes the response, which ends a blocked read."""
        self._stop.set()
        super().close()


def text_stream(body: ReadAhead) -> io.TextIOWrapper:
    """The body as UTF-8 text with line endings kept, as the csv module needs them.

    A byte-order mark some CSV writers put first is dropped: it would be part of the first
    column's name.
    """
    return io.TextIOWrapper(io.BufferedReader(body, CHUNK_BYTES), encoding="utf-8-sig", newline="")
