"""Celery jobs of the export domain."""

from __future__ import annotations

from celery import shared_task

from hedgerow.db import get_sessionmaker
from hedgerow.export.run import run_export
from hedgerow.models import ReleaseKind


@shared_task(name="export.nightly_release")
def nightly_release_job() -> dict[str, object]:
    """Publish tonight's release with the default filters, then apply retention."""
    outcome = run_export(get_sessionmaker(), kind=ReleaseKind.nightly)
    return {
        "release_id": outcome.release_id,
        "name": outcome.name,
        "messages": outcome.stats.messages,
    }


@shared_task(name="export.manual_release")
def manual_release_job() -> dict[str, object]:
    """An on-demand release started from the admin page."""
    outcome = run_export(get_sessionmaker(), kind=ReleaseKind.manual)
    return {
        "release_id": outcome.release_id,
        "name": outcome.name,
        "messages": outcome.stats.messages,
    }
