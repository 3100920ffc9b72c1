"""A killed export is run again and publishes: real Celery workers against this run's
Redis, killed mid-export; the retry takes over the half-written release, and releases
left `running` by a dead export are marked failed by a periodic job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
import redis as redis_lib
from sqlalchemy import select, text

from hedgerow.config import REPO_ROOT
from hedgerow.export import run, service
from hedgerow.export.jobs import manual_release_job
from hedgerow.export.publish import make_partial_directory
from hedgerow.export.scheduled import BEAT_SCHEDULE
from hedgerow.export.schemas import ExportFilters
from hedgerow.models import Release, ReleaseKind, ReleaseState
from hedgerow.worker import celery_app
from tests.export.conftest import Corpus

DEADLINE_SECONDS = 120


def _releases(corpus: Corpus) -> list[Release]:
    with corpus.maker() as db:
        return list(db.scalars(select(Release).order_by(Release.id)))


@contextmanager
def celery_worker(
    tmp_path: Path, releases_dir: Path, marker: Path, *, visibility_timeout: int | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A real worker on the default queue: a main process and one pool process that runs
    the jobs (prefork, as `hedgerow up` runs it), in a process group of its own."""
    env = {
        **os.environ,
        "HEDGEROW_RELEASES_DIR": str(releases_dir),
        "HEDGEROW_EXPORT_WORKERS": "1",
        "HEDGEROW_TEST_HANG_MARKER": str(marker),
    }
    if visibility_timeout is not None:
        env["HEDGEROW_BROKER_VISIBILITY_TIMEOUT_SECONDS"] = str(visibility_timeout)
    log = (tmp_path / f"worker-{time.monotonic_ns()}.log").open("wb")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "tests.export.hanging_worker"),
            *("worker", "-Q", "default", "--pool", "prefork", "--concurrency", "1"),
            *("--without-mingle", "--without-gossip", "--without-heartbeat"),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


