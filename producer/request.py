"""What a caller asks for: a campaign to send (`CampaignRequest`) and when (`Timing`).

The typed carriers that `stickerq send` and the HTTP API build from their input. They carry
the values as given and check nothing: the spec is validated by producer.spec, the
recipients by producer.recipients, the times by producer.schedule, each in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignRequest:
    """One sticker to a list of recipients, from one sender, with the campaign's refs."""

    sticker_id: str | None = None  # an uploaded media id, or ...
    sticker_link: str | None = None  # ... an https URL of the WebP: exactly one of the two
    to: str | None = None  # comma-separated E.164 numbers, or ...
    to_file: Path | None = None  # ... a CSV with a phone column (+ ref, ref1, ref2, from)
    # The business number; None: settings.sender (or the CSV's from column, row by row).
    sender: str | None = None
    # The Kaleyra account's SID; None: the only one configured (settings.account).
    account: str | None = None
    name: str | None = None  # None: "campaign <UTC time>"
    ref: str | None = None  # defaults for the rows that carry no ref of their own
    ref1: str | None = None
    ref2: str | None = None
    wa_source: str = "api"
    skip_invalid: bool = False  # store the valid recipients and report the rest
    no_check: bool = False  # store a sticker_link without fetching it first (sticker_links.py)
    # A message not sent this long after the campaign's (each run's) start expires: `6h`,
    # `90m`; or not sent by `valid_until` (aware, or naive read in Timing.tz). Neither:
    # settings.valid_for (STICKERQ_VALID_FOR), unset = no limit. See producer/validity.py.
    valid_for: str | timedelta | None = None
    valid_until: str | datetime | None = None
    # Sent only inside each recipient's 24-hour window with the sender (worker/window_check.py);
    # None: settings.in_window (STICKERQ_IN_WINDOW), or True with to_window.
    in_window: bool | None = None
    # The recipients are every customer who wrote to the sender within `window_since` (`24h`,
    # `2d` or an ISO time; default 24h), read from the window ledger: no to, no to_file.
    to_window: bool = False
    window_since: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """When to send: now (nothing given), once `at`, or at every time the cron `every` fires.

    `tz` is the zone `at` is read in when it has no offset, and the zone of `every`.
    """

    at: str | datetime | None = None
    tz: str | None = None
    every: str | None = None
    now_if_past: bool = False  # an `at` in the past sends at once instead of being refused
