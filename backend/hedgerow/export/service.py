"""Dataset releases: making one (`run_export`) and reading the published ones.

`run_export` is a long job, not a request: it owns its transactions. It holds a
PostgreSQL advisory lock for its whole run (released by the server if the process dies),
reads every file from one REPEATABLE READ snapshot (shared with its worker processes, which
write the trees in parts: see `parts` and `assemble`), writes into a partial directory and
publishes it with an atomic rename. Progress is committed to the release row as it goes,
so the admin page can poll it.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.config import Settings, get_settings
from hedgerow.errors import AppError, NotAuthenticated, NotFound
from hedgerow.export import card, publish, queries
from hedgerow.export.assemble import ReleaseAssembler
from hedgerow.export.chats import write_chats
from hedgerow.export.parts import (
    PART_TRANSACTION_SETTINGS,
    PartJob,
    WorkerPool,
    WriterSettings,
    pseudonyms_of,
    write_part,
)
from hedgerow.export.schemas import SCHEMA_VERSION, ExportFilters
from hedgerow.export.shapes import Pseudonyms
from hedgerow.export.writers import CARD_FILE, CHATS_FILE, MANIFEST_FILE, ReleaseStats
from hedgerow.models import AuditEvent, Release, ReleaseKind, ReleaseState, Role, User

logger = logging.getLogger(__name__)

# One export at a time, installation-wide ("HEDG" in ASCII).
EXPORT_LOCK_KEY = 0x48454447
# How long a second export waits for the first before giving up. Also covers the moment
# the server takes to notice that a killed exporter's connection is gone.
EXPORT_LOCK_WAIT = "30s"
# Messages per batch (four indexed queries): big enough that round trips and planning are
# noise, small enough that a batch's rows and labels stay a few MB in a worker.
BATCH_MESSAGES = 2_000
# Batches per part (the unit handed to a worker): ~20k messages, so a 1M-message corpus
# makes ~50 parts. The last parts are smaller (see part_sizes), so that the workers
# finish at about the same time.
PART_BATCHES = 10
# Progress is committed this often: every second or two at the export's speed, as often
# as the admin page polls; more often, the commits would cost the export time.
PROGRESS_EVERY_MESSAGES = 50_000
# The folder inside a release's partial directory where parts wait to be joined.
PARTS_FOLDER = ".parts"
INTERRUPTED = "The export stopped before it published (the process died or was killed)."

ProgressCallback = Callable[[int, int], None]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ExportOutcome:
    release_id: int
    name: str
    directory: Path
    stats: ReleaseStats


# --- making a release ---------------------------------------------------------------


def run_export(
    maker: sessionmaker[Session],
    *,
    kind: ReleaseKind = ReleaseKind.manual,
    filters: ExportFilters | None = None,
    pinned: bool = False,
    progress: ProgressCallback | None = None,
    settings: Settings | None = None,
) -> ExportOutcome:
    settings = settings or get_settings()
    filters = filters or ExportFilters()
    engine = maker.kw["bind"]
    with engine.connect() as lock_connection:
        _take_export_lock(lock_connection)
        try:
            _clean_up_after_dead_exports(maker, settings.releases_root)
            return _export_holding_lock(maker, kind, filters, pinned, progress, settings)
        finally:
            lock_connection.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": EXPORT_LOCK_KEY}
            )
            lock_connection.commit()


def _take_export_lock(connection: Connection) -> None:
    connection.execute(text(f"SET lock_timeout = '{EXPORT_LOCK_WAIT}'"))
    try:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": EXPORT_LOCK_KEY})
    except Exception as error:
        if "lock timeout" not in str(error):
            raise
        raise AppError(
            "export_running", "Another export is running; try again later.", 409
        ) from error
    connection.execute(text("RESET lock_timeout"))
    connection.commit()


def _clean_up_after_dead_exports(maker: sessionmaker[Session], root: Path) -> None:
    """Runs under the lock: any release still `running` belongs to a dead process."""
    with maker.begin() as db:
        stale = db.scalars(select(Release).where(Release.state == ReleaseState.running)).all()
        for release in stale:
            release.state = ReleaseState.failed
            release.error = INTERRUPTED
            release.finished_at = utcnow()
        # A release pruned, or killed between its rename and its commit, may still be
        # on disk; only published releases may be.
        leftover_names = [release.name for release in stale] + list(
            db.scalars(select(Release.name).where(Release.state == ReleaseState.pruned))
        )
    for name in leftover_names:
        publish.remove_directory(root / name)
    removed = publish.remove_leftovers(root)
    if stale or removed:
        logger.warning("cleaned up after dead exports: %s rows, %s", len(stale), removed)


def _new_release(
    maker: sessionmaker[Session], kind: ReleaseKind, filters: ExportFilters, pinned: bool
) -> Release:
    now = utcnow()
    with maker.begin() as db:
        release = Release(
            name=f"{now:%Y-%m-%d-%H%M%S}-{kind.value}-{secrets.token_hex(2)}",
            kind=kind.value,
            state=ReleaseState.running.value,
            pinned=pinned,
            schema_version=SCHEMA_VERSION,
            filters=filters.model_dump(mode="json"),
        )
        db.add(release)
        db.flush()
        db.refresh(release)
    return release


def _set_progress(maker: sessionmaker[Session], release_id: int, **values: Any) -> None:
    with maker.begin() as db:
        db.execute(update(Release).where(Release.id == release_id).values(**values))


def _export_holding_lock(
    maker: sessionmaker[Session],
    kind: ReleaseKind,
    filters: ExportFilters,
    pinned: bool,
    progress: ProgressCallback | None,
    settings: Settings,
) -> ExportOutcome:
    release = _new_release(maker, kind, filters, pinned)
    root = settings.releases_root
    partial = publish.make_partial_directory(root, release.name)
    try:
        # A fresh secret per release, never stored: pseudonyms cannot be reversed.
        writer_settings = WriterSettings(
            pseudonym_secret=secrets.token_bytes(32),
            installation_secret=settings.secret_key,
            split_seed=settings.export_split_seed,
            validation_share=settings.export_validation_share,
        )
        stats, contributors, hashed = _write_trees(
            maker, release.id, filters, partial, writer_settings, progress, settings
        )
        stats.rows[CHATS_FILE] = write_chats(
            maker, partial, Pseudonyms(writer_settings.pseudonym_secret)
        )
        files = _finish_files(partial, release, filters, stats, contributors, settings, hashed)
        final = root / release.name
        publish.publish_directory(partial, final)
        pruned = _mark_published(maker, release.id, stats, contributors, files, settings)
    except BaseException as error:
        publish.remove_directory(partial)
        _set_progress(
            maker,
            release.id,
            state=ReleaseState.failed.value,
            error=f"{type(error).__name__}: {error}"[:2000],
            finished_at=utcnow(),
        )
        raise
    for name in pruned:
        publish.remove_directory(root / name)
    return ExportOutcome(release.id, release.name, final, stats)


def export_worker_count(settings: Settings) -> int:
    if settings.export_workers > 0:
        return settings.export_workers
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class _Progress:
    """Messages written so far, committed to the release row (and told to `callback`)
    every PROGRESS_EVERY_MESSAGES."""

    def __init__(
        self, maker: sessionmaker[Session], release_id: int, total: int, callback: Any
    ) -> None:
        self.maker, self.release_id, self.total, self.callback = maker, release_id, total, callback
        self.done = self.reported = 0
        _set_progress(maker, release_id, messages_total=total)
        if callback:
            callback(0, total)

    def add(self, messages: int) -> None:
        self.done += messages
        if self.done - self.reported >= PROGRESS_EVERY_MESSAGES:
            self.report()

    def report(self) -> None:
        self.reported = self.done
        _set_progress(self.maker, self.release_id, messages_done=self.done)
        if self.callback:
            self.callback(self.done, self.total)


def part_sizes(batches: int, workers: int) -> list[int]:
    """How many batches each part gets, in order: PART_BATCHES, then fewer as the end
    nears (a part is at most a (2 x workers)th of what is left), so that no worker still
    has a whole part ahead of it when the others have none."""
    sizes = []
    left = batches
    while left > 0:
        size = PART_BATCHES if workers <= 1 else -(-left // (2 * workers))
        size = max(1, min(PART_BATCHES, size, left))
        sizes.append(size)
        left -= size
    return sizes


def _part_jobs(
    ranges: list[queries.TreeRange], workers: int, scratch: Path, part_queries: dict[str, Any]
) -> list[PartJob]:
    jobs = []
    start = 0
    for number, size in enumerate(part_sizes(len(ranges), workers)):
        batches = [(r.first_tree, r.last_tree) for r in ranges[start : start + size]]
        jobs.append(PartJob(index=number, batches=batches, directory=scratch, queries=part_queries))
        start += size
    return jobs


def _estimated_messages(snapshot: Connection) -> float:
    """The planner's estimate of the message table's rows (-1 before its first ANALYZE)."""
    sql = "SELECT reltuples FROM pg_class WHERE oid = 'message'::regclass"
    return float(snapshot.execute(text(sql)).scalar_one())


def _start_workers(
    snapshot: Connection, engine: Engine, count: int, writer_settings: WriterSettings
) -> WorkerPool:
    """Worker processes inside the snapshot's transaction, exported to them."""
    snapshot_id = snapshot.execute(text("SELECT pg_export_snapshot()")).scalar_one()
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return WorkerPool(count, conninfo, snapshot_id, writer_settings)


