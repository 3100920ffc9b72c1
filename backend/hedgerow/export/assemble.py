"""Joining the parts of a release into its published files, part by part in tree order.

Every byte of a release file passes through `HashedFile` on its way in, so each file's
sha256 (for the manifest) is known when the last part is joined: hashing 1.5 GB after the
last part took a second of one core at the end of a 1M-message export, while the joining
itself runs beside the workers. `Writeback` meanwhile asks the kernel to write the joined
parts to disk, so that the fsync before publishing has little left to wait for.

- JSON Lines: the parts are appended as they are.
- trees.jsonl.gz: each part is a raw deflate stream ended by a sync flush; between one
  gzip header and one trailer they make a single ordinary gzip member, whose CRC-32 is
  combined from the parts' (`crc32_combine`), as pigz does. Readers that stop after the
  first member of a multi-member file still read every tree.
- messages.parquet: the parts' Arrow record batches are cut into row groups of exactly
  `PARQUET_BATCH_ROWS` rows, each made contiguous first, so the file is the same byte for
  byte however the trees were split into parts.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from isal import isal_zlib

from hedgerow.export.message_rows import MESSAGES_SCHEMA
from hedgerow.export.publish import fsync_path
from hedgerow.export.writers import (
    GZIP_LEVEL,
    MESSAGES_FILE,
    PARQUET_BATCH_ROWS,
    TEXT_FILES,
    TREES_FILE,
    PartOutcome,
    ReleaseStats,
    part_file,
)

COPY_CHUNK_BYTES = 1 << 30
# Reads for hashing (and copies where the kernel cannot copy).
READ_CHUNK_BYTES = 1 << 20
_GZIP_FNAME_FLAG = 0x08
# The gzip header's "extra flags" for the fastest compression, as the gzip module writes.
_GZIP_FASTEST = 4
_GZIP_UNKNOWN_OS = 255


def gzip_header(name: str, mtime: int) -> bytes:
    return (
        b"\x1f\x8b\x08"
        + bytes([_GZIP_FNAME_FLAG])
        + struct.pack("<I", mtime)
        + bytes([_GZIP_FASTEST, _GZIP_UNKNOWN_OS])
        + name.encode("latin-1")
        + b"\x00"
    )


def gzip_end(crc32: int, length: int) -> bytes:
    """The last (empty, final) deflate block and the member's trailer."""
    last_block = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS).flush(
        isal_zlib.Z_FINISH
    )
    return last_block + struct.pack("<II", crc32 & 0xFFFFFFFF, length & 0xFFFFFFFF)


class HashedFile:
    """A release file being written: appends go to the file and into its sha256."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0
        self._digest = hashlib.sha256()
        self._handle = path.open("wb", buffering=0)
        self._buffer = bytearray(READ_CHUNK_BYTES)

    def write(self, data: Any) -> int:
        self._digest.update(data)
        return self._write_all(data)

    def _write_all(self, data: Any) -> int:
        """Write every byte of `data`: an unbuffered write may take only part of it."""
        view = memoryview(data).cast("B")
        written = len(view)
        while view:
            view = view[self._handle.write(view) :]
        self.size += written
        return written

    def append_file(self, source: Path) -> None:
        """Copy `source` to the end of this file and delete it. The source is read once
        for the hash; the copy is the kernel's (`copy_file_range`), which costs a fraction
        of writing the bytes back from this process."""
        view = memoryview(self._buffer)
        with source.open("rb", buffering=0) as reader:
            while count := reader.readinto(self._buffer):
                self._digest.update(view[:count])
            reader.seek(0)
            copied = 0
            try:
                while step := os.copy_file_range(
                    reader.fileno(), self._handle.fileno(), COPY_CHUNK_BYTES
                ):
                    copied += step
                    self.size += step
            except OSError:
                if copied:
                    raise
                # A filesystem without copy_file_range between these files.
                while count := reader.readinto(self._buffer):
                    self._write_all(view[:count])
        source.unlink()

    def sha256(self) -> str:
        return self._digest.hexdigest()

    def close(self) -> None:
        self._handle.close()


class _HashedSink:
    """What pyarrow's parquet writer writes to (through `pa.PythonFile`): a `HashedFile`."""

    def __init__(self, target: HashedFile) -> None:
        self._target = target
        self.closed = False

    def write(self, data: Any) -> int:
        return self._target.write(data)

    def tell(self) -> int:
        return self._target.size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class Writeback:
    """fsyncs the release's files on a thread after each joined part (skipped while the
    previous one still runs), so the kernel writes them out while the workers work rather
    than all at once before publishing. A failure is raised again by `finish`."""

    def __init__(self, paths: list[Path]) -> None:
        self._paths = paths
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._run, name="export-writeback", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for path in self._paths:
                fsync_path(path)
        except BaseException as error:
            self._error = error

    def finish(self) -> None:
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error


