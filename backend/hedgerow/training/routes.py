"""Admin pages: training runs, a run's live progress, promotion, rollback, comparison."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import RedirectResponse, Response

from hedgerow.accounts.security import AdminUser
from hedgerow.config import get_settings
from hedgerow.db import SessionDep
from hedgerow.errors import AppError
from hedgerow.i18n import gettext as _
from hedgerow.inputs import Id
from hedgerow.models import Release
from hedgerow.redis_client import get_redis
from hedgerow.templating import is_htmx, render
from hedgerow.training import artifacts, availability, queries, service
from hedgerow.training.chart import loss_charts, stage_of

router = APIRouter(prefix="/admin/training", include_in_schema=False)

# A running version's page re-polls its progress fragment this often.
PROGRESS_POLL_SECONDS = 2


def _see_other(request: Request, url: str) -> Response:
    if is_htmx(request):
        response = Response(status_code=204)
        response.headers["HX-Redirect"] = url
        return response
    return RedirectResponse(url, status_code=303)


@router.get("")
def runs_page(request: Request, admin: AdminUser, db: SessionDep) -> Response:
    rows = queries.recent_versions(db)
    context = {
        "rows": rows,
        "releases": queries.published_releases(db),
        "active": any(version.status in service.ACTIVE_STATUSES for version, _ in rows),
        "poll_seconds": PROGRESS_POLL_SECONDS,
        "dpo_by_default": get_settings().training_dpo,
        # Shown before anything is queued: without a trainer, a run cannot start.
        "trainers": availability.live_trainers(get_redis()),
    }
    return render(request, "training/runs.html", context, block="runs")


@router.post("")
def start_run(
    request: Request,
    admin: AdminUser,
    db: SessionDep,
    background: BackgroundTasks,
    release_id: Annotated[Id, Form()],
    # A checkbox: present when ticked.
    dpo: Annotated[bool, Form()] = False,
) -> Response:
    version = service.queue_run(db, get_redis(), release_id, requested_by=admin, dpo=dpo)
    # Background tasks run after the response, so after the session committed: the job
    # never looks for a version that is not there yet.
    background.add_task(service.enqueue_training, version.id)
    return _see_other(request, f"/admin/training/versions/{version.id}")


@router.get("/versions/{version_id}")
def version_page(request: Request, version_id: Id, admin: AdminUser, db: SessionDep) -> Response:
    version = service.get_version(db, version_id)
    run = queries.run_of(db, version_id)
    context: dict[str, Any] = {
        "version": version,
        "run": run,
        "release": db.get(Release, version.release_id),
        "charts": loss_charts(run.loss_history),
        # The stage of the newest logged step: DPO's steps follow SFT's.
        "stage": stage_of(run.loss_history[-1]) if run.loss_history else "sft",
        "active": version.status in service.ACTIVE_STATUSES,
        "poll_seconds": PROGRESS_POLL_SECONDS,
        "log_tail": artifacts.read_log_tail(run),
        "others": [other for other, _ in queries.recent_versions(db) if other.id != version.id],
    }
    return render(request, "training/version.html", context, block="progress")


@router.post("/versions/{version_id}/promote")
def promote(request: Request, version_id: Id, admin: AdminUser, db: SessionDep) -> Response:
    service.promote(db, version_id, actor=admin)
    return _see_other(request, f"/admin/training/versions/{version_id}")


@router.post("/serving/{name}/rollback")
def roll_back(request: Request, name: str, admin: AdminUser, db: SessionDep) -> Response:
    restored = service.roll_back(db, name, actor=admin)
    return _see_other(request, f"/admin/training/versions/{restored.id}")


@router.get("/compare")
def compare_page(request: Request, admin: AdminUser, db: SessionDep, a: Id, b: Id) -> Response:
    if a == b:
        raise AppError("same_version", _("Pick two different versions to compare."), 422)
    left = service.get_version(db, a)
    right = service.get_version(db, b)
    answers_by_id = {item["id"]: item for item in right.reference_answers or []}
    # Prompts both versions answered side by side; then those only one of them did
    # (each run samples its own prompts).
    pairs: list[tuple[dict[str, Any] | None, dict[str, Any] | None]] = []
    for item in left.reference_answers or []:
        pairs.append((item, answers_by_id.pop(item["id"], None)))
    pairs.extend((None, item) for item in answers_by_id.values())
    pairs.sort(key=lambda pair: pair[0] is None or pair[1] is None)
    context = {"left": left, "right": right, "pairs": pairs}
    return render(request, "training/compare.html", context)
