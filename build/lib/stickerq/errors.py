"""The one root of stickerq's own errors: each says what is wrong, where, and how to fix it."""


class StickerqError(Exception):
    """Base of every error stickerq raises on purpose."""


class ConfigurationError(StickerqError):
    """A setting is missing or wrong."""


class ServiceUnavailable(StickerqError):
    """Redis or the database cannot be reached."""
