"""suppressions: numbers of an account that must never get a sticker; campaigns count them

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 19:40:00

(0007 is written at the same time on another branch: the merge re-chains this one after it.)

The primary key (sid, phone) is the only index the lookups need: the enqueue's anti-join
and the claimed batch's probe both look numbers up by account and number.
`campaigns.suppressed_count` keeps how many recipients the enqueue dropped for being on it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "suppressions",
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sid", "phone", name="pk_suppressions"),
    )
    op.add_column(
        "campaigns",
        sa.Column("suppressed_count", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("suppressed_count")
    op.drop_table("suppressions")
