"""Exporting parts of a release, in this process or in worker processes.

A part is a run of consecutive tree-id batches (see `queries.batch_ranges`). Each part is
read from the export's one snapshot: workers import the parent's exported snapshot
(`SET TRANSACTION SNAPSHOT`, as `pg_dump --jobs` does), so every part sees exactly the
database the parent sees, whatever the number of workers.

Workers are plain `python -m hedgerow.export.parts` processes that talk to the parent over
their stdin and stdout (pickled messages, trusted: the parent made them; the per-release
pseudonym secret travels this way, never on a command line or on disk). They import only
psycopg, pyarrow and the writers, not the web application, so each costs ~100 MB rather
than the ~250 MB of a copy of the parent. A worker whose parent dies stops after its
current batch.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.abc
import os
import queue
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from itertools import groupby
from multiprocessing.connection import Connection, wait
from operator import itemgetter
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.string import TextLoader

from hedgerow.export.shapes import MessageIds, Pseudonyms
from hedgerow.export.writers import PartOutcome, PartWriters

# Positions in the rows of queries.part_queries (kept here so workers need not import
# queries, which imports SQLAlchemy).
MESSAGE_ID_COLUMN = 0
TREE_ID_COLUMN = 1
TREE_STATE_COLUMN = 18
# Settings of the transaction a part is read in. Parts already run in parallel, and a
# batch is small: PostgreSQL's own parallel workers would only add start-up costs. Sorting
# a batch's labels by id stays in memory.
PART_TRANSACTION_SETTINGS = (
    "SET LOCAL jit = off",
    # Creation times are read as PostgreSQL prints them (see shapes.iso_timestamp).
    "SET LOCAL DateStyle = 'ISO'",
    "SET LOCAL max_parallel_workers_per_gather = 0",
    "SET LOCAL work_mem = '64MB'",
)
# Objects a worker allocates (net) before the collector's youngest generation runs.
WORKER_GC_THRESHOLD = 50_000
# How the workers' connections show in pg_stat_activity.
WORKER_APPLICATION_NAME = "hedgerow export worker"
# glibc gives each thread (pyarrow starts a pool) its own malloc arena, which keeps freed
# memory; two arenas cut a worker's peak RSS by ~15 MB. The operator's own value wins.
_WORKER_ENVIRONMENT = {"MALLOC_ARENA_MAX": "2"}


@dataclass(frozen=True)
class PartJob:
    """Everything a part needs, picklable for a worker."""

    index: int
    # (first_tree, last_tree) per batch, in order.
    batches: list[tuple[int, int]]
    directory: Path
    queries: dict[str, Any]


@dataclass(frozen=True)
class WriterSettings:
    pseudonym_secret: bytes
    installation_secret: str
    split_seed: int
    validation_share: float
    # Deleted accounts, exported without a user id.
    anonymous_users: frozenset[int] = frozenset()


def _fetch_by_message(cursor: psycopg.Cursor[Any], query: str, params: dict[str, Any]) -> Any:
    """Rows of `query` grouped by their first column (a message id), in query order, the
    rest of each row without that column."""
    grouped: dict[int, list[Any]] = {}
    for row in cursor.execute(query, params).fetchall():
        found = grouped.get(row[0])
        if found is None:
            grouped[row[0]] = [row[1:]]
        else:
            found.append(row[1:])
    return grouped


def _labels_by_message(cursor: psycopg.Cursor[Any], query: str, params: dict[str, Any]) -> Any:
    """The labels query's rows grouped by message id, each message's in label id order.
    The rows are kept whole (see shapes.Node.labels): copying three label rows per
    message without their first two columns cost more than grouping them."""
    rows = cursor.execute(query, params).fetchall()
    rows.sort(key=itemgetter(1))
    grouped: dict[int, list[Any]] = {}
    for row in rows:
        found = grouped.get(row[0])
        if found is None:
            grouped[row[0]] = [row]
        else:
            found.append(row)
    return grouped


@dataclass
class _Batch:
    """One batch as read: its message rows, and labels, rankings, reactions by message."""

    rows: list[Any]
    labels: dict[int, list[Any]]
    rankings: dict[int, list[Any]]
    reactions: dict[int, dict[str, int]]


def pseudonyms_of(settings: WriterSettings) -> Pseudonyms:
    return Pseudonyms(settings.pseudonym_secret, settings.anonymous_users)


def message_id_array(message_ids: Iterable[int]) -> str:
    """`message_ids` as a PostgreSQL array literal: a text parameter that the server casts,
    cheaper to make than psycopg's binary array of Python ints."""
    return "{" + ",".join(map(str, message_ids)) + "}"


