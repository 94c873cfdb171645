"""per-row senders: a recipients CSV's `from` column

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 21:40:00

messages.sender is the business number a row is sent from when it is not the campaign's
(null: the campaign's sender, so campaigns without a `from` column store nothing more).
campaign_senders lists each campaign's per-row numbers: resuming a sender finds its campaigns
there. campaigns.senders_per_row tells the worker to group a batch by sender.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # add_column, not batch mode: SQLite adds a nullable column in place, keeping the counting
    # triggers of 0003 that a table rebuild would drop; PostgreSQL rewrites nothing.
    op.add_column("messages", sa.Column("sender", sa.String(length=20), nullable=True))
    op.add_column(
        "campaigns",
        sa.Column("senders_per_row", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "campaign_senders",
        sa.Column(
            "campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("sender", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name="fk_campaign_senders_campaign_id_campaigns",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "sender", name="pk_campaign_senders"),
    )
    op.create_index("ix_campaign_senders_sender", "campaign_senders", ["sender"])


def downgrade() -> None:
    op.drop_index("ix_campaign_senders_sender", table_name="campaign_senders")
    op.drop_table("campaign_senders")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("senders_per_row")
    # Plain SQL on both: SQLite (3.35+) drops a column in place, keeping the triggers.
    op.execute("ALTER TABLE messages DROP COLUMN sender")
