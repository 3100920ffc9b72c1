"""The volunteer task API. Thin: every rule lives in hedgerow.growth."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from hedgerow.accounts.security import ContributorUser
from hedgerow.contribute.schemas import (
    AvailableOut,
    DraftRequest,
    DraftResult,
    LabelOut,
    LabelsOut,
    RedFlagResult,
    SkipRequest,
    SkipResult,
    SubmitRequest,
    SubmitResult,
    TaskOut,
    TaskRequest,
)
from hedgerow.db import SessionDep
from hedgerow.growth import service
from hedgerow.growth.schemas import GUIDELINE_VERSION, translated_labels
from hedgerow.inputs import Id
from hedgerow.languages import LanguageCode
from hedgerow.openapi import error_responses
from hedgerow.ops.admission import SlottedContributor

router = APIRouter(tags=["tasks"])


@router.get("/tasks/available", response_model=AvailableOut)
def tasks_available(
    db: SessionDep, user: ContributorUser, language: LanguageCode | None = None
) -> AvailableOut:
    """How many items of work of each kind you could be handed now."""
    language = user.language if language is None else language
    return AvailableOut(language=language, counts=service.available_task_counts(db, user, language))


@router.post("/tasks", response_model=TaskOut, responses=error_responses(404, 409))
def request_task(body: TaskRequest, db: SessionDep, user: SlottedContributor) -> TaskOut:
    """Your current task if you hold one (``resumed``: true), else a new one."""
    view = service.request_task(
        db,
        user,
        language=user.language if body.language is None else body.language,
        kind=body.kind,
        review_mode=body.review_mode,
    )
    return TaskOut.model_validate(view)


@router.post("/tasks/{task_id}/submit", response_model=SubmitResult, responses=error_responses(409))
def submit_task(
    task_id: Id, body: SubmitRequest, db: SessionDep, user: SlottedContributor
) -> SubmitResult:
    result = service.submit_task(db, user, task_id, body)
    return SubmitResult(task_id=task_id, **asdict(result))


@router.post("/tasks/{task_id}/skip", response_model=SkipResult, responses=error_responses(409))
def skip_task(
    task_id: Id, body: SkipRequest, db: SessionDep, user: SlottedContributor
) -> SkipResult:
    service.skip_task(db, user, task_id, body.reason)
    return SkipResult(task_id=task_id)


@router.post("/tasks/{task_id}/draft", response_model=DraftResult, responses=error_responses(409))
def save_draft(
    task_id: Id, body: DraftRequest, db: SessionDep, user: ContributorUser
) -> DraftResult:
    """Autosave what you typed; extends your lease."""
    deadline = service.save_draft(db, user, task_id, body.draft)
    return DraftResult(task_id=task_id, lease_expires_at=deadline)


@router.get("/labels", response_model=LabelsOut)
def labels() -> LabelsOut:
    """Every review label with its description, roles and modes."""
    return LabelsOut(
        guideline_version=GUIDELINE_VERSION,
        labels=[LabelOut.model_validate(label) for label in translated_labels()],
    )


@router.post(
    "/messages/{message_id}/red-flag", response_model=RedFlagResult, responses=error_responses(409)
)
def red_flag(message_id: Id, db: SessionDep, user: ContributorUser) -> RedFlagResult:
    """Flag a message as harmful; enough flags remove it and its replies."""
    return RedFlagResult.model_validate(service.record_red_flag(db, user, message_id))
