"""Prometheus metrics: requests and their latency by route, requests in flight, and the
database connection pool, served at /metrics (see ops/routes.py for who may read them).

Under `hedgerow up` the web server runs several worker processes; PROMETHEUS_MULTIPROC_DIR
(set by `hedgerow up` to a fresh folder) makes every process write its samples there and
/metrics add them up, whichever process answers. Without it (a single process, the tests)
the process's own registry is served.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import Engine, event
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "hedgerow_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "hedgerow_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by method and route template.",
    ["method", "route"],
    # The hot path's target is tens of milliseconds; the long tail is pages and downloads.
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
IN_FLIGHT = Gauge(
    "hedgerow_http_requests_in_flight",
    "Requests being worked on now (all web worker processes together).",
    multiprocess_mode="livesum",
)
POOL_IN_USE = Gauge(
    "hedgerow_db_pool_connections_in_use",
    "Database connections checked out of the pool now (all processes together).",
    multiprocess_mode="livesum",
)

# Requests no route matched (404s from scanners) share one label: a label per path would
# let anyone grow the metrics without bound.
UNMATCHED = "unmatched"


def route_label(scope: Scope) -> str:
    """The path with each path parameter's value put back as its `{name}`: the template,
    whichever router (and prefix) matched it. Read from the request, not the route object,
    whose own path lacks the prefix of the router that includes it."""
    if scope.get("route") is None:
        return UNMATCHED
    path: str = scope["path"]
    params = scope.get("path_params") or {}
    # Longest values first, so "12" does not eat into "123"; a value replaces one whole
    # segment (or, for a `{path:path}` parameter, a whole tail).
    for name, value in sorted(params.items(), key=lambda item: -len(str(item[1]))):
        segment = f"/{value}"
        at = path.find(segment)
        while (
            at != -1
            and not path.startswith("/", at + len(segment))
            and (at + len(segment) != len(path))
        ):
            at = path.find(segment, at + 1)
        if at != -1:
            path = f"{path[:at]}/{{{name}}}{path[at + len(segment) :]}"
    return path


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template. Plain ASGI: it runs on
    every task hand-out, where a BaseHTTPMiddleware would cost a task and a stream."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before it starts a response

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            IN_FLIGHT.dec()
            route = route_label(scope)
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)


def watch_pool(engine: Engine) -> None:
    """Keep POOL_IN_USE in step with the engine's pool."""

    @event.listens_for(engine, "checkout")
    def _checked_out(*_args: object) -> None:
        POOL_IN_USE.inc()

    @event.listens_for(engine, "checkin")
    def _checked_in(*_args: object) -> None:
        POOL_IN_USE.dec()


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, summed over processes where there are many."""
    if os.environ.get(MULTIPROCESS_DIR_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def share_between_processes(data_dir: Path) -> None:
    """Point this process's children at a fresh folder for their samples (what a previous
    run left there would be counted again), unless the operator chose one."""
    if os.environ.get(MULTIPROCESS_DIR_ENV):
        return
    folder = data_dir / "metrics"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ[MULTIPROCESS_DIR_ENV] = str(folder)
