"""Periodic export work, merged into the beat schedule by hedgerow.worker."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from hedgerow.config import get_settings


def nightly_schedule(cron: str) -> crontab:
    """A crontab from five cron fields (minute hour day-of-month month day-of-week)."""
    fields = cron.split()
    if len(fields) != 5:
        raise ValueError(f"HEDGEROW_EXPORT_NIGHTLY_CRON needs five fields, got {cron!r}")
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    return crontab(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
    )


# How often releases left `running` by a dead export are marked failed. Cheap: one
# try-lock, and when no export runs, one query for running rows.
DEAD_EXPORT_SWEEP_SECONDS = 5 * 60.0

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "export.nightly_release": {
        "task": "export.nightly_release",
        "schedule": nightly_schedule(get_settings().export_nightly_cron),
    },
    "export.clean_up_dead_exports": {
        "task": "export.clean_up_dead_exports",
        "schedule": DEAD_EXPORT_SWEEP_SECONDS,
    },
}
