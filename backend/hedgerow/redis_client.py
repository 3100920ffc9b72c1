"""The shared Redis connection (rate limits, locks, pub/sub)."""

from __future__ import annotations

from functools import lru_cache

import redis

from hedgerow.config import get_settings


@lru_cache
def get_redis() -> redis.Redis:
    url = get_settings().redis_url
    if not url:
        raise RuntimeError("REDIS_URL is not set; run through `hedgerow up` or set REDIS_URL")
    return redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)
