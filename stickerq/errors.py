"""The one root of stickerq's own errors: each says what is wrong, where, and how to fix it."""

from __future__ import annotations

from datetime import datetime

EXCERPT_MAX = 60  # longest value quoted back to the user in a problem report


class StickerqError(Exception):
    """Base of every error stickerq raises on purpose."""


class ConfigurationError(StickerqError):
    """A setting is missing or wrong."""


class ServiceUnavailable(StickerqError):
    """Redis or the database cannot be reached."""


class CampaignNotFound(StickerqError):
    """No campaign has that id."""


class MessagesPurged(StickerqError):
    """The campaign's messages are gone (retention, worker/purge.py); its counts and report
    remain."""

    @classmethod
    def of(cls, campaign_id: int, purged_at: datetime | None, what: str) -> MessagesPurged:
        when = f" on {purged_at:%Y-%m-%d}" if purged_at else ""
        return cls(
            f"campaign {campaign_id}'s messages were purged{when}, past the retention period "
            f"(STICKERQ_RETENTION_DAYS or the account's retention_days): {what} needs them. "
            f"Its counts by status and code remain: `stickerq report {campaign_id}`"
        )


def excerpt(value: object, limit: int = EXCERPT_MAX) -> str:
    """The value as text, cut to `limit` characters, for quoting back in a report."""
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
