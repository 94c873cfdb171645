"""When a recurring schedule runs: a cron expression read in a time zone, DST included."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import croniter


def next_run(cron: str, zone: ZoneInfo, after: datetime) -> datetime:
    """The first time (UTC) after `after` that the cron expression, read in `zone`, names.

    DST: a time the clocks skip runs at the first time after the jump (croniter's choice);
    a time the clocks repeat runs once, at its first occurrence (as cron does).
    """
    times = croniter(cron, after.astimezone(zone))
    while True:
        candidate: datetime = times.get_next(datetime)
        wall = candidate.replace(tzinfo=None)
        first = wall.replace(tzinfo=zone, fold=0)
        if candidate.astimezone(UTC) > first.astimezone(UTC) and wall_time_exists(first):
            continue  # the repeated hour's second pass
        return candidate.astimezone(UTC)


def wall_time_exists(local: datetime) -> bool:
    """Whether this wall time occurs in its zone (not skipped by a DST jump)."""
    return local.astimezone(UTC).astimezone(local.tzinfo).replace(tzinfo=None) == local.replace(
        tzinfo=None
    )
