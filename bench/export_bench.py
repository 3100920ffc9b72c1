"""Export throughput and peak memory on a seeded corpus.

    python bench/seed.py --database-url postgresql://postgres@127.0.0.1/hedgerow_bench \
        --messages 100000
    python bench/export_bench.py --database-url postgresql://postgres@127.0.0.1/hedgerow_bench

Exports every tree state (the seeded corpus is mostly finished trees, plus open work) into a
temporary releases root, and prints messages per second and the process's peak RSS. Run it
on two corpus sizes to see that memory does not grow with the corpus.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import sessionmaker

from hedgerow.config import get_settings
from hedgerow.db import make_engine
from hedgerow.export.schemas import ExportFilters
from hedgerow.export.service import run_export
from hedgerow.models import TreeState


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument(
        "--ready-only",
        action="store_true",
        help="Default filters (ready trees only) instead of every state.",
    )
    args = parser.parse_args()

    engine = make_engine(args.database_url, pool_size=3, max_overflow=0)
    maker = sessionmaker(bind=engine, expire_on_commit=False)
    filters = (
        ExportFilters() if args.ready_only else ExportFilters(states=[s.value for s in TreeState])
    )
    settings = get_settings()
    baseline_mb = psutil.Process(os.getpid()).memory_info().rss / (1024 * 1024)
    with tempfile.TemporaryDirectory(prefix="hedgerow-export-bench-") as root:
        settings.releases_dir = Path(root)
        started = time.perf_counter()
        outcome = run_export(maker, filters=filters)
        seconds = time.perf_counter() - started
        size_mb = sum(p.stat().st_size for p in outcome.directory.iterdir()) / (1024 * 1024)
    engine.dispose()

    stats = outcome.stats
    table = Table(title="Export")
    for column in (
        "messages",
        "trees",
        "seconds",
        "messages/s",
        "release MB",
        "RSS before MB",
        "peak RSS MB",
    ):
        table.add_column(column, justify="right")
    table.add_row(
        f"{stats.messages:,}",
        f"{stats.trees:,}",
        f"{seconds:.1f}",
        f"{stats.messages / seconds:,.0f}",
        f"{size_mb:.1f}",
        f"{baseline_mb:.0f}",
        f"{peak_rss_mb():.0f}",
    )
    Console().print(table)


if __name__ == "__main__":
    main()
