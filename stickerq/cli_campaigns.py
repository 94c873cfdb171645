"""`stickerq` commands for campaigns (registered on the main app by stickerq.cli)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the stickerq app."""