def _write_trees(
    maker: sessionmaker[Session],
    release_id: int,
    filters: ExportFilters,
    partial: Path,
    writer_settings: WriterSettings,
    progress: ProgressCallback | None,
    settings: Settings,
) -> tuple[ReleaseStats, int, dict[str, tuple[int, str]]]:
    """Write every tree file from one snapshot, in parts (by worker processes when there
    is more than one part and more than one worker); returns the stats, the contributors
    and the files written with their sizes and sha256."""
    engine: Engine = maker.kw["bind"]
    scratch = partial / PARTS_FOLDER
    scratch.mkdir()
    workers = export_worker_count(settings)
    pool: WorkerPool | None = None
    with engine.connect() as connection:
        snapshot = connection.execution_options(isolation_level="REPEATABLE READ")
        with snapshot.begin():
            try:
                # Cost estimates over a whole corpus wake the JIT, which then spends seconds
                # compiling plans that run in a fraction of that.
                snapshot.execute(text("SET LOCAL jit = off"))
                # Cutting the batches counts the messages of every tree: in memory, rather
                # than spilled to disk at the default 4 MB (a quarter of the query's time).
                snapshot.execute(text("SET LOCAL work_mem = '64MB'"))
                writer_settings = replace(
                    writer_settings, anonymous_users=queries.deleted_user_ids(snapshot)
                )
                # On a corpus of several parts, the workers start (and import what they
                # need) while the server cuts the trees into batches, which reads every
                # exported message: about a second each on 1M messages.
                if workers > 1 and _estimated_messages(snapshot) > BATCH_MESSAGES * PART_BATCHES:
                    pool = _start_workers(snapshot, engine, workers, writer_settings)
                ranges = queries.batch_ranges(snapshot, filters, BATCH_MESSAGES)
                tracker = _Progress(maker, release_id, sum(r.messages for r in ranges), progress)
                jobs = _part_jobs(ranges, workers, scratch, asdict(queries.part_queries(filters)))
                if pool is None and workers > 1 and len(jobs) > 1:
                    pool = _start_workers(
                        snapshot, engine, min(workers, len(jobs)), writer_settings
                    )
                assembler = ReleaseAssembler(partial, scratch)
                try:
                    if pool is not None:
                        contributors = _write_parts_in_workers(
                            snapshot, pool, filters, jobs, assembler, tracker
                        )
                    else:
                        _write_parts_here(snapshot, jobs, writer_settings, assembler, tracker)
                        contributors = queries.count_contributors(snapshot, filters)
                    hashed = assembler.close()
                except BaseException:
                    assembler.abort()
                    raise
            finally:
                if pool is not None:
                    pool.close()
    scratch.rmdir()
    tracker.report()
    return assembler.stats, contributors, hashed