def _read_batches(connection: psycopg.Connection[Any], job: PartJob) -> Iterator[_Batch]:
    queries = job.queries
    with connection.cursor() as cursor:
        # A message's creation time is only ever written out as text: read as the server
        # prints it (shapes.iso_timestamp turns that into what datetime.isoformat gives),
        # it skips a datetime made per message and converted to the session's time zone.
        cursor.adapters.register_loader("timestamptz", TextLoader)
        for first_tree, last_tree in job.batches:
            params = {**queries["params"], "first_tree": first_tree, "last_tree": last_tree}
            rows = cursor.execute(queries["messages"], params).fetchall()
            by_message = {"message_ids": message_id_array([row[MESSAGE_ID_COLUMN] for row in rows])}
            labels = _labels_by_message(cursor, queries["labels"], by_message)
            rankings = _fetch_by_message(cursor, queries["rankings"], by_message)
            reactions: dict[int, dict[str, int]] = {}
            for message_id, kind, count in cursor.execute(queries["reactions"], by_message):
                reactions.setdefault(message_id, {})[kind] = count
            yield _Batch(rows, labels, rankings, reactions)


def _read_ahead(batches: Iterator[_Batch]) -> Generator[_Batch, None, None]:
    """`batches`, each read on a thread while the one before is written: psycopg waits for
    the server without holding the GIL, so the server's work on the next batch overlaps this
    process's work on the current one. One batch waits at most (memory stays flat)."""
    handoff: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()
    finished = object()

    def hand_over(item: Any) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def read() -> None:
        try:
            for batch in batches:
                if not hand_over(batch):
                    return
            hand_over(finished)
        except BaseException as error:  # raised again on the writing side
            hand_over(error)

    reader = threading.Thread(target=read, name="export-part-reader", daemon=True)
    reader.start()
    try:
        while (item := handoff.get()) is not finished:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


