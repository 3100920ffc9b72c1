"""Researcher JSON API (mounted at /api/v1): list releases, read one, download its files."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import FileResponse, Response

from hedgerow.accounts.security import AdminUser, OptionalUser
from hedgerow.db import SessionDep
from hedgerow.export import service
from hedgerow.export.schemas import ReleaseFileOut, ReleaseList, ReleaseOut
from hedgerow.inputs import Id
from hedgerow.models import Release
from hedgerow.openapi import error_responses

router = APIRouter(prefix="/datasets", tags=["datasets"])

# Release files never change once published, so clients may cache them for good.
IMMUTABLE_CACHE = "private, max-age=31536000, immutable"


def release_out(request: Request, release: Release) -> ReleaseOut:
    files = [
        ReleaseFileOut(
            name=entry["name"],
            size=entry["size"],
            sha256=entry["sha256"],
            url=str(
                request.url_for("download_release_file", release_id=release.id, name=entry["name"])
            ),
        )
        for entry in release.files or []
    ]
    return ReleaseOut(
        id=release.id,
        name=release.name,
        kind=release.kind,
        pinned=release.pinned,
        schema_version=release.schema_version,
        created_at=release.created_at,
        finished_at=release.finished_at,
        total_bytes=release.total_bytes,
        counts=release.counts or {},
        filters=release.filters,
        files=files,
        card_url=str(
            request.url_for("download_release_file", release_id=release.id, name="README.md")
        ),
    )


@router.get("", responses=error_responses(401, 403))
def list_releases(request: Request, user: OptionalUser, db: SessionDep) -> ReleaseList:
    service.require_download_access(user)
    return ReleaseList(
        releases=[release_out(request, release) for release in service.published_releases(db)]
    )


@router.get("/{release_id}", responses=error_responses(401, 403))
def get_release(release_id: Id, request: Request, user: OptionalUser, db: SessionDep) -> ReleaseOut:
    service.require_download_access(user)
    return release_out(request, service.get_published(db, release_id))


@router.get(
    "/{release_id}/files/{name}", name="download_release_file", responses=error_responses(401, 403)
)
def download_release_file(
    release_id: Id,
    name: str,
    user: OptionalUser,
    db: SessionDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The file itself; supports Range (resumable downloads) and conditional requests.
    The ETag is the file's sha256, the same as in manifest.json."""
    service.require_download_access(user)
    release = service.get_published(db, release_id)
    path, entry = service.release_file(release, name)
    etag = f'"{entry["sha256"]}"'
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE_CACHE}
    if if_none_match is not None and etag in {tag.strip() for tag in if_none_match.split(",")}:
        return Response(status_code=304, headers=headers)
    return FileResponse(path, filename=entry["name"], headers=headers)


@router.post("/{release_id}/pin")
def pin_release(release_id: Id, request: Request, admin: AdminUser, db: SessionDep) -> ReleaseOut:
    """Keep this release whatever the retention setting says."""
    return release_out(request, service.set_pinned(db, release_id, pinned=True, actor=admin))


@router.post("/{release_id}/unpin")
def unpin_release(release_id: Id, request: Request, admin: AdminUser, db: SessionDep) -> ReleaseOut:
    return release_out(request, service.set_pinned(db, release_id, pinned=False, actor=admin))
