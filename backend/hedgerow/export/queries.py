"""The SQL of the export: one streamed pass over the messages of the chosen trees.

Each message row carries its own labels, reactions and (for a parent) the rankings of its
replies, aggregated by correlated subqueries on indexed columns, so the export reads
everything in a single server-side cursor ordered by tree and never holds more than one
tree in memory.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, TextClause, text

from hedgerow.export.schemas import ExportFilters

# Deleted users' ids never leave the database: their rows carry NULL instead. The user is
# looked up by primary key per row rather than joined, so the plan stays an index walk
# whatever the statistics say.
_LABELS = """
    (SELECT jsonb_agg(jsonb_build_array(
                CASE WHEN (SELECT lu.deleted_at FROM "user" lu WHERE lu.id = l.user_id) IS NULL
                     THEN l.user_id END,
                l.values, l.mode, l.guideline_version, l.before_edit, l.created_at)
            ORDER BY l.id)
       FROM label l
      WHERE l.message_id = m.id) AS labels
"""
_REACTIONS = """
    (SELECT jsonb_object_agg(r.kind, r.n)
       FROM (SELECT kind, count(*) AS n FROM reaction
              WHERE message_id = m.id GROUP BY kind) r) AS reactions
"""
_RANKINGS = """
    (SELECT jsonb_agg(jsonb_build_array(
                CASE WHEN (SELECT ku.deleted_at FROM "user" ku WHERE ku.id = k.user_id) IS NULL
                     THEN k.user_id END,
                k.ordered_message_ids, k.grades, k.not_rankable, k.before_edit, k.created_at)
            ORDER BY k.id)
       FROM ranking k
      WHERE k.parent_message_id = m.id) AS rankings
"""


def _where(filters: ExportFilters) -> tuple[str, dict[str, Any]]:
    """Tree-level filters in SQL; message-level ones too (their orphans are dropped later)."""
    clauses = ["t.state = ANY(:states)"]
    params: dict[str, Any] = {"states": list(filters.states)}
    if filters.languages:
        clauses.append("t.language = ANY(:languages)")
        params["languages"] = list(filters.languages)
    if filters.created_from is not None:
        clauses.append("t.created_at >= :created_from")
        params["created_from"] = filters.created_from
    if filters.created_until is not None:
        clauses.append("t.created_at < :created_until")
        params["created_until"] = filters.created_until
    if not filters.include_deleted:
        clauses.append("NOT m.deleted")
    if not filters.include_spam:
        clauses.append("m.review_state <> 'rejected'")
    if not filters.include_synthetic:
        clauses.append("NOT m.synthetic")
    return " AND ".join(clauses), params


# Positions in a row of export_messages_query, for code that reads rows as tuples.
TREE_ID_COLUMN = 1
TREE_STATE_COLUMN = 17


def export_messages_query(filters: ExportFilters) -> tuple[TextClause, dict[str, Any]]:
    """Every exported message, parents before children, grouped by tree."""
    where, params = _where(filters)
    sql = f"""
        SELECT m.id, m.tree_id, m.parent_id,
               CASE WHEN u.deleted_at IS NULL THEN m.author_id END AS author_id,
               m.role, m.text, m.language, m.depth, m.category, m.context,
               m.review_state, m.review_count, m.consensus_rank, m.synthetic, m.model_name,
               m.deleted, m.created_at, t.state AS tree_state,
               {_LABELS}, {_REACTIONS}, {_RANKINGS}
          FROM message m
          JOIN tree t ON t.id = m.tree_id
          JOIN "user" u ON u.id = m.author_id
         WHERE {where}
         ORDER BY m.tree_id, m.depth, m.id
    """  # noqa: S608 - only fixed fragments are interpolated; values are bound
    return text(sql), params


def count_export_messages(conn: Connection, filters: ExportFilters) -> int:
    where, params = _where(filters)
    sql = f"SELECT count(*) FROM message m JOIN tree t ON t.id = m.tree_id WHERE {where}"  # noqa: S608
    return int(conn.execute(text(sql), params).scalar_one())


def count_contributors(conn: Connection, filters: ExportFilters) -> int:
    """Distinct people who wrote, labelled or ranked the exported messages (SQL keeps the
    set, so the export's memory does not grow with the crowd)."""
    where, params = _where(filters)
    sql = f"""
        WITH exported AS (
            SELECT m.id, m.author_id FROM message m JOIN tree t ON t.id = m.tree_id
             WHERE {where}
        )
        SELECT count(DISTINCT user_id) FROM (
            SELECT author_id AS user_id FROM exported
            UNION ALL SELECT l.user_id FROM label l JOIN exported e ON e.id = l.message_id
            UNION ALL SELECT k.user_id FROM ranking k JOIN exported e
                   ON e.id = k.parent_message_id
        ) everyone
    """  # noqa: S608
    return int(conn.execute(text(sql), params).scalar_one())
