"""`stickerq callbacks apply|unknown|url`: Kaleyra status callbacks (delivered, read, failed).

The HTTP API receives them as they come (POST /callbacks/kaleyra/<secret>); `apply` records
a file of them with the same function; `unknown` lists those that matched no message.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from stickerq.cli.common import ID_MAX, console, err_console, fail, load_settings

callbacks_app = typer.Typer(help="Kaleyra status callbacks.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the stickerq app."""
    app.add_typer(callbacks_app, name="callbacks")


@callbacks_app.command("apply")
def apply(
    source: str = typer.Argument(
        ..., help="a JSON file of one callback, a list, or JSON lines; - for stdin"
    ),
) -> None:
    """Record callbacks received by your webhook: delivered/read times, Meta's error codes."""
    from stickerq.db import open_sessions
    from stickerq.producer.callback_payloads import CallbackError, parse_callback
    from stickerq.producer.callbacks import apply_callbacks

    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    try:
        payloads = _payloads(text)
    except ValueError as exc:
        err_console.print(f"[red]error:[/] {source} is not JSON or JSON lines ({exc})")
        raise typer.Exit(2) from None
    callbacks, skipped = [], 0
    for payload in payloads:
        try:
            callbacks.append(parse_callback(payload))
        except CallbackError as exc:
            if len(payloads) == 1:
                raise fail(exc) from None
            skipped += 1
    with open_sessions(load_settings().database_url) as sessions, sessions.begin() as session:
        applied = apply_callbacks(session, callbacks)
    console.print(
        f"{applied.changed} message(s) updated, "
        f"{len(callbacks) - applied.changed - applied.unknown} unchanged, "
        f"{applied.unknown} for no known message (`stickerq callbacks unknown`), "
        f"{skipped} not understood"
    )


@callbacks_app.command("unknown")
def unknown(
    limit: Annotated[int, typer.Option(min=1, max=ID_MAX, help="how many, newest first")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON (docs/json.md)")] = False,
) -> None:
    """Callbacks whose message_id matched no message (sent by another system, or too early)."""
    from stickerq.db import open_sessions
    from stickerq.producer.unknown_callbacks import list_unknown
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.callbacks import UnknownCallbackView

    with open_sessions(load_settings().database_url) as sessions, sessions() as session:
        views = [UnknownCallbackView.of(row) for row in list_unknown(session, limit)]
    if as_json:
        print(to_json(views))
        return
    if not views:
        console.print("no unknown callbacks")
        return
    table = Table("received", "message_id", "status", "code", "ref", "ref1", "ref2")
    for view in views:
        table.add_row(
            view.received_at.strftime("%Y-%m-%d %H:%M:%S"),
            escape(view.message_id),
            view.status,
            escape(view.error_code or ""),
            *(escape(value or "") for value in (view.ref, view.ref1, view.ref2)),
        )
    console.print(table)


@callbacks_app.command("url")
def url(
    base_url: Annotated[
        str, typer.Argument(help="the public https address Kaleyra reaches the API at")
    ] = "https://stickerq.example.com",
) -> None:
    """Print the callback URL to give Kaleyra (it holds STICKERQ_CALLBACK_SECRET)."""
    from stickerq.api.callbacks import callback_url, secret_problem

    settings = load_settings()
    problem = secret_problem(settings)
    if problem is not None:
        err_console.print(
            f"[red]error:[/] {problem}: set it (e.g. to `openssl rand -hex 24`) in the API's "
            "environment, then run this again"
        )
        raise typer.Exit(2)
    print(callback_url(settings, base_url))


def _payloads(text: str) -> list[dict]:
    stripped = text.strip()
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError:
        data = [json.loads(line) for line in stripped.splitlines() if line.strip()]
    items = data if isinstance(data, list) else [data]
    if not all(isinstance(item, dict) for item in items):
        raise ValueError("each callback must be a JSON object")
    return items
