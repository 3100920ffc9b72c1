"""Which model versions are serving, loaded in memory, swapped when a new one is promoted.

The server asks the database at most every `inference_registry_refresh_seconds` (one
indexed query on the serving rows); a version whose id changed is loaded beside the old one
and swapped in, so requests already generating finish on the version they started with.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.errors import AppError
from hedgerow.i18n import gettext as _
from hedgerow.models import ModelVersion, ModelVersionStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version_id: int
    artifact_path: str
    model: Any
    tokenizer: Any
    created: int

    @property
    def fingerprint(self) -> str:
        """Sent back as OpenAI's system_fingerprint, so a client knows the exact version."""
        return f"{self.name}@{self.version_id}"


def load_model(name: str, version_id: int, artifact_path: str) -> LoadedModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(artifact_path)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(artifact_path, dtype=dtype)
    model.to(device)  # type: ignore[arg-type]
    model.eval()
    return LoadedModel(name, version_id, artifact_path, model, tokenizer, int(time.time()))


class ServingRegistry:
    def __init__(self, maker: sessionmaker[Session], refresh_seconds: float) -> None:
        self._maker = maker
        self._refresh_seconds = refresh_seconds
        self._loaded: dict[str, LoadedModel] = {}
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def serving(self) -> dict[str, LoadedModel]:
        """The serving models by name, refreshed from the registry when the last look is
        older than the refresh interval. Called from a worker thread (loading blocks)."""
        with self._lock:
            if time.monotonic() - self._checked_at >= self._refresh_seconds:
                self._refresh()
                self._checked_at = time.monotonic()
            return dict(self._loaded)

    def get(self, name: str) -> LoadedModel:
        model = self.serving().get(name)
        if model is None:
            raise AppError(
                "model_not_found",
                _("No version of %(name)s is serving on this server.", name=repr(name)),
                404,
            )
        return model

    def _refresh(self) -> None:
        with self._maker() as db:
            rows = db.execute(
                select(ModelVersion.name, ModelVersion.id, ModelVersion.artifact_path).where(
                    ModelVersion.status == ModelVersionStatus.serving.value,
                    ModelVersion.artifact_path.is_not(None),
                )
            ).all()
        wanted = {name: (version_id, str(path)) for name, version_id, path in rows}
        for name, (version_id, path) in wanted.items():
            current = self._loaded.get(name)
            if current is not None and current.version_id == version_id:
                continue
            try:
                self._loaded[name] = load_model(name, version_id, path)
                log.info("serving %s version %s from %s", name, version_id, path)
            except Exception:
                # Keep serving the previous version rather than nothing.
                log.exception("could not load %s version %s from %s", name, version_id, path)
        for name in set(self._loaded) - set(wanted):
            del self._loaded[name]
            log.info("%s is no longer serving", name)
