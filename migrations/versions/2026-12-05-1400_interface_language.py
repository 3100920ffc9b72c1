"""interface language: a user's setting for the language of the pages, apart from the
language they contribute in

Revision ID: f6a983e57d2c
Revises: 41f1b29d3013
Create Date: 2026-12-03 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f6a983e57d2c"
down_revision: str | None = "41f1b29d3013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("user", sa.Column("interface_language", sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column("user", "interface_language")
