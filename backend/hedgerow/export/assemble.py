"""Joining the parts of a release into its published files, part by part in tree order.

- JSON Lines: the parts are appended as they are (the first one is renamed into place;
  the others are copied by the kernel, `copy_file_range`).
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
import os
import shutil
import struct
import time
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq
from isal import isal_zlib

from hedgerow.export.message_rows import MESSAGES_SCHEMA
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


def append_file(source: Path, target: IO[bytes]) -> None:
    """Copy `source` to the end of `target` (unbuffered, not opened for appending: the
    kernel refuses to copy into an O_APPEND file) and delete it."""
    copied = 0
    with source.open("rb") as reader:
        try:
            while step := os.copy_file_range(reader.fileno(), target.fileno(), COPY_CHUNK_BYTES):
                copied += step
        except OSError:
            if copied:
                raise
            # A filesystem without copy_file_range between these files.
            shutil.copyfileobj(reader, target, 1 << 20)
    source.unlink()


class ReleaseAssembler:
    def __init__(self, directory: Path, scratch: Path) -> None:
        self.directory = directory
        self.scratch = scratch
        self.stats = ReleaseStats()
        self.next_index = 0
        self._texts: dict[str, IO[bytes]] = {}
        self._trees = (directory / TREES_FILE).open("wb", buffering=0)
        self._trees.write(gzip_header(TREES_FILE.removesuffix(".gz"), int(time.time())))
        self._trees_crc = isal_zlib.crc32(b"")
        self._trees_length = 0
        self._parquet = pq.ParquetWriter(
            directory / MESSAGES_FILE, MESSAGES_SCHEMA, compression="zstd"
        )
        self._batches: list[Any] = []
        self._buffered_rows = 0

    def add(self, outcome: PartOutcome) -> None:
        """Append the next part (parts come in index order)."""
        if outcome.index != self.next_index:
            raise ValueError(f"part {outcome.index} came before part {self.next_index}")
        for name in TEXT_FILES:
            self._add_text(name, part_file(self.scratch, outcome.index, name))
        append_file(part_file(self.scratch, outcome.index, TREES_FILE), self._trees)
        self._trees_crc = isal_zlib.crc32_combine(
            self._trees_crc, outcome.trees_crc32, outcome.trees_length
        )
        self._trees_length += outcome.trees_length
        self._add_messages(part_file(self.scratch, outcome.index, MESSAGES_FILE))
        self.stats.add(outcome.stats)
        self.next_index += 1

    def _add_text(self, name: str, part: Path) -> None:
        target = self._texts.get(name)
        if target is None:
            part.rename(self.directory / name)
            target = self._texts[name] = (self.directory / name).open("r+b", buffering=0)
            target.seek(0, os.SEEK_END)
        else:
            append_file(part, target)

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

    def close(self) -> None:
        if self._buffered_rows:
            self._write_row_groups(final=True)
        self._parquet.close()
        self._trees.write(gzip_end(self._trees_crc, self._trees_length))
        self._trees.close()
        for name in TEXT_FILES:
            if name not in self._texts:
                # No part at all (nothing exported): the file is still published, empty.
                (self.directory / name).touch()
        for target in self._texts.values():
            target.close()

    def abort(self) -> None:
        for closer in (
            self._parquet.close,
            self._trees.close,
            *(target.close for target in self._texts.values()),
        ):
            # The export already failed and the directory goes; a close error adds nothing.
            with contextlib.suppress(Exception):
                closer()
