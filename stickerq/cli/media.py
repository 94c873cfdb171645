"""`stickerq media upload FILE`: a sticker file checked (WebP, 512 x 512, size) and uploaded
to Kaleyra for a media id."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from stickerq.cli.common import console, fail, load_settings
from stickerq.errors import StickerqError

app = typer.Typer(help="Sticker files uploaded to Kaleyra for a media id.", no_args_is_help=True)


def register(main: typer.Typer) -> None:
    """Add `stickerq media ...` to the stickerq app."""
    main.add_typer(app, name="media")


@app.command()
def upload(
    file: Annotated[
        Path, typer.Argument(help="the sticker: WebP, 512x512, <= 100 KB (500 KB animated)")
    ],
    sender: Annotated[
        str | None, typer.Option("--from", help="business number (STICKERQ_SENDER)")
    ] = None,
    account: Annotated[
        str | None,
        typer.Option(help="the Kaleyra account (SID) to upload to; default: the only one"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON (docs/json.md)")] = False,
) -> None:
    """Check the file against WhatsApp's sticker rules, upload it, print its media id."""
    from stickerq.producer.media import upload_media
    from stickerq.producer.views.base import to_json
    from stickerq.producer.views.media import MediaUploadView

    settings = load_settings()
    try:
        uploaded = upload_media(settings, file, sender=sender, account=account)
    except StickerqError as exc:
        raise fail(exc) from None
    if as_json:
        print(to_json(MediaUploadView.of(uploaded)))
        return
    kind = "animated" if uploaded.animated else "static"
    console.print(
        f"media id [bold]{escape(uploaded.media_id)}[/] ({kind}, {uploaded.bytes:,} bytes): "
        f"send it with `stickerq send --sticker-id {escape(uploaded.media_id)} ...`"
    )
