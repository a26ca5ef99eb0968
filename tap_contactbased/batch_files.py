"""BATCH files of export rows: JSON Lines encoded in bulk, gzip at a fast level.

The SDK's batcher serialises record by record and gzips at level 9, about four times the
tap's CPU in RECORD mode. A file is written as `<name>.partial`, renamed once its chunk was
read whole, then announced before its rows are confirmed (README, "BATCH files instead of
RECORD messages"); names are built from safe parts only, files are their owner's only.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import re
import typing as t
import uuid

import msgspec
from isal import isal_zlib
from singer_sdk.contrib.msgspec import enc_hook

from tap_contactbased.errors import ConfigError
from tap_contactbased.redaction import clean, escape_controls
from tap_contactbased.sdk_internals import VERSION_COLUMN, storage_location

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from tap_contactbased.sdk_internals import BatchConfig

# JSON Lines of export rows (about 1 KB a row), compressed, per row: zlib at level 1 about
# 5 µs for a sixth of the size, level 6 12 µs, level 9 27 µs; ISA-L at level 1 1.2 µs for
# the same size as zlib's level 1.
GZIP_LEVEL = 1
# Encoded bytes compressed and written per call. Below the size from which the C library
# maps fresh memory for each buffer: with 1 MB blocks every block cost 256 page faults.
BLOCK_BYTES = 64 * 1024
PARTIAL_SUFFIX = ".partial"
# Longest alias or label in a file name; a longer one is cut and told apart by a hash.
MAX_NAME_PART = 64
UNSAFE_IN_NAMES = re.compile(r"[^A-Za-z0-9_.-]")

# The same encoding as the tap's RECORD messages (the SDK's msgspec writer).
_encoder = msgspec.json.Encoder(enc_hook=enc_hook, decimal_format="number")

Record = dict[str, t.Any]
Announce = t.Callable[[str, list[str]], None]  # (stream alias, manifest)


@contextlib.contextmanager
def owner_only() -> Iterator[None]:
    """Files and folders created inside are for their owner only (0600 and 0700).

    The process's umask, tightened for the while: it also covers the files of the SDK's
    own batcher, which opens them itself.
    """
    previous = os.umask(0o077)
    os.umask(previous | 0o077)
    try:
        yield
    finally:
        os.umask(previous)


def check_alias(alias: str) -> str:
    """Refuse a stream alias that could lead a file name out of its folder."""
    if "/" in alias or "\\" in alias or alias in (".", "..") or escape_controls(alias) != alias:
        msg = (
            f"The stream map alias '{clean(alias)}' cannot name a BATCH file: it holds a path "
            "separator or a control character. Rename the stream in stream_maps."
        )
        raise ConfigError(msg)
    return alias


def name_part(text: str) -> str:
    """`text` as part of a file name and of its URL: ASCII letters, digits and `-_.` only.

    Any other character becomes `_`, and a hash of the whole text keeps two texts apart (a
    percent-encoding would be decoded back into a `/` in the manifest's URL).
    """
    safe = UNSAFE_IN_NAMES.sub("_", text)
    if safe == text and len(text) <= MAX_NAME_PART:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return f"{safe[: MAX_NAME_PART - 13]}-{digest}"


def writes(config: BatchConfig) -> bool:
    """Whether these files can be written in `config`'s encoding (JSON Lines)."""
    encoding = config.encoding
    return encoding.format == "jsonl" and encoding.compression in {None, "gzip", "none"}


class _PartialFile:
    """One file while its chunk is read: `commit` renames it, `discard` removes it if it was not."""

    def __init__(self, fs: t.Any, path: str, name: str, *, gzip: bool, version: int | None) -> None:
        self.name = name  # the file's name under the storage root
        self.rows = 0
        # The record's closing brace becomes `,"_sdc_table_version":<version>}`.
        self._version_end = (
            None if version is None else b"," + _encoder.encode({VERSION_COLUMN: version})[1:]
        )
        self._fs = fs
        self._path = path
        self._partial = path + PARTIAL_SUFFIX
        self._buffer = bytearray()
        self._compressor = (
            isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, 31) if gzip else None
        )
        self._file = fs.open(self._partial, "wb", autocommit=True)
        self._ended = False

    def extend(self, records: Iterable[Record]) -> None:
        # One loop over all the records: a method call a record would cost a tenth of
        # encoding the record.
        buffer, encode_into, version_end = self._buffer, _encoder.encode_into, self._version_end
        rows = 0
        for record in records:
            encode_into(record, buffer, -1)
            if version_end is not None:
                # After "{" (a record without fields) the field needs no comma before it.
                buffer[-1:] = version_end if buffer[-2] != 0x7B else version_end[1:]
            buffer += b"\n"
            rows += 1
            if len(buffer) >= BLOCK_BYTES:
                self._write_buffer()
        self.rows += rows

    def _write_buffer(self) -> None:
        buffer = self._buffer
        self._file.write(buffer if self._compressor is None else self._compressor.compress(buffer))
        buffer.clear()

    def commit(self) -> None:
        self._write_buffer()
        if self._compressor is not None:
            self._file.write(self._compressor.flush())
        self._file.close()
        self._fs.mv(self._partial, self._path)
        self._ended = True

    def discard(self) -> None:
        if self._ended:
            return
        self._ended = True
        self._file.close()
        self._fs.rm(self._partial)


