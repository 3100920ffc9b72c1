"""tree visits: who saw a tree in the viewer, up to which message (red flags count toward
automatic deletion only from volunteers who were shown the message)

Revision ID: 5003475a87f9
Revises: d4cec9fee3f8
Create Date: 2026-12-05 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5003475a87f9"
down_revision: str | None = "d4cec9fee3f8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tree_visit",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("tree_id", sa.BigInteger(), nullable=False),
        sa.Column("newest_message_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tree_id"], ["tree.id"], name=op.f("fk_tree_visit_tree_id_tree"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_tree_visit_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "tree_id", name=op.f("pk_tree_visit")),
    )


def downgrade() -> None:
    op.drop_table("tree_visit")
