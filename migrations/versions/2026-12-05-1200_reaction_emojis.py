"""reaction emojis: heart, laugh and confused beside thumbs up and down (and red flags)

Revision ID: a68725146409
Revises: b9d5750bcb73
Create Date: 2026-12-03 13:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "a68725146409"
down_revision: str | None = "b9d5750bcb73"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KINDS = "kind IN ('thumbs_up', 'thumbs_down', 'red_flag')"
NEW_KINDS = "kind IN ('thumbs_up', 'thumbs_down', 'red_flag', 'heart', 'laugh', 'confused')"


def upgrade() -> None:
    op.drop_constraint(op.f("ck_reaction_kind"), "reaction", type_="check")
    op.create_check_constraint(op.f("ck_reaction_kind"), "reaction", NEW_KINDS)


def downgrade() -> None:
    # The kinds the older schema cannot hold go with it.
    op.execute("DELETE FROM reaction WHERE kind IN ('heart', 'laugh', 'confused')")
    op.drop_constraint(op.f("ck_reaction_kind"), "reaction", type_="check")
    op.create_check_constraint(op.f("ck_reaction_kind"), "reaction", OLD_KINDS)
