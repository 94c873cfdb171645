"""`stickerq suppress add|remove|list|import`: numbers of an account that never get a sticker."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from stickerq.actors import cli_actor
from stickerq.cli.common import console, err_console, fail, load_settings
from stickerq.errors import StickerqError

if TYPE_CHECKING:
    from stickerq.producer.suppressions import SuppressResult

suppress_app = typer.Typer(
    help="The suppression list: numbers (opt-outs) that must never get a sticker.",
    no_args_is_help=True,
)
Account = Annotated[
    str | None, typer.Option(help="the account (SID) whose list; default STICKERQ_KALEYRA_SID")
]
Reason = Annotated[str, typer.Option(help="why, kept with each number added")]
AsJson = Annotated[bool, typer.Option("--json", help="print as JSON (docs/json.md)")]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the stickerq app."""
    app.add_typer(suppress_app, name="suppress")


@suppress_app.command("add")
def add(
    numbers: Annotated[list[str], typer.Argument(help="numbers, E.164 (+919812345678)")],
    reason: Reason = "opted out",
    account: Account = None,
    as_json: AsJson = False,
) -> None:
    """Put numbers on the list: the enqueue drops them, and a worker sends them nothing."""
    from stickerq.producer.suppressions import add_numbers

    try:
        result = add_numbers(load_settings(), numbers, reason, actor=cli_actor(), account=account)
    except StickerqError as exc:
        raise fail(exc) from None
    _print_result(result, as_json)


@suppress_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="a CSV with a phone column, of any size")],
    reason: Reason = "opted out",
    account: Account = None,
    as_json: AsJson = False,
) -> None:
    """Put every number of a CSV on the list; invalid rows are skipped and listed by line."""
    from stickerq.producer.suppressions import import_file

    try:
        result = import_file(load_settings(), file, reason, actor=cli_actor(), account=account)
    except StickerqError as exc:
        raise fail(exc) from None
    _print_result(result, as_json)


@suppress_app.command("remove")
def remove(
    numbers: Annotated[list[str], typer.Argument(help="numbers, E.164")],
    account: Account = None,
    as_json: AsJson = False,
) -> None:
    """Take numbers off the list: they may get stickers again."""
    from stickerq.producer.suppressions import remove_numbers
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.suppressions import UnsuppressView

    try:
        result = remove_numbers(load_settings(), numbers, actor=cli_actor(), account=account)
    except StickerqError as exc:
        raise fail(exc) from None
    if as_json:
        print(to_json(UnsuppressView.of(result)))
        return
    console.print(
        f"account {escape(result.sid)}: {result.removed:,} removed, "
        f"{result.not_found:,} not on the list"
    )


@suppress_app.command("list")
def list_(
    account: Account = None,
    after: Annotated[str | None, typer.Option(help="start after this number (paging)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="numbers per page")] = 100,
    show_numbers: Annotated[bool, typer.Option(help="numbers in full (masked by default)")] = False,
    as_json: AsJson = False,
) -> None:
    """The account's suppressed numbers, in number order, with reason and time."""
    from stickerq.masking import numbers_shown
    from stickerq.producer.suppressions import list_numbers
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.suppressions import SuppressionPageView, SuppressionView

    try:
        page = list_numbers(load_settings(), account=account, after=after, limit=limit)
    except StickerqError as exc:
        raise fail(exc) from None

    shown = numbers_shown(show_numbers)
    if as_json:
        views = [SuppressionView.of(n, phone=shown(n.phone)) for n in page.numbers]
        print(to_json(SuppressionPageView.of(page, suppressions=views)))
        return
    table = Table(title=f"account {escape(page.sid)}: {page.total:,} suppressed number(s)")
    for column in ("phone", "reason", "since"):
        table.add_column(column)
    for number in page.numbers:
        since = f"{number.created_at:%Y-%m-%d %H:%M:%S}"
        table.add_row(shown(number.phone), escape(number.reason), since)
    console.print(table)
    if page.next_after is not None:
        console.print(f"more: --after {page.next_after}")


def _print_result(result: SuppressResult, as_json: bool) -> None:
    if as_json:
        from stickerq.producer.views.base import to_json
        from stickerq.producer.views.suppressions import SuppressResultView

        print(to_json(SuppressResultView.of(result)))
        return
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}")
    if result.invalid_count:
        table = Table(title=f"{result.invalid_count:,} invalid row(s) skipped")
        for column in ("line", "value", "reason"):
            table.add_column(column, justify="right" if column == "line" else "left")
        for row in result.invalid[:20]:
            table.add_row(str(row.line), escape(row.value), escape(row.reason))
        err_console.print(table)
    console.print(
        f"account {escape(result.sid)}: {result.added:,} added, {result.already:,} already "
        f"suppressed, {result.invalid_count:,} invalid"
    )
