"""BATCH files of export rows: JSON Lines encoded in bulk, gzip at a fast level.

The SDK's default batcher serialises record by record in Python and gzips at level 9,
which cost the tap 2.4 times the CPU of RECORD mode. Here the records of one export chunk
(one page) are encoded by msgspec a thousand at a time, compressed at level 1 (level 9
costs five times as much for files a third smaller), and written as one file per stream
alias, under the configured `batch_config.storage` root and prefix.

A file is written whole once its chunk has been read: a chunk whose reading fails leaves
no file behind, and no storage ever holds half a file under its final name. The caller
announces each file (a BATCH message) before it confirms the chunk's rows in the state.
"""

from __future__ import annotations

import typing as t
import uuid
import zlib

import msgspec
from singer_sdk.contrib.msgspec import enc_hook

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from tap_contactbased.sdk_internals import BatchConfig

# Level 1 and 2 cost the same (about 5 µs a row of 1 KB) and both shrink JSON Lines of
# export rows about sixfold; level 6 costs 2.5 times as much, level 9 five times.
GZIP_LEVEL = 1
# Records encoded per call: enough to leave the per-call cost behind, few enough that the
# typed records waiting for it stay a small part of the memory.
ENCODE_ROWS = 1000

# The same encoding as the tap's RECORD messages (the SDK's msgspec writer).
_encoder = msgspec.json.Encoder(enc_hook=enc_hook, decimal_format="number")

Record = dict[str, t.Any]
Announce = t.Callable[[str, list[str]], None]  # (stream alias, manifest)


def writes(config: BatchConfig) -> bool:
    """Whether these files can be written in `config`'s encoding (JSON Lines)."""
    return config.encoding.format == "jsonl" and config.encoding.compression in {
        None,
        "gzip",
        "none",
    }


class _FileContent:
    """The bytes of one file, encoded and compressed as records arrive."""

    def __init__(self, *, gzip: bool) -> None:
        self.rows = 0
        self._waiting: list[Record] = []
        self._parts: list[bytes] = []
        self._compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31) if gzip else None

    def add(self, record: Record) -> None:
        self._waiting.append(record)
        if len(self._waiting) >= ENCODE_ROWS:
            self._encode()

    def _encode(self) -> None:
        if not self._waiting:
            return
        data = _encoder.encode_lines(self._waiting)
        self.rows += len(self._waiting)
        self._waiting.clear()
        self._parts.append(data if self._compressor is None else self._compressor.compress(data))

    def finish(self) -> list[bytes]:
        self._encode()
        if self._compressor is not None:
            self._parts.append(self._compressor.flush())
        return self._parts


class BatchFiles:
    """Writes each chunk's records into one file per stream alias and announces it."""

    def __init__(self, config: BatchConfig, *, tap_name: str, announce: Announce) -> None:
        """Write files as `config` says; `announce` sends the BATCH message of a file."""
        self._storage = config.storage
        self._gzip = config.encoding.compression == "gzip"
        self._announce = announce
        # Part of every name: a run that writes the same rows again never overwrites a
        # file an earlier run announced (its target may not have loaded it yet).
        self._name_start = f"{config.storage.prefix or ''}{tap_name}--"
        self._name_end = f"-{uuid.uuid4().hex[:12]}.jsonl{'.gz' if self._gzip else ''}"
        self.files = 0
        self.rows = 0

    def write(self, mapped: Iterable[tuple[str, Record]], label: str) -> int:
        """Write `mapped` (stream alias, record) as one file per alias, each announced.

        `label` names the chunk in the file names. Returns the number of records written.
        """
        contents: dict[str, _FileContent] = {}
        for alias, record in mapped:
            content = contents.get(alias)
            if content is None:
                content = contents[alias] = _FileContent(gzip=self._gzip)
            content.add(record)
        written = 0
        for alias, content in contents.items():
            parts = content.finish()
            filename = f"{self._name_start}{alias}-{label}{self._name_end}"
            with self._storage.open(filename, "wb") as file:
                file.writelines(parts)
            self._announce(alias, [self._storage.get_url(filename)])
            self.files += 1
            written += content.rows
        self.rows += written
        return written
