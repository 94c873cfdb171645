"""A campaign's validity period: the deadline after which its unsent messages expire.

A sticker reaches a recipient only inside their 24-hour customer service window, so a
message that would go out long after the campaign started (a late resume, a WA500 retry due
after the window) is better not sent. `valid_for` counts from the campaign's start: now for
a campaign sent now, its time for a scheduled one, each run's own time for a recurring one.
`valid_until` is one moment instead (not for recurring broadcasts). The worker enforces the
deadline (worker/expiry.py); this module only reads and checks it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from stickerq.errors import StickerqError, excerpt
from stickerq.models import utcnow
from stickerq.producer.time_reach import check_reach

_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"(?:\d+[smhdw])+")
_PART = re.compile(r"(\d+)([smhdw])")
EXAMPLES = "e.g. 6h, 90m, 1h30m or 1d"
# The longest deadline: a sticker waiting longer than a year has no customer window left to
# reach, and Campaign.valid_for_seconds is a 32-bit column.
MAX_VALID_FOR = timedelta(days=365)
MAX_DURATION_TEXT = 32  # `1h30m`-like text longer than this is no duration anyone means


class ValidityError(StickerqError):
    """A --valid-for / --valid-until (or STICKERQ_VALID_FOR) that cannot be used."""


@dataclass(frozen=True, slots=True)
class Validity:
    """How long a campaign's messages may wait (`valid_for`), or until when (`valid_until`)."""

    valid_for: timedelta | None = None
    valid_until: datetime | None = None

    @property
    def limited(self) -> bool:
        return self.valid_for is not None or self.valid_until is not None

    def deadline(self, start: datetime) -> datetime | None:
        """The moment the campaign's unsent messages expire, for a campaign starting `start`."""
        if self.valid_until is not None:
            return self.valid_until
        return start + self.valid_for if self.valid_for is not None else None

    @property
    def seconds(self) -> int | None:
        return int(self.valid_for.total_seconds()) if self.valid_for is not None else None


def parse_valid_for(value: str | timedelta, option: str = "--valid-for") -> timedelta:
    """`6h`, `90m`, `1h30m`, `2d` (or a timedelta) as a duration of whole seconds, from one
    second to MAX_VALID_FOR.

    The text is summed as integers, never as timedeltas: `99999999999999d` is refused as
    too long, not an OverflowError.
    """
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
    else:
        text = value.strip().lower()
        if len(text) > MAX_DURATION_TEXT or not _DURATION.fullmatch(text):
            raise ValidityError(
                f"{option} {excerpt(value)!r} is not a duration: write one, {EXAMPLES}"
            )
        seconds = sum(int(amount) * _SECONDS[unit] for amount, unit in _PART.findall(text))
    if seconds < 1:
        raise ValidityError(f"{option} must be at least one second, not {excerpt(value)!r}")
    if seconds > MAX_VALID_FOR.total_seconds():
        raise ValidityError(
            f"{option} {excerpt(value)!r} is longer than a year ({MAX_VALID_FOR.days}d): give "
            "a shorter duration, or none for no deadline"
        )
    return timedelta(seconds=seconds)


def parse_valid_until(value: str | datetime, now: datetime | None = None) -> datetime:
    """An ISO 8601 time with its offset (a naive one is read in --tz by the caller first);
    refused in the past."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidityError(
                f"--valid-until {excerpt(value)!r} is not a time: write ISO 8601 with its "
                "offset, e.g. 2026-12-01T18:00+05:30, or without one plus --tz Asia/Kolkata"
            ) from None
    else:
        moment = value
    if moment.tzinfo is None:
        raise ValidityError(
            f"--valid-until {value!s} has no time zone: add its offset "
            "(2026-12-01T18:00+05:30), or with `send` pass --tz"
        )
    now = now or utcnow()
    check_reach(moment, f"--valid-until {value!s}", ValidityError, now)
    moment = moment.astimezone(UTC)
    if moment <= now:
        raise ValidityError(f"--valid-until {value!s} is already past: give a later time")
    return moment


def read_validity(
    valid_for: str | timedelta | None,
    valid_until: str | datetime | None,
    default: str | None = None,
) -> Validity:
    """What a send or requeue asks for; without either option, `default` (STICKERQ_VALID_FOR)."""
    if valid_for is not None and valid_until is not None:
        raise ValidityError(
            "--valid-for and --valid-until do not go together: give the duration or the moment"
        )
    if valid_until is not None:
        return Validity(valid_until=parse_valid_until(valid_until))
    if valid_for is not None:
        return Validity(valid_for=parse_valid_for(valid_for))
    if default:
        return Validity(valid_for=parse_valid_for(default, "STICKERQ_VALID_FOR"))
    return Validity()


def check_start(validity: Validity, start: datetime, *, recurring: bool = False) -> None:
    """A deadline must come after the campaign's start; a recurring one needs a duration."""
    if validity.valid_until is None:
        return
    if recurring:
        raise ValidityError(
            "--valid-until is one moment, and a recurring broadcast runs many times: give "
            "--valid-for instead (counted from each run's start)"
        )
    if validity.valid_until <= start:
        raise ValidityError(
            f"--valid-until {validity.valid_until:%Y-%m-%d %H:%M} UTC is before the campaign's "
            f"time ({start:%Y-%m-%d %H:%M} UTC): nothing could be sent; give a later deadline"
        )