def _wait_for_the_hang(marker: Path, worker: subprocess.Popen[bytes], corpus: Corpus) -> int:
    """The pid of the pool process once it has written its first tree (the release row
    shows the progress) and stopped; fails if the worker dies first."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if marker.exists():
            running = [r for r in _releases(corpus) if r.state == ReleaseState.running]
            assert running and running[0].messages_done > 0, running
            return int(marker.read_text())
        try:
            worker.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"the worker exited with {worker.returncode}")
    raise AssertionError("the export never started writing")


def _assert_published_by_the_retry(
    corpus: Corpus, releases_dir: Path, outcome: dict[str, object], killed: Release
) -> None:
    [release] = _releases(corpus)
    assert (release.id, release.name) == (killed.id, killed.name), "the retry took it over"
    assert release.state == ReleaseState.published and release.error is None
    assert release.attempts == 2
    assert outcome["release_id"] == release.id and outcome["name"] == release.name
    assert isinstance(outcome["messages"], int) and outcome["messages"] > 0
    # The half-written files of the killed attempt are gone.
    assert os.listdir(releases_dir) == [release.name]


def test_an_export_whose_process_is_killed_is_run_again_and_publishes(
    corpus: Corpus, releases_dir: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "hung"
    with celery_worker(tmp_path, releases_dir, marker) as worker:
        result = manual_release_job.delay()
        pid = _wait_for_the_hang(marker, worker, corpus)
        assert psutil.Process(pid).ppid() == worker.pid, "the pool process runs the export"
        [killed] = _releases(corpus)

        os.kill(pid, signal.SIGKILL)

        outcome = result.get(timeout=DEADLINE_SECONDS)
        assert worker.poll() is None, "the worker itself lives on"
    _assert_published_by_the_retry(corpus, releases_dir, outcome, killed)


def test_an_export_whose_whole_worker_is_killed_runs_again_when_a_worker_starts(
    corpus: Corpus, releases_dir: Path, tmp_path: Path, redis_db: redis_lib.Redis
) -> None:
    marker = tmp_path / "hung"
    # A timeout shorter than a worker takes to start: the next worker delivers it again
    # as it starts (in production it is longer than the longest job).
    with celery_worker(tmp_path, releases_dir, marker, visibility_timeout=1) as first:
        result = manual_release_job.delay()
        _wait_for_the_hang(marker, first, corpus)
        [killed] = _releases(corpus)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    # Nobody acknowledged the job: the broker still holds it as delivered.
    assert redis_db.hlen("unacked") == 1

    with celery_worker(tmp_path, releases_dir, marker, visibility_timeout=1):
        outcome = result.get(timeout=DEADLINE_SECONDS)
    _assert_published_by_the_retry(corpus, releases_dir, outcome, killed)


def test_release_jobs_are_acknowledged_late_and_handed_back_when_their_worker_is_lost() -> None:
    import hedgerow.training.jobs  # noqa: F401  (registers the training jobs)

    for name in ("export.nightly_release", "export.manual_release", "training.train_model_version"):
        job = celery_app.tasks[name]
        assert (job.acks_late, job.reject_on_worker_lost) == (True, True), name
    options = celery_app.conf.broker_transport_options
    assert options["visibility_timeout"] == 12 * 3600


# --- the rerun, in this process -----------------------------------------------------------


def _killed_attempt(corpus: Corpus, releases_dir: Path, job_id: str) -> Release:
    """What a delivery of `job_id` killed mid-export leaves: its release row `running` and
    a half-written partial directory."""
    with corpus.maker.begin() as db:
        release = service.new_release(db, ReleaseKind.manual, ExportFilters(), False, job_id)
    partial = make_partial_directory(releases_dir, release.name)
    (partial / "messages.jsonl").write_text('{"half": ')
    return release


def test_a_rerun_of_the_same_job_takes_over_its_release_and_a_later_one_returns_it(
    corpus: Corpus, releases_dir: Path
) -> None:
    killed = _killed_attempt(corpus, releases_dir, "job-1")

    outcome = run.run_export(corpus.maker, job_id="job-1")
    again = run.run_export(corpus.maker, job_id="job-1")  # delivered once more after publishing

    [release] = _releases(corpus)
    assert (release.id, release.state, release.attempts) == (killed.id, "published", 2)
    assert (outcome.release_id, again.release_id) == (release.id, release.id)
    assert again.stats.messages == outcome.stats.messages > 0
    assert os.listdir(releases_dir) == [release.name]
    # Another job makes another release.
    other = run.run_export(corpus.maker, job_id="job-2")
    assert other.release_id != release.id


def test_a_job_interrupted_too_often_gives_up_with_the_reason(
    corpus: Corpus, releases_dir: Path
) -> None:
    killed = _killed_attempt(corpus, releases_dir, "job-oom")
    with corpus.maker.begin() as db:
        db.get_one(Release, killed.id).attempts = service.MAX_ATTEMPTS

    with pytest.raises(run.ExportGaveUp, match=f"interrupted {service.MAX_ATTEMPTS} times"):
        run.run_export(corpus.maker, job_id="job-oom")

    [release] = _releases(corpus)
    assert release.state == ReleaseState.failed
    assert release.error == service.GAVE_UP.format(attempts=service.MAX_ATTEMPTS)
    assert os.listdir(releases_dir) == []


def test_the_periodic_job_marks_a_dead_exports_release_failed_but_leaves_a_live_one(
    corpus: Corpus, releases_dir: Path
) -> None:
    assert BEAT_SCHEDULE["export.clean_up_dead_exports"]["task"] == "export.clean_up_dead_exports"
    dead = _killed_attempt(corpus, releases_dir, "job-dead")
    engine = corpus.maker.kw["bind"]

    # While an export holds the lock, its running row is not stale.
    with engine.connect() as live_export:
        live_export.execute(text("SELECT pg_advisory_lock(:key)"), {"key": run.EXPORT_LOCK_KEY})
        try:
            assert run.clean_up_dead_exports(corpus.maker) == []
        finally:
            live_export.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": run.EXPORT_LOCK_KEY}
            )
    assert _releases(corpus)[0].state == ReleaseState.running

    assert celery_app.tasks["export.clean_up_dead_exports"].run() == [dead.name]

    [release] = _releases(corpus)
    assert (release.state, release.error) == (ReleaseState.failed, service.INTERRUPTED)
    assert release.finished_at is not None
    assert os.listdir(releases_dir) == []
