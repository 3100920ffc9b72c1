"""The Celery app: broker, queues, and the beat schedule gathered from the domains.

Jobs live next to their domain in ``hedgerow/<domain>/jobs.py`` (``celery.shared_task``
with an explicit, stable ``name``); periodic work is declared in
``hedgerow/<domain>/scheduled.py`` as a ``BEAT_SCHEDULE`` dict. A domain without either
module is simply skipped, so domains can arrive one at a time.

Run it with ``celery -A hedgerow.worker:celery_app worker -Q default`` (``hedgerow up``
does this for you); the GPU trainer consumes the ``train`` queue.
"""

from __future__ import annotations

import importlib
import pkgutil
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from celery import Celery
from kombu import Queue

import hedgerow
from hedgerow.accounts import auth_cache  # noqa: F401  (jobs that change users forget them)
from hedgerow.config import Settings, get_settings
from hedgerow.ops import job_health  # noqa: F401  (records every job run for the status page)

DEFAULT_QUEUE = "default"
TRAIN_QUEUE = "train"


def celery_url(redis_url: str) -> str:
    """The broker and result-backend URL for a redis-py URL.

    redis-py spells a unix socket ``unix:///path?db=N``; kombu and Celery's result backend
    both want ``redis+socket:///path?virtual_host=N``. TCP URLs are understood as they are.
    """
    parts = urlsplit(redis_url)
    if parts.scheme != "unix":
        return redis_url
    db = parse_qs(parts.query).get("db", ["0"])[0]
    return f"redis+socket://{parts.path}?virtual_host={db}"


def domain_packages() -> list[str]:
    """Every sub-package of ``hedgerow`` (accounts, growth, export, ...); not the models
    nor the command line, which have no jobs."""
    return sorted(
        f"hedgerow.{module.name}"
        for module in pkgutil.iter_modules(hedgerow.__path__)
        if module.ispkg and module.name not in ("models", "cli")
    )


def _import_if_present(module_name: str) -> Any | None:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only a missing module of exactly that name is fine; a broken import inside an
        # existing module is a bug that must not vanish from the schedule silently.
        if exc.name == module_name:
            return None
        raise


def collect_beat_schedule(packages: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Merge the ``BEAT_SCHEDULE`` of every ``<domain>.scheduled`` module."""
    schedule: dict[str, dict[str, Any]] = {}
    for package in packages if packages is not None else domain_packages():
        module = _import_if_present(f"{package}.scheduled")
        entries: dict[str, dict[str, Any]] = getattr(module, "BEAT_SCHEDULE", {}) or {}
        for name, entry in entries.items():
            if name in schedule:
                raise RuntimeError(f"beat schedule entry {name!r} is declared twice")
            schedule[name] = entry
    return schedule


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    url = celery_url(settings.redis_url or "redis://127.0.0.1:6379/0")
    app = Celery("hedgerow")
    app.conf.update(
        broker_url=url,
        result_backend=url,
        # A job's result is only read shortly after it finishes (status polling, tests);
        # the lasting record of work is in PostgreSQL.
        result_expires=timedelta(days=1),
        task_queues=(Queue(DEFAULT_QUEUE), Queue(TRAIN_QUEUE)),
        task_default_queue=DEFAULT_QUEUE,
        # Training jobs need the GPU machine; everything else runs on any worker.
        task_routes={"training.*": {"queue": TRAIN_QUEUE}},
        # Acknowledge after the job ran, one job at a time per process: long exports do
        # not hold back short jobs prefetched behind them. A job the broker gave to a
        # worker that died entirely stays unacknowledged and is delivered again after the
        # visibility timeout; when only the process running it dies, jobs that declare
        # `reject_on_worker_lost` (exports, training runs) are handed back at once, others
        # are acknowledged as failed (a job that kills its process would loop otherwise).
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout_seconds},
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
        broker_connection_retry_on_startup=True,
    )
    app.conf.beat_schedule = collect_beat_schedule()
    app.autodiscover_tasks(domain_packages, related_name="jobs")
    return app


celery_app = make_celery()
