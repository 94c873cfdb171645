"""WA500 retries (and connection-failure resends) whose time has come: taken from the
database and dispatched by beat, so no worker sleeps for minutes and a restart loses none."""

from __future__ import annotations

from sqlalchemy import text, update
from sqlalchemy.orm import Session, sessionmaker

from stickerq.models import RETRY_DUE, Message, utcnow
from stickerq.queue import dispatch_grouped


def dispatch_due_retries(sessions: sessionmaker[Session], batch_size: int) -> int:
    """Publish the retries whose time has come; returns how many tasks."""
    with sessions.begin() as session:
        due = take_due_retries(session)
    return dispatch_grouped(due, batch_size)


def take_due_retries(session: Session) -> list[tuple[int, int]]:
    """Pending messages whose retry time has come: (campaign_id, message pk), made undelayed.

    The conditional UPDATE hands each due message to one dispatcher even with two beats.
    """
    now = utcnow()
    rows = session.execute(
        update(Message)
        # The partial index's own predicate, as text: a bound 'pending' would not prove it
        # in a generic plan, and the statement would read the whole table.
        .where(text(RETRY_DUE), Message.next_attempt_at <= now)
        .values(next_attempt_at=None)
        .returning(Message.campaign_id, Message.id),
        execution_options={"synchronize_session": False},
    ).all()
    return sorted((campaign_id, pk) for campaign_id, pk in rows)
