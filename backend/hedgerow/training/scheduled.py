"""Periodic training work, merged into the beat schedule by hedgerow.worker."""

from __future__ import annotations

from typing import Any

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # Cheap (one query when nothing is new), so it can look often and start a run soon
    # after the nightly release publishes, whenever that is scheduled.
    "training.start_on_new_release": {
        "task": "training.start_on_new_release",
        "schedule": 15 * 60.0,
    },
}
