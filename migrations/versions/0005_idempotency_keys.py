"""idempotency_keys: a retried POST /campaigns (or send --idempotency-key) finds its campaign

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 21:05:00

The key is the primary key: two concurrent requests with one key cannot both insert it, so
one campaign is made. campaign_id is null while the first request is being stored.
request_sha256 hashes the canonical request, to tell a retry (same body) from a reuse of
the key for another campaign (a conflict).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", BigId, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name="fk_idempotency_keys_campaign_id_campaigns",
        ),
        sa.PrimaryKeyConstraint("key", name="pk_idempotency_keys"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
