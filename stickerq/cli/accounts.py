"""`stickerq accounts list`: the Kaleyra accounts campaigns may name, never their keys."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from stickerq.cli.common import console, fail, load_settings
from stickerq.errors import StickerqError

accounts_app = typer.Typer(
    help="The Kaleyra accounts of this deployment (STICKERQ_ACCOUNTS_FILE, STICKERQ_ACCOUNTS, "
    "or the one of STICKERQ_KALEYRA_*).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the stickerq app."""
    app.add_typer(accounts_app, name="accounts")


@accounts_app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON (docs/json.md)")] = False,
) -> None:
    """Each account's SID, pod and URL, whether its api-key is set, and its senders."""
    from stickerq.producer.views.accounts import accounts_view
    from stickerq.producer.views.base import to_json

    try:
        shown = accounts_view(load_settings())
    except StickerqError as exc:
        raise fail(exc) from None
    if as_json:
        print(to_json(shown))
        return
    print_accounts(shown.model_dump(mode="json")["accounts"], f"from {shown.source}")


def print_accounts(accounts: list[dict[str, Any]], source: str = "") -> None:
    """A table of AccountView dicts (also under `stickerq config`)."""
    table = Table(title=f"Kaleyra accounts {source}".strip())
    for column in ("sid", "pod", "url", "api-key", "senders"):
        table.add_column(column)
    for account in accounts:
        table.add_row(
            escape(account["sid"]),
            account["pod"],
            escape(account["url"]),
            "set" if account["api_key_set"] else "[red]missing[/]",
            escape(", ".join(account["senders"]) or "any"),
        )
    console.print(table)
