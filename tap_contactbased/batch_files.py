"""BATCH files of export rows: JSON Lines encoded in bulk, gzip at a fast level.

The SDK's default batcher serialises record by record in Python and gzips at level 9,
which cost the tap about four times its CPU in RECORD mode. Here each record of an export
chunk (one page) is encoded by msgspec into a buffer, compressed by ISA-L at level 1 a
block at a time, and written straight into one file per stream alias, under the configured
`batch_config.storage` root and prefix. A versioned snapshot's records carry its version
in `_sdc_table_version`, where SDK targets keep a RECORD message's version (a BATCH message
has none), encoded once per file and appended to each record.

While its chunk is read, a file is written under its final name plus `.partial`; it is
renamed to its final name only once the chunk has been read whole, and a chunk whose reading
fails removes it. So no file is ever under a final name half written, memory holds no page,
and whatever a kill leaves behind is under the same root and prefix as the files, for the
clean-up the README describes. The caller announces each file (a BATCH message) before it
confirms the chunk's rows in the state.

File names are built from safe parts only: a stream alias with a path separator or a
control character is refused, other odd characters of an alias or an export id are replaced
(and a hash added), and the joined path must stay under the storage root. Files hold contact
data: they are written under `owner_only`, so only their owner can read them (0600).
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

    Any other character becomes `_`, and then a hash of the whole text keeps two texts
    apart (no percent-encoding: the manifest's URL would decode it back into a `/`).
    """
    safe = UNSAFE_IN_NAMES.sub("_", text)
    if safe == text and len(text) <= MAX_NAME_PART:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return f"{safe[: MAX_NAME_PART - 13]}-{digest}"


def writes(config: BatchConfig) -> bool:
    """Whether these files can be written in `config`'s encoding (JSON Lines)."""
    return config.encoding.format == "jsonl" and config.encoding.compression in {
        None,
        "gzip",
        "none",
    }


class _PartialFile:
    """One file while its chunk is read: records encoded, compressed and written as they come.

    Written as `<path>.partial`; `commit` renames it to `path`, `discard` removes it (and
    does nothing once the file was committed).
    """

    def __init__(self, fs: t.Any, path: str, *, gzip: bool, version: int | None) -> None:
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

    def add(self, record: Record) -> None:
        self.extend((record,))

    def extend(self, records: Iterable[Record]) -> None:
        # One loop over all the records, not `add` per record: a method call a record would
        # cost a tenth of encoding the record.
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

        `aliases` are the stream aliases the files will be written for, checked now,
        before anything is exported. `version`: the version each record carries, if any.
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
        """Write `records` of the stream `alias` as one file and announce it.

        `label` names the chunk in the file name. Returns the number of records written.
        """
        file = self._open(alias, label)
        try:
            file.extend(records)
            return self._finish(alias, label, file)
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
                file.add(record)
            return sum(self._finish(alias, label, file) for alias, file in files.items())
        finally:
            for file in files.values():
                file.discard()

    def _filename(self, alias: str, label: str) -> str:
        return (
            f"{self._name_start}{name_part(check_alias(alias))}-{name_part(label)}{self._name_end}"
        )

    def _open(self, alias: str, label: str) -> _PartialFile:
        root = posixpath.normpath(self._root)
        path = posixpath.normpath(posixpath.join(root, self._filename(alias, label)))
        if not path.startswith(root.rstrip("/") + "/"):
            msg = (
                "A BATCH file name would lead outside batch_config.storage.root; check "
                "batch_config.storage.prefix."
            )
            raise ConfigError(msg)
        return _PartialFile(self._fs, path, gzip=self._gzip, version=self._version)

    def _finish(self, alias: str, label: str, file: _PartialFile) -> int:
        if not file.rows:
            return 0  # every row of the chunk was past the delivery's last day: discarded
        file.commit()
        self._announce(alias, [self._storage.get_url(self._filename(alias, label))])
        self.files += 1
        self.rows += file.rows
        return file.rows
