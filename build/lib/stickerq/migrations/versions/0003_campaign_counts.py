"""campaign counters kept by triggers; partial indexes for due retries and open claims

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 01:20:00

Progress reads `campaign_counts` instead of counting a campaign's messages. Triggers keep it
in the same transaction as every change to `messages` (insert, update, delete, whatever
statement makes it), so it is exact after redeliveries, requeues, sweeps and crashes alike.

On PostgreSQL the triggers run once per statement (transition tables), and each backend
keeps rows of its own (`backend` = pg_backend_pid()): a backend runs one transaction at a
time, so writers never wait on each other's counter rows, and readers add the rows up. On
SQLite (one writer at a time) they run per row, into backend 0.

`ix_messages_status_next_attempt_at` goes: with stale statistics the planner took it for a
claim (`status = 'pending'`) and read every pending row in the table. The two partial
indexes that replace it serve only the statements that name their predicate (due retries,
the sweeper's open claims), so a claim or a result write can use nothing but the primary key.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = ("messages", "attempts", "attempted", "retries_waiting")
RETRY_DUE = "status = 'pending' AND next_attempt_at IS NOT NULL"
OPEN_CLAIM = "status = 'sending'"

# One message row as the counts it adds, in SQL over a row alias (`m`) and a sign.
_ROW_COUNTS = (
    "{sign}",
    "{sign} * {m}.attempts",
    "CASE WHEN {m}.attempts > 0 THEN {sign} ELSE 0 END",
    "CASE WHEN {m}.next_attempt_at IS NOT NULL THEN {sign} ELSE 0 END",
)
_ADD_EXCLUDED = ", ".join(f"{c} = campaign_counts.{c} + excluded.{c}" for c in COUNTS)
_UPSERT = "ON CONFLICT (campaign_id, status, code, backend) DO UPDATE SET " + _ADD_EXCLUDED

# --------------------------------------------------------------------------- PostgreSQL

_PG_DELTAS = {
    "INSERT": "SELECT *, 1 AS sign FROM new_rows",
    "UPDATE": "SELECT *, 1 AS sign FROM new_rows UNION ALL SELECT *, -1 FROM old_rows",
    "DELETE": "SELECT *, -1 AS sign FROM old_rows",
}
_PG_REFERENCING = {
    "INSERT": "REFERENCING NEW TABLE AS new_rows",
    "UPDATE": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "DELETE": "REFERENCING OLD TABLE AS old_rows",
}


def _pg_name(operation: str) -> str:
    """stickerq_count_inserted_messages, ..._updated_..., ..._deleted_... (as on SQLite)."""
    return f"stickerq_count_{operation.lower().removesuffix('e')}ed_messages"


def _pg_function(operation: str) -> str:
    sums = [f"sum({expr.format(sign='d.sign', m='d')})" for expr in _ROW_COUNTS]
    return f"""
CREATE FUNCTION {_pg_name(operation)}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO campaign_counts AS campaign_counts
        (campaign_id, status, code, backend, {", ".join(COUNTS)})
    SELECT d.campaign_id, d.status, coalesce(d.last_error_code, ''), pg_backend_pid(),
        {", ".join(sums)}
    FROM ({_PG_DELTAS[operation]}) AS d
    GROUP BY d.campaign_id, d.status, coalesce(d.last_error_code, '')
    HAVING {" OR ".join(f"{total} <> 0" for total in sums)}
    {_UPSERT};
    RETURN NULL;
END
$$"""


def _pg_upgrade() -> None:
    for operation in _PG_DELTAS:
        name = _pg_name(operation)
        op.execute(_pg_function(operation))
        op.execute(
            f"CREATE TRIGGER {name} AFTER {operation} ON messages "
            f"{_PG_REFERENCING[operation]} FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )


def _pg_downgrade() -> None:
    for operation in _PG_DELTAS:
        name = _pg_name(operation)
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON messages")
        op.execute(f"DROP FUNCTION IF EXISTS {name}()")


# --------------------------------------------------------------------------- SQLite


def _sqlite_add(m: str, sign: str) -> str:
    counts = ", ".join(expr.format(sign=sign, m=m) for expr in _ROW_COUNTS)
    # (WHERE true: SQLite's parser needs it between a SELECT and its ON CONFLICT.)
    return (
        f"INSERT INTO campaign_counts (campaign_id, status, code, backend, {', '.join(COUNTS)}) "
        f"SELECT {m}.campaign_id, {m}.status, coalesce({m}.last_error_code, ''), 0, {counts} "
        f"WHERE true {_UPSERT};"
    )


_SQLITE_CHANGED = (
    "old.campaign_id IS NOT new.campaign_id OR old.status IS NOT new.status "
    "OR old.last_error_code IS NOT new.last_error_code OR old.attempts IS NOT new.attempts "
    "OR (old.next_attempt_at IS NULL) IS NOT (new.next_attempt_at IS NULL)"
)
_SQLITE_TRIGGERS = {
    "stickerq_count_inserted_messages": ("AFTER INSERT", "", _sqlite_add("new", "1")),
    "stickerq_count_updated_messages": (
        "AFTER UPDATE",
        f"WHEN {_SQLITE_CHANGED}",
        _sqlite_add("old", "-1") + " " + _sqlite_add("new", "1"),
    ),
    "stickerq_count_deleted_messages": ("AFTER DELETE", "", _sqlite_add("old", "-1")),
}


def _sqlite_upgrade() -> None:
    for name, (when, condition, body) in _SQLITE_TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {when} ON messages {condition} BEGIN {body} END")


def _sqlite_downgrade() -> None:
    for name in _SQLITE_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")


# --------------------------------------------------------------------------- both


def upgrade() -> None:
    # Indexes first: SQLite's batch mode may rebuild the table, which would drop its triggers.
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_status_next_attempt_at")
        batch_op.create_index(
            "ix_messages_retry_due",
            ["next_attempt_at"],
            unique=False,
            postgresql_where=sa.text(RETRY_DUE),
            sqlite_where=sa.text(RETRY_DUE),
        )
        batch_op.create_index(
            "ix_messages_open_claims",
            ["claimed_at"],
            unique=False,
            postgresql_where=sa.text(OPEN_CLAIM),
            sqlite_where=sa.text(OPEN_CLAIM),
        )

    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "campaign_counts",
        sa.Column("campaign_id", big_id, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("backend", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in COUNTS),
        # No foreign key: checking it would take a KEY SHARE lock on the campaign's row in
        # every transaction that writes results, and two such transactions that then lock
        # the row (a WA400 streak) would deadlock. A deleted campaign's counts go to zero
        # with its messages.
        sa.PrimaryKeyConstraint(
            "campaign_id", "status", "code", "backend", name=op.f("pk_campaign_counts")
        ),
    )
    sums = ", ".join(f"sum({expr.format(sign='1', m='m')})" for expr in _ROW_COUNTS)
    op.execute(
        f"INSERT INTO campaign_counts (campaign_id, status, code, backend, {', '.join(COUNTS)}) "
        f"SELECT m.campaign_id, m.status, coalesce(m.last_error_code, ''), 0, {sums} "
        "FROM messages m GROUP BY m.campaign_id, m.status, coalesce(m.last_error_code, '')"
    )
    if op.get_bind().dialect.name == "postgresql":
        _pg_upgrade()
    else:
        _sqlite_upgrade()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _pg_downgrade()
    else:
        _sqlite_downgrade()
    op.drop_table("campaign_counts")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_open_claims")
        batch_op.drop_index("ix_messages_retry_due")
        batch_op.create_index(
            "ix_messages_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )
