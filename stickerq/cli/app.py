"""The `stickerq` command: a thin shell over the producer and worker functions.

Each module of this package adds its commands to `app`; see common.py for why they import
their libraries inside the commands.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import version
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from stickerq.cli import (
    accounts,
    audit,
    callbacks,
    campaigns,
    database,
    erase,
    failures,
    keys,
    media,
    purge,
    reports,
    schedules,
    senders,
    sending,
    services,
    suppress,
    webhooks,
    window,
)
from stickerq.cli.common import EXIT_UNAVAILABLE, console, err_console, fail, load_settings
from stickerq.errors import StickerqError

app = typer.Typer(help="Bulk sender of Kaleyra WhatsApp sticker messages.", no_args_is_help=True)


def _print_version(asked: bool) -> None:
    if asked:
        console.print(f"stickerq {version('stickerq')}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """Bulk sender of Kaleyra WhatsApp sticker messages."""


@app.command()
def config(
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON (docs/json.md)")] = False,
) -> None:
    """Print the settings in force (STICKERQ_* variables, .env, defaults): where the database
    is, which Redis and prefix, which account; the api-key only as set or not."""
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.config import config_view

    try:
        shown = config_view(load_settings())
    except StickerqError as exc:
        raise fail(exc) from None
    if as_json:
        print(to_json(shown))
        return
    table = Table(title="stickerq settings")
    table.add_column("variable")
    table.add_column("value")
    values = shown.model_dump(mode="json")
    in_force = values.pop("accounts_in_force")
    for name, value in values.items():
        text = "-" if value is None else value if isinstance(value, str) else json.dumps(value)
        table.add_row(f"STICKERQ_{name.upper()}", escape(text))
    console.print(table)
    accounts.print_accounts(in_force)


for _module in (
    sending,
    campaigns,
    failures,
    reports,
    callbacks,
    schedules,
    services,
    database,
    media,
    suppress,
    erase,
    senders,
    accounts,
    purge,
    window,
    audit,
    keys,
    webhooks,
):
    _module.register(app)


def main() -> None:
    """Console entry: the app, with the database problems users meet turned into advice."""
    try:
        app()
    except Exception as exc:
        problem = _database_problem(exc)
        if problem is None:
            raise
        err_console.print(f"[red]error:[/] {escape(problem)}")
        sys.exit(EXIT_UNAVAILABLE)


def _database_problem(exc: Exception) -> str | None:
    """What to tell the user when `exc` is the database refusing us; None for anything else."""
    if "sqlalchemy" not in sys.modules:  # the command never loaded it: not a database error
        return None
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from stickerq.db import UPGRADE_ADVICE, lacks_schema

    if not isinstance(exc, OperationalError | ProgrammingError):
        return None
    if lacks_schema(exc):
        return UPGRADE_ADVICE
    message = str(exc.orig) if exc.orig is not None else str(exc)
    return f"the database cannot be used: {message}"


if __name__ == "__main__":  # pragma: no cover
    main()
