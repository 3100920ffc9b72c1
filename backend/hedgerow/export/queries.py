"""The SQL of the export: the release rows, the run's lock and snapshot, and set-based
queries over ranges of tree ids.

The exported trees are cut into batches of consecutive tree ids holding about the same
number of messages (`batch_ranges`). For each batch, four plain queries read its messages
(ordered by tree, parents first), and the labels, rankings and reactions of those
messages, each joined by the planner's choice of hash or merge join rather than one
subquery per message. Nothing is turned into JSON by the server: building and printing
JSON cost PostgreSQL more than the rest of the export's reading together.

The part queries are plain psycopg SQL (`%(name)s` parameters) because the export's worker
processes run them on bare psycopg connections, without SQLAlchemy. For the same reason,
the settings of a part's transaction stay in `parts` (PART_TRANSACTION_SETTINGS).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, text, update
from sqlalchemy.orm import Session

from hedgerow.export.schemas import ExportFilters
from hedgerow.models import Chat, ChatMessage, Release, ReleaseKind, ReleaseState, User

# The first tree id of the first batch: below any id a sequence hands out.
LOWEST_TREE_ID = -(2**63)


def _where(filters: ExportFilters, bind: Callable[[str], str]) -> tuple[str, dict[str, Any]]:
    """Tree-level filters in SQL; message-level ones too (their orphans are dropped later).
    `bind` spells a parameter for the driver that runs the statement."""
    clauses = [f"t.state = ANY({bind('states')})"]
    params: dict[str, Any] = {"states": list(filters.states)}
    if filters.languages:
        clauses.append(f"t.language = ANY({bind('languages')})")
        params["languages"] = list(filters.languages)
    if filters.created_from is not None:
        clauses.append(f"t.created_at >= {bind('created_from')}")
        params["created_from"] = filters.created_from
    if filters.created_until is not None:
        clauses.append(f"t.created_at < {bind('created_until')}")
        params["created_until"] = filters.created_until
    if not filters.include_deleted:
        clauses.append("NOT m.deleted")
    if not filters.include_spam:
        clauses.append("m.review_state <> 'rejected'")
    if not filters.include_synthetic:
        clauses.append("NOT m.synthetic")
    return " AND ".join(clauses), params


def _sqlalchemy_bind(name: str) -> str:
    return f":{name}"


def _psycopg_bind(name: str) -> str:
    return f"%({name})s"


# --- release rows ---------------------------------------------------------------------

# Newest first; the id breaks ties between releases made in the same instant.
_NEWEST_FIRST = (Release.created_at.desc(), Release.id.desc())


def running_releases(db: Session) -> Sequence[Release]:
    return db.scalars(select(Release).where(Release.state == ReleaseState.running)).all()


def release_of_job(db: Session, job_id: str) -> Release | None:
    # uq_release_job_id
    return db.scalar(select(Release).where(Release.job_id == job_id))


def pruned_release_names(db: Session) -> list[str]:
    return list(db.scalars(select(Release.name).where(Release.state == ReleaseState.pruned)))


def update_release(db: Session, release_id: int, **values: Any) -> None:
    db.execute(update(Release).where(Release.id == release_id).values(**values))


def nightly_releases_beyond(db: Session, *, keep: int) -> list[Release]:
    """Published nightly releases, not pinned, older than the newest `keep` of them."""
    query = (
        select(Release)
        .where(
            Release.state == ReleaseState.published,
            Release.kind == ReleaseKind.nightly,
            Release.pinned.is_(False),
        )
        .order_by(*_NEWEST_FIRST)
        .offset(keep)
    )
    return list(db.scalars(query))


def published_releases(db: Session) -> list[Release]:
    query = select(Release).where(Release.state == ReleaseState.published)
    return list(db.scalars(query.order_by(*_NEWEST_FIRST)))


def recent_releases(db: Session, limit: int) -> list[Release]:
    return list(db.scalars(select(Release).order_by(*_NEWEST_FIRST).limit(limit)))


# --- the run's lock and snapshot -------------------------------------------------------


def take_advisory_lock(conn: Connection, key: int, *, wait: str) -> None:
    """Hold the session-level advisory lock `key`; past `wait` (a PostgreSQL interval),
    the server raises its lock timeout error."""
    conn.execute(text(f"SET lock_timeout = '{wait}'"))
    conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
    conn.execute(text("RESET lock_timeout"))


def try_advisory_lock(conn: Connection, key: int) -> bool:
    """Take the session-level advisory lock `key` if nobody holds it; never waits."""
    return bool(conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar())


def release_advisory_lock(conn: Connection, key: int) -> None:
    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})


def tune_export_snapshot(conn: Connection) -> None:
    """Settings of the snapshot's transaction, in which the batches are cut."""
    # Cost estimates over a whole corpus wake the JIT, which then spends seconds
    # compiling plans that run in a fraction of that.
    conn.execute(text("SET LOCAL jit = off"))
    # Cutting the batches counts the messages of every tree: in memory, rather
    # than spilled to disk at the default 4 MB (a quarter of the query's time).
    conn.execute(text("SET LOCAL work_mem = '64MB'"))


