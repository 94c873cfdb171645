"""Every change of a message's status: one table of moves, one way to write the UPDATE.

A move names the statuses it starts from and those it may end in (docs/architecture.md,
"Message states", lists who makes each). `move_messages` builds the only UPDATE of
`messages.status` in the code (tests/test_message_moves.py looks for strays): it tests the
move's starting statuses, on the rows the caller locked (worker/locked_rows.py) or on
`messages` itself, so a message moved meanwhile by someone else stays where it is. Cancel,
expire and release, which several callers share, are written here once.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import ColumnElement, FromClause, Table, literal_column, or_, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Update

from stickerq.db import rows_changed
from stickerq.models import Message
from stickerq.states import MessageStatus

PENDING, SENDING, SENT = MessageStatus.PENDING, MessageStatus.SENDING, MessageStatus.SENT
DELIVERED, READ, PARKED = MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.PARKED
FAILED, UNKNOWN, CANCELLED = MessageStatus.FAILED, MessageStatus.UNKNOWN, MessageStatus.CANCELLED
EXPIRED, SUPPRESSED = MessageStatus.EXPIRED, MessageStatus.SUPPRESSED
OUTSIDE_WINDOW = MessageStatus.OUTSIDE_WINDOW

EXPIRED_DETAIL = "not sent before its campaign's deadline (valid_until)"
WINDOW_CLOSED_DETAIL = (
    "not sent: the recipient's 24-hour window with the sender was closed when it was claimed"
)
WINDOW_ENDED_DETAIL = "not sent: the recipient's 24-hour window ended before it could go"


class MessageMove(StrEnum):
    CLAIM = "claim"  # a worker takes a batch
    SUPPRESS = "suppress"  # in the claim's transaction: the number was suppressed since
    WINDOW_CLOSED = "window_closed"  # in the claim's transaction: `--in-window`, window shut
    RECORD = "record"  # a worker writes what its request came to
    RELEASE = "release"  # claimed, provably never sent: back, or cancelled with its campaign
    DEAD_CLAIM = "dead_claim"  # the sweeper: its worker died after the request may have left
    CANCEL = "cancel"  # its campaign was cancelled before it was sent
    EXPIRE = "expire"  # its campaign's deadline passed before it was sent
    REQUEUE = "requeue"  # an operator sends it again
    DELIVERED = "delivered"  # a callback (a row already delivered or read gets its time)
    READ = "read"  # a callback (a row already read gets an earlier time)
    CALLBACK_FAILED = "callback_failed"  # a `failed` or `not-sent` callback


# move -> (the statuses it starts from, the statuses it may end in)
MOVES: dict[MessageMove, tuple[frozenset[MessageStatus], frozenset[MessageStatus]]] = {
    MessageMove.CLAIM: (frozenset({PENDING}), frozenset({SENDING})),
    MessageMove.SUPPRESS: (frozenset({SENDING}), frozenset({SUPPRESSED})),
    MessageMove.WINDOW_CLOSED: (frozenset({SENDING}), frozenset({OUTSIDE_WINDOW})),
    # `unknown` too: a sweeper guessed about a worker that was alive after all, whose own
    # word wins
    MessageMove.RECORD: (
        frozenset({SENDING, UNKNOWN}),
        frozenset({SENT, PARKED, FAILED, UNKNOWN, PENDING, EXPIRED, OUTSIDE_WINDOW}),
    ),
    MessageMove.RELEASE: (frozenset({SENDING, UNKNOWN}), frozenset({PENDING, CANCELLED})),
    MessageMove.DEAD_CLAIM: (frozenset({SENDING}), frozenset({UNKNOWN})),
    MessageMove.CANCEL: (frozenset({PENDING}), frozenset({CANCELLED})),
    MessageMove.EXPIRE: (frozenset({PENDING}), frozenset({EXPIRED})),
    # `outside_window` too: the customer may have written since
    MessageMove.REQUEUE: (
        frozenset({PARKED, FAILED, UNKNOWN, EXPIRED, OUTSIDE_WINDOW}),
        frozenset({PENDING}),
    ),
    MessageMove.DELIVERED: (frozenset({SENT, DELIVERED, READ}), frozenset({DELIVERED, READ})),
    MessageMove.READ: (frozenset({SENT, DELIVERED, READ}), frozenset({READ})),
    MessageMove.CALLBACK_FAILED: (frozenset({SENT, DELIVERED}), frozenset({FAILED})),
}

# The columns CANCEL and EXPIRE set besides the status: a retry's due time no longer holds.
_UNSENT_VALUES: dict[MessageMove, dict[str, Any]] = {
    MessageMove.CANCEL: {"next_attempt_at": None},
    MessageMove.EXPIRE: {"next_attempt_at": None, "last_error_detail": EXPIRED_DETAIL},
}

_messages = cast(Table, Message.__table__)


def may_end_in(move: MessageMove, status: MessageStatus) -> bool:
    return status in MOVES[move][1]


def move_messages(
    move: MessageMove,
    *where: ColumnElement[bool],
    rows: FromClause | None = None,
    starts: Collection[MessageStatus] | None = None,
    to: MessageStatus | ColumnElement[Any] | None = None,
    **values: Any,
) -> Update:
    """`UPDATE messages SET status = <to>, **values WHERE <status is a start> AND where`.

    `rows`: where the starting status is read (a locked CTE; by default `messages`).
    `starts`: some of the move's starting statuses (all by default). `to`: one of its ends,
    or a column giving each row's (the caller checks each with `may_end_in`); by default the
    move's only end. The caller adds RETURNING and executes it.
    """
    allowed_starts, ends = MOVES[move]
    chosen = frozenset(allowed_starts if starts is None else starts)
    if not chosen or not chosen <= allowed_starts:
        raise ValueError(f"{move} starts only from {sorted(allowed_starts)}, not {sorted(chosen)}")
    if to is None:
        if len(ends) != 1:
            raise ValueError(f"{move} ends in one of {sorted(ends)}: say which")
        (to,) = ends
    elif isinstance(to, MessageStatus) and to not in ends:
        raise ValueError(f"{move} ends only in {sorted(ends)}, not {to}")
    status = (rows if rows is not None else _messages).c.status
    return (
        update(Message)
        .where(_status_is_one_of(status, chosen), *where)
        .values(status=to, **values)
        .execution_options(synchronize_session=False)
    )


def _status_is_one_of(column: ColumnElement[Any], statuses: frozenset[MessageStatus]) -> Any:
    """The statuses written into the SQL (`status = 'pending'`: constants of MessageStatus,
    never input), so a generic plan can still prove a partial index's predicate, and an
    executemany, which takes neither an expanding IN nor a literal_execute parameter, can run
    it."""
    return or_(*(column == literal_column(f"'{status.value}'") for status in sorted(statuses)))


def end_unsent(
    session: Session,
    move: MessageMove,
    campaign_id: int,
    *where: ColumnElement[bool],
    rows: FromClause | None = None,
) -> int:
    """CANCEL or EXPIRE: the campaign's `pending` messages (those of `rows`, a batch locked by
    primary key, when given) end unsent; returns how many."""
    if move not in _UNSENT_VALUES:
        raise ValueError(f"{move} does not end unsent messages")
    campaign = (rows if rows is not None else _messages).c.campaign_id
    statement = move_messages(
        move, campaign == campaign_id, *where, rows=rows, **_UNSENT_VALUES[move]
    )
    return _count(session, statement, rows)


def _count(session: Session, statement: Update, rows: FromClause | None) -> int:
    """How many rows the UPDATE moved. SQLite gives no rowcount for an UPDATE ... FROM, so a
    batch's statement (a few hundred rows) counts its RETURNING instead."""
    if rows is None:
        return rows_changed(session.execute(statement))
    return len(session.execute(statement.returning(Message.id)).all())


def release(
    session: Session,
    *where: ColumnElement[bool],
    rows: FromClause | None = None,
    starts: Collection[MessageStatus] | None = None,
    cancelled: bool = False,
) -> int:
    """RELEASE: claimed messages that provably never left lose their claim and are `pending`
    again, or `cancelled` when their campaign was cancelled meanwhile; returns how many."""
    statement = move_messages(
        MessageMove.RELEASE,
        *where,
        rows=rows,
        starts=starts,
        to=CANCELLED if cancelled else PENDING,
        claimed_at=None,
        claim_token=None,
    )
    return _count(session, statement, rows)
