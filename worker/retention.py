"""Beat's purge of the callbacks kept for no known message: past their retention, and the
oldest beyond a cap, in batches that never hold a long transaction.

Unknown callbacks (producer/unknown_callbacks.py) are mostly another system's messages on the
same Kaleyra account; kept for inspection, they would otherwise grow for ever. Each run
deletes, in this order:

- `expired`: those received more than `days` ago, walked through the index on received_at;
- `over_cap`: the oldest beyond `max_rows`. The id of the newest row past the cap is found by
  walking the primary key down from the top (at most max_rows + 1 index entries, whatever
  the table's size); that row and every older one go.

Each batch of at most `batch` rows is one short transaction (select the ids, delete them by
primary key), so the receiver's group commits never wait long behind it; a run deletes at
most `max_batches` batches and leaves the rest to the next. Two runs at once delete the same
rows at worst: a delete by id is idempotent. What goes is counted in
stickerq_unknown_callbacks_dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from stickerq.db import rows_changed
from stickerq.metrics import count_dropped_unknown_callbacks
from stickerq.models import UnknownCallback, utcnow

log = logging.getLogger(__name__)

BATCH = 1_000  # rows per delete transaction
MAX_BATCHES = 200  # per run: 200,000 rows, twice the default cap


@dataclass(frozen=True, slots=True)
class Purged:
    """Unknown callbacks deleted by one run."""

    expired: int
    over_cap: int


def purge_unknown_callbacks(
    sessions: sessionmaker[Session],
    *,
    days: float,
    max_rows: int,
    now: datetime | None = None,
    batch: int = BATCH,
    max_batches: int = MAX_BATCHES,
) -> Purged:
    """Delete the unknown callbacks older than `days`, then the oldest beyond `max_rows`."""
    cutoff = (now or utcnow()) - timedelta(days=days)
    expired, left = _delete(
        sessions,
        UnknownCallback.received_at < cutoff,
        UnknownCallback.received_at,
        batch,
        max_batches,
    )
    over_cap = 0
    newest_past_cap = _newest_past_cap(sessions, max_rows)
    if newest_past_cap is not None and left:
        over_cap, _ = _delete(
            sessions, UnknownCallback.id <= newest_past_cap, UnknownCallback.id, batch, left
        )
    for reason, dropped in (("expired", expired), ("over_cap", over_cap)):
        if dropped:
            count_dropped_unknown_callbacks(reason, dropped)
    if over_cap:
        log.warning(
            "%s unknown callbacks over STICKERQ_UNKNOWN_CALLBACK_MAX_ROWS=%s deleted, the "
            "oldest first (`stickerq callbacks unknown` lists those left)",
            over_cap,
            max_rows,
        )
    return Purged(expired=expired, over_cap=over_cap)


def _newest_past_cap(sessions: sessionmaker[Session], max_rows: int) -> int | None:
    """The id of the (max_rows + 1)-th newest row; None when there are at most max_rows."""
    with sessions() as session:
        return session.scalar(
            select(UnknownCallback.id).order_by(UnknownCallback.id.desc()).offset(max_rows).limit(1)
        )


def _delete(
    sessions: sessionmaker[Session],
    where: ColumnElement[bool],
    walk: Any,
    batch: int,
    max_batches: int,
) -> tuple[int, int]:
    """Delete the rows `where` holds, `batch` at a time in the order of the indexed column
    `walk`; returns (rows deleted, batches left of max_batches)."""
    deleted = 0
    while max_batches > 0:
        with sessions.begin() as session:
            ids = list(
                session.scalars(select(UnknownCallback.id).where(where).order_by(walk).limit(batch))
            )
            if not ids:
                break
            deleted += rows_changed(
                session.execute(
                    delete(UnknownCallback).where(UnknownCallback.id.in_(ids)),
                    execution_options={"synchronize_session": False},
                )
            )
        max_batches -= 1
        if len(ids) < batch:  # that was the last
            break
    return deleted, max_batches
