"""Moderation JSON API (mounted at /api/v1). Thin: the rules live in moderation.service."""

from __future__ import annotations

from fastapi import APIRouter, Query

from hedgerow.accounts.security import ContributorUser, ModeratorUser
from hedgerow.db import SessionDep
from hedgerow.inputs import Id, PageNumber, Text
from hedgerow.moderation import service
from hedgerow.moderation.schemas import (
    AuditEventOut,
    BulkRequest,
    BulkResult,
    EditRequest,
    MessageIdsOut,
    NoteRequest,
    QueueEntryOut,
    ReasonRequest,
    ReportOut,
    ReportRequest,
    RequiredReasonRequest,
    RevisionOut,
    TreeStateOut,
    UserStateOut,
)
from hedgerow.openapi import error_responses

router = APIRouter(tags=["moderation"])


@router.post("/messages/{message_id}/report", status_code=201, responses=error_responses(409))
def report_message(
    message_id: Id, body: ReportRequest, db: SessionDep, user: ContributorUser
) -> ReportOut:
    """Report a message to the moderators; once per message (``already_reported``)."""
    report = service.report_message(db, user, message_id, reason=body.reason, text=body.text)
    return ReportOut.of(report)


@router.get("/moderation/queue")
def queue(db: SessionDep, moderator: ModeratorUser, page: PageNumber = 1) -> list[QueueEntryOut]:
    items, _ = service.queue_page(db, page=page)
    return [
        QueueEntryOut(
            message_id=item.message.id,
            tree_id=item.message.tree_id,
            text=item.message.text,
            author_id=item.author.id,
            author_username=item.author.username,
            report_count=item.report_count,
            severity=item.severity,
            reasons=item.reasons,
            path_message_ids=[m.id for m in item.path],
        )
        for item in items
    ]


@router.post("/moderation/messages/{message_id}/dismiss", responses=error_responses(409))
def dismiss(
    message_id: Id, body: ReasonRequest, db: SessionDep, moderator: ModeratorUser
) -> MessageIdsOut:
    service.dismiss_reports(db, moderator, message_id, reason=body.reason)
    return MessageIdsOut(message_ids=[message_id])


@router.post("/moderation/messages/{message_id}/delete", responses=error_responses(409))
def delete(
    message_id: Id, body: ReasonRequest, db: SessionDep, moderator: ModeratorUser
) -> MessageIdsOut:
    """Soft-delete the message and everything below it."""
    ids = service.delete_message(db, moderator, message_id, reason=body.reason)
    return MessageIdsOut(message_ids=sorted(ids))


@router.post("/moderation/messages/{message_id}/undelete", responses=error_responses(409))
def undelete(
    message_id: Id, body: ReasonRequest, db: SessionDep, moderator: ModeratorUser
) -> MessageIdsOut:
    """Bring back exactly the subtree deleted with this message."""
    ids = service.undelete_message(db, moderator, message_id, reason=body.reason)
    return MessageIdsOut(message_ids=ids)


@router.post("/moderation/messages/{message_id}/edit", responses=error_responses(409))
def edit(
    message_id: Id, body: EditRequest, db: SessionDep, moderator: ModeratorUser
) -> RevisionOut:
    revision = service.edit_message(
        db, moderator, message_id, new_text=body.text, reason=body.reason
    )
    return RevisionOut(message_id=message_id, revision_id=revision.id, text=revision.new_text)


@router.post("/moderation/trees/{tree_id}/halt", responses=error_responses(409))
def halt(
    tree_id: Id, body: RequiredReasonRequest, db: SessionDep, moderator: ModeratorUser
) -> TreeStateOut:
    tree = service.halt_tree(db, moderator, tree_id, reason=body.reason)
    return TreeStateOut(tree_id=tree.id, state=tree.state)


@router.post("/moderation/trees/{tree_id}/resume", responses=error_responses(409))
def resume(
    tree_id: Id, body: ReasonRequest, db: SessionDep, moderator: ModeratorUser
) -> TreeStateOut:
    tree = service.resume_tree(db, moderator, tree_id, reason=body.reason)
    return TreeStateOut(tree_id=tree.id, state=tree.state)


@router.post("/moderation/users/{user_id}/disable", responses=error_responses(409))
def disable(
    user_id: Id, body: RequiredReasonRequest, db: SessionDep, moderator: ModeratorUser
) -> UserStateOut:
    """Disable the account; its waiting prompts leave the lottery and its leases end."""
    user = service.disable_user(db, moderator, user_id, reason=body.reason)
    return UserStateOut(user_id=user.id, enabled=user.enabled)


@router.post("/moderation/users/{user_id}/enable", responses=error_responses(409))
def enable(
    user_id: Id, body: ReasonRequest, db: SessionDep, moderator: ModeratorUser
) -> UserStateOut:
    user = service.enable_user(db, moderator, user_id, reason=body.reason)
    return UserStateOut(user_id=user.id, enabled=user.enabled)


@router.post("/moderation/users/{user_id}/notes", status_code=201)
def add_note(
    user_id: Id, body: NoteRequest, db: SessionDep, moderator: ModeratorUser
) -> dict[str, int]:
    note = service.add_note(db, moderator, user_id, text=body.text)
    return {"id": note.id}


@router.post("/moderation/bulk", responses=error_responses(409))
def bulk(body: BulkRequest, db: SessionDep, moderator: ModeratorUser) -> BulkResult:
    outcomes = service.bulk_action(
        db, moderator, body.message_ids, action=body.action, reason=body.reason
    )
    return BulkResult(outcomes=outcomes)


@router.get("/moderation/audit")
def audit(
    db: SessionDep,
    moderator: ModeratorUser,
    actor: Text | None = Query(None, max_length=32),
    action: Text | None = Query(None, max_length=64),
    target_type: Text | None = Query(None, max_length=32),
    target_id: Id | None = None,
    page: PageNumber = 1,
) -> list[AuditEventOut]:
    rows, _ = service.audit_log(
        db, actor=actor, action=action, target_type=target_type, target_id=target_id, page=page
    )
    return [AuditEventOut.of(event, username) for event, username in rows]
