"""campaign validity: a deadline after which unsent messages expire (`send --valid-for`)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 19:50:00

The deadline is kept per campaign (each recurring run is a campaign of its own), not per
message: `valid_until` is the moment, `valid_for_seconds` what each run counts from its
start. The index on (status, valid_until) lets the periodic expiry find the live campaigns
past their deadline without reading the others. Expired messages need no schema change: the
counting triggers of 0003 count any status.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("valid_for_seconds", sa.Integer(), nullable=True))
    op.add_column("campaigns", sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_campaigns_status_valid_until", "campaigns", ["status", "valid_until"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_campaigns_status_valid_until", table_name="campaigns")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("valid_until")
        batch_op.drop_column("valid_for_seconds")
