"""The 24-hour customer service window, per (business number, customer) pair, as the sandbox
plays it: WhatsApp delivers a sticker only while the customer's last message to that business
number is less than 24 hours old; a send outside it is accepted, then called back `failed`
with Meta's 131047.

Which pairs are in the window is decided by `in_window_share` from a hash of (seed, sender,
recipient), so a number is in or out every time: across restarts, processes and tests. A
customer message (`POST /_inbound`, or an announce) opens its pair explicitly for 24 hours
from the message's time; after that the pair falls back to the share.
"""

from __future__ import annotations

import hashlib

from stickerq.sandbox.config import SandboxConfig
from stickerq.sandbox.payload import E164

WINDOW_SECONDS = 24 * 3600
ANNOUNCE_SPREAD_SECONDS = 3600  # an announced message is dated up to an hour in the past


def digits(number: str) -> str:
    """A number as Kaleyra's callbacks write it: country code first, no `+`."""
    return number.strip().removeprefix("+")


def is_number(value: object) -> bool:
    """An E.164 number, with or without its `+` (the callbacks' form and the API's)."""
    return isinstance(value, str) and E164.match("+" + digits(value)) is not None


def _digest(seed: int | None, sender: str, recipient: str) -> bytes:
    key = f"{seed}:{digits(sender)}:{digits(recipient)}"
    return hashlib.blake2b(key.encode(), digest_size=16).digest()


def in_share(seed: int | None, share: float, sender: str, recipient: str) -> bool:
    """Whether the pair is in the window by the share: its hash, mapped to [0, 1), is below it.

    Public so that a demo can tell, without asking the sandbox, which numbers it will reach.
    """
    if share >= 1.0:
        return True
    fraction = int.from_bytes(_digest(seed, sender, recipient)[:8], "big") / 2**64
    return fraction < share


def announce_age(seed: int | None, sender: str, recipient: str) -> int:
    """How many seconds before now the pair's announced message is dated: seeded, so that a
    demo's ledger looks the same on every run, spread so that it looks real."""
    return int.from_bytes(_digest(seed, sender, recipient)[8:], "big") % ANNOUNCE_SPREAD_SECONDS


class Windows:
    """The pairs opened by a customer message, and the accepted sends that fell outside."""

    def __init__(self) -> None:
        self.opened: dict[tuple[str, str], float] = {}  # (sender, recipient) digits -> epoch s
        self.outside_window = 0

    def open(self, sender: str, recipient: str, at: float) -> None:
        """A customer message at `at` opens (or renews) the pair's window."""
        pair = (digits(sender), digits(recipient))
        self.opened[pair] = max(at, self.opened.get(pair, at))

    def is_open(self, config: SandboxConfig, sender: str, recipient: str, now: float) -> bool:
        """Opened by a message less than 24 hours old, else in by the share."""
        opened_at = self.opened.get((digits(sender), digits(recipient)))
        if opened_at is not None and now - opened_at < WINDOW_SECONDS:
            return True
        return in_share(config.seed, config.in_window_share, sender, recipient)

    def reaches(self, config: SandboxConfig, sender: str, recipients: str, now: float) -> bool:
        """Whether an accepted send is inside the window of every one of its `recipients`
        (a send may name several, joined by ","); one outside is counted."""
        inside = all(self.is_open(config, sender, r, now) for r in recipients.split(","))
        if not inside:
            self.outside_window += 1
        return inside

    def stats(self) -> dict[str, int]:
        """`outside_window`: accepted sends called back 131047; `opened`: pairs opened."""
        return {"outside_window": self.outside_window, "opened": len(self.opened)}
