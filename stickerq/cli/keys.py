"""`stickerq keys create|list|revoke`: the HTTP API's keys, each with a scope and an account."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from stickerq.cli.common import console, err_console, fail, load_settings
from stickerq.errors import StickerqError
from stickerq.scopes import Scope

if TYPE_CHECKING:
    from datetime import datetime

keys_app = typer.Typer(
    help="API keys: read < send < operate < admin, optionally for one account.",
    no_args_is_help=True,
)
Name = Annotated[str, typer.Argument(help="the key's name, e.g. crm-prod")]
AsJson = Annotated[bool, typer.Option("--json", help="print as JSON (docs/json.md)")]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the stickerq app."""
    app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def create(
    name: Name,
    scope: Annotated[Scope, typer.Option(help="what the key may do")],
    account: Annotated[
        str | None, typer.Option(help="the only account (SID) whose campaigns it reaches")
    ] = None,
    expires: Annotated[
        str | None, typer.Option(help="it stops working after this long: 90d, 12h, 1w")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Make a key and print it once, on stdout: only its hash is stored."""
    from stickerq.actors import cli_actor
    from stickerq.producer.api_keys import create_key
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.keys import NewKeyView

    try:
        made = create_key(
            load_settings(), cli_actor(), name, scope, account=account, expires=expires
        )
    except StickerqError as exc:
        raise fail(exc) from None
    if as_json:
        print(to_json(NewKeyView.of(made.info, key=made.key)))
        return
    err_console.print(
        f"key {escape(name)} ({made.info.scope}"
        + (f", account {escape(made.info.account)}" if made.info.account else "")
        + f", expires {_time(made.info.expires_at)}): shown this once, keep it now"
    )
    print(made.key)  # alone on stdout: `KEY=$(stickerq keys create ...)`


@keys_app.command("list")
def list_(as_json: AsJson = False) -> None:
    """Every key: name, scope, account, created, last used (to a minute), expiry, revoked."""
    from stickerq.producer.api_keys import list_keys
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.keys import KeyView

    try:
        keys = list_keys(load_settings())
    except StickerqError as exc:
        raise fail(exc) from None
    if as_json:
        print(to_json([KeyView.of(info) for info in keys]))
        return
    table = Table(title="API keys (STICKERQ_API_TOKENS' are admin keys env:1, env:2...)")
    for column in ("name", "scope", "account", "created", "last used", "expires", "revoked"):
        table.add_column(column)
    for info in keys:
        table.add_row(
            escape(info.name),
            info.scope,
            escape(info.account or "every"),
            _time(info.created_at),
            _time(info.last_used_at),
            _time(info.expires_at),
            _time(info.revoked_at),
        )
    console.print(table)


@keys_app.command("revoke")
def revoke(name: Name, as_json: AsJson = False) -> None:
    """Revoke the key: refused everywhere within a few seconds, its dashboard sessions too."""
    from stickerq.actors import cli_actor
    from stickerq.producer.api_keys import revoke_key
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.keys import KeyView

    try:
        info = revoke_key(load_settings(), cli_actor(), name)
    except StickerqError as exc:
        raise fail(exc) from None
    if as_json:
        print(to_json(KeyView.of(info)))
        return
    console.print(f"key {escape(info.name)}: revoked {_time(info.revoked_at)}")


def _time(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment else "-"
