"""The interfaces layer's command line: `stickerq` (entry point `stickerq.cli:main`)."""

from stickerq.cli.app import app, main

__all__ = ["app", "main"]
