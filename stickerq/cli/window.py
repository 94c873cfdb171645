"""`stickerq window import|show|stats`: the window ledger, which says whose 24-hour customer
service window is open with which business number.

A thin shell over producer.window_import and producer.window_views. Customers' numbers are
personal data: shown masked unless --show-numbers; business numbers are shown in full.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from stickerq.actors import cli_actor
from stickerq.cli.common import console, err_console, fail, load_settings
from stickerq.errors import StickerqError

if TYPE_CHECKING:
    from stickerq.producer.window_csv import BadCell, ImportStep, Progress

window_app = typer.Typer(
    help="The window ledger: when each customer last wrote to each business number.",
    no_args_is_help=True,
)
From = Annotated[
    str | None, typer.Option("--from", help="only this business number (E.164)", show_default=False)
]
ShowNumbers = Annotated[
    bool, typer.Option("--show-numbers", help="the customer's number in full (masked by default)")
]
AsJson = Annotated[bool, typer.Option("--json", help="print as JSON (docs/json.md)")]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the stickerq app."""
    app.add_typer(window_app, name="window")


@window_app.command("import")
def import_(
    file: Annotated[
        Path,
        typer.Argument(
            help="a CSV with from (the customer), wanumber (the business number) and "
            "created_at (epoch seconds or ISO 8601 with offset) columns, of any size"
        ),
    ],
    as_json: AsJson = False,
) -> None:
    """Backfill the ledger from a CRM's incoming messages: all rows or none (a bad row is
    listed by line and column, and nothing is stored); a pair keeps its latest time."""
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.windows import WindowImportView
    from stickerq.producer.window_csv import WindowImportError
    from stickerq.producer.window_import import import_windows

    settings = load_settings()
    try:
        with _progress_bar() as on_progress:
            result = import_windows(settings, file, actor=cli_actor(), on_progress=on_progress)
    except WindowImportError as exc:
        if not exc.problems:
            raise fail(exc) from None
        err_console.print(_bad_cells(exc.problems, exc.bad_rows))
        raise fail(WindowImportError(exc.summary)) from None
    except StickerqError as exc:
        raise fail(exc) from None
    if as_json:
        print(to_json(WindowImportView.of(result)))
        return
    if not result.rows:
        console.print("the file has no rows: nothing was stored")
        return
    span = (
        f", messages from {result.first_inbound_at:%Y-%m-%d %H:%M:%S} to "
        f"{result.last_inbound_at:%Y-%m-%d %H:%M:%S} UTC"
        if result.first_inbound_at and result.last_inbound_at
        else ""
    )
    console.print(
        f"{result.rows:,} rows stored: {result.pairs:,} customer windows of "
        f"{result.customers:,} customers with {result.senders:,} business numbers{span}"
    )


@window_app.command("show")
def show(
    number: Annotated[str, typer.Argument(help="the customer's number, E.164 (+919812345678)")],
    sender: From = None,
    show_numbers: ShowNumbers = False,
    as_json: AsJson = False,
) -> None:
    """A customer's windows with each business number: last message, open now or not, until
    when, and whether a 131047 shut it."""
    from stickerq.masking import numbers_shown
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.windows import CustomerWindowsView
    from stickerq.producer.window_views import show_windows

    try:
        result = show_windows(load_settings(), number, sender=sender)
    except StickerqError as exc:
        raise fail(exc) from None
    view = CustomerWindowsView.of_result(result, numbers_shown(show_numbers))
    if as_json:
        print(to_json(view))
        return
    if not view.windows:
        with_whom = f"to {escape(sender)} " if sender else ""
        console.print(f"no window: {view.customer} never wrote {with_whom}(that the ledger knows)")
        return
    table = Table(title=f"{view.customer}: windows at {_utc(view.now)}")
    for column in ("business number", "last message", "type", "now", "until", "131047 at"):
        table.add_column(column)
    for window in view.windows:
        table.add_row(
            window.sender,
            _utc(window.last_inbound_at),
            escape(window.last_type or "-"),
            "[green]open[/]" if window.open else "[red]closed[/]",
            _utc(window.ends_at),
            _utc(window.closed_at) if window.closed_at else "-",
        )
    console.print(table)


@window_app.command("stats")
def stats(sender: From = None, as_json: AsJson = False) -> None:
    """Per business number: customers in their window now, and those whose window closes
    within the hour (a sticker to them must go soon)."""
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.windows import WindowStatsView
    from stickerq.producer.window_views import window_stats

    try:
        view = WindowStatsView.of_result(window_stats(load_settings(), sender=sender))
    except StickerqError as exc:
        raise fail(exc) from None
    if as_json:
        print(to_json(view))
        return
    if not view.senders:
        console.print("the window ledger is empty: no customer has written (that it knows)")
        return
    table = Table(title=f"customers in their window at {_utc(view.now)}")
    for column in ("business number", "in window", "closing within the hour"):
        table.add_column(column, justify="left" if column == "business number" else "right")
    for row in view.senders:
        table.add_row(row.sender, f"{row.open_now:,}", f"{row.closing_within_hour:,}")
    if len(view.senders) > 1:
        table.add_row(
            "[bold]all", f"[bold]{view.open_now:,}", f"[bold]{view.closing_within_hour:,}"
        )
    console.print(table)


@contextmanager
def _progress_bar() -> Iterator[Progress]:
    """A bar on stderr while the file is checked, then stored (none off a terminal)."""
    if not err_console.is_terminal:
        yield _no_progress
        return
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=32),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        tasks = {"check": bar.add_task("checking", total=None)}

        def show(step: ImportStep) -> None:
            if step.phase not in tasks:
                tasks[step.phase] = bar.add_task("storing", total=step.total)
            bar.update(tasks[step.phase], completed=step.done, total=step.total)

        yield show


def _no_progress(step: ImportStep) -> None:
    """Off a terminal the import goes without a bar."""


def _bad_cells(problems: list[BadCell], bad_rows: int) -> Table:
    table = Table(title=f"{bad_rows:,} bad row(s): nothing was stored")
    for column in ("line", "column", "value", "reason"):
        table.add_column(column, justify="right" if column == "line" else "left")
    for cell in problems:
        table.add_row(str(cell.line), cell.column, escape(cell.value), escape(cell.reason))
    return table


def _utc(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S} UTC"
