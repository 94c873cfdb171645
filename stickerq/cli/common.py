"""What every `stickerq` command shares: the consoles, exit codes, settings and error output.

Commands import the libraries they need (SQLAlchemy, pydantic, Celery) inside their bodies,
so `stickerq --help` and a read-only command start without loading what they do not use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from stickerq.errors import StickerqError
    from stickerq.settings import Settings

console = Console()
err_console = Console(stderr=True)

EXIT_UNAVAILABLE = 1  # a service (database, Redis) cannot be reached
EXIT_REJECTED = 2  # the input was refused; nothing was stored
EXIT_PAUSED = 3  # `send --wait`: a pause holds messages that are not settled

# Ids and row counts are 64-bit in the database: a larger number is refused with the range
# (exit 2), not sent to the database (where it was a traceback).
ID_MAX = 2**63 - 1
CampaignId = Annotated[int, typer.Argument(min=1, max=ID_MAX, help="the campaign's id")]
ScheduleId = Annotated[int, typer.Argument(min=1, max=ID_MAX, help="the schedule's id")]


def load_settings() -> Settings:
    """The STICKERQ_* settings; a bad value ends the command with what is wrong."""
    from pydantic import ValidationError

    from stickerq.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:  # a bad STICKERQ_* value: named, never quoted (a password?)
        for error in exc.errors(include_url=False, include_input=False):
            name = "STICKERQ_" + "_".join(str(part) for part in error["loc"][:1]).upper()
            err_console.print(
                f"[red]configuration error:[/] {escape(name)}: {escape(error['msg'])}"
            )
        raise typer.Exit(EXIT_REJECTED) from None
    except Exception as exc:  # .env unreadable, say
        err_console.print(f"[red]configuration error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_REJECTED) from None
    if settings.log_format == "json":  # a command's log records too (text: Python's default)
        from stickerq.logs import setup_logging

        setup_logging(settings)
    return settings


def fail(exc: StickerqError) -> typer.Exit:
    """Print the error; the exit to raise says whether a service or the input is at fault."""
    from stickerq.errors import ServiceUnavailable

    err_console.print(f"[red]error:[/] {escape(str(exc))}")
    code = EXIT_UNAVAILABLE if isinstance(exc, ServiceUnavailable) else EXIT_REJECTED
    return typer.Exit(code)


def warn_if_no_beat(settings: Settings) -> None:
    """A yellow line on stderr when no beat ran lately (see stickerq/beat.py)."""
    from stickerq.beat import missing_beat

    warning = missing_beat(
        settings.redis_target, settings.redis_prefix, settings.dispatch_interval_seconds
    )
    if warning is not None:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}")


def setup_logging(settings: Settings, level: str) -> None:
    """Logging of the long-running commands: text or JSON (STICKERQ_LOG_FORMAT), no secret."""
    from stickerq import logs

    logs.setup_logging(settings, level)
