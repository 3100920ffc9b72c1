"""Periodic mail work, merged into the beat schedule by hedgerow.worker."""

from __future__ import annotations

from typing import Any

# How often mail whose first job never ran (the broker was down when its request
# committed) is enqueued again. One indexed query when there is none.
STRANDED_MAIL_SWEEP_SECONDS = 5 * 60.0

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "mail.enqueue_stranded": {
        "task": "mail.enqueue_stranded",
        "schedule": STRANDED_MAIL_SWEEP_SECONDS,
    },
}
