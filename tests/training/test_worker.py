"""`hedgerow train`: a real Celery worker on the `train` queue runs queued runs and, on
start, picks up the runs a dead worker left behind."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis as redis_lib

from hedgerow.config import REPO_ROOT
from hedgerow.models import ModelVersion, ModelVersionStatus
from hedgerow.training import availability, service
from tests.training.conftest import TINY_TRAINING, Corpus

WORKER_DEADLINE_SECONDS = 120


def _statuses(corpus: Corpus, ids: list[int]) -> list[str]:
    with corpus.maker() as db:
        return [db.get_one(ModelVersion, version_id).status for version_id in ids]


def test_train_command_runs_queued_and_interrupted_runs(
    corpus: Corpus, models_dir: Path, tmp_path: Path, redis_db: redis_lib.Redis
) -> None:
    with corpus.maker.begin() as db:
        queued = service.start_run(db, corpus.release_id, requested_by=None)
        interrupted = service.start_run(db, corpus.release_id, requested_by=None)
        # As a worker killed mid-run leaves it: training, nobody holding its lock.
        interrupted.status = ModelVersionStatus.training.value
        # Both runs fail at once on the size check (a version keeps the configuration it
        # was queued with): this test is about the worker, not the training.
        for version in (queued, interrupted):
            version.config = {**version.config, "min_conversations": 1000}
        queued_id, interrupted_id = queued.id, interrupted.id
    service.enqueue_training(queued_id)
    env = {
        **os.environ,
        "HEDGEROW_RELEASES_DIR": str(corpus.releases_dir),
        "HEDGEROW_TRAINING_MODELS_DIR": str(models_dir),
        **{f"HEDGEROW_{key.upper()}": str(value) for key, value in TINY_TRAINING.items()},
    }
    with (tmp_path / "trainer.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "hedgerow.cli", "train"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + WORKER_DEADLINE_SECONDS
            ids = [queued_id, interrupted_id]
            while _statuses(corpus, ids) != ["failed", "failed"]:
                assert process.poll() is None, (tmp_path / "trainer.log").read_text()
                assert time.monotonic() < deadline, _statuses(corpus, ids)
                time.sleep(0.2)
            # While it runs, it tells the web that runs can be queued (see availability).
            running = availability.live_trainers(redis_db)
        finally:
            process.terminate()
            process.wait(timeout=60)
    assert [trainer.name for trainer in running] == [
        f"trainer@{socket.gethostname()}:{process.pid}"
    ]
    # A clean stop withdraws it at once.
    assert availability.live_trainers(redis_db) == []
    output = (tmp_path / "trainer.log").read_text()
    assert f"Resuming model version {interrupted_id}" in output
    with corpus.maker() as db:
        for version_id in ids:
            assert "at least 1000 are needed" in (
                db.get_one(ModelVersion, version_id).failure_reason or ""
            )
