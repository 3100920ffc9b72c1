"""Making a dataset release: `run_export`.

`run_export` is a long job, not a request: it owns its transactions. It holds a
PostgreSQL advisory lock for its whole run (released by the server if the process dies),
reads every file from one REPEATABLE READ snapshot (shared with its worker processes, which
write the trees in parts: see `parts` and `assemble`), writes into a partial directory and
publishes it with an atomic rename. Progress is committed to the release row as it goes,
so the admin page can poll it; the row's bookkeeping is in `service`.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.config import Settings, get_settings
from hedgerow.errors import AppError
from hedgerow.export import card, publish, queries, service
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
from hedgerow.i18n import gettext as _
from hedgerow.models import Release, ReleaseKind, ReleaseState

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

ProgressCallback = Callable[[int, int], None]


@dataclass
class ExportOutcome:
    release_id: int
    name: str
    directory: Path
    stats: ReleaseStats


class ExportGaveUp(RuntimeError):
    """A job whose export was interrupted too often; its release row says so."""


# --- the run ------------------------------------------------------------------------


def run_export(
    maker: sessionmaker[Session],
    *,
    kind: ReleaseKind = ReleaseKind.manual,
    filters: ExportFilters | None = None,
    pinned: bool = False,
    progress: ProgressCallback | None = None,
    settings: Settings | None = None,
    job_id: str | None = None,
) -> ExportOutcome:
    """Make and publish a release. `job_id`, the Celery job running it, makes a job's runs
    idempotent: a delivery of the job after its worker died takes over the release row of
    the earlier attempt (whose files the cleanup removed), and a delivery after the
    release was published returns that release."""
    settings = settings or get_settings()
    filters = filters or ExportFilters()
    engine = maker.kw["bind"]
    with engine.connect() as lock_connection:
        _take_export_lock(lock_connection)
        try:
            _clean_up_after_dead_exports(maker, settings.releases_root)
            release = _claim_release(maker, kind, filters, pinned, job_id, settings.releases_root)
            if release.state != ReleaseState.running:
                return _earlier_outcome(release, settings)
            return _export_holding_lock(maker, release, filters, progress, settings)
        finally:
            queries.release_advisory_lock(lock_connection, EXPORT_LOCK_KEY)
            lock_connection.commit()


def clean_up_dead_exports(
    maker: sessionmaker[Session], settings: Settings | None = None
) -> list[str]:
    """Mark the releases of exports that died `failed` (with the reason) and remove their
    files, unless an export is running now; returns the names marked. The periodic job:
    otherwise a killed export's row would show as running until the next export."""
    settings = settings or get_settings()
    engine = maker.kw["bind"]
    with engine.connect() as lock_connection:
        taken = queries.try_advisory_lock(lock_connection, EXPORT_LOCK_KEY)
        lock_connection.commit()
        if not taken:
            return []  # a live export holds the lock: no running row is stale
        try:
            return _clean_up_after_dead_exports(maker, settings.releases_root)
        finally:
            queries.release_advisory_lock(lock_connection, EXPORT_LOCK_KEY)
            lock_connection.commit()


def _take_export_lock(connection: Connection) -> None:
    try:
        queries.take_advisory_lock(connection, EXPORT_LOCK_KEY, wait=EXPORT_LOCK_WAIT)
    except Exception as error:
        if "lock timeout" not in str(error):
            raise
        raise AppError(
            "export_running", _("Another export is running; try again later."), 409
        ) from error
    connection.commit()


def _clean_up_after_dead_exports(maker: sessionmaker[Session], root: Path) -> list[str]:
    """Runs under the lock: any release still `running` belongs to a dead process.
    Returns the names of those releases."""
    with maker.begin() as db:
        interrupted = service.fail_interrupted_releases(db)
        # A release pruned, or killed between its rename and its commit, may still be
        # on disk; only published releases may be.
        leftover_names = interrupted + queries.pruned_release_names(db)
    for name in leftover_names:
        publish.remove_directory(root / name)
    removed = publish.remove_leftovers(root)
    if interrupted or removed:
        logger.warning("cleaned up after dead exports: %s rows, %s", len(interrupted), removed)
    return interrupted


def _claim_release(
    maker: sessionmaker[Session],
    kind: ReleaseKind,
    filters: ExportFilters,
    pinned: bool,
    job_id: str | None,
    root: Path,
) -> Release:
    """The release row this run writes: a new one, or the row an earlier delivery of the
    same job made (published already, or taken over for another attempt)."""
    with maker.begin() as db:
        release = service.release_of_job(db, job_id)
        if release is None:
            return service.new_release(db, kind, filters, pinned, job_id)
        if release.state in (ReleaseState.published, ReleaseState.pruned):
            return release
        taken_over = service.take_over_release(db, release)
    if not taken_over:
        # Committed above: the row says why it stopped.
        raise ExportGaveUp(release.error or "")
    # Never published, so whatever carries its name on disk is a dead attempt's.
    publish.remove_directory(root / release.name)
    logger.warning(
        "export job %s: attempt %s on release %s", job_id, release.attempts, release.name
    )
    return release


