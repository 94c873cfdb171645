"""`stickerq erase NUMBER`: remove a phone number from every table (a GDPR erasure).

What it removes and why is producer/erasure.py; docs/operations.md says when to use it.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from stickerq.actors import cli_actor
from stickerq.cli.common import console, err_console, fail, load_settings
from stickerq.errors import StickerqError

EXIT_INCOMPLETE = 4  # messages to the number were being sent and were left: erase again


def register(app: typer.Typer) -> None:
    """Add this module's commands to the stickerq app."""
    app.command("erase")(erase)


def erase(
    number: Annotated[str, typer.Argument(help="the number, E.164 (+919812345678)")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="count what would be removed, change nothing")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON (docs/json.md)")] = False,
) -> None:
    """Remove a number from every table: its messages and their attempts, callbacks, request
    hashes, text that holds it; a suppressed number stays suppressed, as a keyed hash
    (STICKERQ_ERASURE_KEY). Messages a worker is sending now are left (exit 4): run it again."""
    from stickerq.producer.erasure import erase_number
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.erasure import ErasureView

    try:
        result = erase_number(load_settings(), number, actor=cli_actor(), dry_run=dry_run)
    except StickerqError as exc:
        raise fail(exc) from None
    view = ErasureView.of_result(result)
    if as_json:
        print(to_json(view))
    elif not result.found:
        console.print(f"nothing found: no table holds {view.phone}")
    else:
        verb = "would remove" if dry_run else "removed"
        table = Table(title=f"{view.phone}: rows {verb} per table")
        table.add_column("table")
        table.add_column("rows", justify="right")
        for name, rows in result.removed.items():
            table.add_row(escape(name), f"{rows:,}")
        console.print(table)
        console.print(f"{result.campaigns_held:,} campaign(s) had a message to it")
    if not result.complete:
        err_console.print(
            f"[yellow]left:[/] {result.left_sending:,} message(s) to {view.phone} are being sent "
            "by a worker now; erase again once they settled (a few seconds, or the claim "
            "heartbeat's timeout if the worker died)"
        )
        raise typer.Exit(EXIT_INCOMPLETE)
