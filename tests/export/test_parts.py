"""A release made in parts, by worker processes, holds exactly what one process writes."""

from __future__ import annotations

import gzip
import itertools
import zlib
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

from hedgerow.export import service, shapes
from hedgerow.export.assemble import gzip_end, gzip_header
from hedgerow.export.parts import PartJob, WorkerFailed, WorkerPool, WriterSettings
from hedgerow.export.writers import DATA_FILES, MESSAGES_FILE, TREES_FILE
from hedgerow.models import MessageRole, ReviewState
from tests.export.conftest import Corpus
from tests.growth.factories import override_settings

_NAMES = itertools.count()
# Lines of the card that name the release or its time.
_RELEASE_LINES = ("# Hedgerow conversation trees: release", "UTC under the")


def _export(
    corpus: Corpus,
    monkeypatch: pytest.MonkeyPatch,
    root: Path,
    *,
    workers: int,
    batch_messages: int,
    part_batches: int,
) -> service.ExportOutcome:
    override_settings(monkeypatch, releases_dir=root, export_workers=workers)
    monkeypatch.setattr(service, "BATCH_MESSAGES", batch_messages)
    monkeypatch.setattr(service, "PART_BATCHES", part_batches)
    # The same pseudonyms in every release, so that their files can be compared (and
    # release names still unique).
    monkeypatch.setattr(service.secrets, "token_bytes", lambda size: b"k" * size)
    monkeypatch.setattr(service.secrets, "token_hex", lambda size: f"{next(_NAMES):0{2 * size}x}")
    return service.run_export(corpus.maker)


def _contents(directory: Path) -> dict[str, object]:
    contents: dict[str, object] = {}
    for name in DATA_FILES:
        data = (directory / name).read_bytes()
        # The gzip header carries the time of writing; the trees are what count.
        contents[name] = gzip.decompress(data) if name == TREES_FILE else data
    card = (directory / "README.md").read_text().splitlines()
    contents["README.md"] = [line for line in card if not line.startswith(_RELEASE_LINES)]
    return contents


def test_release_is_the_same_whatever_the_parts_and_workers(
    corpus: Corpus, releases_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _export(
        corpus, monkeypatch, releases_dir / "a", workers=1, batch_messages=10**6, part_batches=1
    )
    # Batches of a tree or two, two batches per part: many parts, joined in order.
    in_parts = _export(
        corpus, monkeypatch, releases_dir / "b", workers=1, batch_messages=3, part_batches=2
    )
    by_workers = _export(
        corpus, monkeypatch, releases_dir / "c", workers=3, batch_messages=3, part_batches=2
    )

    assert whole.stats.trees >= 3
    assert in_parts.stats == whole.stats == by_workers.stats
    reference = _contents(whole.directory)
    assert reference[MESSAGES_FILE]
    assert _contents(in_parts.directory) == reference
    assert _contents(by_workers.directory) == reference
    # No part files are left in a published release.
    assert sorted(path.name for path in by_workers.directory.iterdir()) == sorted(
        path.name for path in whole.directory.iterdir()
    )
    groups = pq.ParquetFile(by_workers.directory / MESSAGES_FILE).metadata.num_row_groups
    assert groups == pq.ParquetFile(whole.directory / MESSAGES_FILE).metadata.num_row_groups


def test_trees_of_several_parts_are_one_gzip_member(
    corpus: Corpus, releases_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome = _export(
        corpus, monkeypatch, releases_dir, workers=2, batch_messages=3, part_batches=1
    )
    data = (outcome.directory / TREES_FILE).read_bytes()
    # zlib reads a single member and checks its CRC-32 and length: readers that do not
    # go on to a second member (zlib, some gzip libraries) still see every tree.
    reader = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    trees = reader.decompress(data)
    assert reader.eof
    assert reader.unused_data == b""
    assert trees.count(b"\n") == outcome.stats.trees


def test_joined_deflate_streams_make_a_valid_member() -> None:
    from isal import isal_zlib

    pieces = [b"first part\n" * 1000, b"", b"third part \xc3\xa9\n" * 3]
    body, crc, length = b"", isal_zlib.crc32(b""), 0
    for piece in pieces:
        stream = isal_zlib.compressobj(1, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS)
        body += stream.compress(piece) + stream.flush(isal_zlib.Z_SYNC_FLUSH)
        crc = isal_zlib.crc32_combine(crc, isal_zlib.crc32(piece), len(piece))
        length += len(piece)
    member = gzip_header("trees.jsonl", 0) + body + gzip_end(crc, length)
    assert gzip.decompress(member) == b"".join(pieces)


def test_a_failing_worker_fails_the_run_and_leaves_no_process(
    corpus: Corpus, tmp_path: Path
) -> None:
    engine = corpus.maker.kw["bind"]
    with engine.connect() as connection:
        snapshot = connection.execution_options(isolation_level="REPEATABLE READ")
        with snapshot.begin():
            snapshot_id = snapshot.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            settings = WriterSettings(b"k" * 32, "secret", 1, 0.5)
            pool = WorkerPool(2, conninfo, snapshot_id, settings)
            # A part whose folder does not exist cannot open its files.
            job = PartJob(0, [(0, 1)], tmp_path / "missing", {"params": {}})
            with pytest.raises(WorkerFailed, match="FileNotFoundError"):
                list(pool.run([job]))
            pool.close()
    processes = pool._workers
    assert all(worker.process.returncode is not None for worker in processes)


def test_worker_constants_match_the_models() -> None:
    # Workers do not import the models; the strings they compare with must still match.
    assert MessageRole.prompter.value == shapes.PROMPTER
    assert MessageRole.assistant.value == shapes.ASSISTANT
    assert ReviewState.accepted.value == shapes.ACCEPTED
    assert ReviewState.pending.value == shapes.PENDING


def test_workers_read_the_snapshot_of_the_parent(corpus: Corpus) -> None:
    """What SET TRANSACTION SNAPSHOT promises, checked on this server: a row committed
    after the export took its snapshot is not seen by a worker's connection."""
    engine = corpus.maker.kw["bind"]
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with engine.connect() as connection:
        snapshot = connection.execution_options(isolation_level="REPEATABLE READ")
        with snapshot.begin():
            snapshot_id = snapshot.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            before = snapshot.execute(text("SELECT count(*) FROM release")).scalar_one()
            with engine.begin() as other:
                other.execute(
                    text(
                        "INSERT INTO release (name, kind, state, pinned, schema_version, filters)"
                        " VALUES ('late', 'manual', 'failed', false, '1', '{}')"
                    )
                )
            with psycopg.connect(conninfo) as worker:
                worker.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                worker.execute(psycopg.sql.SQL("SET TRANSACTION SNAPSHOT {}").format(snapshot_id))
                seen = worker.execute("SELECT count(*) FROM release").fetchone()
    with engine.begin() as cleanup:
        cleanup.execute(text("DELETE FROM release WHERE name = 'late'"))
    assert seen == (before,)
