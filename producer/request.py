"""What a caller asks to send (`CampaignRequest`).

The typed carrier that `stickerq send` and the HTTP API build from their input. It carries
the values as given and checks nothing: the spec is validated by producer.spec and the
recipients by producer.recipients, each in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignRequest:
    """One sticker to a list of recipients, from one sender, with the campaign's refs."""

    sticker_id: str | None = None  # an uploaded media id, or ...
    sticker_link: str | None = None  # ... an https URL of the WebP: exactly one of the two
    to: str | None = None  # comma-separated E.164 numbers, or ...
    to_file: Path | None = None  # ... a CSV with a phone column (+ ref, ref1, ref2)
    sender: str | None = None  # the business number; None: settings.sender
    name: str | None = None  # None: "campaign <UTC time>"
    ref: str | None = None  # defaults for the rows that carry no ref of their own
    ref1: str | None = None
    ref2: str | None = None
    wa_source: str = "api"
    skip_invalid: bool = False  # store the valid recipients and report the rest
