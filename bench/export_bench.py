"""Export throughput and peak memory on a seeded corpus.

    python bench/seed.py --database-url postgresql://postgres@127.0.0.1/hedgerow_bench \
        --messages 100000
    python bench/export_bench.py --database-url postgresql://postgres@127.0.0.1/hedgerow_bench

Exports every tree state (the seeded corpus is mostly finished trees, plus open work) into a
temporary releases root, and prints messages per second, CPU seconds (this process and its
export workers), the CPU seconds of the PostgreSQL backends serving the workers, and peak
memory: this process's, the largest worker's, and the largest sums of this process's and
its workers' RSS (sampled every 100 ms) and PSS (every second). Run it on two corpus sizes to see
that memory does not grow with the corpus.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import psycopg
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, text
from sqlalchemy.orm import sessionmaker

from hedgerow.config import get_settings
from hedgerow.db import make_engine
from hedgerow.export.parts import WORKER_APPLICATION_NAME
from hedgerow.export.run import export_worker_count, run_export
from hedgerow.export.schemas import ExportFilters
from hedgerow.models import TreeState

# The seeded corpus has messages only; a real one has about three reviews per message, the
# confidence of each review decision and two or more rankings per sibling set, which the
# export reads and writes too (and from which it computes the release's agreement).
ADD_REVIEWS = """
WITH people AS (SELECT min(id) AS first_id, count(*) AS how_many FROM "user")
INSERT INTO label (message_id, user_id, values, mode, guideline_version)
SELECT m.id, people.first_id + (m.id * 7 + g) % people.how_many,
       -- Reviewers who mostly agree: spam and wrong language are rare, and the quality
       -- of each message varies by a step or two among its reviewers.
       jsonb_build_object(
           'spam', (abs(hashint8(m.id * 3 + g)) % 23 = 0)::int,
           'lang_mismatch', (abs(hashint8(m.id * 5 + g)) % 31 = 0)::int,
           'quality', least(4, abs(hashint8(m.id)) % 4 + abs(hashint8(m.id * 7 + g)) % 2) / 4.0
       ),
       'quick', '2026-11'
  FROM message m CROSS JOIN generate_series(1, 3) g CROSS JOIN people
"""
ADD_RANKINGS = """
WITH people AS (SELECT min(id) AS first_id, count(*) AS how_many FROM "user")
INSERT INTO ranking (parent_message_id, user_id, ordered_message_ids, grades)
SELECT p.id, min(people.first_id + (p.id * 13 + g) % people.how_many),
       -- The second ranker of every third set reverses the first one's order.
       array_agg(c.id ORDER BY CASE WHEN g = 2 AND p.id % 3 = 0 THEN -c.consensus_rank
                                    ELSE c.consensus_rank END NULLS LAST, c.id),
       array_fill('better'::varchar, ARRAY[count(*)::int - 1])
  FROM message p
  JOIN message c ON c.parent_id = p.id AND c.role = 'assistant'
  CROSS JOIN generate_series(1, 2) g
  CROSS JOIN people
 GROUP BY p.id, g
HAVING count(*) > 1
"""
# Decided messages carry the posterior probability of their decision.
ADD_CONFIDENCE = """
UPDATE message SET review_confidence = 0.9 + (id % 10) / 100.0
 WHERE review_state <> 'pending' AND review_confidence IS NULL
"""


def add_reviews(engine: Engine) -> None:
    with engine.begin() as conn:
        # A corpus that a load run has used holds a few labels already: reviews are added
        # unless there are about as many labels as messages (added before).
        labels = conn.execute(text("SELECT count(*) FROM label")).scalar_one()
        messages = conn.execute(text("SELECT count(*) FROM message")).scalar_one()
        if labels >= messages:
            return
        conn.execute(text(ADD_REVIEWS))
        conn.execute(text(ADD_RANKINGS))
        conn.execute(text(ADD_CONFIDENCE))
    with engine.connect() as conn:
        # As autovacuum would have by the time a real corpus is this size (VACUUM: the
        # confidence update rewrote every decided message).
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("VACUUM ANALYZE message, label, ranking")
        )


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS; for RUSAGE_CHILDREN it is the largest
    # single child's.
    peak = resource.getrusage(who).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def proportional_set_size(pid: int) -> int:
    """Bytes of a process's PSS (shared pages divided among the processes sharing them), from
    Linux's smaps_rollup: unlike RSS, PSS adds up across processes."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


