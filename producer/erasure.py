"""Erasure of a phone number (`stickerq erase`, `DELETE /recipients/{number}`): the number
goes from every table that holds it, in short transactions that never hold up the send path.

What it does, table by table (docs/operations.md, "Erasing a number"):

- `suppressions`: each account's entry moves to `erased_suppressions` as a keyed hash
  (stickerq/suppression_list.py), in one transaction: the number stays suppressed, and is
  never off the list meanwhile. Refused without STICKERQ_ERASURE_KEY, before anything changes.
- `messages` and their `attempts`: deleted, campaign by campaign through the index on
  (campaign_id, recipient), CAMPAIGN_CHUNK campaigns a transaction. A message a worker is
  sending now (`sending`) is left alone and counted in `left_sending`: run the erase again
  once it settled. A settled message keeps its campaign's counts (the campaign did send it;
  `campaign_counts` gets back what the delete trigger took); a `pending` one leaves them, and
  its campaign's recipient count, as if it had never been enqueued, so the campaign completes.
- `unknown_callbacks` of those messages' message_ids, and any whose text holds the number.
- `idempotency_keys`: the request hash of a campaign that held the number is replaced by
  ERASED_SHA256 (a hash of a body with one number gives the number back to a brute force);
  a key that holds the number itself is deleted.
- free text that holds the number (campaign names and refs, pause and suppression reasons):
  the number is replaced by ERASED_TEXT.
- `customer_windows`: the number's rows as a customer in the window ledger (when it wrote
  to which business number), one transaction, one primary-key probe per business number.
- `audit_log`: the number in an entry's target or parameters (a suppression's, a sender's)
  becomes `hmac:<hex>`, its keyed hash (`erased_hash`), or `[erased]` without
  STICKERQ_ERASURE_KEY. The erase itself is recorded last, under that hash, never the number.

The number is searched in its E.164 form, its digits, and its national number, which the
other two contain. Recurring schedules copy their template campaign's messages: erasing
those takes the number out of every later run.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from stickerq.audit import Action, count_holding, record, scrub_number
from stickerq.campaign_status import Move, complete_if_settled, move_campaign
from stickerq.counts import messages_in
from stickerq.db import open_sessions, rows_changed
from stickerq.errors import StickerqError, excerpt
from stickerq.masking import mask_phone
from stickerq.models import (
    Attempt,
    Campaign,
    CampaignCount,
    CustomerWindow,
    ErasedSuppression,
    IdempotencyKey,
    Message,
    Pause,
    Suppression,
    UnknownCallback,
    utcnow,
)
from stickerq.producer.idempotency import ERASED_SHA256
from stickerq.producer.phones import InvalidPhone, check_region, normalise_phone
from stickerq.settings import Settings
from stickerq.states import UNSETTLED, MessageStatus
from stickerq.suppression_list import SET_THE_KEY, ErasureKeyMissing, phone_hasher
from stickerq.window_ledger import ledger_senders

log = logging.getLogger(__name__)

CAMPAIGN_CHUNK = 1_000  # campaigns probed (one message each at most) per transaction
ROW_CHUNK = 10_000  # rows per transaction where a table is searched by its text
ERASED_TEXT = "[erased]"
# The tables an erase reports, in this order.
TABLES = (
    "suppressions",
    "messages",
    "attempts",
    "unknown_callbacks",
    "idempotency_keys",
    "campaigns",
    "pauses",
    "customer_windows",
    "audit_log",
)


class ErasureError(StickerqError):
    """A number that cannot be erased as given."""


@dataclass(repr=False)
class ErasureResult:
    """What an erase removed (or, dry, would remove): rows per table."""

    phone: str  # E.164; shown masked
    dry_run: bool
    removed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    campaigns_held: int = 0  # campaigns that had a message to the number
    left_sending: int = 0  # messages being sent now, not erased: run the erase again

    @property
    def found(self) -> bool:
        return any(self.removed.values()) or self.left_sending > 0

    @property
    def complete(self) -> bool:
        return self.left_sending == 0

    def __repr__(self) -> str:  # a phone number is personal data: keep it out of logs
        return f"ErasureResult(phone={mask_phone(self.phone)!r}, removed={self.removed!r})"


def erase_number(
    settings: Settings,
    number: str,
    *,
    actor: str,
    dry_run: bool = False,
    sessions: sessionmaker[Session] | None = None,
) -> ErasureResult:
    """Remove the number from every table (see the module's docstring); the erase is
    recorded in the audit log under `actor` (a dry run is not)."""
    phone = _normalised(number, settings.default_region)
    forms = number_forms(phone)
    result = ErasureResult(phone=phone, dry_run=dry_run)
    with open_sessions(settings.database_url, sessions) as factory:
        _suppressions(factory, settings, phone, forms, result)
        for campaign_ids in _campaign_chunks(factory):
            # a dry run only reads: its session ends rolled back
            with factory() if dry_run else factory.begin() as session:
                _messages(session, campaign_ids, phone, result)
        _by_text(factory, phone, forms, result)
        _windows(factory, phone, result)
        _audit_log(factory, settings, phone, forms, result, actor)
    log.info(
        "%s %s: %s; %s left sending",
        "dry run of erasing" if dry_run else "erased",
        mask_phone(phone),
        ", ".join(f"{table} {rows}" for table, rows in result.removed.items()),
        result.left_sending,
    )
    return result


def number_forms(phone: str) -> tuple[str, ...]:
    """How text may hold the number, longest first: `+919812345678`, `919812345678`,
    `9812345678` (each contains the next)."""
    national = str(phonenumbers.parse(phone).national_number)
    return tuple(dict.fromkeys((phone, phone.removeprefix("+"), national)))


def _normalised(number: str, region: str | None) -> str:
    try:
        return normalise_phone(number, check_region(region))
    except InvalidPhone as exc:
        raise ErasureError(f"{excerpt(number)!r} is not a phone number: {exc}") from None


# --------------------------------------------------------------------------- suppressions


def _suppressions(
    sessions: sessionmaker[Session],
    settings: Settings,
    phone: str,
    forms: Sequence[str],
    result: ErasureResult,
) -> None:
    """Each account's entry becomes its keyed hash, in one transaction (a number is on few
    lists: one per account)."""
    with sessions.begin() as session:
        entries = session.scalars(select(Suppression).where(Suppression.phone == phone)).all()
        if not entries:
            return
        hasher = phone_hasher(settings)
        if hasher is None:
            raise ErasureKeyMissing(
                f"{mask_phone(phone)} is suppressed on {len(entries)} account(s), and stays "
                f"so after an erase only as a keyed hash; nothing was erased: {SET_THE_KEY}"
            )
        result.removed["suppressions"] = len(entries)
        if result.dry_run:
            return
        hashed = hasher(phone)
        rows = [
            {
                "sid": entry.sid,
                "phone_hash": hashed,
                "reason": _scrubbed(entry.reason, forms),
                "created_at": entry.created_at,
                "erased_at": utcnow(),
            }
            for entry in entries
        ]
        session.execute(_insert(session, ErasedSuppression).values(rows).on_conflict_do_nothing())
        session.execute(delete(Suppression).where(Suppression.phone == phone))


# --------------------------------------------------------------------------- messages


def _campaign_chunks(sessions: sessionmaker[Session]) -> Iterator[list[int]]:
    """Every campaign id, CAMPAIGN_CHUNK at a time (keyset paging: each read is short)."""
    after = 0
    while True:
        with sessions() as session:
            ids = list(
                session.scalars(
                    select(Campaign.id)
                    .where(Campaign.id > after)
                    .order_by(Campaign.id)
                    .limit(CAMPAIGN_CHUNK)
                )
            )
        if not ids:
            return
        yield ids
        after = ids[-1]


def _messages(session: Session, campaign_ids: list[int], phone: str, result: ErasureResult) -> None:
    """The number's messages in these campaigns, but those being sent, with what hangs on
    them; locked first, so no claim takes one meanwhile."""
    of_number = (Message.campaign_id.in_(campaign_ids), Message.recipient == phone)
    chosen = select(
        Message.id,
        Message.campaign_id,
        Message.status,
        Message.last_error_code,
        Message.attempts,
        Message.next_attempt_at,
        Message.message_id,
    ).where(*of_number, Message.status != MessageStatus.SENDING)
    rows = session.execute(chosen if result.dry_run else chosen.with_for_update()).all()
    # Counted after the lock: a row claimed meanwhile is `sending` now, and left.
    result.left_sending += _count(
        session, Message, *of_number, Message.status == MessageStatus.SENDING
    )
    if not rows:
        return
    pks = [row.id for row in rows]
    held = sorted({row.campaign_id for row in rows})
    message_ids = [row.message_id for row in rows if row.message_id is not None]
    result.campaigns_held += len(held)
    removed = result.removed
    removed["messages"] += len(rows)
    erased_fingerprints = (
        IdempotencyKey.campaign_id.in_(held),
        IdempotencyKey.request_sha256 != ERASED_SHA256,
    )
    of_messages = UnknownCallback.message_id.in_(message_ids)
    if result.dry_run:
        removed["attempts"] += _count(session, Attempt, Attempt.message_pk.in_(pks))
        removed["unknown_callbacks"] += _count(session, UnknownCallback, of_messages)
        removed["idempotency_keys"] += _count(session, IdempotencyKey, *erased_fingerprints)
        return
    removed["attempts"] += rows_changed(
        session.execute(delete(Attempt).where(Attempt.message_pk.in_(pks)))
    )
    if message_ids:
        removed["unknown_callbacks"] += rows_changed(
            session.execute(delete(UnknownCallback).where(of_messages))
        )
    removed["idempotency_keys"] += rows_changed(
        session.execute(
            update(IdempotencyKey).where(*erased_fingerprints).values(request_sha256=ERASED_SHA256)
        )
    )
    session.execute(delete(Message).where(Message.id.in_(pks)))
    # The delete trigger leaves a campaign being purged alone (migration 0013): nothing to give
    # back to its counts.
    purging = set(
        session.scalars(
            select(Campaign.id).where(
                Campaign.id.in_(held), Campaign.messages_purged_at.is_not(None)
            )
        )
    )
    _keep_counts_of_settled(session, [row for row in rows if row.campaign_id not in purging])
    _forget_pending(session, rows)


def _keep_counts_of_settled(session: Session, rows: Sequence[Any]) -> None:
    """Give back to `campaign_counts` what the delete trigger took for settled messages:
    the campaign sent them, and its report keeps saying so."""
    counts: Counter[tuple[int, str, str, str]] = Counter()
    for row in rows:
        if row.status == MessageStatus.PENDING:
            continue
        key = (row.campaign_id, row.status, row.last_error_code or "")
        counts[(*key, "messages")] += 1
        counts[(*key, "attempts")] += row.attempts
        counts[(*key, "attempted")] += 1 if row.attempts > 0 else 0
        counts[(*key, "retries_waiting")] += 1 if row.next_attempt_at is not None else 0
    groups = sorted({key[:3] for key in counts})
    if not groups:
        return
    # PostgreSQL's triggers keep a row per backend (migration 0003): ours, as theirs did.
    backend = func.pg_backend_pid() if _dialect(session) == "postgresql" else 0
    columns = ("messages", "attempts", "attempted", "retries_waiting")
    values = [
        {"campaign_id": c, "status": s, "code": code, "backend": backend}
        | {name: counts[(c, s, code, name)] for name in columns}
        for c, s, code in groups
    ]
    insert = _insert(session, CampaignCount).values(values)
    session.execute(
        insert.on_conflict_do_update(
            index_elements=["campaign_id", "status", "code", "backend"],
            set_={name: getattr(CampaignCount, name) + insert.excluded[name] for name in columns},
        )
    )


def _forget_pending(session: Session, rows: Sequence[Any]) -> None:
    """A pending message erased was never sent: its campaign counts one recipient fewer, and
    completes if it waited for nothing else (a queued one starts first, as expiry does; a
    scheduled one stays so, and completes once it runs)."""
    pending = Counter(row.campaign_id for row in rows if row.status == MessageStatus.PENDING)
    for campaign_id, erased in sorted(pending.items()):
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(recipient_count=Campaign.recipient_count - erased)
        )
        nothing_left = messages_in(campaign_id, UNSETTLED) == 0
        move_campaign(session, campaign_id, Move.START, nothing_left, started_at=utcnow())
        complete_if_settled(session, campaign_id)


# --------------------------------------------------------------------------- text


def _by_text(
    sessions: sessionmaker[Session], phone: str, forms: Sequence[str], result: ErasureResult
) -> None:
    """Rows whose text holds the number: unknown callbacks and idempotency keys go; campaign
    names and refs, pause reasons and other numbers' suppression reasons lose the number."""
    like = f"%{forms[-1]}%"  # the national number, which every form contains
    text_of_callback = or_(
        *(column.like(like) for column in (UnknownCallback.error_detail, UnknownCallback.ref,
                                           UnknownCallback.ref1, UnknownCallback.ref2))
    )  # fmt: skip
    removed = result.removed
    removed["unknown_callbacks"] += _delete_chunks(
        sessions, UnknownCallback.id, text_of_callback, result.dry_run
    )
    removed["idempotency_keys"] += _delete_chunks(
        sessions, IdempotencyKey.key, IdempotencyKey.key.like(like), result.dry_run
    )
    text_columns = (
        Campaign.name,
        Campaign.ref,
        Campaign.ref1,
        Campaign.ref2,
        Campaign.pause_reason,
    )
    removed["campaigns"] += _scrub_chunks(sessions, Campaign.id, text_columns, forms, result)
    removed["pauses"] += _scrub_chunks(sessions, Pause.id, (Pause.reason,), forms, result)
    with sessions.begin() as session:  # reasons of other numbers: few rows, if any
        where = and_(Suppression.reason.like(like), Suppression.phone != phone)
        if result.dry_run:
            removed["suppressions"] += _count(session, Suppression, where)
        else:
            scrubbed = _scrubbed(Suppression.reason, forms)
            statement = update(Suppression).where(where).values(reason=scrubbed)
            removed["suppressions"] += rows_changed(session.execute(statement))


