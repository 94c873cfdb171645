"""Streaming a campaign's message rows into the database inside the caller's transaction.

Rows come in file order; a recipient met again is dropped, the first row winning, by the
unique (campaign, recipient) index, so nothing but the current chunk is held in memory.
PostgreSQL takes them through COPY into a temporary table, then one INSERT ... SELECT:
the server reads the stream while the producer is still validating the rest of the file,
and no per-row statement is bound. SQLite takes executemany inserts in chunks.

Recipients on the account's suppression list are dropped on the way (counted once per
number): on PostgreSQL one DELETE ... USING suppressions from the staged rows before the
INSERT ... SELECT (a hash join with the account's list, ~1 s at a million numbers); on SQLite
one lookup on the list's primary key per chunk.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import column, literal, select, table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from stickerq.models import Message, Suppression
from stickerq.queue import chunks

# (recipient, ref, ref1, ref2, sender): sender None is the campaign's
MessageRow = tuple[str, str | None, str | None, str | None, str | None]

INSERT_CHUNK = 5_000
_COLUMNS = ("recipient", "ref", "ref1", "ref2", "sender")
_STAGE = "stickerq_incoming_messages"
_CREATE_STAGE = (
    "CREATE TEMPORARY TABLE stickerq_incoming_messages "
    "(seq bigint, recipient text, ref text, ref1 text, ref2 text, sender text) ON COMMIT DROP"
)
_COPY_TO_STAGE = (
    "COPY stickerq_incoming_messages (seq, recipient, ref, ref1, ref2, sender) FROM STDIN"
)
# The staged rows of suppressed numbers go, counted once per number.
_DROP_SUPPRESSED = (
    "WITH dropped AS (DELETE FROM stickerq_incoming_messages AS incoming USING suppressions "
    "WHERE suppressions.sid = :sid AND suppressions.phone = incoming.recipient "
    "RETURNING incoming.recipient) SELECT count(DISTINCT recipient) FROM dropped"
)
# The INSERT ... SELECT sorts the staged rows into file order: in memory, not on disk.
_SORT_IN_MEMORY = "SET LOCAL work_mem = '256MB'"


def insert_messages(
    session: Session, campaign_id: int, rows: Iterable[MessageRow], sid: str
) -> int:
    """Store the rows whose recipient is not suppressed on `sid`; returns the suppressed
    numbers dropped."""
    if session.get_bind().dialect.name == "postgresql":
        return _copy_then_insert(session, campaign_id, rows, sid)
    return _insert_in_chunks(session, campaign_id, rows, sid)


def _copy_then_insert(
    session: Session, campaign_id: int, rows: Iterable[MessageRow], sid: str
) -> int:
    session.execute(text(_CREATE_STAGE))
    driver_connection = session.connection().connection.driver_connection
    assert driver_connection is not None  # a pooled psycopg connection, checked out
    with driver_connection.cursor() as cursor, cursor.copy(_COPY_TO_STAGE) as copy:
        for seq, row in enumerate(rows):
            copy.write_row((seq, *row))
    session.execute(text(_SORT_IN_MEMORY))  # and the suppression list's hash, below
    suppressed = int(session.execute(text(_DROP_SUPPRESSED), {"sid": sid}).scalar_one())
    stage = table(_STAGE, column("seq"), *(column(name) for name in _COLUMNS))
    in_file_order = select(literal(campaign_id), *(stage.c[name] for name in _COLUMNS)).order_by(
        stage.c.seq
    )
    session.execute(
        postgresql.insert(Message)
        .from_select(["campaign_id", *_COLUMNS], in_file_order)
        .on_conflict_do_nothing(index_elements=["campaign_id", "recipient"])
    )
    return suppressed


def _insert_in_chunks(
    session: Session, campaign_id: int, rows: Iterable[MessageRow], sid: str
) -> int:
    insert_new = sqlite.insert(Message).on_conflict_do_nothing(
        index_elements=["campaign_id", "recipient"]
    )
    suppressed: set[str] = set()  # only the numbers found on the list
    for chunk in chunks(rows, INSERT_CHUNK):
        found = set(
            session.scalars(
                select(Suppression.phone).where(
                    Suppression.sid == sid, Suppression.phone.in_({row[0] for row in chunk})
                )
            )
        )
        suppressed |= found
        params = [
            {"campaign_id": campaign_id, **dict(zip(_COLUMNS, row, strict=True))}
            for row in chunk
            if row[0] not in found
        ]
        if params:
            session.execute(insert_new, params)
    return len(suppressed)
