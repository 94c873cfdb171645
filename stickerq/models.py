"""SQLAlchemy 2.0 models: every table of stickerq (docs/architecture.md, "The tables").

The same models run on SQLite (embedded default) and PostgreSQL (production).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    REAL,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from stickerq.states import CampaignStatus, MessageStatus

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a real bigint.
BigId = BigInteger().with_variant(Integer(), "sqlite")
REF_LENGTH = 255


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    sid: Mapped[str] = mapped_column(String(64))
    sender: Mapped[str] = mapped_column(String(20))
    sticker_id: Mapped[str | None] = mapped_column(String(200))
    sticker_link: Mapped[str | None] = mapped_column(Text)
    wa_source: Mapped[str] = mapped_column(String(32), default="api")
    ref: Mapped[str | None] = mapped_column(String(REF_LENGTH))
    ref1: Mapped[str | None] = mapped_column(String(REF_LENGTH))
    ref2: Mapped[str | None] = mapped_column(String(REF_LENGTH))
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.QUEUED)
    pause_reason: Mapped[str | None] = mapped_column(Text)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recipient_count: Mapped[int] = mapped_column(Integer, default=0)
    # The zone the user gave the scheduled time in (for display); scheduled_at is UTC.
    timezone: Mapped[str | None] = mapped_column(String(64))
    schedule_id: Mapped[int | None] = mapped_column(
        ForeignKey("schedules.id", ondelete="SET NULL"), index=True
    )
    # WA400s in a row (reset by any other outcome): a long run auto-pauses the campaign.
    wa400_streak: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A message not sent by valid_until expires (`send --valid-for`); valid_for_seconds is
    # what each recurring run counts from its own start. Both null: no deadline.
    valid_for_seconds: Mapped[int | None] = mapped_column(Integer)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Recipients dropped at enqueue: their number is on the account's suppression list.
    suppressed_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Its recipients CSV had a `from` column: messages may name their own sender, and a
    # worker groups each batch by sender. `sender` is then the default for rows without one
    # ("" when there is none).
    senders_per_row: Mapped[bool] = mapped_column(default=False, server_default=false())
    # When its messages began to be purged, past the retention period (worker/purge.py): its
    # counts stay, its messages and their attempts go.
    messages_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Sent only where the recipient's 24-hour window with the sender is open when its batch
    # is claimed (`send --in-window`, worker/window_check.py); the rest end `outside_window`.
    in_window: Mapped[bool] = mapped_column(default=False, server_default=false())

    __table_args__ = (Index(None, "status", "scheduled_at"), Index(None, "status", "valid_until"))


class CampaignSender(Base):
    """A business number some of a campaign's messages are sent from (its CSV's `from`
    column): resuming that sender finds the campaign here."""

    __tablename__ = "campaign_senders"

    campaign_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    sender: Mapped[str] = mapped_column(String(20), primary_key=True, index=True)


class Schedule(Base):
    """A recurring broadcast: each run is a campaign cloned from the template campaign,
    with the template's recipients (the audience is frozen when the schedule is made)."""

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    cron: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64))
    template_campaign_id: Mapped[int | None] = mapped_column(BigId)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index(None, "active", "next_run_at"),)


# The predicates of two partial indexes of messages (the statements that use them repeat them).
RETRY_DUE = "status = 'pending' AND next_attempt_at IS NOT NULL"
OPEN_CLAIM = "status = 'sending'"
# Only sent messages have a message_id; `message_id = x` proves the predicate by itself.
HAS_MESSAGE_ID = "message_id IS NOT NULL"