def _write_parts_here(
    snapshot: Connection,
    jobs: list[PartJob],
    writer_settings: WriterSettings,
    assembler: ReleaseAssembler,
    tracker: _Progress,
) -> None:
    """One part after the other on the snapshot's own connection."""
    connection: Any = snapshot.connection.dbapi_connection
    for setting in PART_TRANSACTION_SETTINGS:
        connection.execute(setting)
    pseudonyms = pseudonyms_of(writer_settings)
    for job in jobs:
        assembler.add(
            write_part(connection, job, writer_settings, pseudonyms=pseudonyms, on_tree=tracker.add)
        )


def _write_parts_in_workers(
    snapshot: Connection,
    pool: WorkerPool,
    filters: ExportFilters,
    jobs: list[PartJob],
    assembler: ReleaseAssembler,
    tracker: _Progress,
) -> int:
    """Parts by the pool's workers; joined in order as they finish, while this process
    counts the contributors on its own connection."""
    finished: dict[int, Any] = {}
    with ThreadPoolExecutor(1, thread_name_prefix="export-contributors") as counting:
        contributors = counting.submit(queries.count_contributors, snapshot, filters)
        for kind, value in pool.run(jobs):
            if kind == "progress":
                tracker.add(value)
                continue
            finished[value.index] = value
            while assembler.next_index in finished:
                assembler.add(finished.pop(assembler.next_index))
        return contributors.result()


def _finish_files(
    partial: Path,
    release: Release,
    filters: ExportFilters,
    stats: ReleaseStats,
    contributors: int,
    settings: Settings,
    hashed: dict[str, tuple[int, str]],
) -> list[dict[str, Any]]:
    """Write the card and the manifest; return the file list (name, size, sha256).
    `hashed`: the files whose size and sha256 were taken as they were written."""
    created_at = release.created_at
    (partial / CARD_FILE).write_text(
        card.render_card(
            release_name=release.name,
            created_at=created_at,
            filters=filters,
            stats=stats,
            contributors=contributors,
            license_name=settings.dataset_license,
            schema_version=SCHEMA_VERSION,
            validation_share=settings.export_validation_share,
        ),
        encoding="utf-8",
    )
    files = [_file_entry(path, hashed.get(path.name)) for path in sorted(partial.iterdir())]
    document = card.manifest(
        release_name=release.name,
        created_at=created_at,
        schema_version=SCHEMA_VERSION,
        filters=filters,
        stats=stats,
        contributors=contributors,
        files=files,
        license_name=settings.dataset_license,
    )
    (partial / MANIFEST_FILE).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return [*files, _file_entry(partial / MANIFEST_FILE)]


