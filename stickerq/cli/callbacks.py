"""`stickerq callbacks apply FILE`: record Kaleyra status callbacks (delivered, read, failed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from stickerq.cli.common import console, err_console, fail, load_settings

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
    from stickerq.producer.callbacks import CallbackError, apply_callback, parse_callback

    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    try:
        payloads = _payloads(text)
    except ValueError as exc:
        err_console.print(f"[red]error:[/] {source} is not JSON or JSON lines ({exc})")
        raise typer.Exit(2) from None
    applied = skipped = 0
    with open_sessions(load_settings().database_url) as sessions, sessions.begin() as session:
        for payload in payloads:
            try:
                applied += apply_callback(session, parse_callback(payload))
            except CallbackError as exc:
                if len(payloads) == 1:
                    raise fail(exc) from None
                skipped += 1
    console.print(
        f"{applied} message(s) updated, {len(payloads) - applied - skipped} unchanged, "
        f"{skipped} not understood"
    )


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
