"""Messages outside the recipient's 24-hour customer service window (Meta's 131047, or the
status `outside_window` of an `--in-window` campaign).

A sticker is not a template message: WhatsApp delivers it only within 24 hours of the
recipient's last message to the business number. Those that came back 131047 cannot be
reached by a sticker, or by any retry of one, until the recipient writes again; only an
approved template message reaches them. `status`, `campaigns show`, `report` and `export`
name them so (the count comes from the campaign's counts by error code).
"""

from __future__ import annotations

from collections.abc import Mapping

from stickerq.states import OUTSIDE_WINDOW_CODE as OUTSIDE_WINDOW
from stickerq.states import MessageStatus

__all__ = ["ADVICE", "LABEL", "OUTSIDE_WINDOW", "describe", "outside_window"]

LABEL = "outside the 24-hour window"
ADVICE = (
    "only a template message can reach them (a sticker is delivered only within 24 hours "
    "of the recipient's last message; requeued, it fails again)"
)


def outside_window(by_code: Mapping[str, int], by_status: Mapping[str, int]) -> int:
    """Messages whose latest error is 131047, and those an `--in-window` campaign never sent
    (status `outside_window`, which carries no code)."""
    return int(by_code.get(OUTSIDE_WINDOW, 0)) + int(by_status.get(MessageStatus.OUTSIDE_WINDOW, 0))


def describe(count: int) -> str:
    """`3 messages outside the 24-hour window: ...advice`, for the text tables."""
    return f"{count:,} message{'s' if count != 1 else ''} {LABEL}: {ADVICE}"
