"""What beat dispatches on its own: WA500 retries (and connection-failure resends) now due."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from stickerq.queue import dispatch_grouped
from stickerq.worker.claims import take_due_retries


def dispatch_due_retries(sessions: sessionmaker[Session], batch_size: int) -> int:
    """Publish the retries whose time has come; returns how many tasks."""
    with sessions.begin() as session:
        due = take_due_retries(session)
    return dispatch_grouped(due, batch_size)
