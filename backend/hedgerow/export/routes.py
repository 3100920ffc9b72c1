"""Pages: the researchers' downloads page and the admins' export progress."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from hedgerow.accounts.security import AdminUser, OptionalUser
from hedgerow.db import SessionDep
from hedgerow.errors import NotFound
from hedgerow.export import service
from hedgerow.models import ReleaseState
from hedgerow.templating import is_htmx, render

router = APIRouter(include_in_schema=False)

# The progress fragment re-polls itself this often while an export runs.
PROGRESS_POLL_SECONDS = 2


@router.get("/datasets")
def datasets_page(request: Request, user: OptionalUser, db: SessionDep) -> Response:
    service.require_download_access(user)
    releases = service.published_releases(db)
    cards: dict[int, str | None] = {}
    for release in releases:
        try:
            cards[release.id] = service.release_card(release)
        except NotFound:
            cards[release.id] = None
    return render(request, "export/datasets.html", {"releases": releases, "cards": cards})


@router.get("/admin/exports")
def exports_page(request: Request, admin: AdminUser, db: SessionDep) -> Response:
    releases = service.recent_releases(db)
    context = {
        "releases": releases,
        "running": any(release.state == ReleaseState.running for release in releases),
        "poll_seconds": PROGRESS_POLL_SECONDS,
    }
    return render(request, "export/admin_exports.html", context, block="progress")


@router.post("/admin/exports")
def start_export(request: Request, admin: AdminUser) -> Response:
    """Queue an on-demand release; the worker runs it and the page shows its progress."""
    from hedgerow.worker import celery_app

    # Nothing to commit first: the job creates its release row in its own transaction.
    celery_app.send_task("export.manual_release")
    if is_htmx(request):
        response = Response(status_code=204)
        response.headers["HX-Redirect"] = "/admin/exports"
        return response
    return RedirectResponse("/admin/exports", status_code=303)
