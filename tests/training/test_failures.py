"""Runs that cannot succeed end `failed` with a reason an admin can act on, and leave
nothing half-registered: no artifact, no path, no work directory."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import torch

from hedgerow.export.run import run_export
from hedgerow.export.schemas import ExportFilters
from hedgerow.models import ModelVersion, ModelVersionStatus
from hedgerow.training import queries, runner, service, trainer
from tests.growth.factories import override_settings
from tests.training.conftest import Corpus


def _train(corpus: Corpus, release_id: int | None = None) -> ModelVersion:
    with corpus.maker.begin() as db:
        version_id = service.start_run(db, release_id or corpus.release_id, requested_by=None).id
    assert runner.run_training(corpus.maker, version_id) == ModelVersionStatus.failed
    with corpus.maker() as db:
        return db.get_one(ModelVersion, version_id)


def _assert_nothing_registered(version: ModelVersion, models_dir: Path) -> None:
    assert version.status == ModelVersionStatus.failed
    assert version.artifact_path is None
    assert version.metrics is None
    # Only the run's log is left.
    assert sorted(path.name for path in models_dir.iterdir()) == ["logs"]
    assert not any((models_dir / ".work").glob("*"))


def test_tiny_release_fails_with_the_number_of_conversations_needed(
    corpus: Corpus, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    override_settings(monkeypatch, training_min_conversations=1000)

    version = _train(corpus)

    assert "at least 1000 are needed" in (version.failure_reason or "")
    assert "HEDGEROW_TRAINING_MIN_CONVERSATIONS" in (version.failure_reason or "")
    _assert_nothing_registered(version, models_dir)


def test_empty_release_fails(corpus: Corpus, models_dir: Path) -> None:
    nothing = ExportFilters(created_from=datetime(2100, 1, 1, tzinfo=UTC))
    empty = run_export(corpus.maker, filters=nothing)
    assert empty.stats.messages == 0

    version = _train(corpus, empty.release_id)

    assert "has 0 training conversations" in (version.failure_reason or "")
    _assert_nothing_registered(version, models_dir)


def test_missing_base_model_path_fails_with_the_path(
    corpus: Corpus, models_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-model"
    override_settings(monkeypatch, training_base_model=str(missing))

    version = _train(corpus)

    assert version.base_model == str(missing)
    assert f"The base model path {missing} does not exist" in (version.failure_reason or "")
    _assert_nothing_registered(version, models_dir)


def test_out_of_memory_fails_with_advice(
    corpus: Corpus, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run_out_of_memory(*args: Any, **kwargs: Any) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(trainer, "train", run_out_of_memory)

    version = _train(corpus)

    assert (version.failure_reason or "").startswith("Out of memory on CPU")
    assert "HEDGEROW_TRAINING_BATCH_SIZE" in (version.failure_reason or "")
    _assert_nothing_registered(version, models_dir)


def test_release_whose_files_are_gone_fails(
    corpus: Corpus, models_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    override_settings(monkeypatch, releases_dir=tmp_path / "elsewhere")

    version = _train(corpus)

    assert "files are not available" in (version.failure_reason or "")
    _assert_nothing_registered(version, models_dir)


def test_a_finished_version_is_not_trained_again(corpus: Corpus, models_dir: Path) -> None:
    """A redelivered job (the broker hands it out again) leaves a finished run alone."""
    with corpus.maker.begin() as db:
        failed = service.start_run(db, corpus.release_id, requested_by=None)
        failed.status = ModelVersionStatus.failed.value
        failed.failure_reason = "earlier"
        version_id = failed.id

    assert runner.run_training(corpus.maker, version_id) == ModelVersionStatus.failed

    with corpus.maker() as db:
        again = db.get_one(ModelVersion, version_id)
    assert again.failure_reason == "earlier"


def test_a_run_interrupted_too_often_is_not_attempted_again(
    corpus: Corpus, models_dir: Path
) -> None:
    """A run that kills its worker every time would otherwise be handed back forever."""
    with corpus.maker.begin() as db:
        version_id = service.start_run(db, corpus.release_id, requested_by=None).id
        run = queries.run_of(db, version_id)
        run.attempts = runner.MAX_ATTEMPTS
        version = db.get_one(ModelVersion, version_id)
        version.status = ModelVersionStatus.training.value  # as the last killed attempt left it
    # ...with its checkpoints and its log.
    checkpoint = models_dir / ".work" / str(version_id) / "checkpoints" / "checkpoint-2"
    checkpoint.mkdir(parents=True)
    (models_dir / "logs").mkdir()

    assert runner.run_training(corpus.maker, version_id) == ModelVersionStatus.failed

    with corpus.maker() as db:
        version = db.get_one(ModelVersion, version_id)
        assert queries.run_of(db, version_id).attempts == runner.MAX_ATTEMPTS
    assert f"interrupted {runner.MAX_ATTEMPTS} times" in (version.failure_reason or "")
    _assert_nothing_registered(version, models_dir)
