"""adaptive growth: tree shape and redundancy parameters, review decision confidence,
settled sibling sets, volunteers' reliability records

Trees that exist keep the shape and the fixed redundancy they were created with.

Revision ID: d4cec9fee3f8
Revises: 245a32cd56ef
Create Date: 2026-12-03 08:20:24.113206
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d4cec9fee3f8"
down_revision: str | None = "245a32cd56ef"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "volunteer_reliability",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("reviews_settled", sa.Integer(), server_default="0", nullable=False),
        sa.Column("reviews_agreed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("messages_decided", sa.Integer(), server_default="0", nullable=False),
        sa.Column("messages_accepted", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "0 <= reviews_agreed AND reviews_agreed <= reviews_settled AND 0 <= messages_accepted AND messages_accepted <= messages_decided",
            name=op.f("ck_volunteer_reliability_counts"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_volunteer_reliability_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_volunteer_reliability")),
    )
    op.add_column("message", sa.Column("review_confidence", sa.Float(), nullable=True))
    op.add_column(
        "message",
        sa.Column("ranking_settled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.add_column("message", sa.Column("ranking_confidence", sa.Float(), nullable=True))
    op.add_column(
        "tree",
        sa.Column("growth_policy", sa.String(length=16), server_default="fixed", nullable=False),
    )
    op.add_column(
        "tree",
        sa.Column("min_reviews_per_message", sa.SmallInteger(), server_default="3", nullable=False),
    )
    op.add_column(
        "tree", sa.Column("review_confidence", sa.Float(), server_default="0.9", nullable=False)
    )
    op.add_column(
        "tree",
        sa.Column(
            "min_rankings_per_sibling_set", sa.SmallInteger(), server_default="3", nullable=False
        ),
    )
    op.add_column(
        "tree", sa.Column("ranking_confidence", sa.Float(), server_default="0.8", nullable=False)
    )
    op.add_column(
        "tree",
        sa.Column(
            "prompter_replies_per_assistant", sa.SmallInteger(), server_default="1", nullable=False
        ),
    )
    op.add_column(
        "tree",
        sa.Column("lonely_sibling_preference", sa.Float(), server_default="0", nullable=False),
    )
    # Trees created before keep what they were created with: every review and ranking the
    # fixed numbers asked for, and as many prompter replies as any parent could have.
    op.execute(
        "UPDATE tree SET min_reviews_per_message = reviews_per_message, "
        "min_rankings_per_sibling_set = rankings_per_sibling_set, "
        "prompter_replies_per_assistant = max_children"
    )
    op.execute(
        "UPDATE message m SET ranking_settled = true FROM tree t "
        "WHERE t.id = m.tree_id AND m.ranking_count >= t.rankings_per_sibling_set"
    )
    op.create_check_constraint(
        op.f("ck_tree_growth_policy"), "tree", "growth_policy IN ('fixed', 'adaptive')"
    )
    op.create_check_constraint(
        op.f("ck_tree_redundancy"),
        "tree",
        "0 < min_reviews_per_message AND min_reviews_per_message <= reviews_per_message "
        "AND 0 < min_rankings_per_sibling_set "
        "AND min_rankings_per_sibling_set <= rankings_per_sibling_set "
        "AND prompter_replies_per_assistant > 0",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_tree_redundancy"), "tree", type_="check")
    op.drop_constraint(op.f("ck_tree_growth_policy"), "tree", type_="check")
    op.drop_column("tree", "lonely_sibling_preference")
    op.drop_column("tree", "prompter_replies_per_assistant")
    op.drop_column("tree", "ranking_confidence")
    op.drop_column("tree", "min_rankings_per_sibling_set")
    op.drop_column("tree", "review_confidence")
    op.drop_column("tree", "min_reviews_per_message")
    op.drop_column("tree", "growth_policy")
    op.drop_column("message", "ranking_confidence")
    op.drop_column("message", "ranking_settled")
    op.drop_column("message", "review_confidence")
    op.drop_table("volunteer_reliability")
