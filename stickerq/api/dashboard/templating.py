"""The dashboard's templates (autoescaped: every value is text, never markup) and filters."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape

from stickerq.api.dashboard.board import masked

NOTHING = "\N{EN DASH}"  # shown for a figure not known (yet)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return NOTHING
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def _until(moment: datetime | None) -> str:
    """How long from now until `moment` (an ETA)."""
    if moment is None:
        return NOTHING
    return _duration(max((moment - datetime.now(UTC)).total_seconds(), 0.0))


def _rate(rate: float | None) -> str:
    return NOTHING if rate is None else f"{rate:,.1f} msg/s"


def _when(moment: datetime | str | None) -> str:
    if moment is None:
        return NOTHING
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


_environment = Environment(
    loader=PackageLoader("stickerq.api.dashboard", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.filters.update(until=_until, rate=_rate, when=_when, masked=masked)
templates = Jinja2Templates(env=_environment)