class ReleaseAssembler:
    def __init__(self, directory: Path, scratch: Path) -> None:
        self.directory = directory
        self.scratch = scratch
        self.stats = ReleaseStats()
        self.next_index = 0
        self._texts = {name: HashedFile(directory / name) for name in TEXT_FILES}
        self._trees = HashedFile(directory / TREES_FILE)
        self._trees.write(gzip_header(TREES_FILE.removesuffix(".gz"), int(time.time())))
        self._trees_crc = isal_zlib.crc32(b"")
        self._trees_length = 0
        self._messages = HashedFile(directory / MESSAGES_FILE)
        self._parquet = pq.ParquetWriter(
            pa.PythonFile(_HashedSink(self._messages), mode="w"),
            MESSAGES_SCHEMA,
            compression="zstd",
        )
        self._batches: list[Any] = []
        self._buffered_rows = 0
        self._files = [*self._texts.values(), self._trees, self._messages]
        self._writeback = Writeback([file.path for file in self._files])

    def add(self, outcome: PartOutcome) -> None:
        """Append the next part (parts come in index order)."""
        if outcome.index != self.next_index:
            raise ValueError(f"part {outcome.index} came before part {self.next_index}")
        for name, target in self._texts.items():
            target.append_file(part_file(self.scratch, outcome.index, name))
        self._trees.append_file(part_file(self.scratch, outcome.index, TREES_FILE))
        self._trees_crc = isal_zlib.crc32_combine(
            self._trees_crc, outcome.trees_crc32, outcome.trees_length
        )
        self._trees_length += outcome.trees_length
        self._add_messages(part_file(self.scratch, outcome.index, MESSAGES_FILE))
        self.stats.add(outcome.stats)
        self.next_index += 1
        self._writeback.start()

    def _add_messages(self, part: Path) -> None:
        with pa.OSFile(str(part)) as source:
            for batch in pa.ipc.open_stream(source):
                self._batches.append(batch)
                self._buffered_rows += batch.num_rows
                if self._buffered_rows >= PARQUET_BATCH_ROWS:
                    self._write_row_groups(final=False)
        part.unlink()

    def _write_row_groups(self, *, final: bool) -> None:
        table = pa.Table.from_batches(self._batches, schema=MESSAGES_SCHEMA)
        start = 0
        while table.num_rows - start >= PARQUET_BATCH_ROWS or (final and start < table.num_rows):
            group = table.slice(start, PARQUET_BATCH_ROWS).combine_chunks()
            self._parquet.write_table(group, row_group_size=PARQUET_BATCH_ROWS)
            start += group.num_rows
        rest = table.slice(start)
        self._batches = rest.to_batches() if rest.num_rows else []
        self._buffered_rows = rest.num_rows

    def close(self) -> dict[str, tuple[int, str]]:
        """Finish the files; returns each one's size and sha256 by name."""
        if self._buffered_rows:
            self._write_row_groups(final=True)
        self._parquet.close()
        self._trees.write(gzip_end(self._trees_crc, self._trees_length))
        for file in self._files:
            file.close()
        self._writeback.finish()
        return {file.path.name: (file.size, file.sha256()) for file in self._files}

    def abort(self) -> None:
        for closer in (
            self._parquet.close,
            *(file.close for file in self._files),
            self._writeback.finish,
        ):
            # The export already failed and the directory goes; a close error adds nothing.
            with contextlib.suppress(Exception):
                closer()
