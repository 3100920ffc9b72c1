"""A run that cannot start registers nothing: without a trainer the web refuses to queue
one and says how to enable training; a trainer, `hedgerow train-run` and the job itself
check the training libraries before anything is registered."""

from __future__ import annotations

import html
import subprocess
import sys
import time

import pytest
import redis as redis_lib
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from hedgerow.cli import cli
from hedgerow.config import REPO_ROOT
from hedgerow.models import ModelVersion, ModelVersionStatus, Role, TrainingRun
from hedgerow.training import availability, runner, service
from hedgerow.worker import TRAIN_QUEUE
from tests.factories import api_headers, make_api_key, make_user
from tests.moderation.helpers import form, log_in_as
from tests.training.test_registry import make_release

HOW_TO_ENABLE = ("make install-train", "pip install -e '.[train]'", "hedgerow train")
# A Python that cannot import TRL, as a machine without the train extra; the rest of the
# interpreter is the real one.
WITHOUT_TRL = "import sys; sys.modules['trl'] = None; "
COMMAND_DEADLINE_SECONDS = 120


def _versions(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(ModelVersion)) or 0


def test_without_a_trainer_the_page_says_how_to_enable_training_and_queues_nothing(
    client: TestClient, db: Session, redis_db: redis_lib.Redis
) -> None:
    admin = log_in_as(client, db, make_user(db, role=Role.admin))
    release = make_release(db)

    page = client.get("/admin/training")
    started = client.post(
        "/admin/training", data=form(admin, {"release_id": str(release.id)}), follow_redirects=False
    )
    htmx = client.post(
        "/admin/training",
        data=form(admin, {"release_id": str(release.id)}),
        headers={"HX-Request": "true"},
    )

    # Said before anything is queued, and the button is off.
    assert 'data-code="no_trainer"' in page.text
    assert all(command in page.text for command in HOW_TO_ENABLE)
    assert "Train on this release</button>" in page.text
    assert 'class="button" disabled>Train on this release' in page.text
    # A form sent anyway (an old page, no JavaScript) is refused the same way.
    assert started.status_code == 409
    assert all(command in html.unescape(started.text) for command in HOW_TO_ENABLE)
    assert htmx.status_code == 409
    assert 'data-code="no_trainer"' in htmx.text
    assert _versions(db) == 0
    assert redis_db.llen(TRAIN_QUEUE) == 0


def test_without_a_trainer_the_api_refuses_to_queue_a_run(
    client: TestClient, db: Session, redis_db: redis_lib.Redis
) -> None:
    headers = api_headers(make_api_key(db, make_user(db, role=Role.admin)))
    release = make_release(db)

    refused = client.post("/api/v1/models", json={"release_id": release.id}, headers=headers)
    availability.announce_trainer(redis_db, "trainer@gpu-1:7", "1 x NVIDIA H100")
    accepted = client.post("/api/v1/models", json={"release_id": release.id}, headers=headers)

    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "no_trainer"
    assert all(command in error["message"] for command in HOW_TO_ENABLE)
    assert accepted.status_code == 202
    assert _versions(db) == 1
    assert redis_db.llen(TRAIN_QUEUE) == 1


def test_a_running_trainer_is_listed_and_one_that_stopped_is_forgotten(
    client: TestClient, db: Session, redis_db: redis_lib.Redis
) -> None:
    log_in_as(client, db, make_user(db, role=Role.admin))
    availability.announce_trainer(redis_db, "trainer@gpu-1:7", "1 x NVIDIA H100")
    availability.announce_trainer(redis_db, "trainer@gpu-2:9", "CPU (4 cores)")
    key = availability.TRAINER_KEY_PREFIX + "trainer@gpu-2:9"

    listed = client.get("/admin/training")
    # Its key lapses unless renewed: a trainer that was killed is not counted for ever.
    assert 0 < redis_db.ttl(key) <= availability.TRAINER_TTL_SECONDS
    redis_db.delete(key)  # as when the TTL runs out
    after_kill = availability.live_trainers(redis_db)
    names_after_kill = redis_db.smembers(availability.TRAINER_NAMES_KEY)
    availability.withdraw_trainer(redis_db, "trainer@gpu-1:7")
    after_stop = client.get("/admin/training")

    assert "trainer@gpu-1:7 (1 x NVIDIA H100)" in listed.text
    assert "trainer@gpu-2:9 (CPU (4 cores))" in listed.text
    assert 'data-code="no_trainer"' not in listed.text
    assert [trainer.name for trainer in after_kill] == ["trainer@gpu-1:7"]
    assert names_after_kill == {"trainer@gpu-1:7"}
    assert 'data-code="no_trainer"' in after_stop.text


def test_an_announced_trainer_renews_its_key_until_it_stops(
    redis_db: redis_lib.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(availability, "TRAINER_RENEW_SECONDS", 0.05)
    key = availability.TRAINER_KEY_PREFIX + "trainer@here:1"

    with availability.announced(redis_db, "trainer@here:1", "CPU"):
        redis_db.expire(key, 2)
        deadline = time.monotonic() + 10
        while redis_db.ttl(key) <= 2:
            assert time.monotonic() < deadline, "the trainer's key was never renewed"
            time.sleep(0.01)
        inside = availability.live_trainers(redis_db)

    assert [trainer.name for trainer in inside] == ["trainer@here:1"]
    assert availability.live_trainers(redis_db) == []
    assert not redis_db.exists(key)


def test_a_worker_without_the_training_libraries_registers_no_version(
    committing_sessionmaker: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    maker = committing_sessionmaker
    with maker.begin() as db:
        release = make_release(db)
        queued = service.start_run(db, release.id, requested_by=None)
        # Trained elsewhere before (a worker with the libraries died): kept to resume.
        interrupted = service.start_run(db, release.id, requested_by=None)
        interrupted.status = ModelVersionStatus.training.value
        db.scalars(
            select(TrainingRun).where(TrainingRun.model_version_id == interrupted.id)
        ).one().attempts = 1
        queued_id, interrupted_id = queued.id, interrupted.id
    monkeypatch.setitem(sys.modules, "trl", None)

    outcomes = [
        runner.run_training(maker, version_id) for version_id in (queued_id, interrupted_id)
    ]

    assert outcomes == [None, None]
    with maker() as db:
        assert db.get(ModelVersion, queued_id) is None
        assert db.scalar(select(func.count()).select_from(TrainingRun)) == 1
        assert db.get_one(ModelVersion, interrupted_id).status == ModelVersionStatus.training


def test_train_run_without_the_training_libraries_registers_nothing(
    committing_sessionmaker: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    with committing_sessionmaker.begin() as db:
        release_id = make_release(db).id
    monkeypatch.setitem(sys.modules, "trl", None)

    result = CliRunner().invoke(cli, ["train-run", "--release", str(release_id)])

    assert result.exit_code == 1
    assert "training_libraries_missing" in result.output
    assert "make install-train" in " ".join(result.output.split())
    with committing_sessionmaker() as db:
        assert _versions(db) == 0


def test_train_command_refuses_to_start_without_the_training_libraries(
    redis_db: redis_lib.Redis,
) -> None:
    command = "from hedgerow.cli import main; sys.argv = ['hedgerow', 'train']; main()"

    finished = subprocess.run(
        [sys.executable, "-c", WITHOUT_TRL + command],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=COMMAND_DEADLINE_SECONDS,
    )

    assert finished.returncode == 1, finished.stdout + finished.stderr
    message = " ".join(finished.stderr.split())
    assert "lacks the training libraries (trl)" in message
    assert "make install-train" in message
    assert availability.live_trainers(redis_db) == []
