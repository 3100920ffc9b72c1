"""Celery jobs of the statistics."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from hedgerow.db import get_sessionmaker
from hedgerow.stats import service


@shared_task(name="stats.refresh_agreement")
def refresh_agreement_job() -> dict[str, Any]:
    """Measure the live agreement figures that /stats shows."""
    with get_sessionmaker()() as db:
        figures = service.refresh_live_agreement(db)
    return {"labels": len(figures["labels"]), "window": figures["window"]}
