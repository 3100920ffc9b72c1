"""Celery jobs of the growth engine. Each job runs in its own transaction(s)."""

from __future__ import annotations

from celery import shared_task

from hedgerow.db import get_sessionmaker
from hedgerow.growth.leases import EXPIRY_BATCH_SIZE, expire_leases, utcnow
from hedgerow.growth.lottery import top_up_lotteries

# One run stops after this many batches so that a huge backlog cannot pin a worker; the
# next run (a minute later) continues.
MAX_EXPIRY_BATCHES_PER_RUN = 50


@shared_task(name="growth.expire_leases")
def expire_leases_job() -> int:
    """Free the slots of abandoned tasks, one committed batch at a time."""
    maker = get_sessionmaker()
    expired = 0
    for _ in range(MAX_EXPIRY_BATCHES_PER_RUN):
        with maker.begin() as db:
            batch = expire_leases(db, utcnow(), batch_size=EXPIRY_BATCH_SIZE)
        expired += batch
        if batch < EXPIRY_BATCH_SIZE:
            break
    return expired


@shared_task(name="growth.top_up_lotteries")
def top_up_lotteries_job() -> dict[str, int]:
    """Fill free growing slots in every language (draws also happen when a tree stops
    growing; this catches prompts accepted while slots were free)."""
    with get_sessionmaker().begin() as db:
        drawn = top_up_lotteries(db)
    return {language: len(tree_ids) for language, tree_ids in drawn.items()}
