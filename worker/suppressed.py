"""The suppression list, checked again right after a batch is claimed.

The enqueue dropped the numbers suppressed then; one added since (an operator, or Meta's
131050 in a callback) is caught here: one SELECT on the list's primary keys for the whole
batch (`found_on_list`: (sid, phone), and (sid, phone_hash) for erased numbers), and only when
it finds some, one UPDATE of those messages, locked by primary key, from `sending` to
`suppressed`. They are never sent.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from stickerq.message_status import MessageMove
from stickerq.suppression_list import PhoneHasher, found_on_list
from stickerq.worker.claims import ClaimedMessage, drop_claimed

DETAIL = "not sent: the number is on the account's suppression list"


def drop_suppressed(
    session: Session,
    sid: str,
    token: str,
    claimed: Sequence[ClaimedMessage],
    hasher: PhoneHasher | None = None,
) -> list[ClaimedMessage]:
    """The claimed messages still to send; those whose number is suppressed on `sid` become
    `suppressed`, in the claim's transaction. Without `hasher` (no STICKERQ_ERASURE_KEY), an
    account with erased suppressions raises ErasureKeyMissing: the claim is rolled back and
    nothing is sent until the key is set."""
    if not claimed:
        return []
    found = found_on_list(session, sid, {message.recipient for message in claimed}, hasher)
    if not found:
        return list(claimed)
    suppressed = [message.pk for message in claimed if message.recipient in found]
    drop_claimed(session, MessageMove.SUPPRESS, suppressed, token, DETAIL)
    return [message for message in claimed if message.recipient not in found]
