"""Dataset releases: their rows through a run (made, failed, published, pruned), who may
download them, and the lookups of the pages and the API.

Making a release is `run.run_export`, which keeps its release row with the functions
here, each inside a transaction the run opens.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from hedgerow.config import Settings, get_settings
from hedgerow.errors import AppError, NotAuthenticated, NotFound
from hedgerow.export import queries
from hedgerow.export.schemas import SCHEMA_VERSION, ExportFilters
from hedgerow.export.writers import CARD_FILE, ReleaseStats
from hedgerow.i18n import gettext as _
from hedgerow.models import AuditEvent, Release, ReleaseKind, ReleaseState, Role, User

INTERRUPTED = "The export stopped before it published (the process died or was killed)."
# Runs of one export job: a job whose worker dies is delivered again and takes over its
# release row; one that killed its worker this often (out of memory, say) would only do
# it again.
MAX_ATTEMPTS = 3
GAVE_UP = (
    "The export was interrupted {attempts} times (its worker died each time, for example "
    "out of memory); it is not retried again."
)


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- a release's row through its run ------------------------------------------------


def new_release(
    db: Session,
    kind: ReleaseKind,
    filters: ExportFilters,
    pinned: bool,
    job_id: str | None = None,
) -> Release:
    now = utcnow()
    release = Release(
        name=f"{now:%Y-%m-%d-%H%M%S}-{kind.value}-{secrets.token_hex(2)}",
        kind=kind.value,
        state=ReleaseState.running.value,
        pinned=pinned,
        schema_version=SCHEMA_VERSION,
        filters=filters.model_dump(mode="json"),
        job_id=job_id,
    )
    db.add(release)
    db.flush()
    db.refresh(release)
    return release


def release_of_job(db: Session, job_id: str | None) -> Release | None:
    """The release an earlier delivery of this job made, if any (under the export lock)."""
    return queries.release_of_job(db, job_id) if job_id is not None else None


def take_over_release(db: Session, release: Release) -> bool:
    """Start another attempt on the row of an earlier, interrupted attempt of the same job
    (its files are already gone: `fail_interrupted_releases` and the leftovers sweep ran
    first). False, with the row failed for good, once the attempts are used up."""
    release.finished_at = utcnow()
    if release.attempts >= MAX_ATTEMPTS:
        release.state = ReleaseState.failed.value
        release.error = GAVE_UP.format(attempts=release.attempts)
        db.flush()
        return False
    release.attempts += 1
    release.state = ReleaseState.running.value
    release.error = None
    release.finished_at = None
    release.messages_done = release.messages_total = 0
    db.flush()
    return True


def fail_interrupted_releases(db: Session) -> list[str]:
    """Mark every release still `running` as failed; returns their names. Only under the
    export lock: then any running release belongs to a process that died."""
    interrupted = queries.running_releases(db)
    for release in interrupted:
        release.state = ReleaseState.failed
        release.error = INTERRUPTED
        release.finished_at = utcnow()
    return [release.name for release in interrupted]


def mark_failed(db: Session, release_id: int, error: BaseException) -> None:
    queries.update_release(
        db,
        release_id,
        state=ReleaseState.failed.value,
        error=f"{type(error).__name__}: {error}"[:2000],
        finished_at=utcnow(),
    )


def mark_published(
    db: Session,
    release_id: int,
    *,
    stats: ReleaseStats,
    contributors: int,
    files: list[dict[str, Any]],
    keep_nightly: int,
) -> list[str]:
    """Record the published release's files and counts, then apply retention; returns the
    names of the releases pruned (see `prune_releases`)."""
    release = db.get_one(Release, release_id)
    release.state = ReleaseState.published.value
    release.finished_at = utcnow()
    release.files = files
    release.total_bytes = sum(entry["size"] for entry in files)
    release.counts = {
        "trees": stats.trees,
        "messages": stats.messages,
        "contributors": contributors,
        "rows": dict(sorted(stats.rows.items())),
        "trees_by_state": dict(stats.trees_by_state),
        "trees_by_language": dict(stats.trees_by_language),
    }
    db.flush()
    return prune_releases(db, keep_nightly=keep_nightly)


def prune_releases(db: Session, *, keep_nightly: int) -> list[str]:
    """Mark nightly releases beyond the newest `keep_nightly` as pruned (pinned ones and
    manual ones stay); returns their names, whose directories go after the commit."""
    pruned = queries.nightly_releases_beyond(db, keep=max(keep_nightly, 0))
    for release in pruned:
        release.state = ReleaseState.pruned.value
    db.flush()
    return [release.name for release in pruned]


# --- reading releases ---------------------------------------------------------------


def can_download(user: User | None, settings: Settings | None = None) -> bool:
    settings = settings or get_settings()
    if settings.datasets_public:
        return True
    return user is not None and user.role in (Role.researcher, Role.admin)


def require_download_access(user: User | None) -> None:
    if can_download(user):
        return
    if user is None:
        raise NotAuthenticated(_("Log in or send an API key to download datasets."))
    raise AppError(
        "researcher_required",
        _("Dataset downloads need the researcher role; ask an admin for access."),
        403,
    )


def published_releases(db: Session) -> list[Release]:
    return queries.published_releases(db)


def recent_releases(db: Session, limit: int = 20) -> list[Release]:
    """Every state, for the admin page's progress view."""
    return queries.recent_releases(db, limit)


def get_published(db: Session, release_id: int) -> Release:
    release = db.get(Release, release_id)
    if release is None or release.state != ReleaseState.published:
        raise NotFound(_("No such dataset release."))
    return release


def release_file(
    release: Release, name: str, settings: Settings | None = None
) -> tuple[Path, dict[str, Any]]:
    """The path and manifest entry of one file. Only names listed in the release's own file
    list are served, so no request can reach outside the release directory."""
    settings = settings or get_settings()
    entry = next((entry for entry in release.files or [] if entry["name"] == name), None)
    if entry is None:
        raise NotFound(_("This release has no such file."))
    root = settings.releases_root.resolve()
    path = (root / release.name / entry["name"]).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise NotFound(_("This release has no such file."))
    return path, entry


def release_card(release: Release, settings: Settings | None = None) -> str:
    path, _ = release_file(release, CARD_FILE, settings)
    return path.read_text(encoding="utf-8")


def set_pinned(db: Session, release_id: int, *, pinned: bool, actor: User | None) -> Release:
    release = get_published(db, release_id)
    before = release.pinned
    release.pinned = pinned
    db.add(
        AuditEvent(
            actor_id=actor.id if actor else None,
            action="release.pin" if pinned else "release.unpin",
            target_type="release",
            target_id=release.id,
            before={"pinned": before},
            after={"pinned": pinned},
        )
    )
    db.flush()
    return release
