"""The one root of stickerq's own errors: each says what is wrong, where, and how to fix it."""

EXCERPT_MAX = 60  # longest value quoted back to the user in a problem report


class StickerqError(Exception):
    """Base of every error stickerq raises on purpose."""


class ConfigurationError(StickerqError):
    """A setting is missing or wrong."""


class ServiceUnavailable(StickerqError):
    """Redis or the database cannot be reached."""


def excerpt(value: object, limit: int = EXCERPT_MAX) -> str:
    """The value as text, cut to `limit` characters, for quoting back in a report."""
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