class Sampler:
    """Every 100 ms, the sum of this process's and its children's RSS; every second, the
    sum of their PSS (shared pages divided among the processes sharing them; a worker's RSS
    counts the libraries it shares with the others, so the RSS sum overstates what the
    export holds and the PSS sum does not). The largest sums are reported. Also the CPU
    time of the PostgreSQL backends serving the export's workers (found by application
    name; the last value read before each backend exits). Its own CPU time is measured, to
    be left out. PSS is read once a second, not every 100 ms: the kernel walks every page
    table to add it up, which took ~3 s of CPU (of two cores shared with the export) in a
    1M-message run when read ten times a second."""

    TICK_SECONDS = 0.1
    SLOW_EVERY_TICKS = 10

    def __init__(self, database_url: str) -> None:
        self.peak_mb = 0.0
        self.peak_pss_mb = 0.0
        self.backend_cpu: dict[int, float] = {}
        self.own_cpu = 0.0
        self._database_url = database_url
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        started = time.thread_time()
        me = psutil.Process()
        processes: list[psutil.Process] = [me]
        backends: list[psutil.Process] = []
        with psycopg.connect(self._database_url, autocommit=True) as connection:
            tick = 0
            while not self._stop.wait(self.TICK_SECONDS):
                slow = tick % self.SLOW_EVERY_TICKS == 0
                # Children and backends are looked up at the first ticks too: workers start
                # within the first second.
                if slow or tick < self.SLOW_EVERY_TICKS:
                    with contextlib.suppress(psutil.Error):
                        processes = [me, *me.children(recursive=True)]
                    pids = connection.execute(
                        "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                        (WORKER_APPLICATION_NAME,),
                    ).fetchall()
                    known = {backend.pid for backend in backends}
                    for (pid,) in pids:
                        if pid not in known:
                            with contextlib.suppress(psutil.Error):
                                backends.append(psutil.Process(pid))
                tick += 1
                total = pss = 0
                for process in processes:
                    with contextlib.suppress(psutil.Error, OSError):
                        total += process.memory_info().rss
                        if slow:
                            pss += proportional_set_size(process.pid)
                self.peak_mb = max(self.peak_mb, total / (1024 * 1024))
                if slow:
                    self.peak_pss_mb = max(self.peak_pss_mb, pss / (1024 * 1024))
                for backend in backends:
                    with contextlib.suppress(psutil.Error):
                        times = backend.cpu_times()
                        self.backend_cpu[backend.pid] = times.user + times.system
        self.own_cpu = time.thread_time() - started

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument(
        "--ready-only",
        action="store_true",
        help="Default filters (ready trees only) instead of every state.",
    )
    parser.add_argument(
        "--add-reviews",
        action="store_true",
        help=(
            "First add three labels per message, two rankings per sibling set and the "
            "confidence of the review decisions (once)."
        ),
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Export worker processes (the export_workers setting; 0: one per core).",
    )
    args = parser.parse_args()

    engine = make_engine(args.database_url, pool_size=3, max_overflow=0)
    if args.add_reviews:
        add_reviews(engine)
    maker = sessionmaker(bind=engine, expire_on_commit=False)
    filters = (
        ExportFilters() if args.ready_only else ExportFilters(states=[s.value for s in TreeState])
    )
    settings = get_settings()
    if args.workers is not None:
        settings.export_workers = args.workers
    baseline_mb = psutil.Process(os.getpid()).memory_info().rss / (1024 * 1024)
    with tempfile.TemporaryDirectory(prefix="hedgerow-export-bench-") as root:
        settings.releases_dir = Path(root)
        started = time.perf_counter()
        parent_cpu_started = cpu_seconds(resource.RUSAGE_SELF)
        workers_cpu_started = cpu_seconds(resource.RUSAGE_CHILDREN)
        with Sampler(args.database_url) as sampler:
            outcome = run_export(maker, filters=filters)
        seconds = time.perf_counter() - started
        # CPU of this process (all threads) and of its finished workers: steadier than wall
        # time on a shared machine, and it leaves out PostgreSQL's share.
        parent_cpu = cpu_seconds(resource.RUSAGE_SELF) - parent_cpu_started - sampler.own_cpu
        workers_cpu = cpu_seconds(resource.RUSAGE_CHILDREN) - workers_cpu_started
        size_mb = sum(p.stat().st_size for p in outcome.directory.iterdir()) / (1024 * 1024)
    engine.dispose()

    stats = outcome.stats
    table = Table(title="Export")
    for column in (
        "messages",
        "trees",
        "workers",
        "seconds",
        "messages/s",
        "CPU s (parent+workers)",
        "messages/CPU s",
        "PostgreSQL CPU s (workers' backends)",
        "release MB",
        "RSS before MB",
        "peak RSS MB parent",
        "largest worker",
        "sum sampled",
        "PSS sum sampled",
        "load avg",
    ):
        table.add_column(column, justify="right")
    total_cpu = parent_cpu + workers_cpu
    table.add_row(
        f"{stats.messages:,}",
        f"{stats.trees:,}",
        str(export_worker_count(settings)),
        f"{seconds:.1f}",
        f"{stats.messages / seconds:,.0f}",
        f"{total_cpu:.1f} ({parent_cpu:.1f}+{workers_cpu:.1f})",
        f"{stats.messages / total_cpu:,.0f}",
        f"{sum(sampler.backend_cpu.values()):.1f}" if sampler.backend_cpu else "-",
        f"{size_mb:.1f}",
        f"{baseline_mb:.0f}",
        f"{peak_rss_mb():.0f}",
        f"{peak_rss_mb(resource.RUSAGE_CHILDREN):.0f}",
        f"{sampler.peak_mb:.0f}",
        f"{sampler.peak_pss_mb:.0f}",
        f"{os.getloadavg()[0]:.1f}",
    )
    Console(width=320).print(table)


if __name__ == "__main__":
    main()
