"""What an API key may do: four scopes, each allowing all that the ones before it allow.

In the foundation because the keys' domain functions (producer/api_keys.py) store them and
the HTTP API checks them on every route (stickerq/api/auth.py).
"""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    """What a key may do, each scope with all that the ones before it may."""

    READ = "read"  # campaigns, reports, failures, exports: nothing changes
    SEND = "send"  # may also create campaigns
    OPERATE = "operate"  # may also pause, resume, cancel, requeue, suppress, set rates
    ADMIN = "admin"  # may also manage keys, webhooks and retention

    def allows(self, needed: Scope) -> bool:
        return _SCOPE_ORDER.index(self) >= _SCOPE_ORDER.index(needed)

    def below(self) -> Scope | None:
        """The scope just below this one; None for read."""
        place = _SCOPE_ORDER.index(self)
        return _SCOPE_ORDER[place - 1] if place else None


_SCOPE_ORDER = list(Scope)
