"""Periodic statistics work, merged into the beat schedule by hedgerow.worker."""

from __future__ import annotations

from typing import Any

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # Agreement moves slowly; every ten minutes keeps /stats current at little cost.
    "stats.refresh_agreement": {"task": "stats.refresh_agreement", "schedule": 600.0},
}
