"""Celery jobs of the training domain; `training.*` jobs are routed to the `train` queue,
which only the GPU worker (`hedgerow train`) consumes."""

from __future__ import annotations

from celery import shared_task

from hedgerow.db import get_sessionmaker
from hedgerow.redis_client import get_redis
from hedgerow.training import runner, service


# Acknowledged when the run ends and handed back to the broker if the process running it
# dies, so another attempt resumes from the last checkpoint; the version's advisory lock
# makes a second delivery of a run that is still going do nothing.
@shared_task(name=service.TRAIN_JOB, acks_late=True, reject_on_worker_lost=True)
def train_model_version_job(version_id: int) -> str | None:
    """Train, evaluate and register one model version (resuming from its checkpoint if an
    earlier attempt was killed)."""
    return runner.run_training(get_sessionmaker(), version_id)


@shared_task(name="training.start_on_new_release")
def start_on_new_release_job() -> int | None:
    """Queue a run on the newest nightly release when enough new trees arrived."""
    return service.start_run_on_newest_nightly(get_sessionmaker(), get_redis())
