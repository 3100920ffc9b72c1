"""A release made in parts, by worker processes, holds exactly what one process writes."""

from __future__ import annotations

import gc
import gzip
import hashlib
import itertools
import json
import zlib
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pyarrow.parquet as pq
import pytest
from psycopg.types.string import TextLoader
from sqlalchemy import Engine, text

from hedgerow.export import queries, run, shapes
from hedgerow.export.assemble import HashedFile, Writeback, gzip_end, gzip_header
from hedgerow.export.parts import (
    PART_TRANSACTION_SETTINGS,
    PartJob,
    WorkerFailed,
    WorkerPool,
    WriterSettings,
)
from hedgerow.export.shapes import MessageIds, Pseudonyms
from hedgerow.export.writers import (
    DATA_FILES,
    LABELS_FILE,
    MESSAGES_FILE,
    PREFERENCES_FILE,
    SFT_FILE,
    TREES_FILE,
    PartWriters,
    part_file,
)
from hedgerow.models import MessageRole, Release, ReviewState
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
) -> run.ExportOutcome:
    override_settings(monkeypatch, releases_dir=root, export_workers=workers)
    monkeypatch.setattr(run, "BATCH_MESSAGES", batch_messages)
    monkeypatch.setattr(run, "PART_BATCHES", part_batches)
    # The same pseudonyms in every release, so that their files can be compared (and
    # release names still unique).
    monkeypatch.setattr(run.secrets, "token_bytes", lambda size: b"k" * size)
    monkeypatch.setattr(run.secrets, "token_hex", lambda size: f"{next(_NAMES):0{2 * size}x}")
    return run.run_export(corpus.maker)


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


