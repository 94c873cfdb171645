"""window ledger: when each customer last wrote to each business number; in-window campaigns

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 17:30:00

Issue 25 ("Window-aware campaigns"). `customer_windows` keeps one row per (business number,
customer): the time and type of the customer's last incoming message (never its content),
and when a 131047 status callback said the window was shut. Its primary key is the claim's
lookup (worker/window_check.py); (sender, last_inbound_at) serves `send --to-window` and
`window stats`. `campaigns.in_window` marks a campaign sent only inside open windows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_windows",
        sa.Column("sender", sa.String(length=20), nullable=False),
        sa.Column("customer", sa.String(length=20), nullable=False),
        sa.Column("last_inbound_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_type", sa.String(length=32), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("sender", "customer", name=op.f("pk_customer_windows")),
    )
    op.create_index(
        "ix_customer_windows_sender_last_inbound_at",
        "customer_windows",
        ["sender", "last_inbound_at"],
    )
    # a plain ADD COLUMN: a batch copy of `campaigns` on SQLite would break the triggers
    # that name it
    op.add_column(
        "campaigns",
        sa.Column("in_window", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    op.execute("ALTER TABLE campaigns DROP COLUMN in_window")  # SQLite 3.35+ and PostgreSQL
    op.drop_index("ix_customer_windows_sender_last_inbound_at", table_name="customer_windows")
    op.drop_table("customer_windows")
