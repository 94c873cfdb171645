"""Where a batch's claimed messages end: the outcome of each, and its attempts, written in
bulk (two statements per flush), only where the claim is still the batch's own. A WA202
send is kept on its message's row, without an `attempts` row (stickerq/sending_attempts.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    CTE,
    REAL,
    BigInteger,
    DateTime,
    Float,
    Insert,
    Integer,
    String,
    Table,
    Update,
    any_,
    bindparam,
    case,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import Grouping
from sqlalchemy.types import Text, TypeEngine

from stickerq.message_status import MessageMove, may_end_in, move_messages
from stickerq.models import Attempt, Message
from stickerq.sending_attempts import kept_on_row
from stickerq.states import MessageStatus
from stickerq.worker.locked_rows import claimed_by, locked


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    number: int
    started_at: datetime
    latency_ms: float | None
    http_status: int | None
    code: str | None
    action: str
    detail: str | None


@dataclass(slots=True)
class MessageResult:
    """Where one claimed message ends after this batch, and the attempts that got it there."""

    pk: int
    status: MessageStatus
    attempts: list[AttemptRecord]
    total_attempts: int
    delayed_retries: int
    message_id: str | None = None
    code: str | None = None
    http_status: int | None = None
    detail: str | None = None
    next_attempt_at: datetime | None = None


_table = cast(Table, Message.__table__)
# Each result's parameter, the message column it sets, and its type in an array.
_RESULT_COLUMNS: dict[str, tuple[str, TypeEngine[Any]]] = {
    "pk": ("id", BigInteger()),
    "status": ("status", String()),
    "total_attempts": ("attempts", Integer()),
    "delayed_retries": ("delayed_retries", Integer()),
    "message_id": ("message_id", String()),
    "code": ("last_error_code", String()),
    "http_status": ("last_http_status", Integer()),
    "detail": ("last_error_detail", String()),
    "next_attempt_at": ("next_attempt_at", DateTime(timezone=True)),
    "last_attempt_at": ("last_attempt_at", DateTime(timezone=True)),
    "sent_at": ("sent_at", DateTime(timezone=True)),
    "sent_latency_ms": ("sent_latency_ms", REAL()),
}
# What the result write set before the storage cuts of 0015 and 0021 (bench/storage.py).
_SET_BEFORE_CUTS = [name for name in _RESULT_COLUMNS if name not in ("pk", "sent_latency_ms")]


def _write_statement(ours: CTE, values: dict[str, Any], before_cuts: bool = False) -> Update:
    """Each locked row (`ours`) still under the claim gets `values`."""
    status, others = values["status"], {k: v for k, v in values.items() if k != "status"}
    if not before_cuts:
        # A message the result takes out of its claim keeps no token (66 bytes a row, for
        # ever): only `unknown` may still be settled under it (the sweeper's guess, then the
        # worker's word), as RELEASE, REQUEUE and SUPPRESS already clear it.
        still_claimed = literal_column(f"'{MessageStatus.UNKNOWN.value}'") == status
        for column in ("claim_token", "leaving_claim_token"):
            others[column] = case((still_claimed, _table.c[column]), else_=null())
        # Nor the claim's time once an attempt's time replaces it (what `failures --since`
        # reads; 8 bytes on PostgreSQL, 26 on SQLite).
        no_attempt = values["last_attempt_at"].is_(None)
        others["claimed_at"] = case((or_(still_claimed, no_attempt), _table.c.claimed_at))
    return move_messages(
        MessageMove.RECORD,
        _table.c.id == ours.c.id,
        claimed_by(ours, bindparam("token")),
        rows=ours,
        to=status,
        **others,
    )


def write_statements(before_cuts: bool = False) -> tuple[Update, Update]:
    """The result write for SQLite (one UPDATE per result, executemany: it has no arrays; it
    writes in-process anyway) and for PostgreSQL (one UPDATE for the whole flush, so the
    counting trigger, once per statement, runs once per flush).
    `before_cuts`: the write as it was before 0015 and 0021 (bench/storage.py)."""
    names = _SET_BEFORE_CUTS if before_cuts else [n for n in _RESULT_COLUMNS if n != "pk"]
    sqlite_write = _write_statement(
        locked(_table.c.id == bindparam("pk")),
        {_RESULT_COLUMNS[name][0]: bindparam(name) for name in names},
        before_cuts,
    )
    # PostgreSQL: one array per column, each row's values found by its place in the arrays.
    # Not a join with unnest(arrays): planned as a nested loop that ran the unnest again for
    # every row (a 100-row flush compared 10,000 pairs: 4 of its 6 ms, auto_explain).
    pks = bindparam("pk", type_=ARRAY(BigInteger()))
    ours = locked(_table.c.id == any_(pks), func.array_position(pks, _table.c.id).label("place"))
    postgres_write = _write_statement(
        ours, {_RESULT_COLUMNS[name][0]: _array(name)[ours.c.place] for name in names}, before_cuts
    )
    return sqlite_write, postgres_write


def _array(name: str) -> Grouping[Any]:
    """The flush's array of one result column, in parentheses so that it can be indexed."""
    return Grouping(bindparam(name, type_=ARRAY(_RESULT_COLUMNS[name][1])))


