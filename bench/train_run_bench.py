"""A newcomer's first training run, end to end and timed as they would wait for it:
`hedgerow simulate` grows a release's worth of trees, `hedgerow export` publishes it, and
`hedgerow train-run` trains the default `tiny` model on it with the default settings
(3 epochs, batch 8, up to 1,024 tokens a row, 12 reference answers of up to 256 tokens).

    python bench/train_run_bench.py --database-url postgresql://postgres@127.0.0.1/postgres \
        --volunteers 30 --prompts 40

Each command runs as its own process on a scratch database (created on --database-url's
server and dropped afterwards) with its data under a temporary directory, so the times
include starting Python and importing torch, transformers and TRL, as a newcomer's do.
Prints a Markdown row: the release (trees, SFT conversations), the wall time of
`train-run` and its CPU time (every thread and process: torch uses all cores, so on an
idle machine the wall time is about the CPU time over the cores), its steps, the seconds
of its training loop (from the version's metrics; the rest is building the tiny model and
its tokenizer, evaluation before and after, the reference answers and writing the
artifact), and the validation loss before and after.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

SCRATCH_DATABASE = "train_run_bench"


def _scratch_database(admin_url: str) -> str:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{SCRATCH_DATABASE}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{SCRATCH_DATABASE}"'))
    engine.dispose()
    url = make_url(admin_url).set(database=SCRATCH_DATABASE)
    return url.render_as_string(hide_password=False)


def _drop_scratch_database(admin_url: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{SCRATCH_DATABASE}" WITH (FORCE)'))
    engine.dispose()


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(arguments: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run `hedgerow ARGUMENTS`; its wall time and CPU time (all its threads and
    processes) in seconds. It must succeed."""
    started, cpu_before = time.monotonic(), _children_cpu_seconds()
    finished = subprocess.run(
        [sys.executable, "-m", "hedgerow.cli", *arguments],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    if finished.returncode != 0:
        raise SystemExit(
            f"hedgerow {' '.join(arguments)} failed:\n{finished.stdout}\n{finished.stderr}"
        )
    return seconds, _children_cpu_seconds() - cpu_before


def _facts(database_url: str) -> dict[str, object]:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        release = conn.execute(text("SELECT counts FROM release ORDER BY id DESC LIMIT 1")).one()
        version = conn.execute(
            text("SELECT status, metrics FROM model_version ORDER BY id DESC LIMIT 1")
        ).one()
    engine.dispose()
    if version.status != "ready":
        raise SystemExit(f"the run ended {version.status}")
    return {"counts": release.counts, "metrics": version.metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="a server to make a scratch db on")
    parser.add_argument("--volunteers", type=int, default=30)
    parser.add_argument("--prompts", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()

    database_url = _scratch_database(arguments.database_url)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            # The defaults, whatever this shell has set: only where the data goes differs.
            env = {
                key: value
                for key, value in os.environ.items()
                if not key.startswith("HEDGEROW_TRAINING_") and key != "DATABASE_URL"
            }
            env |= {"DATABASE_URL": database_url, "HEDGEROW_DATA_DIR": str(Path(scratch))}
            _timed(["migrate"], env)
            crowd = [
                "simulate",
                f"--volunteers={arguments.volunteers}",
                f"--prompts={arguments.prompts}",
                f"--seed={arguments.seed}",
            ]
            simulate_seconds, _ = _timed(crowd, env)
            export_seconds, _ = _timed(["export"], env)
            load_before = os.getloadavg()[0]
            train_seconds, train_cpu_seconds = _timed(["train-run"], env)
            load_after = os.getloadavg()[0]
            facts = _facts(database_url)
    finally:
        _drop_scratch_database(arguments.database_url)
    counts, metrics = facts["counts"], facts["metrics"]
    assert isinstance(counts, dict) and isinstance(metrics, dict)
    print(f"simulate {simulate_seconds:.0f} s, export {export_seconds:.1f} s")
    # The wall time depends on what else the machine runs; the CPU time much less.
    print(
        f"{os.cpu_count()} CPUs; 1-minute load average {load_before:.1f} before train-run, "
        f"{load_after:.1f} after"
    )
    print(
        "| trees | SFT conversations | train examples | steps | `train-run` wall s "
        "| its CPU s | training loop s | validation loss before -> after |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {counts['trees']} | {counts['rows'].get('sft.jsonl', 0)} "
        f"| {metrics['train_examples']} | {metrics['steps']} | {train_seconds:.0f} "
        f"| {train_cpu_seconds:.0f} | {metrics['train_seconds']:.0f} "
        f"| {metrics.get('base_validation_loss', float('nan')):.3f} -> "
        f"{metrics.get('validation_loss', float('nan')):.3f} |"
    )


if __name__ == "__main__":
    main()
