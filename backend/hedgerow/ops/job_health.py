"""Job health: when each Celery job last ran and how it ended, kept in Redis.

A Celery signal records every job run, so a new job shows up on the status page without
touching its code. Redis is the right place: it is a heartbeat, not a record to keep.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from celery.signals import task_postrun

from hedgerow.redis_client import get_redis

log = logging.getLogger(__name__)

JOB_HEALTH_KEY = "hedgerow:job_health"
# The growth engine's periodic jobs: the status page lists them even before a first run.
WATCHED_JOBS = ("growth.expire_leases", "growth.top_up_lotteries")


def record_job_run(name: str, state: str, *, at: datetime | None = None) -> None:
    at = at or datetime.now(UTC)
    get_redis().hset(JOB_HEALTH_KEY, name, json.dumps({"at": at.isoformat(), "state": state}))


def job_runs() -> dict[str, dict[str, Any]]:
    """Job name -> {"at": datetime, "state": str}; watched jobs that never ran map to {}."""
    runs: dict[str, dict[str, Any]] = {name: {} for name in WATCHED_JOBS}
    raw: dict[str, str] = get_redis().hgetall(JOB_HEALTH_KEY)
    for name, value in raw.items():
        try:
            entry = json.loads(value)
            runs[name] = {"at": datetime.fromisoformat(entry["at"]), "state": entry["state"]}
        except (ValueError, KeyError, TypeError):
            runs[name] = {}
    return dict(sorted(runs.items()))


@task_postrun.connect
def _record_after_job(sender: Any = None, state: str | None = None, **_: Any) -> None:
    name = getattr(sender, "name", None)
    if not name:
        return
    try:
        record_job_run(name, state or "UNKNOWN")
    except Exception:
        # Health bookkeeping must never fail the job it reports on.
        log.warning("could not record the run of job %s", name, exc_info=True)
