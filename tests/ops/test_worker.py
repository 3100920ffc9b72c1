"""The Celery app: URLs, the merged beat schedule, and a real worker running a job."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hedgerow.worker import celery_app, celery_url, collect_beat_schedule, domain_packages


def test_celery_url_translates_a_redis_py_unix_socket_url() -> None:
    assert (
        celery_url("unix:///run/redis.sock?db=3") == "redis+socket:///run/redis.sock?virtual_host=3"
    )
    assert celery_url("unix:///run/redis.sock") == "redis+socket:///run/redis.sock?virtual_host=0"
    assert celery_url("redis://cache:6379/2") == "redis://cache:6379/2"


def test_app_uses_default_and_train_queues_with_late_acks() -> None:
    conf = celery_app.conf
    assert {queue.name for queue in conf.task_queues} == {"default", "train"}
    assert conf.task_default_queue == "default"
    assert conf.task_acks_late is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.accept_content == ["json"]


@pytest.fixture
def fake_domains(tmp_path: Path) -> Iterator[Path]:
    """A throw-away package whose sub-packages play domains."""
    root = tmp_path / "fakehedge"
    root.mkdir()
    (root / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp_path))
    yield root
    sys.path.remove(str(tmp_path))
    for name in [name for name in sys.modules if name.startswith("fakehedge")]:
        del sys.modules[name]


def _domain(root: Path, name: str, scheduled: str | None) -> str:
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    if scheduled is not None:
        (package / "scheduled.py").write_text(scheduled)
    return f"fakehedge.{name}"


def test_beat_schedule_merges_every_domain_and_skips_domains_without_one(
    fake_domains: Path,
) -> None:
    packages = [
        _domain(
            fake_domains, "growth", 'BEAT_SCHEDULE = {"expire": {"task": "g.e", "schedule": 60}}'
        ),
        _domain(
            fake_domains, "export", 'BEAT_SCHEDULE = {"nightly": {"task": "x.n", "schedule": 9}}'
        ),
        _domain(fake_domains, "stats", None),
    ]
    schedule = collect_beat_schedule(packages)
    assert schedule == {
        "expire": {"task": "g.e", "schedule": 60},
        "nightly": {"task": "x.n", "schedule": 9},
    }


def test_beat_schedule_refuses_an_entry_declared_twice(fake_domains: Path) -> None:
    packages = [
        _domain(fake_domains, "a", 'BEAT_SCHEDULE = {"same": {"task": "a", "schedule": 1}}'),
        _domain(fake_domains, "b", 'BEAT_SCHEDULE = {"same": {"task": "b", "schedule": 1}}'),
    ]
    with pytest.raises(RuntimeError, match="declared twice"):
        collect_beat_schedule(packages)


def test_beat_schedule_does_not_hide_a_broken_import(fake_domains: Path) -> None:
    packages = [_domain(fake_domains, "broken", "import module_that_does_not_exist\n")]
    with pytest.raises(ModuleNotFoundError, match="module_that_does_not_exist"):
        collect_beat_schedule(packages)


def test_domain_packages_lists_the_hedgerow_domains() -> None:
    packages = domain_packages()
    assert {"hedgerow.ops", "hedgerow.accounts", "hedgerow.growth"} <= set(packages)
    assert "hedgerow.models" not in packages
    assert "hedgerow.cli" not in packages


@pytest.fixture
def worker_process(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = (tmp_path / "worker.log").open("wb")
    # The child inherits REDIS_URL from the test settings (conftest), so it consumes this
    # run's own Redis database.
    celery = [sys.executable, "-m", "celery", "-A", "hedgerow.worker:celery_app"]
    process = subprocess.Popen(
        [
            *celery,
            "worker",
            "-Q",
            "default",
            "--pool",
            "solo",
            "--without-mingle",
            "--without-gossip",
        ],
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield process
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


def test_a_real_worker_runs_a_job_from_the_default_queue(
    worker_process: subprocess.Popen[bytes],
) -> None:
    from hedgerow.ops.jobs import ping

    result = ping.delay()
    # .get() polls the result backend until the deadline.
    assert result.get(timeout=60) == "pong"
    assert worker_process.poll() is None
