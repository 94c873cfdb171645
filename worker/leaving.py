"""The database's evidence of what may have left, written before it leaves.

Redis keeps each claim's record of sends (worker/inflight.py), but a host that dies with its
Redis takes that record along, and the sweeper would then have to call every message of the
claim `unknown`. So before a message's first request under a claim leaves, the database gets
the claim's token in `messages.leaving_claim_token` too (`record_leaving`). With the
Redis record lost, the sweeper makes `unknown` only the messages so marked: the ones holding
one of the process's in-flight slots at the fault, or answered and not yet written.

Marks of every batch of the process are gathered for GATHER_SECONDS (and while the previous
write runs) and written in a thread of their own, while the requests wait for their tokens:
a mark costs a fraction of a statement, and a request waits for it only when its token came
sooner. On PostgreSQL that thread keeps a psycopg connection of its own in autocommit: each
claim's marks are one statement, atomic by itself, and through SQLAlchemy (a pooled
connection, BEGIN and COMMIT) the same statement cost the worker 2-3 x the CPU.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import psycopg
from sqlalchemy import ColumnElement, Engine, Table, Update, bindparam, update
from sqlalchemy.engine import Connection

from stickerq.db import connect_psycopg, one_of
from stickerq.models import Message
from stickerq.states import MessageStatus
from stickerq.worker.locked_rows import locked
from stickerq.worker.outages import until_database_is_back

log = logging.getLogger(__name__)

GATHER_SECONDS = 0.002

# Runs blocking work in the leaving thread.
InThread = Callable[..., Awaitable[Any]]
# token -> the message pks asked for; back: token -> the pks whose claim is still ours
Marks = dict[str, list[int]]
Ours = dict[str, set[int]]


_table = cast(Table, Message.__table__)


def _leaving_statement(rows: ColumnElement[bool]) -> Update:
    batch = locked(rows)
    return (
        update(_table)
        .where(
            _table.c.id == batch.c.id,
            batch.c.claim_token == bindparam("token"),
            batch.c.status == MessageStatus.SENDING,
        )
        .values(leaving_claim_token=bindparam("token"))
        .returning(_table.c.id)
    )


# One text for any number of messages on PostgreSQL (an array), so psycopg prepares it once.
RECORD_LEAVING_PG = _leaving_statement(one_of(_table.c.id, "postgresql"))
_record_leaving = _leaving_statement(one_of(_table.c.id, "sqlite"))


def record_leaving(connection: Connection, token: str, message_pks: Sequence[int]) -> set[int]:
    """Before their first request under this claim leaves: the database's evidence that these
    messages may have left. Returns the ones still ours to send; a sweeper that took the claim
    for dead has already settled the others, which must not be sent (the row lock orders the
    two: whichever writes first, the other sees it). On a Connection, not a Session: it runs
    hundreds of times a second, and the ORM's session would cost more than the statement."""
    statement = RECORD_LEAVING_PG if connection.dialect.name == "postgresql" else _record_leaving
    rows = connection.execute(statement, {"pks": list(message_pks), "token": token})
    return set(rows.scalars())


class LeavingRecord:
    def __init__(self, engine: Engine, in_thread: InThread) -> None:
        self.marks = MarkWriter(engine)
        self.in_thread = in_thread
        self._asked: defaultdict[str, dict[int, asyncio.Future[bool]]] = defaultdict(dict)
        self._writer: asyncio.Task[None] | None = None

    def may_leave(self, token: str, message_pk: int) -> asyncio.Future[bool]:
        """Record that this message may leave under this claim: the future is False when
        the claim is no longer ours (a sweeper settled it), and the message must not be
        sent. Cancelling it withdraws the request if it is not written yet."""
        asked = self._asked[token].get(message_pk)
        if asked is None:
            asked = self._asked[token][message_pk] = asyncio.get_running_loop().create_future()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_while_asked())
        return asked

    async def _write_while_asked(self) -> None:
        while self._asked:
            await asyncio.sleep(GATHER_SECONDS)
            asked, self._asked = self._asked, defaultdict(dict)
            wanted = {  # less what was withdrawn meanwhile
                token: pks
                for token, futures in asked.items()
                if (pks := [pk for pk, future in futures.items() if not future.done()])
            }
            try:
                ours = await self.in_thread(self.marks.write, wanted)
            except Exception as exc:
                for futures in asked.values():
                    for future in futures.values():
                        if not future.done():  # cancelled: its request stopped first
                            future.set_exception(exc)
                continue
            for token, futures in asked.items():
                for pk, future in futures.items():
                    if not future.done():
                        future.set_result(pk in ours.get(token, ()))

    def close(self) -> None:
        self.marks.close()


class MarkWriter:
    """Writes marks; used from one thread only (the runtime's leaving thread)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        statement = RECORD_LEAVING_PG.compile(dialect=engine.dialect)
        self._sql = str(statement)
        # the statement's own constants (the `sending` status it checks)
        self._constants = {
            name: value for name, value in statement.params.items() if name not in ("token", "pks")
        }
        self._connection: psycopg.Connection[Any] | None = None

    @until_database_is_back
    def write(self, wanted: Marks) -> Ours:
        if not self._postgres:  # SQLite: one transaction, our BEGIN IMMEDIATE (stickerq.db)
            with self.engine.begin() as connection:
                return {
                    token: record_leaving(connection, token, pks) for token, pks in wanted.items()
                }
        try:
            return self._write_postgres(wanted)
        except psycopg.OperationalError:
            self.close()  # the next try connects again
            raise

    def _write_postgres(self, wanted: Marks) -> Ours:
        if self._connection is None:
            self._connection = connect_psycopg(self.engine.url, autocommit=True)
        ours: Ours = {}
        with self._connection.cursor() as cursor:
            for token, pks in wanted.items():
                # Not prepared: prepared (psycopg does so from the 5th run), it cost PostgreSQL
                # 0.53-0.78 ms per message in bench/throughput.py against 0.11-0.21
                # unprepared: the connection kept a generic plan made while `messages` was
                # small, a Seq Scan of the whole table for every mark (auto_explain).
                cursor.execute(
                    self._sql, {**self._constants, "token": token, "pks": pks}, prepare=False
                )
                ours[token] = {row[0] for row in cursor}
        return ours

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