def _earlier_outcome(release: Release, settings: Settings) -> ExportOutcome:
    """What a delivery of a job that already published its release returns."""
    counts = release.counts or {}
    stats = ReleaseStats(trees=counts.get("trees", 0), messages=counts.get("messages", 0))
    return ExportOutcome(release.id, release.name, settings.releases_root / release.name, stats)


def _export_holding_lock(
    maker: sessionmaker[Session],
    release: Release,
    filters: ExportFilters,
    progress: ProgressCallback | None,
    settings: Settings,
) -> ExportOutcome:
    """The release's files written into a partial directory, published by a rename, then
    the row marked published; on any failure, the partial directory goes and the row says
    why."""
    root = settings.releases_root
    partial = publish.make_partial_directory(root, release.name)
    try:
        stats, contributors, files = _write_release(
            maker, release, filters, partial, progress, settings
        )
        final = root / release.name
        publish.publish_directory(partial, final)
        with maker.begin() as db:
            pruned = service.mark_published(
                db,
                release.id,
                stats=stats,
                contributors=contributors,
                files=files,
                keep_nightly=settings.export_keep_nightly,
            )
    except BaseException as error:
        publish.remove_directory(partial)
        with maker.begin() as db:
            service.mark_failed(db, release.id, error)
        raise
    for name in pruned:
        publish.remove_directory(root / name)
    return ExportOutcome(release.id, release.name, final, stats)


def _write_release(
    maker: sessionmaker[Session],
    release: Release,
    filters: ExportFilters,
    partial: Path,
    progress: ProgressCallback | None,
    settings: Settings,
) -> tuple[ReleaseStats, int, list[dict[str, Any]]]:
    """Every file of the release into `partial`: the trees, the chats, then the card and
    the manifest. Returns the stats, the contributors and the file list."""
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
    return stats, contributors, files


# --- writing the trees --------------------------------------------------------------


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
        self._commit(messages_total=total)
        if callback:
            callback(0, total)

    def add(self, messages: int) -> None:
        self.done += messages
        if self.done - self.reported >= PROGRESS_EVERY_MESSAGES:
            self.report()

    def report(self) -> None:
        self.reported = self.done
        self._commit(messages_done=self.done)
        if self.callback:
            self.callback(self.done, self.total)

    def _commit(self, **counts: int) -> None:
        with self.maker.begin() as db:
            queries.update_release(db, self.release_id, **counts)


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


def _looks_like_several_parts(snapshot: Connection) -> bool:
    """Whether the planner's estimate of the messages (before any filter) is more than a
    part's worth."""
    return queries.estimated_messages(snapshot) > BATCH_MESSAGES * PART_BATCHES


def _start_workers(
    snapshot: Connection, engine: Engine, count: int, writer_settings: WriterSettings
) -> WorkerPool:
    """Worker processes inside the snapshot's transaction, exported to them."""
    snapshot_id = queries.export_snapshot(snapshot)
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
                queries.tune_export_snapshot(snapshot)
                writer_settings = replace(
                    writer_settings, anonymous_users=queries.deleted_user_ids(snapshot)
                )
                # On a corpus of several parts, the workers start (and import what they
                # need) while the server cuts the trees into batches, which reads every
                # exported message: about a second each on 1M messages.
                if workers > 1 and _looks_like_several_parts(snapshot):
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


# --- finishing the files ------------------------------------------------------------


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
    facts = card.ReleaseFacts(
        release_name=release.name,
        created_at=release.created_at,
        schema_version=SCHEMA_VERSION,
        license_name=settings.dataset_license,
        filters=filters,
        stats=stats,
        contributors=contributors,
    )
    card_text = card.render_card(facts, validation_share=settings.export_validation_share)
    (partial / CARD_FILE).write_text(card_text, encoding="utf-8")
    files = [_file_entry(path, hashed.get(path.name)) for path in sorted(partial.iterdir())]
    document = card.manifest(facts, files)
    (partial / MANIFEST_FILE).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return [*files, _file_entry(partial / MANIFEST_FILE)]


def _file_entry(path: Path, hashed: tuple[int, str] | None = None) -> dict[str, Any]:
    if hashed is None:
        hashed = path.stat().st_size, publish.sha256_of(path)
    size, sha256 = hashed
    return {"name": path.name, "size": size, "sha256": sha256}