def export_snapshot(conn: Connection) -> str:
    """The id under which other connections (the workers) share this transaction's
    snapshot (`SET TRANSACTION SNAPSHOT`)."""
    return str(conn.execute(text("SELECT pg_export_snapshot()")).scalar_one())


def estimated_messages(conn: Connection) -> float:
    """The planner's estimate of the message table's rows (-1 before its first ANALYZE)."""
    sql = "SELECT reltuples FROM pg_class WHERE oid = 'message'::regclass"
    return float(conn.execute(text(sql)).scalar_one())


# --- the batches ----------------------------------------------------------------------


@dataclass(frozen=True)
class TreeRange:
    """Trees with ids in [first_tree, last_tree], holding `messages` exported messages
    (before orphans of filtered-out parents are dropped)."""

    first_tree: int
    last_tree: int
    messages: int


def batch_ranges(conn: Connection, filters: ExportFilters, batch_messages: int) -> list[TreeRange]:
    """Consecutive tree-id ranges of about `batch_messages` messages each (a tree is never
    split), covering every exported message. The server keeps the per-tree counts; only
    one row per batch comes back, so memory does not grow with the number of trees."""
    where, params = _where(filters, _sqlalchemy_bind)
    sql = f"""
        WITH per_tree AS (
            SELECT m.tree_id, count(*) AS messages
              FROM message m JOIN tree t ON t.id = m.tree_id
             WHERE {where}
             GROUP BY m.tree_id
        ), running AS (
            SELECT tree_id, messages,
                   (sum(messages) OVER (ORDER BY tree_id))::bigint AS upto,
                   (sum(messages) OVER ())::bigint AS total
              FROM per_tree
        )
        SELECT tree_id, upto FROM running
         WHERE upto / :batch > (upto - messages) / :batch OR upto = total
         ORDER BY tree_id
    """  # noqa: S608 - only fixed fragments are interpolated; values are bound
    rows = conn.execute(text(sql), {**params, "batch": max(batch_messages, 1)}).all()
    ranges = []
    first_tree, done = LOWEST_TREE_ID, 0
    for last_tree, upto in rows:
        ranges.append(TreeRange(first_tree, last_tree, upto - done))
        first_tree, done = last_tree + 1, upto
    return ranges


# --- one batch ------------------------------------------------------------------------

# Positions in a row of the messages query, for code that reads rows as tuples.
MESSAGE_ID_COLUMN = 0
TREE_ID_COLUMN = 1
TREE_STATE_COLUMN = 18


@dataclass(frozen=True)
class PartQueries:
    """The four statements of a batch and their parameters, less the batch's own
    `first_tree` and `last_tree` (the messages query) and `message_ids` (the others). Picklable:
    the parent builds them for its workers."""

    messages: str
    labels: str
    rankings: str
    reactions: str
    params: dict[str, Any]


