"""Celery jobs of the export domain."""

from __future__ import annotations

from celery import shared_task

from hedgerow.db import get_sessionmaker
from hedgerow.export.run import run_export
from hedgerow.models import ReleaseKind


@shared_task(name="export.nightly_release")
def nightly_release_job() -> dict[str, object]:
    """Publish tonight's release with the default filters, then apply retention."""
    return _publish_release(ReleaseKind.nightly)


@shared_task(name="export.manual_release")
def manual_release_job() -> dict[str, object]:
    """An on-demand release started from the admin page."""
    return _publish_release(ReleaseKind.manual)


def _publish_release(kind: ReleaseKind) -> dict[str, object]:
    outcome = run_export(get_sessionmaker(), kind=kind)
    return {
        "release_id": outcome.release_id,
        "name": outcome.name,
        "messages": outcome.stats.messages,
    }
