"""Atomic publish, cleanup after a killed export, failures, retention and the lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from sqlalchemy import select, text

from hedgerow.config import REPO_ROOT
from hedgerow.errors import AppError
from hedgerow.export import run, service
from hedgerow.export.publish import PARTIAL_PREFIX
from hedgerow.export.scheduled import BEAT_SCHEDULE, nightly_schedule
from hedgerow.export.writers import PartWriters
from hedgerow.models import Release, ReleaseKind, ReleaseState
from tests.export.conftest import Corpus
from tests.growth.factories import override_settings

DEADLINE_SECONDS = 60


def _visible(root: Path) -> list[str]:
    return sorted(path.name for path in root.iterdir() if not path.name.startswith("."))


def _releases(corpus: Corpus) -> list[Release]:
    with corpus.maker() as db:
        return list(db.scalars(select(Release).order_by(Release.id)))


def _wait_for_partial_export(process: subprocess.Popen[bytes], root: Path, corpus: Corpus) -> None:
    """Until the child has written its first tree: a partial directory with files, and
    progress committed to its release row."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        partials = [p for p in root.glob(f"{PARTIAL_PREFIX}*")] if root.exists() else []
        if partials and any(partials[0].iterdir()):
            running = [r for r in _releases(corpus) if r.state == ReleaseState.running]
            if running and running[0].messages_done > 0:
                return
        try:
            process.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"the export exited early with {process.returncode}")
    raise AssertionError("the export never started writing")


def _wait_until_gone(processes: list[psutil.Process]) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while any(
        process.is_running() and process.status() != psutil.STATUS_ZOMBIE for process in processes
    ):
        if time.monotonic() > deadline:
            raise AssertionError("an export worker outlived its parent")
        time.sleep(0.05)


@pytest.mark.parametrize("workers", [False, True], ids=["in process", "worker processes"])
def test_killed_export_leaves_no_release_and_the_next_run_succeeds(
    corpus: Corpus, releases_dir: Path, workers: bool
) -> None:
    env = {**os.environ, "HEDGEROW_RELEASES_DIR": str(releases_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.export.kill_target", *(["--workers"] if workers else [])],
        cwd=REPO_ROOT,
        env=env,
    )
    children: list[psutil.Process] = []
    try:
        _wait_for_partial_export(process, releases_dir, corpus)
        children = psutil.Process(process.pid).children()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert len(children) == (2 if workers else 0)
    # The workers notice that their parent is gone and stop.
    _wait_until_gone(children)

    assert _visible(releases_dir) == []
    [killed] = _releases(corpus)
    assert killed.state == ReleaseState.running
    with corpus.maker() as db:
        assert service.published_releases(db) == []

    outcome = run.run_export(corpus.maker)

    assert _visible(releases_dir) == [outcome.name]
    assert os.listdir(releases_dir) == [outcome.name], "the partial directory is gone"
    killed_after, published = _releases(corpus)
    assert killed_after.state == ReleaseState.failed
    assert killed_after.error == service.INTERRUPTED
    assert published.state == ReleaseState.published
    assert outcome.stats.messages > 0


def test_failing_export_leaves_nothing_and_records_the_error(
    corpus: Corpus, releases_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = 0
    real_write_tree = PartWriters.write_tree

    def fail_on_second_tree(self: PartWriters, *args: Any) -> int:
        nonlocal written
        written += 1
        if written == 2:
            raise OSError("disk full")
        return real_write_tree(self, *args)

    monkeypatch.setattr(PartWriters, "write_tree", fail_on_second_tree)
    with pytest.raises(OSError, match="disk full"):
        run.run_export(corpus.maker)

    # The thread that read ahead stopped before the snapshot's connection was given back.
    assert [t for t in threading.enumerate() if t.name == "export-part-reader"] == []

    assert os.listdir(releases_dir) == []
    [failed] = _releases(corpus)
    assert failed.state == ReleaseState.failed
    assert failed.error == "OSError: disk full"


def test_retention_keeps_the_last_nightly_releases_plus_pinned_and_manual(
    corpus: Corpus, releases_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, export_keep_nightly=2)
    oldest = run.run_export(corpus.maker, kind=ReleaseKind.nightly, pinned=True)
    second = run.run_export(corpus.maker, kind=ReleaseKind.nightly)
    manual = run.run_export(corpus.maker, kind=ReleaseKind.manual)
    third = run.run_export(corpus.maker, kind=ReleaseKind.nightly)
    fourth = run.run_export(corpus.maker, kind=ReleaseKind.nightly)

    states = {release.name: release.state for release in _releases(corpus)}
    assert states == {
        oldest.name: ReleaseState.published,
        second.name: ReleaseState.pruned,
        manual.name: ReleaseState.published,
        third.name: ReleaseState.published,
        fourth.name: ReleaseState.published,
    }
    assert _visible(releases_dir) == sorted([oldest.name, manual.name, third.name, fourth.name])


def test_second_export_gives_up_while_one_is_running(
    corpus: Corpus, releases_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "EXPORT_LOCK_WAIT", "100ms")
    engine = corpus.maker.kw["bind"]
    with engine.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": run.EXPORT_LOCK_KEY})
        try:
            with pytest.raises(AppError) as raised:
                run.run_export(corpus.maker)
        finally:
            holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": run.EXPORT_LOCK_KEY})
            holder.commit()
    assert raised.value.code == "export_running"
    assert _releases(corpus) == []
    assert os.listdir(releases_dir) == []


def test_nightly_job_publishes_a_nightly_release(corpus: Corpus, releases_dir: Path) -> None:
    from hedgerow.export.jobs import nightly_release_job

    result = nightly_release_job.run()
    [release] = _releases(corpus)
    assert release.kind == ReleaseKind.nightly
    assert release.state == ReleaseState.published
    assert result["name"] == release.name
    assert _visible(releases_dir) == [release.name]


def test_nightly_export_is_on_the_beat_schedule_at_the_configured_time() -> None:
    entry = BEAT_SCHEDULE["export.nightly_release"]
    assert entry["task"] == "export.nightly_release"
    assert entry["schedule"] == nightly_schedule("0 3 * * *")
    assert nightly_schedule("30 1 * * 0").hour == {1}
    with pytest.raises(ValueError, match="five fields"):
        nightly_schedule("every night")
