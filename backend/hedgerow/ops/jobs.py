"""Operational jobs."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="ops.ping")
def ping() -> str:
    """Answers "pong": proves a worker is consuming the default queue."""
    return "pong"
