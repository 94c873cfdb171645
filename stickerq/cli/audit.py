"""`stickerq audit`: who changed what (the audit log, stickerq/audit.py), newest first."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from stickerq.cli.common import console, err_console, fail, load_settings
from stickerq.errors import StickerqError

if TYPE_CHECKING:
    from stickerq.producer.views.audit import AuditPageView


def register(app: typer.Typer) -> None:
    """Add this module's commands to the stickerq app."""
    app.command("audit")(audit)


def audit(
    since: Annotated[
        str,
        typer.Option(
            help="entries at or after this: a duration back from now (24h, 7d) or an ISO "
            "datetime with its zone",
            metavar="DURATION|DATETIME",
        ),
    ] = "24h",
    actor: Annotated[
        str | None,
        typer.Option(help="only this actor's: a key's name, env:1, cli:user@host"),
    ] = None,
    limit: Annotated[int, typer.Option(help="at most this many entries (1 to 1,000)")] = 100,
    show_numbers: Annotated[
        bool, typer.Option("--show-numbers", help="show phone numbers in full (masked by default)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON (docs/json.md)")] = False,
) -> None:
    """Changes made by people and API keys, newest first: campaigns created, paused, resumed,
    cancelled, requeued; pauses lifted; suppressions; sender rates; purges; erasures."""
    from stickerq.masking import numbers_shown
    from stickerq.producer.audit_log import read_audit
    from stickerq.producer.views.audit import AuditPageView
    from stickerq.producer.views.base import to_json

    try:
        page = read_audit(load_settings(), since=since, actor=actor, limit=limit)
    except StickerqError as exc:
        raise fail(exc) from None
    view = AuditPageView.of_page(page, numbers_shown(show_numbers))
    if as_json:
        print(to_json(view))
        return
    if not view.entries:
        who = f" by {view.actor}" if view.actor else ""
        console.print(f"no change{escape(who)} since {view.since:%Y-%m-%d %H:%M} UTC")
        return
    console.print(_table(view))
    if view.more:
        err_console.print(
            f"[yellow]more:[/] older entries since {view.since:%Y-%m-%d %H:%M} UTC were left "
            f"out: raise --limit (at most 1,000), or narrow --since or --actor"
        )


def _table(view: AuditPageView) -> Table:
    who = f" of {view.actor}" if view.actor else ""
    table = Table(title=f"audit log{who} since {view.since:%Y-%m-%d %H:%M} UTC, newest first")
    for column in ("at (UTC)", "actor", "action", "target", "params"):
        table.add_column(column, overflow="fold")
    for entry in view.entries:
        table.add_row(
            f"{entry.at:%Y-%m-%d %H:%M:%S}",
            escape(entry.actor),
            escape(entry.action),
            escape(entry.target),
            escape(json.dumps(entry.params, sort_keys=True)),
        )
    return table
