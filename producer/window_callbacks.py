"""A 131047 status callback shuts its recipient's window in the window ledger.

Meta answers 131047 when a sticker reached a customer outside their 24-hour window: whatever
the ledger thought, that (sender, customer) window is closed as of the callback's time, until
the customer writes again (stickerq/window_ledger.py). Looked up only for such callbacks, so
the common callback pays nothing for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stickerq.models import Campaign, Message
from stickerq.producer.callback_payloads import StatusCallback
from stickerq.states import OUTSIDE_WINDOW_CODE
from stickerq.window_ledger import close_windows

LOOKUP_CHUNK = 500


def window_closed(callback: StatusCallback) -> bool:
    return callback.status in ("failed", "not-sent") and callback.error_code == OUTSIDE_WINDOW_CODE


def close_reported_windows(session: Session, callbacks: Sequence[StatusCallback]) -> None:
    """Shut the windows of the messages these 131047 callbacks are about (known ones)."""
    at = {callback.message_id: callback.at for callback in callbacks}
    pairs: list[tuple[str, str, datetime]] = []
    ids = sorted(at)
    for start in range(0, len(ids), LOOKUP_CHUNK):
        rows = session.execute(
            select(
                Message.message_id,
                func.coalesce(Message.sender, Campaign.sender),
                Message.recipient,
            )
            .join(Campaign, Campaign.id == Message.campaign_id)
            .where(Message.message_id.in_(ids[start : start + LOOKUP_CHUNK]))
        ).all()
        pairs += [
            (sender, recipient, at[str(message_id)]) for message_id, sender, recipient in rows
        ]
    close_windows(session, pairs)
