"""The admin pages and API of the model registry: start, watch, promote, roll back,
compare; and bad input that changes nothing."""

from __future__ import annotations

import pytest
import redis as redis_lib
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from hedgerow.cli import cli
from hedgerow.models import (
    AuditEvent,
    ModelVersion,
    ModelVersionStatus,
    Release,
    ReleaseState,
    Role,
    TrainingRun,
)
from hedgerow.training import availability, service
from hedgerow.worker import TRAIN_QUEUE
from tests.factories import api_headers, make_api_key, make_user
from tests.growth.factories import override_settings
from tests.moderation.helpers import form, log_in_as

NAME = "hedgerow-chat"


def make_release(db: Session, *, state: ReleaseState = ReleaseState.published) -> Release:
    count = db.scalar(select(func.count()).select_from(Release)) or 0
    release = Release(
        name=f"2026-11-22-000000-manual-{count:04d}",
        kind="manual",
        state=state.value,
        schema_version="1",
        filters={},
        counts={"trees": 10},
    )
    db.add(release)
    db.flush()
    return release


def make_version(
    db: Session,
    release: Release,
    status: ModelVersionStatus = ModelVersionStatus.ready,
    answers: list[dict[str, str]] | None = None,
) -> ModelVersion:
    version = ModelVersion(
        name=NAME,
        base_model="tiny",
        release_id=release.id,
        config={"method": "full"},
        metrics={"validation_loss": 1.5},
        reference_answers=answers,
        status=status.value,
        artifact_path="/models/x" if status == ModelVersionStatus.ready else None,
    )
    db.add(version)
    db.flush()
    db.add(
        TrainingRun(
            model_version_id=version.id,
            step=5,
            total_steps=10,
            loss=2.5,
            learning_rate=1e-4,
            tokens_per_second=1234.0,
            eta_seconds=75.0,
            loss_history=[[1, 5.0], [3, 3.5], [5, 2.5]],
        )
    )
    db.flush()
    return version


@pytest.fixture
def trainer_running(redis_db: redis_lib.Redis) -> None:
    """A trainer (`hedgerow train`) says it is there, as it does while it runs."""
    availability.announce_trainer(redis_db, "trainer@test:1", "CPU (2 cores)")


def _versions(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(ModelVersion)) or 0


@pytest.mark.usefixtures("trainer_running")
def test_admin_starts_a_run_from_the_page_and_the_job_is_queued_on_the_train_queue(
    client: TestClient, db: Session, redis_db: redis_lib.Redis
) -> None:
    admin = log_in_as(client, db, make_user(db, role=Role.admin))
    release = make_release(db)

    response = client.post(
        "/admin/training", data=form(admin, {"release_id": str(release.id)}), follow_redirects=False
    )

    assert response.status_code == 303
    version = db.scalars(select(ModelVersion)).one()
    assert response.headers["location"] == f"/admin/training/versions/{version.id}"
    assert version.status == ModelVersionStatus.queued
    assert version.release_id == release.id
    assert version.config["method"] in ("full", "lora")
    assert redis_db.llen(TRAIN_QUEUE) == 1
    page = client.get(f"/admin/training/versions/{version.id}")
    assert page.status_code == 200
    # While queued, the progress fragment polls itself.
    assert f'hx-get="/admin/training/versions/{version.id}"' in page.text
    runs = client.get("/admin/training")
    assert f'href="/admin/training/versions/{version.id}"' in runs.text
    assert release.name in runs.text
    assert 'hx-get="/admin/training"' in runs.text


def test_run_page_shows_live_progress_and_a_loss_curve(client: TestClient, db: Session) -> None:
    log_in_as(client, db, make_user(db, role=Role.admin))
    version = make_version(db, make_release(db), ModelVersionStatus.training)

    fragment = client.get(f"/admin/training/versions/{version.id}", headers={"HX-Request": "true"})

    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert 'id="training-progress"' in fragment.text
    assert 'hx-trigger="every' in fragment.text
    assert "5 / 10" in fragment.text
    assert "2.5000" in fragment.text  # loss
    assert "1.00e-04" in fragment.text  # learning rate
    assert "1234" in fragment.text  # tokens/s
    assert "1m 15s" in fragment.text  # ETA
    assert "<polyline" in fragment.text


