"""A tiny model registered as serving, and the real `hedgerow serve-model` process serving it
on a free loopback port: what chat and inference tests talk to."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text

from hedgerow.training.tiny import build_tiny_model
from tests.live_server import free_port, serving_process

TINY_TEXTS = [
    "What do hedgehogs do in winter? They sleep under the hawthorn at night.",
    "What do wrens do in spring? They sing under the hazel at dawn.",
    "Robins forage, voles hide, bees wander and badgers rest.",
] * 20


def build_model(directory: Path, seed: int = 1) -> Path:
    return build_tiny_model(TINY_TEXTS, directory, max_length=512, seed=seed)


def register_serving(engine: Engine, name: str, artifact_path: Path) -> int:
    """Make `artifact_path` the serving version of `name` (the previous one goes back to
    ready), as a promotion would, and return its id."""
    with engine.begin() as conn:
        release_id = conn.execute(
            text(
                "INSERT INTO release (name, kind, state, schema_version, filters) "
                "VALUES ('r-' || md5(random()::text), 'manual', 'published', '1', '{}') "
                "RETURNING id"
            )
        ).scalar_one()
        conn.execute(
            text(
                "UPDATE model_version SET status = 'ready' "
                "WHERE name = :name AND status = 'serving'"
            ),
            {"name": name},
        )
        return int(
            conn.execute(
                text(
                    "INSERT INTO model_version (name, base_model, release_id, config, "
                    "artifact_path, status, promoted_at) VALUES (:name, 'tiny', :release, "
                    "'{}', :path, 'serving', now()) RETURNING id"
                ),
                {"name": name, "release": release_id, "path": str(artifact_path)},
            ).scalar_one()
        )


@contextmanager
def model_server(log_path: Path, **settings: str) -> Iterator[str]:
    """Start `hedgerow serve-model` with this test process's database and Redis plus
    `settings` (HEDGEROW_ names), wait for /healthz, yield its /v1 base URL."""
    port = free_port()
    env = {**os.environ, **settings, "HEDGEROW_INFERENCE_REGISTRY_REFRESH_SECONDS": "0.2"}
    base_url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "hedgerow.cli", "serve-model", "--port", str(port)]
    with serving_process(command, env, log_path, f"{base_url}/healthz", "serve-model"):
        yield f"{base_url}/v1"