def _delete_chunks(
    sessions: sessionmaker[Session],
    key: InstrumentedAttribute[Any],
    where: Any,
    dry_run: bool,
) -> int:
    if dry_run:
        with sessions() as session:
            return _count(session, key.class_, where)
    total = 0
    while True:
        with sessions.begin() as session:
            chosen = select(key).where(where).limit(ROW_CHUNK)
            deleted = rows_changed(
                session.execute(delete(key.class_).where(key.in_(chosen.scalar_subquery())))
            )
        total += deleted
        if deleted < ROW_CHUNK:
            return total


def _scrub_chunks(
    sessions: sessionmaker[Session],
    key: InstrumentedAttribute[Any],
    columns: Sequence[InstrumentedAttribute[Any]],
    forms: Sequence[str],
    result: ErasureResult,
) -> int:
    """Replace the number in these columns, ROW_CHUNK rows a transaction: a scrubbed row no
    longer matches, so each round takes the next ones."""
    holds = or_(*(column.like(f"%{forms[-1]}%") for column in columns))
    if result.dry_run:
        with sessions() as session:
            return _count(session, key.class_, holds)
    total = 0
    while True:
        with sessions.begin() as session:
            chosen = select(key).where(holds).limit(ROW_CHUNK).scalar_subquery()
            values = {column.key: _scrubbed(column, forms) for column in columns}
            changed = rows_changed(
                session.execute(update(key.class_).where(key.in_(chosen)).values(values))
            )
        total += changed
        if changed < ROW_CHUNK:
            return total


