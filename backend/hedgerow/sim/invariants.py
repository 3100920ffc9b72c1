"""The growth engine's invariants, as queries over the trees a simulation (or a test)
created: each returns the offending rows, so a broken rule is named with examples."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from hedgerow.config import get_settings

# Each invariant is a query returning offending rows over the trees with id > :first.
INVARIANTS: dict[str, str] = {
    "roles alternate and depth follows the parent": """
        SELECT c.id FROM message c JOIN message p ON p.id = c.parent_id
        JOIN tree t ON t.id = c.tree_id
        WHERE t.id > :first AND (c.role = p.role OR c.depth <> p.depth + 1)
        UNION ALL
        SELECT m.id FROM message m JOIN tree t ON t.id = m.tree_id
        WHERE t.id > :first AND m.parent_id IS NULL AND m.role <> 'prompter'
    """,
    "depth stays below max depth": """
        SELECT m.id FROM message m JOIN tree t ON t.id = m.tree_id
        WHERE t.id > :first AND m.depth >= t.max_depth
    """,
    "no parent over max children": """
        SELECT p.id FROM message p JOIN tree t ON t.id = p.tree_id
        JOIN message c ON c.parent_id = p.id AND c.review_state <> 'rejected' AND NOT c.deleted
        WHERE t.id > :first GROUP BY p.id, t.max_children HAVING count(*) > t.max_children
    """,
    "a tree never grows past its goal": """
        SELECT t.id FROM tree t JOIN message m ON m.tree_id = t.id
        WHERE t.id > :first AND m.review_state = 'accepted' AND NOT m.deleted
        GROUP BY t.id, t.goal_size HAVING count(*) > t.goal_size
    """,
    "nobody reviewed their own message": """
        SELECT l.id FROM label l JOIN message m ON m.id = l.message_id
        WHERE m.tree_id > :first AND l.user_id = m.author_id
    """,
    "nobody ranked their own message": """
        SELECT r.id FROM ranking r JOIN message p ON p.id = r.parent_message_id
        WHERE p.tree_id > :first AND (r.user_id = p.author_id OR EXISTS (
            SELECT 1 FROM message c WHERE c.parent_id = p.id AND c.author_id = r.user_id))
    """,
    "no parent over its reply limit (prompter replies per assistant reply)": """
        SELECT p.id FROM message p JOIN tree t ON t.id = p.tree_id
        JOIN message c ON c.parent_id = p.id AND c.review_state <> 'rejected' AND NOT c.deleted
        WHERE t.id > :first AND p.role = 'assistant'
        GROUP BY p.id, t.prompter_replies_per_assistant, t.max_children
        HAVING count(*) > LEAST(t.prompter_replies_per_assistant, t.max_children)
    """,
    "no message reviewed more than the maximum": """
        SELECT m.id FROM message m JOIN tree t ON t.id = m.tree_id
        JOIN label l ON l.message_id = m.id
        WHERE t.id > :first GROUP BY m.id, t.reviews_per_message
        HAVING count(*) > t.reviews_per_message
    """,
    "every message of a ready tree decided after the minimum to the maximum of reviews": """
        SELECT m.id FROM message m JOIN tree t ON t.id = m.tree_id
        WHERE t.id > :first AND t.state = 'ready_for_export' AND NOT m.deleted
          AND (m.review_state = 'pending' OR m.review_confidence IS NULL
               OR (SELECT count(*) FROM label l WHERE l.message_id = m.id)
                  NOT BETWEEN t.min_reviews_per_message AND t.reviews_per_message)
    """,
    "no sibling set ranked more than the maximum": """
        SELECT r.parent_message_id FROM ranking r JOIN message p ON p.id = r.parent_message_id
        JOIN tree t ON t.id = p.tree_id
        WHERE t.id > :first GROUP BY r.parent_message_id, t.rankings_per_sibling_set
        HAVING count(*) > t.rankings_per_sibling_set
    """,
    "every sibling set of a ready tree settled within its bounds, consensus stored": """
        SELECT p.id FROM message p JOIN tree t ON t.id = p.tree_id
        WHERE t.id > :first AND t.state = 'ready_for_export' AND NOT p.deleted
          AND (SELECT count(*) FROM message c WHERE c.parent_id = p.id AND NOT c.deleted
               AND c.review_state = 'accepted' AND c.role = 'assistant') >= 2
          AND (NOT p.ranking_settled
               OR (SELECT count(*) FROM ranking r WHERE r.parent_message_id = p.id)
                  NOT BETWEEN t.min_rankings_per_sibling_set AND t.rankings_per_sibling_set
               OR EXISTS (SELECT 1 FROM message c WHERE c.parent_id = p.id AND NOT c.deleted
                   AND c.review_state = 'accepted' AND c.role = 'assistant'
                   AND c.consensus_rank IS NULL
                   AND EXISTS (SELECT 1 FROM ranking r WHERE r.parent_message_id = p.id
                               AND NOT r.not_rankable)))
    """,
    "no two live leases on one item and user": """
        SELECT user_id FROM task WHERE state = 'leased'
        GROUP BY user_id HAVING count(*) > 1
    """,
}


def check_invariants(db: Session, first_tree_id: int = 0) -> list[str]:
    """Human-readable violations; empty when everything holds."""
    violations: list[str] = []
    for name, query in INVARIANTS.items():
        offenders = [row[0] for row in db.execute(text(query), {"first": first_tree_id})]
        if offenders:
            violations.append(f"{name}: {len(offenders)} offending rows, e.g. {offenders[:5]}")
    limit = get_settings().growing_trees_per_language
    rows = db.execute(
        text(
            "SELECT language, count(*) FROM tree WHERE state = 'growing' GROUP BY language "
            "HAVING count(*) > :limit"
        ),
        {"limit": limit},
    )
    for language, count in rows:
        violations.append(f"growing trees in {language}: {count} > limit {limit}")
    return violations
