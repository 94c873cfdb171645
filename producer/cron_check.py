"""What `send --every` takes: a standard cron expression of five fields.

croniter reads more than cron does, and each extra would surprise: a sixth field (seconds: a
run every second), a seventh (years), `R` (a random time, drawn again at each reading, so a
schedule's next run would move each time it is computed) and `H` (a hashed one). They are
refused here, as is an expression longer than the schedule's column (Schedule.cron).
"""

from __future__ import annotations

import re

from croniter import croniter

from stickerq.errors import excerpt

MAX_LENGTH = 120  # Schedule.cron is a String(120)
HINT = (
    "give five fields, minute hour day-of-month month day-of-week, e.g. '0 9 * * 1' "
    "(Mondays at 09:00)"
)
# R or H opening a field or one of its parts (`R`, `H(0-29)`, `1,R`); a name (thu, mar)
# never starts with either.
_RANDOM = re.compile(r"(?:^|[,/-])[RrHh]")


def cron_problem(every: str) -> str | None:
    """Why `every` cannot be a schedule's cron expression; None when it can."""
    shown = repr(excerpt(every))
    if len(every) > MAX_LENGTH:
        return (
            f"--every {shown} is {len(every)} characters long: a cron expression has at most "
            f"{MAX_LENGTH}; {HINT}"
        )
    fields = every.split()
    if len(fields) != 5 or not croniter.is_valid(every):
        return f"--every {shown} is not a cron expression: {HINT}"
    if any(_RANDOM.search(field) for field in fields):
        return f"--every {shown} asks for random (R) or hashed (H) times: {HINT}"
    return None
