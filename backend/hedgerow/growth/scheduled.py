"""Periodic growth work, merged into the beat schedule by hedgerow.worker."""

from __future__ import annotations

from typing import Any

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # A lease is 60 minutes by default; expiring a minute late at most keeps slots moving.
    "growth.expire_leases": {"task": "growth.expire_leases", "schedule": 60.0},
    # Accepted prompts wait at most this long for a free growing slot.
    "growth.top_up_lotteries": {"task": "growth.top_up_lotteries", "schedule": 60.0},
}
