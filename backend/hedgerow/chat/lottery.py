"""A prompt the model answered badly, sent by its author to the volunteers' prompt lottery:
it becomes a new tree in prompt review, like a prompt written in a task, so people write
the answer the model should have given."""

from __future__ import annotations

from sqlalchemy.orm import Session

from hedgerow.chat import service
from hedgerow.config import get_settings
from hedgerow.errors import AppError
from hedgerow.growth.flags import refresh_open_flags
from hedgerow.growth.submission import new_message
from hedgerow.growth.text import normalize_text, refuse_duplicate, text_sha256
from hedgerow.models import Chat, MessageRole, Tree, TreeState, User


def send_prompt_to_lottery(db: Session, chat: Chat, answer_id: int, author: User) -> Tree:
    answer = service.get_message(db, chat, answer_id)
    if answer.role != "assistant" or answer.thumbs != -1 or answer.parent_id is None:
        raise AppError(
            "not_thumbed_down", "Only the prompt of an answer you gave a thumbs down can go.", 400
        )
    prompt = service.get_message(db, chat, answer.parent_id)
    settings = get_settings()
    text = normalize_text(prompt.text, settings.max_text_length)
    # The same prompt twice (sent already, or written by someone) is refused here.
    refuse_duplicate(db, text_sha256(text))
    tree = Tree(
        author_id=author.id,
        state=TreeState.prompt_review,
        language=author.language,
        goal_size=settings.tree_goal_size,
        max_depth=settings.tree_max_depth,
        max_children=settings.tree_max_children,
        reviews_per_message=settings.reviews_per_message,
        acceptance_threshold=settings.acceptance_threshold,
        rankings_per_sibling_set=settings.rankings_per_sibling_set,
        accepted_count=0,
        pending_count=1,
        reply_lease_count=0,
        open_ranking_sets=0,
    )
    db.add(tree)
    db.flush()
    root = new_message(
        tree=tree, parent=None, author_id=author.id, role=MessageRole.prompter, text=text
    )
    db.add(root)
    db.flush()
    tree.root_message_id = root.id
    refresh_open_flags(root, tree, settings)
    db.flush()
    return tree
