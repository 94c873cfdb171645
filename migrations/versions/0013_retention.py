"""retention: a campaign's messages can be purged while its counts stay

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 11:40:00

`campaigns.messages_purged_at` is when a finished campaign's messages (and their attempts)
began to be deleted past the retention period (worker/purge.py). Its counts by status and
code in `campaign_counts` are what `status` and `report` show for ever after, so the counting
trigger on DELETE leaves alone the rows of a campaign being purged: it is marked first, in a
transaction of its own, and its messages go after, in batches. Any other delete (an erased
number, a deleted campaign) still takes its rows off the counts. `purge_totals` keeps what
the report shows beyond those counts (sent, delivered, read, the first and last send).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = ("messages", "attempts", "attempted", "retries_waiting")
_SUMS = (
    "sum(-1)",
    "sum(-1 * d.attempts)",
    "sum(CASE WHEN d.attempts > 0 THEN -1 ELSE 0 END)",
    "sum(CASE WHEN d.next_attempt_at IS NOT NULL THEN -1 ELSE 0 END)",
)
_UPSERT = "ON CONFLICT (campaign_id, status, code, backend) DO UPDATE SET " + ", ".join(
    f"{c} = campaign_counts.{c} + excluded.{c}" for c in COUNTS
)
_PURGING = (
    "SELECT 1 FROM campaigns c WHERE c.id = {m}.campaign_id AND c.messages_purged_at IS NOT NULL"
)


def _pg_deleted(kept_when_purged: bool) -> str:
    rows = "old_rows"
    if kept_when_purged:
        rows = f"(SELECT * FROM old_rows o WHERE NOT EXISTS ({_PURGING.format(m='o')}))"
    return f"""
CREATE OR REPLACE FUNCTION stickerq_count_deleted_messages() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO campaign_counts AS campaign_counts
        (campaign_id, status, code, backend, {", ".join(COUNTS)})
    SELECT d.campaign_id, d.status, coalesce(d.last_error_code, ''), pg_backend_pid(),
        {", ".join(_SUMS)}
    FROM {rows} AS d
    GROUP BY d.campaign_id, d.status, coalesce(d.last_error_code, '')
    HAVING {" OR ".join(f"{total} <> 0" for total in _SUMS)}
    {_UPSERT};
    RETURN NULL;
END
$$"""


def _sqlite_deleted(kept_when_purged: bool) -> str:
    counts = (
        "-1, -1 * old.attempts, CASE WHEN old.attempts > 0 THEN -1 ELSE 0 END, "
        "CASE WHEN old.next_attempt_at IS NOT NULL THEN -1 ELSE 0 END"
    )
    when = f"WHEN NOT EXISTS ({_PURGING.format(m='old')}) " if kept_when_purged else ""
    return (
        f"CREATE TRIGGER stickerq_count_deleted_messages AFTER DELETE ON messages {when}"
        f"BEGIN INSERT INTO campaign_counts (campaign_id, status, code, backend, "
        f"{', '.join(COUNTS)}) SELECT old.campaign_id, old.status, "
        f"coalesce(old.last_error_code, ''), 0, {counts} WHERE true {_UPSERT}; END"
    )


def _count_deletes(kept_when_purged: bool) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_pg_deleted(kept_when_purged))
    else:
        op.execute("DROP TRIGGER IF EXISTS stickerq_count_deleted_messages")
        op.execute(_sqlite_deleted(kept_when_purged))


def upgrade() -> None:
    op.add_column(
        "campaigns", sa.Column("messages_purged_at", sa.DateTime(timezone=True), nullable=True)
    )
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "purge_totals",
        sa.Column("campaign_id", big_id, nullable=False),
        sa.Column("sent", sa.BigInteger(), nullable=False),
        sa.Column("delivered", sa.BigInteger(), nullable=False),
        sa.Column("read", sa.BigInteger(), nullable=False),
        sa.Column("first_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_purge_totals_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_purge_totals")),
    )
    _count_deletes(kept_when_purged=True)


def downgrade() -> None:
    _count_deletes(kept_when_purged=False)
    op.drop_table("purge_totals")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("messages_purged_at")
