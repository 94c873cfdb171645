"""Which time a status callback is recorded with: its own, unless it cannot be true.

A `delivered` with timestamp 0 would say 1970, a `read` of year 1 would say 0001-01-01, a
clock far ahead would say next year. A status time earlier than its message was sent, or
later than FUTURE_SLACK after the callback arrived, is not believed: the time the callback was
received is recorded instead (never earlier than the truth, and late by the callback's own
delay), and the reason is counted (stickerq_callback_times_replaced).

Meta's timestamps are whole seconds and a message's sent_at is when its request left, with
microseconds: a delivery within the same second reads as up to a second before sent_at, so
sent_at is compared at whole seconds.
"""

from __future__ import annotations

from datetime import datetime, timedelta

FUTURE_SLACK = timedelta(minutes=5)  # clocks disagree a little; more is not a clock's drift
BEFORE_SENT, IN_FUTURE = "before_sent", "in_future"


def doubt(at: datetime, received_at: datetime, sent_at: datetime | None) -> str | None:
    """Why `at` cannot be when the status happened (BEFORE_SENT, IN_FUTURE); None when it can.

    `received_at`: when the callback arrived; `sent_at`: when its message was sent (None for
    a callback of no known message)."""
    if at > received_at + FUTURE_SLACK:
        return IN_FUTURE
    if sent_at is not None and at < sent_at.replace(microsecond=0):
        return BEFORE_SENT
    return None