class Message(Base):
    """One recipient of one campaign."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    recipient: Mapped[str] = mapped_column(String(20))
    # The business number it is sent from, when not the campaign's (a CSV's `from` column).
    sender: Mapped[str | None] = mapped_column(String(20))
    ref: Mapped[str | None] = mapped_column(String(REF_LENGTH))
    ref1: Mapped[str | None] = mapped_column(String(REF_LENGTH))
    ref2: Mapped[str | None] = mapped_column(String(REF_LENGTH))
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Durable WA500 retries already scheduled (index into the retry delays).
    delayed_retries: Mapped[int] = mapped_column(Integer, default=0)
    # Due time of a durable WA500 retry (or of a resend after a connection failure).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message_id: Mapped[str | None] = mapped_column(String(128))
    # The claim that moved it to `sending`: the sweeper asks Redis what that claim sent.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    # Written before the first request under a claim leaves (worker/leaving.py): equal to
    # claim_token, the request may have left; otherwise it provably did not. The database's
    # own evidence, for when Redis lost the claim's record of sends.
    leaving_claim_token: Mapped[str | None] = mapped_column(String(32))
    last_error_code: Mapped[str | None] = mapped_column(String(32))
    last_http_status: Mapped[int | None] = mapped_column(Integer)
    last_error_detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The request that sent it, request to answer: with sent_at and last_http_status, the
    # WA202 attempt that has no `attempts` row (stickerq/sending_attempts.py).
    sent_latency_ms: Mapped[float | None] = mapped_column(REAL)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("campaign_id", "recipient"),
        Index(None, "campaign_id", "status"),
        # Partial indexes, so that only the statements that name their predicate can use
        # them: no index leads with `status` for a claim to walk when statistics are stale.
        Index(
            "ix_messages_retry_due",
            "next_attempt_at",
            postgresql_where=text(RETRY_DUE),
            sqlite_where=text(RETRY_DUE),
        ),
        Index(
            "ix_messages_open_claims",
            "claimed_at",
            postgresql_where=text(OPEN_CLAIM),
            sqlite_where=text(OPEN_CLAIM),
        ),
        # Partial: no entry for a message without one (each version of a pending, sending or
        # failed row put one there: 14 bytes a message on PostgreSQL, migration 0015).
        Index(
            "ix_messages_message_id",
            "message_id",
            postgresql_where=text(HAS_MESSAGE_ID),
            sqlite_where=text(HAS_MESSAGE_ID),
        ),
    )


class CampaignCount(Base):
    """Messages of one campaign in one status with one last error code, and their attempts.

    Kept by triggers on `messages` (migration 0003) in the transaction of each change, so
    progress reads a few rows instead of counting a campaign. A campaign's figure is the sum
    over `backend`: on PostgreSQL each database backend adds to rows of its own, so two
    transactions never wait on one counter row; rows of one backend may go negative.
    """

    __tablename__ = "campaign_counts"

    # No foreign key (see migration 0003): a deleted campaign's counts go to zero instead.
    campaign_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)  # "" for no error code
    backend: Mapped[int] = mapped_column(Integer, primary_key=True)
    messages: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(BigInteger)
    attempted: Mapped[int] = mapped_column(BigInteger)  # messages with at least one attempt
    retries_waiting: Mapped[int] = mapped_column(BigInteger)  # with a due time set


class PurgeTotals(Base):
    """What a purged campaign's report shows that its counts do not hold, written as its
    messages begin to go (worker/purge.py)."""

    __tablename__ = "purge_totals"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    sent: Mapped[int] = mapped_column(BigInteger)  # messages with a sent_at
    delivered: Mapped[int] = mapped_column(BigInteger)  # delivered or read
    read: Mapped[int] = mapped_column(BigInteger)
    first_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Attempt(Base):
    """One request to Kaleyra for one message: what answered, and how fast."""

    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_pk: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    latency_ms: Mapped[float | None]
    http_status: Mapped[int | None] = mapped_column(Integer)
    code: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)


class CustomerWindow(Base):
    """The window ledger: when a customer last wrote to a business number (Kaleyra's
    incoming-message callbacks, or `stickerq window import`), which opens their 24-hour
    customer service window. Never what they wrote. A 131047 status callback sets
    `closed_at`: WhatsApp says the window is shut, whatever the ledger thought, until the
    customer writes again (producer/window_ledger.py)."""

    __tablename__ = "customer_windows"

    sender: Mapped[str] = mapped_column(String(20), primary_key=True)  # the business number
    customer: Mapped[str] = mapped_column(String(20), primary_key=True)  # E.164
    last_inbound_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_type: Mapped[str | None] = mapped_column(String(32))  # text, image, sticker...
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # `send --to-window` and `window stats`: a sender's customers by their last inbound time
    __table_args__ = (Index(None, "sender", "last_inbound_at"),)


class Pause(Base):
    """An account (SID) or one of its sender numbers that must send nothing until resumed."""

    __tablename__ = "pauses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(16))
    sid: Mapped[str] = mapped_column(String(64))
    # Empty for an account pause; a sender number for a sender pause.
    sender: Mapped[str] = mapped_column(String(20), default="")
    code: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    campaign_id: Mapped[int | None] = mapped_column(BigId)
    paused_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index(None, "sid", "sender", "resumed_at"),
        # At most one pause in force per account or sender, however many batches ask at once.
        Index(
            "uq_pauses_in_force",
            "scope",
            "sid",
            "sender",
            unique=True,
            sqlite_where=text("resumed_at IS NULL"),
            postgresql_where=text("resumed_at IS NULL"),
        ),
    )


class IdempotencyKey(Base):
    """A client's Idempotency-Key: the campaign its first request made, and that body's hash."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    # null while the first request is being stored: the key is reserved before the campaign
    campaign_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("campaigns.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The reservation's owner (producer/key_owners.py): its token, which the store's commit
    # checks, and its process (`boot:pid:start` on SQLite, what tells a dead owner; host:pid
    # on PostgreSQL, for operators). Null on keys reserved before 0012.
    owner_token: Mapped[str | None] = mapped_column(String(32))
    owner_process: Mapped[str | None] = mapped_column(String(255))


class UnknownCallback(Base):
    """A status callback whose message_id matched no message: kept for inspection.

    Early ones (Kaleyra answered faster than the worker wrote the message_id) are applied
    and deleted when their message appears (producer/unknown_callbacks.py, `apply_unknown`);
    the rest stay until beat's purge (worker/retention.py): messages sent by another system
    on the same Kaleyra account, say. One row per message_id and status: copies are ignored.
    """

    __tablename__ = "unknown_callbacks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the callback's own timestamp
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_detail: Mapped[str | None] = mapped_column(Text)
    ref: Mapped[str | None] = mapped_column(String(REF_LENGTH))
    ref1: Mapped[str | None] = mapped_column(String(REF_LENGTH))
    ref2: Mapped[str | None] = mapped_column(String(REF_LENGTH))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    __table_args__ = (
        # the conflict target of insert-or-ignore; also the lookup by message_id
        Index("uq_unknown_callbacks_message_id_status", "message_id", "status", unique=True),
    )


class Suppression(Base):
    """A number (E.164) of one account (SID) that must never get a sticker: an opt-out.

    The primary key is the lookup index: enqueue anti-joins it, each claimed batch probes it.
    """

    __tablename__ = "suppressions"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ErasedSuppression(Base):
    """A suppressed number that was erased (`stickerq erase`): kept as an HMAC-SHA256 of its
    E.164 form under STICKERQ_ERASURE_KEY, so that it stays suppressed with no trace of the
    number (stickerq/suppression_list.py). The primary key is the lookup, as on the list."""

    __tablename__ = "erased_suppressions"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    phone_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # hex
    reason: Mapped[str] = mapped_column(Text)  # the suppression's, the number cut out
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when it was suppressed
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SenderRate(Base):
    """A sender number's own rate (messages per second, every worker together); a number
    without a row sends at STICKERQ_RATE_PER_SECOND. Claims read it by primary key."""

    __tablename__ = "sender_rates"

    sender: Mapped[str] = mapped_column(String(20), primary_key=True)  # E.164
    rate_per_second: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEntry(Base):
    """One change made by a person or an API key, written in the change's own transaction
    (stickerq/audit.py). Append-only: nothing updates or deletes an entry, but an erasure,
    which puts the keyed hash of a number where the number was."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # an API key's name, `env:N` for a STICKERQ_API_TOKENS token, or `cli:<user>@<host>`
    actor: Mapped[str] = mapped_column(String(255), index=True)
    action: Mapped[str] = mapped_column(String(64))  # campaign.paused, pause.lifted...
    target: Mapped[str] = mapped_column(String(255))  # campaign:12, sender:+91..., key:crm
    params: Mapped[str] = mapped_column(Text, default="{}")  # JSON; never a secret


class ApiKey(Base):
    """An API key (`stickerq keys create`): its name, scope and account, never its value.

    Only a SHA-256 of the key is kept. A fast hash is right here, unlike for a password: the
    key is 32 random bytes (producer/api_keys.py), so no guess list or brute force reaches
    it, and the guard can look a key up by its hash on a request without a slow KDF.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # unique for ever, revoked or not: the audit log names keys by it (`key:<name>`)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256, hex; the lookup
    scope: Mapped[str] = mapped_column(String(16))  # stickerq.scopes.Scope
    account: Mapped[str | None] = mapped_column(String(64))  # the only SID it reaches; None: all
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # written at most about once a minute a key (stickerq/api/key_cache.py), not per request
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookEndpoint(Base):
    """A URL that gets signed POSTs of the events it subscribes to (stickerq/webhook_outbox.py).

    `secret` is a shared secret, stored because every POST is signed with it: it is shown once
    when the endpoint is added and never logged, listed or returned after that."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(128))
    events: Mapped[str] = mapped_column(Text)  # comma-separated event types, sorted
    account: Mapped[str | None] = mapped_column(String(64))  # a SID's events only; null: all
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # since when every POST has failed (null while the last one succeeded)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    # one delivery round at a time per endpoint: its order per campaign needs no row locks
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookOutboxEvent(Base):
    """One event for one endpoint: written in the transaction of the change that caused it,
    then delivered (worker/webhook_delivery.py). The endpoints of one event share its
    `event_id`. Delivered and failed rows are purged after STICKERQ_WEBHOOK_RETENTION_DAYS.
    No phone number is kept here: message events name the message, not its recipient."""

    __tablename__ = "webhook_outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)  # the order
    endpoint_id: Mapped[int] = mapped_column(BigId)  # no foreign key: see webhook_outbox.py
    event_id: Mapped[str] = mapped_column(String(36))  # uuid, Stickerq-Event-Id (webhook_outbox)
    type: Mapped[str] = mapped_column(String(32))
    campaign_id: Mapped[int | None] = mapped_column(BigId)
    payload: Mapped[str] = mapped_column(Text)  # JSON: the event's `data`
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        # the delivery's lookup: an endpoint's waiting events in order
        Index(
            "ix_webhook_outbox_waiting",
            "endpoint_id",
            "id",
            sqlite_where=text("delivered_at IS NULL AND failed_at IS NULL"),
            postgresql_where=text("delivered_at IS NULL AND failed_at IS NULL"),
        ),
    )
