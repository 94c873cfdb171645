"""`stickerq senders set-rate|reset|list`: a business number's own rate, for every worker."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from stickerq.actors import cli_actor
from stickerq.cli.common import console, err_console, fail, load_settings
from stickerq.errors import StickerqError

TIERS = (
    "Meta gives each number a tier of 80 to 1,000 messages per second; a number also used in "
    "the WhatsApp Business app gets 20."
)
senders_app = typer.Typer(
    help=f"Per-sender rates, shared by every worker at once. {TIERS}", no_args_is_help=True
)
Number = Annotated[str, typer.Argument(help="the business number, E.164 (+919812345678)")]
AsJson = Annotated[bool, typer.Option("--json", help="print as JSON (docs/json.md)")]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the stickerq app."""
    app.add_typer(senders_app, name="senders")


@senders_app.command(
    "set-rate",
    help=f"Store the number's rate in messages per second: every "
    f"worker uses it within a request, no restart. {TIERS}",
)
def set_rate(
    number: Number,
    rate: Annotated[float, typer.Argument(help="messages per second, e.g. 80, 1000 or 20")],
    as_json: AsJson = False,
) -> None:
    from stickerq.producer import senders

    try:
        info = senders.set_rate(load_settings(), number, rate, actor=cli_actor())
    except StickerqError as exc:
        raise fail(exc) from None
    _print_change(info, as_json, f"{escape(info.sender)}: {info.rate_per_second:g} messages/s")


@senders_app.command("reset")
def reset(number: Number, as_json: AsJson = False) -> None:
    """Forget the number's rate: it sends at STICKERQ_RATE_PER_SECOND again."""
    from stickerq.producer import senders

    try:
        info = senders.reset_rate(load_settings(), number, actor=cli_actor())
    except StickerqError as exc:
        raise fail(exc) from None
    shown = f"{escape(info.sender)}: the default, {info.rate_per_second:g} messages/s"
    _print_change(info, as_json, shown)


@senders_app.command("list")
def list_(as_json: AsJson = False) -> None:
    """The numbers with a rate of their own, and the default of every other number."""
    from stickerq.producer import senders
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.senders import SenderRatesView, SenderRateView

    try:
        rates = senders.list_rates(load_settings())
    except StickerqError as exc:
        raise fail(exc) from None
    if as_json:
        views = [SenderRateView.of(info) for info in rates.senders]
        print(to_json(SenderRatesView.of(rates, senders=views)))
        return
    table = Table(title=f"sender rates (default {rates.default_rate_per_second:g} messages/s)")
    for column in ("sender", "messages/s", "since"):
        table.add_column(column)
    for info in rates.senders:
        since = f"{info.updated_at:%Y-%m-%d %H:%M:%S}" if info.updated_at else "-"
        table.add_row(escape(info.sender), f"{info.rate_per_second:g}", since)
    console.print(table)


def _print_change(info: object, as_json: bool, line: str) -> None:
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.senders import SenderRateChangeView

    view = SenderRateChangeView.of(info)
    if as_json:
        print(to_json(view))
        return
    for warning in view.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}")
    console.print(line)
