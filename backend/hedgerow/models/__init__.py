"""All models, imported here so that Alembic and mappers see every table."""

from hedgerow.models.audit import AuditEvent
from hedgerow.models.base import Base
from hedgerow.models.chat import Battle, BattleVote, Chat, ChatMessage, ChatMessageStatus, ChatRole
from hedgerow.models.label import Label
from hedgerow.models.mail import MailMessage, MailStatus
from hedgerow.models.message import Message, MessageRevision, MessageRole, ReviewState
from hedgerow.models.ranking import Ranking
from hedgerow.models.reaction import Reaction, ReactionKind
from hedgerow.models.release import Release, ReleaseKind, ReleaseState
from hedgerow.models.reliability import VolunteerReliability
from hedgerow.models.report import Report, ReportReason, ReportStatus
from hedgerow.models.sign_in import AccountToken, TokenPurpose, UserIdentity
from hedgerow.models.task import Task, TaskKind, TaskState
from hedgerow.models.training import ModelVersion, ModelVersionStatus, TrainingRun
from hedgerow.models.tree import GrowthPolicy, Tree, TreeState, TreeVisit
from hedgerow.models.user import ApiKey, Role, User, UserNote, UserSession

__all__ = [
    "AccountToken",
    "ApiKey",
    "AuditEvent",
    "Base",
    "Battle",
    "BattleVote",
    "Chat",
    "ChatMessage",
    "ChatMessageStatus",
    "ChatRole",
    "GrowthPolicy",
    "Label",
    "MailMessage",
    "MailStatus",
    "Message",
    "MessageRevision",
    "MessageRole",
    "ModelVersion",
    "ModelVersionStatus",
    "Ranking",
    "Reaction",
    "ReactionKind",
    "Release",
    "ReleaseKind",
    "ReleaseState",
    "Report",
    "ReportReason",
    "ReportStatus",
    "ReviewState",
    "Role",
    "Task",
    "TaskKind",
    "TaskState",
    "TokenPurpose",
    "TrainingRun",
    "Tree",
    "TreeState",
    "TreeVisit",
    "User",
    "UserIdentity",
    "UserNote",
    "UserSession",
    "VolunteerReliability",
]
