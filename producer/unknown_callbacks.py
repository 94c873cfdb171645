"""Callbacks whose message_id matched no message: listed for inspection, applied once their
message appears.

A callback can beat its message_id to the database: Kaleyra calls back as soon as it accepted
the send, while the worker writes results in bulk a moment later. Those are applied (and
deleted) by `apply_unknown`, which the callback writer runs every few seconds over the recent
ones; what stays belongs to no message of ours (another system sending on the same account).
Kept once per (message_id, status), and not for ever: beat's purge (worker/retention.py)
deletes them after STICKERQ_UNKNOWN_CALLBACK_DAYS and beyond STICKERQ_UNKNOWN_CALLBACK_MAX_ROWS.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from stickerq.models import Message, UnknownCallback
from stickerq.producer.callback_payloads import StatusCallback
from stickerq.producer.callbacks import Applied, apply_callbacks

APPLY_CHUNK = 1_000


def apply_unknown(session: Session, since: datetime) -> Applied:
    """Apply the unknown callbacks received since `since` whose message now exists, and
    forget them; returns what applying them did."""
    has_message = exists().where(Message.message_id == UnknownCallback.message_id)
    found = list(
        session.scalars(
            select(UnknownCallback)
            .where(UnknownCallback.received_at >= since, has_message)
            .order_by(UnknownCallback.id)
            .limit(APPLY_CHUNK)
        )
    )
    if not found:
        return Applied(changed=0, unknown=0)
    applied = apply_callbacks(session, [_callback(row) for row in found])
    session.execute(delete(UnknownCallback).where(UnknownCallback.id.in_([r.id for r in found])))
    return applied


def list_unknown(session: Session, limit: int = 50) -> list[UnknownCallback]:
    """The newest unknown callbacks first."""
    return list(
        session.scalars(select(UnknownCallback).order_by(UnknownCallback.id.desc()).limit(limit))
    )


def _callback(row: UnknownCallback) -> StatusCallback:
    return StatusCallback(
        message_id=row.message_id,
        status=row.status,
        at=row.occurred_at,
        error_code=row.error_code,
        error_detail=row.error_detail,
        ref=row.ref,
        ref1=row.ref1,
        ref2=row.ref2,
        received_at=row.received_at,
    )