def _file_entry(path: Path, hashed: tuple[int, str] | None = None) -> dict[str, Any]:
    if hashed is None:
        hashed = path.stat().st_size, publish.sha256_of(path)
    size, sha256 = hashed
    return {"name": path.name, "size": size, "sha256": sha256}


def _mark_published(
    maker: sessionmaker[Session],
    release_id: int,
    stats: ReleaseStats,
    contributors: int,
    files: list[dict[str, Any]],
    settings: Settings,
) -> list[str]:
    with maker.begin() as db:
        release = db.get_one(Release, release_id)
        release.state = ReleaseState.published.value
        release.finished_at = utcnow()
        release.files = files
        release.total_bytes = sum(entry["size"] for entry in files)
        release.counts = {
            "trees": stats.trees,
            "messages": stats.messages,
            "contributors": contributors,
            "rows": dict(sorted(stats.rows.items())),
            "trees_by_state": dict(stats.trees_by_state),
            "trees_by_language": dict(stats.trees_by_language),
        }
        db.flush()
        return prune_releases(db, keep_nightly=settings.export_keep_nightly)


def prune_releases(db: Session, *, keep_nightly: int) -> list[str]:
    """Mark nightly releases beyond the newest `keep_nightly` as pruned (pinned ones and
    manual ones stay); returns their names, whose directories go after the commit."""
    query = (
        select(Release)
        .where(
            Release.state == ReleaseState.published,
            Release.kind == ReleaseKind.nightly,
            Release.pinned.is_(False),
        )
        .order_by(Release.created_at.desc(), Release.id.desc())
        .offset(max(keep_nightly, 0))
    )
    pruned = list(db.scalars(query))
    for release in pruned:
        release.state = ReleaseState.pruned.value
    db.flush()
    return [release.name for release in pruned]


# --- reading releases ---------------------------------------------------------------


def can_download(user: User | None, settings: Settings | None = None) -> bool:
    settings = settings or get_settings()
    if settings.datasets_public:
        return True
    return user is not None and user.role in (Role.researcher, Role.admin)


def require_download_access(user: User | None) -> None:
    if can_download(user):
        return
    if user is None:
        raise NotAuthenticated("Log in or send an API key to download datasets.")
    raise AppError(
        "researcher_required",
        "Dataset downloads need the researcher role; ask an admin for access.",
        403,
    )


def published_releases(db: Session) -> list[Release]:
    query = select(Release).where(Release.state == ReleaseState.published)
    return list(db.scalars(query.order_by(Release.created_at.desc(), Release.id.desc())))


def recent_releases(db: Session, limit: int = 20) -> list[Release]:
    """Every state, for the admin page's progress view."""
    query = select(Release).order_by(Release.created_at.desc(), Release.id.desc()).limit(limit)
    return list(db.scalars(query))


def get_published(db: Session, release_id: int) -> Release:
    release = db.get(Release, release_id)
    if release is None or release.state != ReleaseState.published:
        raise NotFound("No such dataset release.")
    return release


def release_file(
    release: Release, name: str, settings: Settings | None = None
) -> tuple[Path, dict[str, Any]]:
    """The path and manifest entry of one file. Only names listed in the release's own file
    list are served, so no request can reach outside the release directory."""
    settings = settings or get_settings()
    entry = next((entry for entry in release.files or [] if entry["name"] == name), None)
    if entry is None:
        raise NotFound("This release has no such file.")
    root = settings.releases_root.resolve()
    path = (root / release.name / entry["name"]).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise NotFound("This release has no such file.")
    return path, entry


def release_card(release: Release, settings: Settings | None = None) -> str:
    path, _ = release_file(release, CARD_FILE, settings)
    return path.read_text(encoding="utf-8")


def set_pinned(db: Session, release_id: int, *, pinned: bool, actor: User | None) -> Release:
    release = get_published(db, release_id)
    before = release.pinned
    release.pinned = pinned
    db.add(
        AuditEvent(
            actor_id=actor.id if actor else None,
            action="release.pin" if pinned else "release.unpin",
            target_type="release",
            target_id=release.id,
            before={"pinned": before},
            after={"pinned": pinned},
        )
    )
    db.flush()
    return release


def iter_file_chunks(path: Path, chunk_bytes: int = 1 << 16) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            yield chunk
