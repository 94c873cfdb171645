"""sender_rates: a sender number's own rate, shared by every worker

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 20:15:00

A number without a row sends at STICKERQ_RATE_PER_SECOND; claims read the row by primary key.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sender_rates",
        sa.Column("sender", sa.String(length=20), nullable=False),
        sa.Column("rate_per_second", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sender", name="pk_sender_rates"),
    )


def downgrade() -> None:
    op.drop_table("sender_rates")
