"""The signature of a webhook POST: `Stickerq-Signature: t=<unix seconds>,v1=<hex>`, where
the hex is HMAC-SHA256 of "<t>.<body>" under the endpoint's secret. Signing the time with
the body lets a receiver refuse a replayed POST: one whose `t` is older than TOLERANCE."""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "Stickerq-Signature"
EVENT_ID_HEADER = "Stickerq-Event-Id"
TOLERANCE_SECONDS = 300  # what the README's receiver accepts
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A secret for an endpoint added without one: 256 random bits."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The Stickerq-Signature header's value for this body sent at `timestamp`."""
    return f"t={timestamp},v1={_digest(secret, body, timestamp)}"


def verify(secret: str, body: bytes, header: str, now: float) -> bool:
    """True when `header` signs `body` with `secret` and its time is within the tolerance:
    the receiver's check, written once here for tests and for the README's example."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        return False
    return hmac.compare_digest(fields.get("v1", ""), _digest(secret, body, timestamp))


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
