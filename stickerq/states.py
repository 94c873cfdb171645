"""Message and campaign states (docs/architecture.md, "Message states" and "Campaign states")."""

from enum import StrEnum


class MessageStatus(StrEnum):
    PENDING = "pending"  # waiting to be claimed (maybe with a due time for a WA500 retry)
    SENDING = "sending"  # claimed by one worker; its request may be in flight
    SENT = "sent"  # Kaleyra accepted it and gave a message_id
    DELIVERED = "delivered"  # callback
    READ = "read"  # callback
    PARKED = "parked"  # E110 / WA401 / WAV2101: waits for an operator's requeue
    FAILED = "failed"  # final error, or WA500 retries exhausted
    UNKNOWN = "unknown"  # the request may have gone out; never resent automatically
    CANCELLED = "cancelled"  # its campaign was cancelled before it was sent
    EXPIRED = "expired"  # its campaign's deadline (--valid-for) passed before it was sent
    SUPPRESSED = "suppressed"  # its number was suppressed after enqueue: never sent
    # `--in-window`: its recipient's 24-hour window with the sender was closed when it was
    # claimed, or ended before it could go: never sent
    OUTSIDE_WINDOW = "outside_window"


SETTLED = frozenset(
    {
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.READ,
        MessageStatus.PARKED,
        MessageStatus.FAILED,
        MessageStatus.UNKNOWN,
        MessageStatus.CANCELLED,
        MessageStatus.EXPIRED,
        MessageStatus.SUPPRESSED,
        MessageStatus.OUTSIDE_WINDOW,
    }
)
UNSETTLED = frozenset({MessageStatus.PENDING, MessageStatus.SENDING})


class CampaignStatus(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


# Meta's code for a message outside the recipient's 24-hour window (only a template reaches
# them): its own column in exports, its own line in reports (producer/window.py).
OUTSIDE_WINDOW_CODE = "131047"


class PauseScope(StrEnum):
    ACCOUNT = "account"  # every sender of one SID
    SENDER = "sender"  # one business number of a SID