class BatchFiles:
    """Writes each chunk's records into one file per stream alias and announces it."""

    def __init__(
        self,
        config: BatchConfig,
        *,
        tap_name: str,
        announce: Announce,
        aliases: Iterable[str] = (),
        version: int | None = None,
    ) -> None:
        """Write files as `config` says; `announce` sends the BATCH message of a file.

        `aliases`, those the files will be written for, are checked now, before any export.
        """
        self._version = version
        for alias in aliases:
            check_alias(alias)
        self._storage = config.storage
        self._fs, self._root = storage_location(config.storage)
        self._gzip = config.encoding.compression == "gzip"
        self._announce = announce
        # Part of every name: a run that writes the same rows again never overwrites a
        # file an earlier run announced (its target may not have loaded it yet).
        self._name_start = f"{config.storage.prefix or ''}{tap_name}--"
        self._name_end = f"-{uuid.uuid4().hex[:12]}.jsonl{'.gz' if self._gzip else ''}"
        self.files = 0
        self.rows = 0

    def write(self, alias: str, records: Iterable[Record], label: str) -> int:
        """Write `records` of `alias` as one file named by `label`, announce it; how many."""
        file = self._open(alias, label)
        try:
            file.extend(records)
            return self._finish(alias, file)
        finally:
            file.discard()

    def write_mapped(self, mapped: Iterable[tuple[str, Record]], label: str) -> int:
        """Write `mapped` (stream alias, record) as one file per alias, each announced."""
        files: dict[str, _PartialFile] = {}
        try:
            for alias, record in mapped:
                file = files.get(alias)
                if file is None:
                    file = files[alias] = self._open(alias, label)
                file.extend((record,))
            return sum(self._finish(alias, file) for alias, file in files.items())
        finally:
            for file in files.values():
                file.discard()

    def _open(self, alias: str, label: str) -> _PartialFile:
        name = (
            f"{self._name_start}{name_part(check_alias(alias))}-{name_part(label)}{self._name_end}"
        )
        root = posixpath.normpath(self._root)
        path = posixpath.normpath(posixpath.join(root, name))
        if not path.startswith(root.rstrip("/") + "/"):
            msg = (
                "A BATCH file name would lead outside batch_config.storage.root; check "
                "batch_config.storage.prefix."
            )
            raise ConfigError(msg)
        return _PartialFile(self._fs, path, name, gzip=self._gzip, version=self._version)

    def _finish(self, alias: str, file: _PartialFile) -> int:
        if not file.rows:
            return 0  # every row of the chunk was past the delivery's last day: discarded
        file.commit()
        self._announce(alias, [self._storage.get_url(file.name)])
        self.files += 1
        self.rows += file.rows
        return file.rows
