"""`--in-window` campaigns: the window ledger, checked right after a batch is claimed.

A recipient whose 24-hour window with the sender is closed now (no inbound message within the
window, less the margin, or a 131047 since) is never sent: in the claim's transaction its
message becomes `outside_window`, no request made. Each one in the window gets the window's
end as its own deadline (`ClaimedMessage.window_ends_at`): one still waiting for the rate or
its pair then also ends `outside_window` without a request (worker/sending.py). One lookup of
the ledger by primary key per sender of the batch (stickerq/window_ledger.py), after the
suppression check: opt-outs win.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from stickerq.message_status import WINDOW_CLOSED_DETAIL, MessageMove
from stickerq.window_ledger import windows_of
from stickerq.worker.claims import ClaimedMessage, drop_claimed
from stickerq.worker.sender_groups import by_sender


def keep_in_window(
    session: Session,
    campaign_sender: str,
    token: str,
    claimed: Sequence[ClaimedMessage],
    margin_seconds: float,
    now: datetime,
) -> list[ClaimedMessage]:
    """The claimed messages whose window is open now, each with its window's end; the others
    become `outside_window` under this claim."""
    inside: list[ClaimedMessage] = []
    outside: list[int] = []
    for sender, messages in by_sender(claimed, campaign_sender).items():
        windows = windows_of(
            session, sender, {message.recipient for message in messages}, margin_seconds
        )
        for message in messages:
            window = windows.get(message.recipient)
            if window is not None and window.is_open(now):
                inside.append(dataclasses.replace(message, window_ends_at=window.ends_at))
            else:
                outside.append(message.pk)
    if outside:
        drop_claimed(session, MessageMove.WINDOW_CLOSED, outside, token, WINDOW_CLOSED_DETAIL)
    return inside
