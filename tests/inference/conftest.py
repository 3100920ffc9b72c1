from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from tests.conftest import ALL_TABLES
from tests.inference.model_server import build_model, model_server, register_serving


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two different tiny models (different seeds), built once per module."""
    root = tmp_path_factory.mktemp("tiny")
    return build_model(root / "a", seed=1), build_model(root / "b", seed=2)


@pytest.fixture(scope="module")
def served(
    engine: Engine, tiny_models: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int]]:
    """The model server with the first tiny model serving as hedgerow-chat."""
    version_id = register_serving(engine, "hedgerow-chat", tiny_models[0])
    log = tmp_path_factory.mktemp("logs") / "serve-model.log"
    with model_server(log, HEDGEROW_INFERENCE_REQUESTS_PER_MINUTE="1000") as url:
        yield url, version_id
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {ALL_TABLES} RESTART IDENTITY CASCADE"))
