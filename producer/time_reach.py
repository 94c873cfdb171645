"""How far from now a time that a caller gives may lie: a century either way.

Checked on the time as written, before it is converted or added to: Python's datetime ends
at the years 1 and 9999, so turning a time near either end into UTC, or adding a deadline to
it, raises OverflowError (a 500 in the API, a traceback in the CLI). A century keeps every
sum stickerq makes with a given time (its deadline: at most validity.MAX_VALID_FOR later)
far inside that range.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stickerq.errors import StickerqError

REACH = timedelta(days=36_525)  # a century


def check_reach(moment: datetime, what: str, error: type[StickerqError], now: datetime) -> None:
    """Raise `error` when `moment`'s wall time (any offset, or none) lies more than a
    century from `now`; `what` names it in the message (`--at '9999-12-31T23:59'`)."""
    wall = moment.replace(tzinfo=None)
    today = now.astimezone(UTC).replace(tzinfo=None)
    if wall > today + REACH:
        raise error(f"{what} is more than a century ahead: give a time in the next 100 years")
    if wall < today - REACH:
        raise error(f"{what} is more than a century ago: give a time to come")
