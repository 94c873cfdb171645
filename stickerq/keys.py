"""Every Redis key stickerq uses, each under the deployment's prefix (STICKERQ_REDIS_PREFIX).

The broker's keys (queues, unacked tasks) get the same prefix through kombu's
`global_keyprefix` (stickerq/queue.py); `queue_key` names a queue's list among them.
"""

from __future__ import annotations


def account_pause_key(prefix: str, sid: str) -> str:
    """Set while an account is paused: mirrors its pause row (stickerq/pauses.py)."""
    return f"{prefix}pause:account:{sid}"


def sender_pause_key(prefix: str, sid: str, sender: str) -> str:
    """Set while one sender number of an account is paused."""
    return f"{prefix}pause:sender:{sid}:{sender}"


def campaign_pause_key(prefix: str, campaign_id: int) -> str:
    """Set while a campaign is paused or cancelled: its in-flight batches stop at once."""
    return f"{prefix}pause:campaign:{campaign_id}"


def bucket_key(prefix: str, sender: str) -> str:
    """A sender's rate-limit bucket (GCRA's theoretical arrival time, worker/limiter.py)."""
    return f"{prefix}limit:{sender}"


def sender_rate_key(prefix: str, sender: str) -> str:
    """A sender's stored rate, mirrored from the database: the limiter reads it on every ask."""
    return f"{prefix}rate:{sender}"


def pair_key(prefix: str, sender: str, recipient: str) -> str:
    """Held while a sender may not send to this recipient yet (the pair guard, worker/pairs.py)."""
    return f"{prefix}pair:{sender}:{recipient}"


def claim_key(prefix: str, token: str) -> str:
    """A batch claim's heartbeat; its record of sends adds ":sent" and ":dead" (inflight.py)."""
    return f"{prefix}claim:{token}"


def queue_key(prefix: str, queue: str) -> str:
    """The Redis list of a Celery queue."""
    return prefix + queue


def beat_seen_key(prefix: str) -> str:
    """Present while beat's periodic tasks ran in the last minute (stickerq/beat.py)."""
    return f"{prefix}beat:seen"


def dashboard_secret_key(prefix: str) -> str:
    """The deployment's random secret, from which the dashboard's cookie signing key is
    derived with the configured tokens; made once, never expires (api/dashboard/sessions.py)."""
    return f"{prefix}dashboard:secret"


def dashboard_session_key(prefix: str, session_hash: str) -> str:
    """A dashboard session, by the hash of its id: the fingerprint of the token that opened
    it, expiring after STICKERQ_SESSION_IDLE_MINUTES unused (api/dashboard/sessions.py)."""
    return f"{prefix}session:{session_hash}"
