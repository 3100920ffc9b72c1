"""Liveness and readiness probes, and the Prometheus metrics."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from hedgerow.accounts.security import bearer_token, get_optional_user
from hedgerow.config import get_settings
from hedgerow.db import SessionDep, get_sessionmaker
from hedgerow.errors import AppError, Forbidden, NotAuthenticated
from hedgerow.i18n import gettext as _
from hedgerow.metrics import exposition
from hedgerow.models import Role
from hedgerow.openapi import error_responses
from hedgerow.ops import queries
from hedgerow.redis_client import get_redis

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses=error_responses(503))
def readyz() -> JSONResponse:
    """The database and Redis answer."""
    checks: dict[str, str] = {}
    try:
        with get_sessionmaker()() as session:
            queries.ping_database(session)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        get_redis().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


def metrics_reader(request: Request, db: SessionDep) -> None:
    """A scraper with HEDGEROW_METRICS_TOKEN as its bearer token, or an admin (session or
    API key): the metrics show traffic per route, not for everyone."""
    token = get_settings().metrics_token
    presented = bearer_token(request)
    if token and presented is not None and hmac.compare_digest(presented, token):
        return
    user = get_optional_user(request, db)
    if user is None:
        raise NotAuthenticated()
    if not user.enabled:
        raise AppError("account_disabled", _("This account has been disabled by a moderator."), 403)
    if not user.has_role(Role.admin):
        raise Forbidden(_("The metrics are for admins and the metrics scraper."))


@router.get(
    "/metrics",
    dependencies=[Depends(metrics_reader)],
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
        **error_responses(401, 403),
    },
)
def metrics() -> Response:
    """Request counts and latency by route, requests in flight, database pool use."""
    body, content_type = exposition()
    return Response(body, media_type=content_type)
