"""Admission control: a bounded queue in front of the generation slots, and a per-user
rate limit in Redis (shared by every server process)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from hedgerow.errors import AppError
from hedgerow.i18n import gettext as _
from hedgerow.redis_client import get_redis

RATE_KEY_PREFIX = "hedgerow:inference:requests"
RATE_WINDOW_SECONDS = 60
# Seconds a refused client is told to wait when the queue is full: about one generation.
QUEUE_FULL_RETRY_AFTER = 5


class GenerationQueue:
    """`concurrency` generations at once and at most `queue_size` more waiting; beyond
    that a request is refused at once with 503 rather than waiting without bound."""

    def __init__(self, concurrency: int, queue_size: int) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._capacity = concurrency + queue_size
        self._admitted = 0

    @property
    def admitted(self) -> int:
        return self._admitted

    def admit(self) -> None:
        if self._admitted >= self._capacity:
            raise AppError(
                "server_busy",
                _("The model server is busy; try again in a few seconds."),
                503,
                headers={"Retry-After": str(QUEUE_FULL_RETRY_AFTER)},
            )
        self._admitted += 1

    def release(self) -> None:
        self._admitted -= 1

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._slots:
            yield


def check_rate_limit(user_key: str, per_minute: int) -> None:
    """A fixed one-minute window per user; 429 with Retry-After once it is used up."""
    window = int(time.time()) // RATE_WINDOW_SECONDS
    key = f"{RATE_KEY_PREFIX}:{user_key}:{window}"
    pipe = get_redis().pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, RATE_WINDOW_SECONDS)
    count, _expiry_set = pipe.execute()
    if int(count) > per_minute:
        retry_after = RATE_WINDOW_SECONDS - int(time.time()) % RATE_WINDOW_SECONDS
        raise AppError(
            "rate_limited",
            _("At most %(limit)s requests a minute; wait and try again.", limit=per_minute),
            429,
            headers={"Retry-After": str(max(retry_after, 1))},
        )
