"""The HTTP API: a thin FastAPI shell over the producer's functions, beside the CLI."""

from stickerq.api.app import create_app

__all__ = ["create_app"]