def write_part(
    connection: psycopg.Connection[Any],
    job: PartJob,
    settings: WriterSettings,
    *,
    pseudonyms: Pseudonyms | None = None,
    on_tree: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> PartOutcome:
    """Export the trees of `job` through `connection`, which is inside the export's
    snapshot (and used by no one else meanwhile). `pseudonyms` (made from `settings`) may be
    shared by the parts of one export, so that each person's is computed once. `on_tree`
    hears the rows of each tree read, `on_batch` those of each batch."""
    if pseudonyms is None:
        pseudonyms = pseudonyms_of(settings)
    writers = PartWriters(
        job.directory,
        job.index,
        pseudonyms=pseudonyms,
        message_ids=MessageIds(settings.installation_secret),
        split_seed=settings.split_seed,
        validation_share=settings.validation_share,
    )
    try:
        # Closed on the way out, failure included: the reader stops before the connection
        # is used for anything else.
        with contextlib.closing(_read_ahead(_read_batches(connection, job))) as batches:
            for batch in batches:
                done = 0
                for _, tree_rows in groupby(batch.rows, key=itemgetter(TREE_ID_COLUMN)):
                    rows = list(tree_rows)
                    writers.write_tree(
                        rows[0][TREE_STATE_COLUMN],
                        rows,
                        batch.labels,
                        batch.reactions,
                        batch.rankings,
                    )
                    # Progress counts rows read, as the total does (orphans of filtered-out
                    # messages included), so that it ends at the total.
                    done += len(rows)
                    if on_tree is not None:
                        on_tree(len(rows))
                if on_batch is not None:
                    on_batch(done)
        return writers.close()
    except BaseException:
        writers.abort()
        raise


# --- worker processes -----------------------------------------------------------------


class _WithoutPandas(importlib.abc.MetaPathFinder):
    """pyarrow's first conversion from Python objects imports pandas (~45 MB of memory) only
    to ask whether the objects are pandas ones. A worker never has any, so its pyarrow is
    told that pandas is not installed, as it would be without it."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname == "pandas" or fullname.startswith("pandas."):
            raise ImportError("export workers do without pandas")
        return None


def _worker_main() -> None:
    """A worker: set up from the first message, then export parts until told to stop."""
    sys.meta_path.insert(0, _WithoutPandas())
    commands = Connection(os.dup(sys.stdin.fileno()), writable=False)
    replies = Connection(os.dup(sys.stdout.fileno()), readable=False)
    # Stray prints must not corrupt the channel to the parent.
    sys.stdout = sys.stderr
    parent = os.getppid()
    conninfo, snapshot_id, settings = commands.recv()
    with psycopg.connect(conninfo, application_name=WORKER_APPLICATION_NAME) as connection:
        connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        connection.read_only = True
        connection.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(snapshot_id))
        for setting in PART_TRANSACTION_SETTINGS:
            connection.execute(setting)

        def report_batch(done: int) -> None:
            if os.getppid() != parent:
                raise SystemExit("the export's parent process is gone")
            replies.send(("progress", done))

        # One person's pseudonym serves every part of this worker.
        pseudonyms = pseudonyms_of(settings)
        # What the worker imported lives as long as the worker: the collector need not walk
        # it again at every full collection (gc.freeze's own use case). The export makes no
        # reference cycles (its trees are freed as they are written; see shapes), so the
        # collector runs after 50k new objects rather than 700: ~5% of a worker's CPU.
        gc.freeze()
        gc.set_threshold(WORKER_GC_THRESHOLD, 20, 10)

        while True:
            try:
                job = commands.recv()
            except EOFError:
                return
            if job is None:
                return
            try:
                outcome = write_part(
                    connection, job, settings, pseudonyms=pseudonyms, on_batch=report_batch
                )
            except Exception:
                replies.send(("error", traceback.format_exc()))
                return
            replies.send(("done", outcome))


class WorkerFailed(RuntimeError):
    pass


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    commands: Connection
    replies: Connection
    busy: bool = False


class WorkerPool:
    """`count` worker processes sharing the parent's snapshot. Messages go through
    `multiprocessing.connection.Connection`s on the workers' stdin and stdout, which frame
    each pickle, so waiting on several workers never stalls on a half-read buffer."""

    def __init__(
        self, count: int, conninfo: str, snapshot_id: str, settings: WriterSettings
    ) -> None:
        self._workers: list[_Worker] = []
        try:
            for _ in range(count):
                process = subprocess.Popen(
                    [sys.executable, "-m", "hedgerow.export.parts"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    env=_WORKER_ENVIRONMENT | dict(os.environ),
                )
                assert process.stdin is not None and process.stdout is not None
                worker = _Worker(
                    process,
                    Connection(os.dup(process.stdin.fileno()), readable=False),
                    Connection(os.dup(process.stdout.fileno()), writable=False),
                )
                process.stdin.close()
                process.stdout.close()
                self._workers.append(worker)
                worker.commands.send((conninfo, snapshot_id, settings))
        except BaseException:
            self.close()
            raise

    def run(self, jobs: list[PartJob]) -> Iterator[tuple[str, Any]]:
        """Hand out `jobs` in order to idle workers; yields ("progress", messages) as batches
        finish and ("done", PartOutcome) as parts finish (in any order)."""
        pending = list(reversed(jobs))
        by_replies = {id(worker.replies): worker for worker in self._workers}

        def hand_out(worker: _Worker) -> None:
            worker.busy = bool(pending)
            if pending:
                worker.commands.send(pending.pop())

        for worker in self._workers:
            hand_out(worker)
        while True:
            busy = [worker.replies for worker in self._workers if worker.busy]
            if not busy:
                return
            for ready in wait(busy):
                worker = by_replies[id(ready)]
                try:
                    kind, value = worker.replies.recv()
                except EOFError:
                    code = worker.process.wait()
                    raise WorkerFailed(f"an export worker exited with {code}") from None
                if kind == "error":
                    raise WorkerFailed(f"an export worker failed:\n{value}")
                if kind == "done":
                    # The next part goes out before the caller joins this one: a worker
                    # never waits for the parent's work.
                    hand_out(worker)
                yield kind, value

    def close(self) -> None:
        """Stop the workers: idle ones exit at once, and a busy one (after a failure
        elsewhere) is killed rather than left to finish a part nobody will read."""
        for worker in self._workers:
            try:
                if worker.busy:
                    worker.process.kill()
                else:
                    worker.commands.send(None)
            except OSError:
                pass
            worker.commands.close()
        for worker in self._workers:
            try:
                worker.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
            worker.replies.close()


if __name__ == "__main__":
    _worker_main()