_write_result, _write_results_pg = write_statements()
_BEFORE_CUTS = write_statements(before_cuts=True)

_attempts = cast(Table, Attempt.__table__)
# Each attempt's column and its type in an array.
_ATTEMPT_COLUMNS: dict[str, TypeEngine[Any]] = {
    "message_pk": BigInteger(),
    "number": Integer(),
    "started_at": DateTime(timezone=True),
    "latency_ms": Float(),
    "http_status": Integer(),
    "code": String(),
    "action": String(),
    "detail": Text(),
}


def _insert_attempts_statement() -> Insert:
    """PostgreSQL: a flush's attempts in one INSERT ... SELECT FROM unnest(one array per
    column), one text for any number of rows; the ORM's bulk insert built them row by row
    (4 % of a worker's CPU, py-spy)."""
    rows = (
        func.unnest(
            *(bindparam(name, type_=ARRAY(kind)) for name, kind in _ATTEMPT_COLUMNS.items())
        )
        .table_valued(*_ATTEMPT_COLUMNS)
        .render_derived(name="attempt")
    )
    return insert(_attempts).from_select(list(_ATTEMPT_COLUMNS), select(*rows.c))


_insert_attempts_pg = _insert_attempts_statement()


def write_results(
    session: Session, token: str, results: Sequence[MessageResult], before_cuts: bool = False
) -> None:
    """All of a batch's outcomes and attempts in two statements. `before_cuts`: as the
    code before 0015 and 0021 wrote them (bench/storage.py)."""
    if not results:
        return
    for result in results:
        if not may_end_in(MessageMove.RECORD, result.status):
            raise ValueError(f"a result cannot leave message {result.pk} {result.status}")
    write_sqlite, write_pg = _BEFORE_CUTS if before_cuts else (_write_result, _write_results_pg)
    rows = [_result_params(r) for r in results]
    if before_cuts:  # an UPDATE sets any parameter that names a column, and 0014 had none
        for row in rows:
            del row["sent_latency_ms"]
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        arrays = {name: [row[name] for row in rows] for name in rows[0]}
        connection.execute(write_pg, {**arrays, "token": token})
    else:
        connection.execute(write_sqlite, [{**row, "token": token} for row in rows])
    attempt_rows = [
        {"message_pk": r.pk, **_attempt_params(a)}
        for r in results
        for a in r.attempts
        if before_cuts or not (r.status is MessageStatus.SENT and kept_on_row(a))
    ]
    if not attempt_rows:
        return
    if connection.dialect.name == "postgresql":
        columns = {name: [row[name] for row in attempt_rows] for name in _ATTEMPT_COLUMNS}
        connection.execute(_insert_attempts_pg, columns)
    else:
        connection.execute(insert(_attempts), attempt_rows)


def _result_params(result: MessageResult) -> dict[str, object]:
    last = result.attempts[-1].started_at if result.attempts else None
    sent = result.status is MessageStatus.SENT and bool(result.attempts)
    return {
        "pk": result.pk,
        "status": result.status,
        "total_attempts": result.total_attempts,
        "delayed_retries": result.delayed_retries,
        "message_id": result.message_id,
        "code": result.code,
        "http_status": result.http_status,
        "detail": result.detail,
        "next_attempt_at": result.next_attempt_at,
        "last_attempt_at": last,
        "sent_at": last if sent else None,
        "sent_latency_ms": result.attempts[-1].latency_ms if sent else None,
    }


def _attempt_params(record: AttemptRecord) -> dict[str, object]:
    return {name: getattr(record, name) for name in AttemptRecord.__slots__}
