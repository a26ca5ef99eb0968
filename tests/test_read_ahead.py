"""The read-ahead body of a CSV download (`bodies.ReadAhead`), on bodies held in memory.

Every byte but NUL comes out once and in order however far the reader lags (a chunk of NUL
bytes only is not the end of the body); a line is refused only
when it is longer than the limit, wherever the chunks happen to cut it; closing the body
ends its thread.
"""

from __future__ import annotations

import io
import queue
import subprocess
import sys
import threading
import typing as t

import pytest

from tap_contactbased import bodies
from tap_contactbased.answers import BadAnswer
from tap_contactbased.bodies import ReadAhead

LIMIT = 4
REFUSAL = "has a line longer than 4 bytes (MAX_CSV_LINE_BYTES)"
ENDINGS = [
    pytest.param(b"\n", id="LF"),
    pytest.param(b"\r\n", id="CRLF"),
    pytest.param(b"\r", id="CR"),
]
# One byte per chunk, a line end first in a chunk, a line cut across chunks, whole lines.
CHUNKS = [1, 3, 4, 5, 64]


def read_all(body: bytes, **options: int) -> bytes:
    reader = ReadAhead(io.BytesIO(body), **options)
    try:
        return reader.read()
    finally:
        reader.close()


class Endless:
    """A body that never ends, as a stalled or hostile server's."""

    def read(self, size: int) -> bytes:
        return b"x" * size


@pytest.mark.parametrize("chunk_bytes", CHUNKS)
@pytest.mark.parametrize("ending", ENDINGS)
def test_lines_of_exactly_the_limit_are_read_whole(ending: bytes, chunk_bytes: int) -> None:
    body = b"abcd" + ending + b"efgh" + ending + b"ijkl"

    assert read_all(body, chunk_bytes=chunk_bytes, line_limit=LIMIT) == body


@pytest.mark.parametrize("chunk_bytes", CHUNKS)
@pytest.mark.parametrize("ending", ENDINGS)
def test_a_line_one_byte_past_the_limit_is_refused(ending: bytes, chunk_bytes: int) -> None:
    # The long line is the last: a chunk is checked by the bytes after its last line end,
    # so a line ending inside a chunk may pass by up to a chunk (256 KiB against 8 MiB):
    # the memory stays bounded, which is what the limit is for.
    body = b"abcd" + ending + b"efghi"

    with pytest.raises(BadAnswer) as refused:
        read_all(body, chunk_bytes=chunk_bytes, line_limit=LIMIT)

    assert str(refused.value) == REFUSAL


def test_every_byte_comes_once_and_in_order_while_the_queue_is_full() -> None:
    # One byte per chunk and room for one chunk: the thread waits on the reader at every byte.
    body = bytes(range(1, 256)) * 8

    assert read_all(body, chunk_bytes=1, depth=1) == body


def test_a_chunk_that_finds_no_room_for_longer_than_one_wait_is_not_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found_no_room = threading.Event()

    class Watched(queue.Queue[t.Any]):
        def put(self, item: t.Any, block: bool = True, timeout: float | None = None) -> None:
            try:
                super().put(item, block, timeout)
            except queue.Full:
                found_no_room.set()
                raise

    monkeypatch.setattr(bodies, "_PUT_WAIT_SECONDS", 0.001)
    monkeypatch.setattr(queue, "Queue", Watched)
    reader = ReadAhead(io.BytesIO(b"abcdef"), chunk_bytes=2, depth=1)

    # Nothing is read until the thread has waited out a put with the queue full.
    assert found_no_room.wait(timeout=30)
    assert reader.read() == b"abcdef"
    reader.close()


def test_a_chunk_of_nul_bytes_only_does_not_end_the_body() -> None:
    reader = ReadAhead(io.BytesIO(b"\x00\x00ab\x00\x00\x00cd"), chunk_bytes=2)

    assert reader.read() == b"abcd"
    assert reader.nul_bytes == 5
    reader.close()


class BrokenAfterOneChunk:
    """A body whose connection breaks after its first chunk."""

    def __init__(self) -> None:
        self.reads = 0

    def read(self, size: int) -> bytes:
        self.reads += 1
        if self.reads > 1:
            raise ConnectionResetError("the connection broke")
        return b"ab"


def test_a_body_that_broke_reads_as_ended_after_the_error() -> None:
    reader = ReadAhead(BrokenAfterOneChunk(), chunk_bytes=2)

    assert reader.read(2) == b"ab"
    with pytest.raises(ConnectionResetError):
        reader.read(2)
    assert reader.read(2) == b""  # the thread is gone: nothing more will come, nor block
    reader.close()
    assert reader.closed


def test_closing_the_body_ends_its_thread_though_the_body_never_ends() -> None:
    before = set(threading.enumerate())
    reader = ReadAhead(Endless(), chunk_bytes=16, depth=1)
    assert reader.read(16) == b"x" * 16
    (thread,) = set(threading.enumerate()) - before

    reader.close()

    thread.join(timeout=30)  # a bound, not a wait: the thread ends within 0.1 s of the close
    assert not thread.is_alive()


def test_a_read_blocked_forever_does_not_keep_the_process_from_ending() -> None:
    """A run that stops while its download hangs (a stalled server) must still exit."""
    program = (
        "import threading\n"
        "from tap_contactbased.bodies import ReadAhead\n"
        "class Stalled:\n"
        "    def read(self, size):\n"
        "        threading.Event().wait()\n"
        "ReadAhead(Stalled())\n"
        "print('ended')\n"
    )

    # A bound, not a wait: without a daemon thread the interpreter would wait on it for ever.
    ended = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )

    assert ended.stdout == "ended\n"
