"""The tree viewer: a tree's messages nested, with the path to one message marked.

Volunteers see only messages that are not deleted (a deleted message hides its whole
subtree); moderators see everything, deleted messages marked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from hedgerow.errors import NotFound
from hedgerow.growth import service as growth
from hedgerow.i18n import gettext as _
from hedgerow.models import Role, Tree, TreeState, User
from hedgerow.reactions import service as reactions
from hedgerow.reactions.service import ReactionBar
from hedgerow.trees import queries


@dataclass
class TreeNode:
    id: int
    parent_id: int | None
    role: str
    text: str
    depth: int
    review_state: str
    consensus_rank: int | None
    deleted: bool
    edited: bool
    synthetic: bool
    created_at: datetime
    author_name: str
    by_viewer: bool
    on_path: bool = False
    selected: bool = False
    children: list[TreeNode] = field(default_factory=list)

    @property
    def descendant_count(self) -> int:
        return sum(1 + child.descendant_count for child in self.children)


@dataclass
class TreeView:
    tree: Tree
    root: TreeNode | None
    # Messages not deleted: what the tree holds. Moderators also see the deleted ones,
    # counted apart.
    message_count: int
    deleted_count: int
    selected_id: int | None
    viewer_is_moderator: bool
    reaction_bars: dict[int, ReactionBar]


def _rank_order(node: TreeNode) -> tuple[int, int]:
    # Ranked siblings first, best first (consensus rank 0 is the best); unranked ones
    # after, oldest first.
    return (node.consensus_rank if node.consensus_rank is not None else 10_000, node.id)


def view_tree(db: Session, viewer: User, tree_id: int, selected_id: int | None = None) -> TreeView:
    tree = queries.get_tree(db, tree_id)
    is_moderator = viewer.has_role(Role.moderator)
    # A halted tree is the moderators' business: to anyone else it does not exist, with
    # the same answer as a missing one.
    if tree is None or (tree.state == TreeState.halted and not is_moderator):
        raise NotFound(_("There is no tree with that id."))
    rows = queries.tree_messages(db, tree_id, include_deleted=is_moderator)
    nodes: dict[int, TreeNode] = {}
    root: TreeNode | None = None
    for row in rows:
        node = TreeNode(
            id=row.id,
            parent_id=row.parent_id,
            role=row.role,
            text=row.text,
            depth=row.depth,
            review_state=row.review_state,
            consensus_rank=row.consensus_rank,
            deleted=row.deleted,
            edited=row.edited,
            synthetic=row.synthetic,
            created_at=row.created_at,
            author_name=row.author_name,
            by_viewer=row.author_id == viewer.id,
        )
        if row.parent_id is None:
            root = node
            nodes[node.id] = node
        elif row.parent_id in nodes:
            # Rows come parents first, so a missing parent means a hidden (deleted) one:
            # its replies stay hidden with it.
            nodes[row.parent_id].children.append(node)
            nodes[node.id] = node
    if nodes:
        # What the viewer was shown: the evidence that lets their red flags count.
        growth.record_tree_visit(db, viewer.id, tree_id, max(nodes))
    for node in nodes.values():
        node.children.sort(key=_rank_order)
    if selected_id is not None and selected_id in nodes:
        nodes[selected_id].selected = True
        current: int | None = selected_id
        while current is not None:
            nodes[current].on_path = True
            current = nodes[current].parent_id
    else:
        selected_id = None
    return TreeView(
        tree=tree,
        reaction_bars=_reaction_bars(db, viewer, tree, nodes),
        root=root,
        message_count=sum(1 for node in nodes.values() if not node.deleted),
        deleted_count=sum(1 for node in nodes.values() if node.deleted),
        selected_id=selected_id,
        viewer_is_moderator=is_moderator,
    )


def _reaction_bars(
    db: Session, viewer: User, tree: Tree, nodes: dict[int, TreeNode]
) -> dict[int, ReactionBar]:
    shown = [node for node in nodes.values() if not node.deleted]
    # In a halted tree (which only moderators see) nobody reacts.
    reactable = [] if tree.state == TreeState.halted else shown
    return reactions.bars_for(
        db,
        viewer,
        [node.id for node in shown],
        reactable=[node.id for node in reactable if not node.by_viewer],
    )


def my_messages(db: Session, user: User, *, page: int, page_size: int) -> tuple[list, bool]:
    """One page of the user's messages and whether an older page exists."""
    rows = queries.messages_by_author(
        db, user.id, limit=page_size + 1, offset=(page - 1) * page_size
    )
    return rows[:page_size], len(rows) > page_size