def _scrubbed(text: Any, forms: Sequence[str]) -> Any:
    """`text` (a string, or a column in SQL) with every form of the number replaced."""
    for form in forms:
        text = (
            text.replace(form, ERASED_TEXT)
            if isinstance(text, str)
            else func.replace(text, form, ERASED_TEXT)
        )
    return text


# --------------------------------------------------------------------------- window ledger


def _windows(sessions: sessionmaker[Session], phone: str, result: ErasureResult) -> None:
    """The number's rows as a customer in the window ledger: few (one per business number
    it wrote to), found by the primary key, one business number after another."""
    with sessions() if result.dry_run else sessions.begin() as session:
        senders = ledger_senders(session)
        if not senders:
            return
        where = (CustomerWindow.sender.in_(senders), CustomerWindow.customer == phone)
        if result.dry_run:
            result.removed["customer_windows"] = _count(session, CustomerWindow, *where)
            return
        result.removed["customer_windows"] = rows_changed(
            session.execute(delete(CustomerWindow).where(*where))
        )


# --------------------------------------------------------------------------- audit log


def erased_hash(settings: Settings, phone: str) -> str:
    """What stands for the number in the audit log once erased: its keyed hash (the one
    erased suppressions keep), or ERASED_TEXT without STICKERQ_ERASURE_KEY."""
    hasher = phone_hasher(settings)
    return f"hmac:{hasher(phone)}" if hasher is not None else ERASED_TEXT


def _audit_log(
    sessions: sessionmaker[Session],
    settings: Settings,
    phone: str,
    forms: Sequence[str],
    result: ErasureResult,
    actor: str,
) -> None:
    """The number's hash where the audit log held the number, then the erase's own entry:
    one transaction, after every other table (an erase that stopped halfway, say on a
    missing key, records nothing and is run again)."""
    if result.dry_run:
        with sessions() as session:
            result.removed["audit_log"] = count_holding(session, forms)
        return
    replacement = erased_hash(settings, phone)
    with sessions.begin() as session:
        result.removed["audit_log"] = scrub_number(session, forms, replacement)
        counts = {table: rows for table, rows in result.removed.items() if rows}
        record(
            session,
            actor,
            Action.NUMBER_ERASED,
            f"number:{replacement}",
            removed=counts,
            left_sending=result.left_sending,
        )


# --------------------------------------------------------------------------- helpers


def _count(session: Session, model: Any, *where: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _insert(session: Session, model: Any) -> Any:
    return (postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert)(model)
