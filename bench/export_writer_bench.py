"""The export's per-message work alone: a worker's writing of a corpus read once into memory.

    python bench/export_writer_bench.py --database-url postgresql://postgres@127.0.0.1/bench10k
    OPENBLAS_NUM_THREADS=1 valgrind --tool=callgrind --callgrind-out-file=/tmp/writers.out \\
        python bench/export_writer_bench.py --database-url postgresql://postgres@127.0.0.1/bench10k

Reads every tree of the corpus (every state) with the export's own part queries, then times
`PartWriters.write_tree` over all of them as an export worker runs it (frozen imports, the
workers' collector threshold) and prints CPU microseconds per message. On a shared machine
CPU time moves with the other load; the instruction count that callgrind prints does not,
which makes it the measure for comparing two versions of the writers (run each version with
its own code on `PYTHONPATH`; a 10k-message corpus takes a few minutes under callgrind).
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from dataclasses import asdict
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

import psycopg

from hedgerow.export import parts, queries
from hedgerow.export.parts import PART_TRANSACTION_SETTINGS, TREE_ID_COLUMN, TREE_STATE_COLUMN
from hedgerow.export.schemas import ExportFilters
from hedgerow.export.shapes import MessageIds, Pseudonyms
from hedgerow.export.writers import PartWriters
from hedgerow.models import TreeState

EVERY_TREE = [(queries.LOWEST_TREE_ID, 2**63 - 1)]


def read_trees(database_url: str) -> list[tuple[Any, ...]]:
    """write_tree's arguments for every tree of the corpus."""
    filters = ExportFilters(states=[state.value for state in TreeState])
    job = parts.PartJob(0, EVERY_TREE, Path("."), asdict(queries.part_queries(filters)))
    trees = []
    with psycopg.connect(database_url) as connection:
        for setting in PART_TRANSACTION_SETTINGS:
            connection.execute(setting)
        for batch in parts._read_batches(connection, job):
            for _, tree_rows in groupby(batch.rows, key=itemgetter(TREE_ID_COLUMN)):
                rows = list(tree_rows)
                state = rows[0][TREE_STATE_COLUMN]
                trees.append((state, rows, batch.labels, batch.reactions, batch.rankings))
    return trees


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args()
    trees = read_trees(args.database_url)
    messages = sum(len(tree[1]) for tree in trees)
    # As parts._worker_main sets up a worker.
    gc.freeze()
    gc.set_threshold(parts.WORKER_GC_THRESHOLD, 20, 10)
    with tempfile.TemporaryDirectory(prefix="hedgerow-writer-bench-") as directory:
        writers = PartWriters(
            Path(directory),
            0,
            pseudonyms=Pseudonyms(b"k" * 32),
            message_ids=MessageIds("bench"),
            split_seed=1,
            validation_share=0.05,
        )
        started = time.process_time()
        for tree in trees:
            writers.write_tree(*tree)
        writers.close()
        seconds = time.process_time() - started
    per_message = seconds / messages * 1e6
    print(f"{messages:,} messages, {len(trees):,} trees: {per_message:.2f} CPU µs/message")


if __name__ == "__main__":
    main()