def part_queries(filters: ExportFilters) -> PartQueries:
    where, params = _where(filters, _psycopg_bind)
    # Labels, rankings and reactions are read for the batch's message ids, as an array
    # (parts.message_id_array) that is walked through the message_id index of each table: joining
    # each of them to message and tree again, for the same filtered messages, cost the server
    # about a fifth of its share of the export.
    #
    # Deleted accounts are anonymised by the writers' Pseudonyms (see deleted_user_ids):
    # looking the author of every label up in "user" was 40% of the labels query.
    # `values` comes as JSON text (parsed once per distinct text by the writer), creation
    # times formatted by the server exactly as the labels.jsonl and rankings.jsonl files have
    # always carried them: labels' as JSON (a string in quotes, which the writer puts in the
    # line as it is), rankings' as the string. Labels come unsorted, with their ids:
    # the writer puts each message's few labels in id order for less than the server's
    # sort costs.
    return PartQueries(
        # Both range conditions, so that the planner walks the tree and message indexes for
        # the batch's range instead of hashing whole tables for every batch.
        messages=f"""
            SELECT m.id, m.tree_id, m.parent_id, m.author_id, m.role, m.text, m.language,
                   m.depth, m.category, m.context,
                   m.review_state, m.review_count, m.review_confidence, m.consensus_rank,
                   m.synthetic,
                   m.model_name, m.deleted, m.created_at, t.state AS tree_state
              FROM message m
              JOIN tree t ON t.id = m.tree_id
             WHERE m.tree_id BETWEEN %(first_tree)s AND %(last_tree)s
               AND t.id BETWEEN %(first_tree)s AND %(last_tree)s
               AND {where}
             ORDER BY m.tree_id, m.depth, m.id
        """,  # noqa: S608 - only fixed fragments are interpolated; values are bound
        labels="""
            SELECT l.message_id, l.id, l.user_id, l.values::text, l.mode,
                   l.guideline_version, l.before_edit, to_json(l.created_at)::text
              FROM label l
             WHERE l.message_id = ANY(%(message_ids)s::bigint[])
        """,
        rankings="""
            SELECT k.parent_message_id, k.user_id, k.ordered_message_ids, k.grades,
                   k.not_rankable, k.before_edit,
                   to_json(k.created_at) #>> '{}'
              FROM ranking k
             WHERE k.parent_message_id = ANY(%(message_ids)s::bigint[])
             ORDER BY k.id
        """,
        reactions="""
            SELECT r.message_id, r.kind, count(*)
              FROM reaction r
             WHERE r.message_id = ANY(%(message_ids)s::bigint[])
             GROUP BY r.message_id, r.kind
        """,
        params=params,
    )


# --- the whole release ----------------------------------------------------------------


def deleted_user_ids(conn: Connection) -> frozenset[int]:
    """Accounts whose contributions are exported without a user id. One id per deleted
    account (rare), whatever the size of the corpus."""
    rows = conn.execute(text('SELECT id FROM "user" WHERE deleted_at IS NOT NULL'))
    return frozenset(rows.scalars())


def count_contributors(conn: Connection, filters: ExportFilters) -> int:
    """Distinct people who wrote, labelled or ranked the exported messages. Asked per
    person, whose first exported contribution usually answers at once through the
    author/user indexes (a tenth of a second for the 1M-message corpus, where joining every
    label to the exported messages took three seconds of the server's time during the
    export); SQL keeps the set, so the export's memory does not grow with the crowd."""
    where, params = _where(filters, _sqlalchemy_bind)
    sql = f"""
        SELECT count(*) FROM "user" u
         WHERE EXISTS (SELECT 1 FROM message m JOIN tree t ON t.id = m.tree_id
                        WHERE m.author_id = u.id AND {where})
            OR EXISTS (SELECT 1 FROM label l
                         JOIN message m ON m.id = l.message_id JOIN tree t ON t.id = m.tree_id
                        WHERE l.user_id = u.id AND {where})
            OR EXISTS (SELECT 1 FROM ranking k
                         JOIN message m ON m.id = k.parent_message_id
                         JOIN tree t ON t.id = m.tree_id
                        WHERE k.user_id = u.id AND {where})
    """  # noqa: S608 - only fixed fragments are interpolated; values are bound
    return int(conn.execute(text(sql), params).scalar_one())


# --- chats ----------------------------------------------------------------------------


def shared_chats(db: Session, *, after_id: int, limit: int) -> Sequence[tuple[Chat, int]]:
    """The next `limit` chats after `after_id`, in id order, whose owners allow data use,
    with their owners' ids; deleted chats and chats of deleted accounts are left out."""
    return db.execute(
        select(Chat, User.id)
        .join(User, User.id == Chat.owner_id)
        .where(
            Chat.id > after_id,
            Chat.allow_data_use.is_(True),
            Chat.deleted_at.is_(None),
            User.deleted_at.is_(None),
        )
        .order_by(Chat.id)
        .limit(limit)
    ).all()


def messages_of_chats(db: Session, chat_ids: Sequence[int]) -> Iterable[ChatMessage]:
    """Every message of these chats, in id order (parents before their replies)."""
    return db.scalars(
        select(ChatMessage).where(ChatMessage.chat_id.in_(chat_ids)).order_by(ChatMessage.id)
    )
