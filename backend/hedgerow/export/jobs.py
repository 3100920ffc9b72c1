"""Celery jobs of the export domain.

The release jobs are acknowledged only when they end (`acks_late`) and handed back to the
broker when the process running them dies (`reject_on_worker_lost`): a killed export runs
again, on the same release row (see `run.run_export`'s `job_id`). A worker whose main
process dies leaves them unacknowledged; the broker delivers them again after its
visibility timeout (HEDGEROW_BROKER_VISIBILITY_TIMEOUT_SECONDS, see hedgerow.worker).
"""

from __future__ import annotations

from celery import Task, shared_task

from hedgerow.db import get_sessionmaker
from hedgerow.export import run
from hedgerow.models import ReleaseKind

RETRIED_WHEN_LOST = {"bind": True, "acks_late": True, "reject_on_worker_lost": True}


@shared_task(name="export.nightly_release", **RETRIED_WHEN_LOST)
def nightly_release_job(self: Task) -> dict[str, object]:
    """Publish tonight's release with the default filters, then apply retention."""
    return _publish_release(ReleaseKind.nightly, self.request.id)


@shared_task(name="export.manual_release", **RETRIED_WHEN_LOST)
def manual_release_job(self: Task) -> dict[str, object]:
    """An on-demand release started from the admin page."""
    return _publish_release(ReleaseKind.manual, self.request.id)


@shared_task(name="export.clean_up_dead_exports")
def clean_up_dead_exports_job() -> list[str]:
    """Mark releases whose export died `failed`, with the reason, and remove their files."""
    return run.clean_up_dead_exports(get_sessionmaker())


def _publish_release(kind: ReleaseKind, job_id: str | None) -> dict[str, object]:
    outcome = run.run_export(get_sessionmaker(), kind=kind, job_id=job_id)
    return {
        "release_id": outcome.release_id,
        "name": outcome.name,
        "messages": outcome.stats.messages,
    }