def test_run_page_shows_both_stages_and_the_processes(client: TestClient, db: Session) -> None:
    log_in_as(client, db, make_user(db, role=Role.admin))
    version = make_version(db, make_release(db), ModelVersionStatus.training)
    version.config = {"method": "full", "dpo": True, "num_processes": 2}
    run = db.scalars(select(TrainingRun).where(TrainingRun.model_version_id == version.id)).one()
    # DPO's steps follow SFT's, marked as DPO's.
    run.loss_history = [[1, 5.0], [3, 3.5], [5, 2.5], [6, 0.69, 1], [7, 0.5, 1]]
    run.hardware = "2 processes · 2 x NVIDIA H100"
    db.flush()

    page = client.get(f"/admin/training/versions/{version.id}")

    assert page.status_code == 200
    assert "Stages: SFT, then DPO" in page.text
    assert "Processes: 2" in page.text
    assert '<dd id="run-stage">DPO</dd>' in page.text
    assert page.text.count("<polyline") == 2
    assert "Training loss by step (SFT)" in page.text
    assert "DPO loss by step" in page.text
    assert "2 processes · 2 x NVIDIA H100" in page.text


@pytest.mark.usefixtures("trainer_running")
def test_admin_can_ask_for_a_dpo_stage_when_starting_a_run(
    client: TestClient, db: Session, redis_db: redis_lib.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = log_in_as(client, db, make_user(db, role=Role.admin))
    release = make_release(db)
    override_settings(monkeypatch, training_dpo=True)

    runs_page = client.get("/admin/training")
    with_dpo = client.post(
        "/admin/training",
        data=form(admin, {"release_id": str(release.id), "dpo": "true"}),
        follow_redirects=False,
    )
    # An unticked checkbox sends nothing: no DPO, whatever the setting.
    without = client.post(
        "/admin/training",
        data=form(admin, {"release_id": str(release.id)}),
        follow_redirects=False,
    )

    assert 'name="dpo" value="true" checked' in runs_page.text
    assert (with_dpo.status_code, without.status_code) == (303, 303)
    configs = db.scalars(select(ModelVersion.config).order_by(ModelVersion.id)).all()
    assert [config["dpo"] for config in configs] == [True, False]


@pytest.mark.usefixtures("trainer_running")
def test_api_start_run_takes_dpo_and_processes(client: TestClient, db: Session) -> None:
    headers = api_headers(make_api_key(db, make_user(db, role=Role.admin)))
    release = make_release(db)

    started = client.post(
        "/api/v1/models",
        json={"release_id": release.id, "dpo": True, "num_processes": 4},
        headers=headers,
    )
    negative = client.post(
        "/api/v1/models", json={"release_id": release.id, "num_processes": -1}, headers=headers
    )

    assert started.status_code == 202
    config = started.json()["config"]
    assert (config["dpo"], config["num_processes"]) == (True, 4)
    assert negative.status_code == 422
    assert _versions(db) == 1


def test_failed_run_shows_its_reason_and_stops_polling(client: TestClient, db: Session) -> None:
    log_in_as(client, db, make_user(db, role=Role.admin))
    version = make_version(db, make_release(db), ModelVersionStatus.failed)
    version.failure_reason = "The release has 1 training conversations; at least 20 are needed."
    db.flush()

    page = client.get(f"/admin/training/versions/{version.id}")

    assert "at least 20 are needed" in page.text
    assert "hx-trigger" not in page.text


def test_promote_serves_one_version_per_name_and_roll_back_restores_the_previous(
    client: TestClient, db: Session
) -> None:
    admin_user = make_user(db, role=Role.admin)
    headers = api_headers(make_api_key(db, admin_user))
    release = make_release(db)
    first = make_version(db, release)
    second = make_version(db, release)

    assert client.post(f"/api/v1/models/{first.id}/promote", headers=headers).status_code == 200
    response = client.post(f"/api/v1/models/{second.id}/promote", headers=headers)

    assert response.status_code == 200
    assert response.json()["status"] == "serving"
    db.refresh(first)
    db.refresh(second)
    assert (first.status, second.status) == ("ready", "serving")

    rolled = client.post(f"/api/v1/models/serving/{NAME}/rollback", headers=headers)

    assert rolled.status_code == 200
    assert rolled.json()["id"] == first.id
    db.refresh(first)
    db.refresh(second)
    assert (first.status, second.status) == ("serving", "ready")
    actions = db.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["model.promote", "model.promote", "model.rollback"]
    # Nothing before the first one: a second rollback is refused and changes nothing.
    again = client.post(f"/api/v1/models/serving/{NAME}/rollback", headers=headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "nothing_to_roll_back"
    db.refresh(first)
    assert first.status == "serving"


def test_promoting_a_version_that_is_not_ready_is_refused(client: TestClient, db: Session) -> None:
    headers = api_headers(make_api_key(db, make_user(db, role=Role.admin)))
    release = make_release(db)
    for status in (
        ModelVersionStatus.queued,
        ModelVersionStatus.training,
        ModelVersionStatus.failed,
    ):
        version = make_version(db, release, status)

        response = client.post(f"/api/v1/models/{version.id}/promote", headers=headers)

        assert response.status_code == 409
        assert response.json()["error"]["code"] == "version_not_ready"
        db.refresh(version)
        assert version.status == status
    assert service.queries.serving_version(db, NAME) is None


def test_bad_input_on_the_training_routes(client: TestClient, db: Session) -> None:
    admin = log_in_as(client, db, make_user(db, role=Role.admin))
    running = make_release(db, state=ReleaseState.running)

    unknown = client.post(
        "/admin/training", data=form(admin, {"release_id": "987654"}), follow_redirects=False
    )
    not_a_number = client.post("/admin/training", data=form(admin, {"release_id": "abc"}))
    unpublished = client.post("/admin/training", data=form(admin, {"release_id": str(running.id)}))
    unknown_version = client.get("/admin/training/versions/987654")
    same = client.get("/admin/training/compare?a=1&b=1")

    assert unknown.status_code == 404
    assert not_a_number.status_code == 422
    assert unpublished.status_code == 409
    assert "only published releases" in unpublished.text
    assert unknown_version.status_code == 404
    assert same.status_code == 422
    assert _versions(db) == 0


def test_api_start_run_validates_its_body(client: TestClient, db: Session) -> None:
    headers = api_headers(make_api_key(db, make_user(db, role=Role.admin)))

    missing = client.post("/api/v1/models", json={}, headers=headers)
    unknown = client.post("/api/v1/models", json={"release_id": 987654}, headers=headers)
    extra = client.post("/api/v1/models", json={"release_id": 1, "steps": 5}, headers=headers)

    assert missing.status_code == 422
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    assert extra.status_code == 422
    assert _versions(db) == 0


def test_non_admins_cannot_start_or_promote(client: TestClient, db: Session) -> None:
    release = make_release(db)
    version = make_version(db, release)
    for role in (Role.volunteer, Role.moderator, Role.researcher):
        user_client = log_in_as(client, db, make_user(db, role=role))
        start = user_client.post(
            "/admin/training", data=form(user_client, {"release_id": str(release.id)})
        )
        promote = user_client.post(
            f"/admin/training/versions/{version.id}/promote", data=form(user_client)
        )
        assert (start.status_code, promote.status_code) == (403, 403), role
    db.refresh(version)
    assert version.status == ModelVersionStatus.ready
    assert _versions(db) == 1


def test_compare_shows_two_versions_answers_side_by_side(client: TestClient, db: Session) -> None:
    log_in_as(client, db, make_user(db, role=Role.admin))
    release = make_release(db)
    prompt = {"id": "open_qa-1", "category": "open_qa", "prompt": "Why hedgerows?"}
    left = make_version(db, release, answers=[{**prompt, "answer": "Old answer <b>"}])
    right = make_version(db, release, answers=[{**prompt, "answer": "New answer"}])

    page = client.get(f"/admin/training/compare?a={left.id}&b={right.id}")

    assert page.status_code == 200
    assert page.text.count("Why hedgerows?") == 1
    assert "Old answer &lt;b&gt;" in page.text  # model output is escaped
    assert "New answer" in page.text


def test_nightly_release_with_enough_new_trees_starts_one_run(
    committing_sessionmaker: sessionmaker[Session],
    redis_db: redis_lib.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    override_settings(monkeypatch, training_min_new_trees=100)
    maker = committing_sessionmaker
    with maker.begin() as db:
        few = make_release(db)
        few.kind, few.counts = "nightly", {"trees": 40}

    assert service.start_run_on_newest_nightly(maker, redis_db) is None

    with maker.begin() as db:
        enough = make_release(db)
        enough.kind, enough.counts = "nightly", {"trees": 140}

    # No trainer: nothing is queued yet; the next look after one starts queues the run.
    assert service.start_run_on_newest_nightly(maker, redis_db) is None
    with maker() as db:
        assert _versions(db) == 0
    availability.announce_trainer(redis_db, "trainer@test:1", "CPU (2 cores)")

    version_id = service.start_run_on_newest_nightly(maker, redis_db)

    assert version_id is not None
    assert redis_db.llen(TRAIN_QUEUE) == 1
    # The same release never starts a second run, and a run in progress blocks others.
    assert service.start_run_on_newest_nightly(maker, redis_db) is None
    with maker.begin() as db:
        newer = make_release(db)
        newer.kind, newer.counts = "nightly", {"trees": 400}
    assert service.start_run_on_newest_nightly(maker, redis_db) is None
    with maker() as db:
        assert db.get_one(ModelVersion, version_id).release_id == enough.id
        assert _versions(db) == 1


def test_cli_train_run_refuses_an_unknown_release() -> None:
    result = CliRunner().invoke(cli, ["train-run", "--release", "987654"])

    assert result.exit_code == 1
    assert "That release does not exist." in result.output


def test_cli_train_run_offers_dpo_and_processes() -> None:
    result = CliRunner().invoke(cli, ["train-run", "--help"])

    assert result.exit_code == 0
    assert "--dpo" in result.output and "--no-dpo" in result.output
    assert "--num-processes" in result.output