def test_manifest_of_a_release_joined_from_parts_holds_each_files_size_and_sha256(
    corpus: Corpus, releases_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The joined files are hashed as their parts go in, not read again at the end: what
    # the manifest (and the release row, which the download API's ETag uses) says must be
    # what is on disk.
    outcome = _export(
        corpus, monkeypatch, releases_dir, workers=2, batch_messages=3, part_batches=2
    )
    manifest = json.loads((outcome.directory / "manifest.json").read_text())
    assert {entry["name"] for entry in manifest["files"]} >= set(DATA_FILES)
    for entry in manifest["files"]:
        content = (outcome.directory / entry["name"]).read_bytes()
        assert entry["size"] == len(content), entry["name"]
        assert entry["sha256"] == hashlib.sha256(content).hexdigest(), entry["name"]
    with corpus.maker() as db:
        row = db.get_one(Release, outcome.release_id)
        assert {entry["name"]: entry["sha256"] for entry in row.files or []} == {
            entry["name"]: hashlib.sha256(
                (outcome.directory / entry["name"]).read_bytes()
            ).hexdigest()
            for entry in row.files or []
        }


@pytest.mark.parametrize("batches", [0, 1, 7, 39, 40, 41, 500, 1234])
@pytest.mark.parametrize("workers", [1, 2, 3, 8])
def test_parts_cover_every_batch_and_shrink_towards_the_end(batches: int, workers: int) -> None:
    sizes = run.part_sizes(batches, workers)
    assert sum(sizes) == batches
    assert all(1 <= size <= run.PART_BATCHES for size in sizes)
    if workers == 1:
        # One process: no one waits for anyone, so parts stay whole.
        assert sizes[:-1] == [run.PART_BATCHES] * (len(sizes) - 1)
        return
    assert sizes == sorted(sizes, reverse=True)
    if batches >= 4 * workers * run.PART_BATCHES:
        assert sizes[0] == run.PART_BATCHES
    if batches:
        # The last parts are single batches: a worker waits at most one batch for another.
        assert sizes[-1] == 1


def _record_pool_starts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Events in order: "pool" when workers start, "batches" when the batches are cut."""
    events: list[str] = []
    cut = queries.batch_ranges

    class RecordedPool(run.WorkerPool):
        def __init__(self, *args: object) -> None:
            events.append("pool")
            super().__init__(*args)  # type: ignore[arg-type]

    def recorded_cut(*args: object) -> object:
        events.append("batches")
        return cut(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(run, "WorkerPool", RecordedPool)
    monkeypatch.setattr(run.queries, "batch_ranges", recorded_cut)
    return events


def test_workers_start_while_the_batches_of_a_large_corpus_are_cut(
    corpus: Corpus, releases_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = _export(
        corpus, monkeypatch, releases_dir / "a", workers=1, batch_messages=3, part_batches=2
    )
    events = _record_pool_starts(monkeypatch)
    # What the planner would estimate for a corpus of many parts (this one has a few
    # dozen messages; its estimate is whatever the last ANALYZE saw).
    monkeypatch.setattr(run.queries, "estimated_messages", lambda snapshot: 10.0**6)
    early = _export(
        corpus, monkeypatch, releases_dir / "b", workers=2, batch_messages=3, part_batches=2
    )
    assert events == ["pool", "batches"]
    assert early.stats == reference.stats
    assert _contents(early.directory) == _contents(reference.directory)


def test_workers_start_after_the_batches_when_the_corpus_looks_small(
    corpus: Corpus, releases_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _record_pool_starts(monkeypatch)
    # The estimate of a table never analyzed; a part here is 3 x 2 = 6 messages.
    monkeypatch.setattr(run.queries, "estimated_messages", lambda snapshot: -1.0)
    _export(corpus, monkeypatch, releases_dir / "a", workers=2, batch_messages=3, part_batches=2)
    # Many parts after all: the workers start once the batches say so.
    assert events == ["batches", "pool"]
    events.clear()
    _export(
        corpus, monkeypatch, releases_dir / "b", workers=2, batch_messages=10**6, part_batches=2
    )
    # One part: written in this process, no workers started at all.
    assert events == ["batches"]


class _ShortWrites:
    """A file that takes at most 5 bytes per write, as an unbuffered write may."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def write(self, data: Any) -> int:
        return int(self._handle.write(bytes(memoryview(data)[:5])))

    def fileno(self) -> int:
        return int(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()


def test_a_hashed_file_holds_every_byte_after_short_writes_and_without_a_kernel_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    part = tmp_path / "part"
    part.write_bytes(b"the part's lines\n" * 1000)
    target = HashedFile(tmp_path / "joined")
    target._handle = _ShortWrites(target._handle)  # type: ignore[assignment]

    def no_kernel_copy(*args: object) -> int:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr("hedgerow.export.assemble.os.copy_file_range", no_kernel_copy)
    target.write(b"header\n")
    target.append_file(part)
    target.write(memoryview(b"trailer\n"))
    target.close()

    expected = b"header\n" + b"the part's lines\n" * 1000 + b"trailer\n"
    assert (tmp_path / "joined").read_bytes() == expected
    assert target.size == len(expected)
    assert target.sha256() == hashlib.sha256(expected).hexdigest()
    assert not part.exists()


def test_writeback_failures_are_raised_when_the_release_is_finished(tmp_path: Path) -> None:
    present = tmp_path / "present"
    present.write_bytes(b"data")
    writeback = Writeback([present])
    writeback.start()
    writeback.finish()
    failing = Writeback([present, tmp_path / "gone"])
    failing.start()
    with pytest.raises(FileNotFoundError):
        failing.finish()


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


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/St_Johns", "Europe/Amsterdam"])
def test_creation_times_read_as_text_are_what_isoformat_gives(engine: Engine, zone: str) -> None:
    """Workers read creation times as PostgreSQL prints them; shapes.iso_timestamp must give
    exactly what datetime.isoformat() gives for the datetime psycopg would have loaded, in the
    session's time zone (half-hour offsets, and the seconds of local mean time before 1900)."""
    times = [
        "2026-01-02 03:04:05+00",
        "2026-01-02 03:04:05.1+00",
        "2026-01-02 03:04:05.12345+00",
        "2026-07-02 23:59:59.999999+00",
        "2026-03-29 01:30:00.000001+00",
        "1850-06-01 12:00:00.5+00",
        "0999-12-31 23:00:00+00",
    ]
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    query = "SELECT t::timestamptz FROM unnest(%s::text[]) t"
    with psycopg.connect(conninfo) as connection:
        connection.execute(f"SET TIME ZONE '{zone}'")
        for setting in PART_TRANSACTION_SETTINGS:
            connection.execute(setting)
        loaded = [row[0] for row in connection.execute(query, (times,))]
        with connection.cursor() as cursor:
            cursor.adapters.register_loader("timestamptz", TextLoader)
            printed = [row[0] for row in cursor.execute(query, (times,))]
    assert [shapes.iso_timestamp(text) for text in printed] == [
        value.isoformat() for value in loaded
    ]


def _row(
    id: int, parent: int | None, role: str, text: str, *, rank: int | None = None
) -> tuple[object, ...]:
    return (
        id, 1, parent, 7 if id % 2 else None, role, text, "en", 0 if parent is None else 1,
        None, None, "accepted", 3, 0.97, rank, False, None, False,
        "2026-01-02 03:04:05.12+00", "ready_for_export",
    )  # fmt: skip


def test_joined_lines_are_exactly_what_orjson_dumps(tmp_path: Path) -> None:
    """labels.jsonl, sft.jsonl and preferences.jsonl lines are joined from pieces dumped
    once; they must be the very bytes a plain dump of each line's dict gives."""
    pseudonyms = Pseudonyms(b"k" * 32)
    ids = MessageIds("secret")
    writers = PartWriters(
        tmp_path, 0, pseudonyms=pseudonyms, message_ids=ids, split_seed=1, validation_share=0.5
    )
    texts = ['a "quoted" prompt\\ with\ttabs\nand é, 😀, \x01', "answer one", "answer \u2028 two"]
    rows = [
        _row(1, None, "prompter", texts[0]),
        _row(2, 1, "assistant", texts[1], rank=0),
        _row(3, 1, "assistant", texts[2], rank=1),
    ]
    at = "2026-01-02T03:04:05+00:00"
    # Labels' creation times come as JSON (to_json(created_at)::text), rankings' as strings.
    at_json, later_json = '"2026-01-02T03:04:05+00:00"', '"2026-01-02T03:04:05.1+00:00"'
    # Rows of the labels query: message id, label id, user id, values, ...
    labels = {
        1: [
            (1, 10, 7, '{"spam": 0, "quality": 0.50}', "quick", "2026-11", False, at_json),
            (1, 11, None, '{"spam": 1}', 'fu"ll\n', "v\u00e9", True, later_json),
        ],
        2: [(2, 12, 8, '{"quality": 1e-5}', "full", "2026-11", False, at_json)],
    }  # fmt: skip
    rankings = {1: [(7, [3, 2], ["better"], False, False, at)]}
    assert writers.write_tree("ready_for_export", rows, labels, {}, rankings) == 3
    writers.close()

    tree_id = ids.public(1)
    split = shapes.split_of(tree_id, 1, 0.5)
    expected_labels = [
        orjson.dumps(
            {
                "message_id": ids.public(message_id),
                "message_tree_id": tree_id,
                "user_id": pseudonyms.user(user_id),
                "labels": json.loads(values),
                "mode": mode,
                "guideline_version": version,
                "before_edit": before_edit,
                "created_date": json.loads(created),
            },
            option=orjson.OPT_APPEND_NEWLINE,
        )
        for message_id in (1, 2)
        for _, _, user_id, values, mode, version, before_edit, created in labels[message_id]
    ]
    assert part_file(tmp_path, 0, LABELS_FILE).read_bytes() == b"".join(expected_labels)

    extra = {"message_tree_id": tree_id, "lang": "en", "split": split}
    prompt = {"role": "user", "content": texts[0]}
    answers = [{"role": "assistant", "content": text} for text in texts[1:]]
    expected_sft = b"".join(
        orjson.dumps({"messages": [prompt, answer], **extra}, option=orjson.OPT_APPEND_NEWLINE)
        for answer in answers
    )
    assert part_file(tmp_path, 0, SFT_FILE).read_bytes() == expected_sft
    # The one ranker put answer two first, a grade "better" (2) apart: against consensus.
    margin = -2.0
    expected_preference = orjson.dumps(
        {
            "prompt": [prompt],
            "chosen": [answers[0]],
            "rejected": [answers[1]],
            "margin": margin,
            **extra,
        },
        option=orjson.OPT_APPEND_NEWLINE,
    )
    assert part_file(tmp_path, 0, PREFERENCES_FILE).read_bytes() == expected_preference


def test_writing_trees_leaves_no_reference_cycles(tmp_path: Path) -> None:
    """Workers run the garbage collector rarely (parts.WORKER_GC_THRESHOLD): a tree's nodes,
    paths and pairs must be freed as soon as it is written, not wait for a collection."""
    writers = PartWriters(
        tmp_path,
        0,
        pseudonyms=Pseudonyms(b"k" * 32),
        message_ids=MessageIds("secret"),
        split_seed=1,
        validation_share=0.5,
    )
    rows = [
        _row(1, None, "prompter", "prompt"),
        _row(2, 1, "assistant", "answer one", rank=0),
        _row(3, 1, "assistant", "answer two", rank=1),
        _row(4, 2, "prompter", "follow-up"),
        _row(5, 4, "assistant", "answer three"),
    ]
    labels = {
        2: [(2, 1, 7, '{"quality": 1}', "full", "2026-11", False, '"2026-01-02T03:04:05+00:00"')]
    }
    rankings = {1: [(7, [3, 2], ["better"], False, False, "2026-01-02T03:04:05+00:00")]}
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            assert writers.write_tree("ready_for_export", rows, labels, {}, rankings) == 5
        cycles = gc.collect()
    finally:
        gc.enable()
        writers.close()
    assert cycles == 0
