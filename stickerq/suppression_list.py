"""The suppression list's one lookup: which of some numbers an account must not send to.

A number is on the list in clear (`suppressions`) or, once erased (`stickerq erase`), as an
HMAC-SHA256 of its E.164 form under STICKERQ_ERASURE_KEY (`erased_suppressions`): the number
is gone from the database, yet anyone who writes it again is still recognised. Both tables
are looked up by primary key, in one statement: the enqueue (producer/bulk_insert.py) and
the claim (worker/suppressed.py) call `found_on_list`.

Without the key, erased entries cannot be matched: a lookup on an account that has some
raises ErasureKeyMissing rather than send to a number that opted out. Changing the key has
the same effect without the error, so it must be kept as long as the list (never rotated).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection

from pydantic import SecretStr
from sqlalchemy import literal, select, union_all
from sqlalchemy.orm import Session

from stickerq.errors import ConfigurationError
from stickerq.models import ErasedSuppression, Suppression
from stickerq.settings import Settings

SET_THE_KEY = (
    "set STICKERQ_ERASURE_KEY (make one with `openssl rand -hex 32`) to the same value on "
    "every worker, API and CLI host, and keep it: erased suppressions are matched through it"
)
MIN_KEY_LENGTH = 16


class ErasureKeyMissing(ConfigurationError):
    """Erased suppressions exist (or an erase needs to make one) but no key is set."""


class PhoneHasher:
    """E.164 number -> hex HMAC-SHA256 under the erasure key. The key stays in here: no
    repr, no attribute that a log line or an exception could show."""

    __slots__ = ("_inner",)

    def __init__(self, key: SecretStr) -> None:
        secret = key.get_secret_value()
        if len(secret) < MIN_KEY_LENGTH:
            raise ConfigurationError(
                f"STICKERQ_ERASURE_KEY is shorter than {MIN_KEY_LENGTH} characters: {SET_THE_KEY}"
            )
        self._inner = hmac.new(secret.encode(), digestmod=hashlib.sha256)

    def __call__(self, phone: str) -> str:
        mac = self._inner.copy()
        mac.update(phone.encode())
        return mac.hexdigest()

    def __repr__(self) -> str:
        return "PhoneHasher(***)"


def phone_hasher(settings: Settings) -> PhoneHasher | None:
    """The settings' hasher; None when STICKERQ_ERASURE_KEY is not set."""
    if not settings.erasure_key.get_secret_value():
        return None
    return PhoneHasher(settings.erasure_key)


def has_erased(session: Session, sid: str) -> bool:
    """Whether the account has erased suppressions (a probe of the primary key's prefix)."""
    probe = select(literal(1)).where(ErasedSuppression.sid == sid).limit(1)
    return session.execute(probe).first() is not None


def found_on_list(
    session: Session, sid: str, phones: Collection[str], hasher: PhoneHasher | None
) -> set[str]:
    """The numbers among `phones` (E.164) suppressed on `sid`, in clear or erased: one
    SELECT of both tables by primary key. Raises ErasureKeyMissing when the account has
    erased entries and `hasher` is None."""
    if not phones:
        return set()
    wanted = sorted(set(phones))
    clear = select(Suppression.phone.label("found")).where(
        Suppression.sid == sid, Suppression.phone.in_(wanted)
    )
    if hasher is None:
        # Any erased entry of the account at all: one row from the key's prefix.
        any_erased = (
            select(ErasedSuppression.phone_hash).where(ErasedSuppression.sid == sid).limit(1)
        ).subquery()
        found = set(session.scalars(union_all(clear, select(any_erased.c.phone_hash))))
        if found - set(wanted):
            raise ErasureKeyMissing(
                f"account {sid} has erased suppressions, which only STICKERQ_ERASURE_KEY "
                f"can match: {SET_THE_KEY}"
            )
        return found
    by_hash = {hasher(phone): phone for phone in wanted}
    erased = select(ErasedSuppression.phone_hash).where(
        ErasedSuppression.sid == sid, ErasedSuppression.phone_hash.in_(sorted(by_hash))
    )
    return {by_hash.get(value, value) for value in session.scalars(union_all(clear, erased))}
