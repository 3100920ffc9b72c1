"""release job retries: the Celery job that makes a release and its attempts, so a job
delivered again after its worker died takes over its release row

Revision ID: b9d5750bcb73
Revises: 5003475a87f9
Create Date: 2026-12-05 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b9d5750bcb73"
down_revision: str | None = "5003475a87f9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("release", sa.Column("job_id", sa.String(length=64), nullable=True))
    op.add_column(
        "release", sa.Column("attempts", sa.SmallInteger(), server_default="1", nullable=False)
    )
    op.create_unique_constraint(op.f("uq_release_job_id"), "release", ["job_id"])


def downgrade() -> None:
    op.drop_constraint(op.f("uq_release_job_id"), "release", type_="unique")
    op.drop_column("release", "attempts")
    op.drop_column("release", "job_id")
