"""The suppression list: numbers of an account (SID) that must never get a sticker (opt-outs).

Numbers are normalised to E.164 like recipients. A campaign's recipients on its account's
list are dropped at enqueue (producer/bulk_insert.py) and checked again when their batch is
claimed (worker/suppressed.py), so a number added after the enqueue is not sent either. A
status callback saying the user stopped marketing messages adds its number
(`add_from_callbacks`). Adding a number already on the list keeps its first reason and time.
An erased number (`stickerq erase`) stays on the list as a keyed hash
(stickerq/suppression_list.py): `find_number` and `remove_numbers` find it by its number, with
STICKERQ_ERASURE_KEY; `list_numbers` cannot show it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, func, literal, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from stickerq.audit import Action, record
from stickerq.db import open_sessions, rows_changed
from stickerq.errors import StickerqError, excerpt
from stickerq.masking import mask_phone
from stickerq.models import Campaign, ErasedSuppression, Message, Suppression, utcnow
from stickerq.producer.phones import InvalidPhone, check_region, normalise_phone
from stickerq.producer.recipients import (
    InvalidRow,
    RecipientError,
    RecipientReport,
    open_recipients,
)
from stickerq.queue import chunks
from stickerq.settings import Settings
from stickerq.suppression_list import phone_hasher

REASON_MAX = 500
DEFAULT_REASON = "opted out"
MAX_PAGE = 1_000
# Meta's error for a user who stopped marketing messages (its cloud API error codes: 131050).
MARKETING_OPT_OUT = "131050"
MARKETING_OPT_OUT_REASON = "Meta 131050: the user stopped marketing messages (status callback)"
INSERT_CHUNK = 5_000
_CREATE_STAGE = "CREATE TEMPORARY TABLE stickerq_incoming_suppressions (phone text) ON COMMIT DROP"
_COPY_TO_STAGE = "COPY stickerq_incoming_suppressions (phone) FROM STDIN"
_FROM_STAGE = (
    "INSERT INTO suppressions (sid, phone, reason, created_at) "
    "SELECT :sid, phone, :reason, :created_at FROM stickerq_incoming_suppressions "
    "ON CONFLICT (sid, phone) DO NOTHING"
)


class SuppressionError(StickerqError):
    """A number, reason or listing cursor that cannot be used."""


@dataclass(frozen=True, slots=True, repr=False)
class SuppressedNumber:
    sid: str
    phone: str  # E.164
    reason: str
    created_at: datetime

    def __repr__(self) -> str:  # phone numbers are personal data: keep them out of logs
        return f"SuppressedNumber(sid={self.sid!r}, phone={mask_phone(self.phone)!r})"


@dataclass
class SuppressResult:
    """What an add or an import did: new numbers, ones already there, rows refused."""

    sid: str
    added: int = 0
    already: int = 0  # on the list before, or repeated in the input
    invalid_count: int = 0
    invalid: list[InvalidRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RemoveResult:
    sid: str
    removed: int
    not_found: int  # valid numbers that were not on the list


@dataclass(frozen=True, slots=True)
class SuppressionPage:
    sid: str
    total: int
    numbers: list[SuppressedNumber]
    next_after: str | None  # `after` for the next page; None on the last one


def add_numbers(
    settings: Settings,
    numbers: Sequence[str],
    reason: str = DEFAULT_REASON,
    *,
    actor: str,
    account: str | None = None,
    sessions: sessionmaker[Session] | None = None,
) -> SuppressResult:
    """Put the numbers on the account's list; one invalid number refuses them all. Each
    number new on the list is recorded in the audit log under `actor`."""
    phones = _normalised(numbers, settings.default_region)
    result = SuppressResult(sid=_sid(settings, account))
    reason = _checked_reason(reason)
    with open_sessions(settings.database_url, sessions) as factory, factory.begin() as session:
        before = _on_list(session, result.sid, phones)
        result.added = store_numbers(session, result.sid, reason, phones)
        for phone in sorted(set(phones) - before):
            record(
                session,
                actor,
                Action.SUPPRESSION_ADDED,
                suppression_target(phone),
                sid=result.sid,
                reason=reason,
            )
    result.already = len(phones) - result.added
    return result


def import_file(
    settings: Settings,
    path: Path,
    reason: str = DEFAULT_REASON,
    *,
    actor: str,
    account: str | None = None,
    sessions: sessionmaker[Session] | None = None,
) -> SuppressResult:
    """Stream a CSV with a `phone` column onto the list, in one transaction, memory flat.

    Invalid rows are skipped and reported with their line; the valid ones are stored (an
    opt-out list is better kept in part than refused). An unreadable file stores nothing.
    The audit log gets one entry under `actor` with the counts, not the numbers.
    """
    reason = _checked_reason(reason)
    report = RecipientReport()
    result = SuppressResult(sid=_sid(settings, account))
    try:
        rows = open_recipients(
            to=None,
            to_file=path,
            default_region=settings.default_region,
            report=report,
            dedupe=False,  # the primary key drops repeats: nothing held per number
        )
        with open_sessions(settings.database_url, sessions) as factory, factory.begin() as s:
            result.added = store_numbers(s, result.sid, reason, (row.phone for row in rows))
            counts = {"added": result.added, "already": report.valid - result.added}
            record(
                s,
                actor,
                Action.SUPPRESSIONS_IMPORTED,
                f"account:{result.sid}",
                **counts,
                invalid=report.invalid_count,
                reason=reason,
            )
    except RecipientError as exc:
        raise SuppressionError(str(exc)) from None
    result.already = report.valid - result.added
    result.invalid_count, result.invalid = report.invalid_count, list(report.invalid)
    result.warnings = list(report.warnings)
    return result


def remove_numbers(
    settings: Settings,
    numbers: Sequence[str],
    *,
    actor: str,
    account: str | None = None,
    sessions: sessionmaker[Session] | None = None,
) -> RemoveResult:
    """Take the numbers off the account's list: they may get stickers again. Each number
    taken off is recorded in the audit log under `actor`."""
    phones = sorted(set(_normalised(numbers, settings.default_region)))
    sid = _sid(settings, account)
    hasher = phone_hasher(settings)
    removed = 0
    with open_sessions(settings.database_url, sessions) as factory, factory.begin() as session:
        for chunk in chunks(phones, INSERT_CHUNK):
            gone = set(
                session.scalars(
                    delete(Suppression)
                    .where(Suppression.sid == sid, Suppression.phone.in_(chunk))
                    .returning(Suppression.phone)
                )
            )
            targets = [suppression_target(phone) for phone in sorted(gone)]
            if hasher is not None:  # erased ones, by their hash
                by_hash = {hasher(phone): phone for phone in chunk}
                hashes = session.scalars(
                    delete(ErasedSuppression)
                    .where(
                        ErasedSuppression.sid == sid,
                        ErasedSuppression.phone_hash.in_(sorted(by_hash)),
                    )
                    .returning(ErasedSuppression.phone_hash)
                ).all()
                gone.update(by_hash[phone_hash] for phone_hash in hashes)
                # an erased number stays out of the database: its entry names its hash
                targets += [f"suppression:hmac:{phone_hash}" for phone_hash in sorted(hashes)]
            for target in targets:
                record(session, actor, Action.SUPPRESSION_REMOVED, target, sid=sid)
            removed += len(gone)
    return RemoveResult(sid=sid, removed=removed, not_found=len(phones) - removed)


def list_numbers(
    settings: Settings,
    *,
    account: str | None = None,
    after: str | None = None,
    limit: int = 100,
    sessions: sessionmaker[Session] | None = None,
) -> SuppressionPage:
    """A page of the account's list in number order, after the number `after`."""
    sid = _sid(settings, account)
    limit = max(1, min(limit, MAX_PAGE))
    query = select(Suppression).where(Suppression.sid == sid)
    if after is not None:
        query = query.where(Suppression.phone > after)
    with open_sessions(settings.database_url, sessions) as factory, factory() as session:
        rows = session.scalars(query.order_by(Suppression.phone).limit(limit + 1)).all()
        total = session.scalar(
            select(func.count()).select_from(Suppression).where(Suppression.sid == sid)
        )
    numbers = [_number(row) for row in rows[:limit]]
    next_after = numbers[-1].phone if len(rows) > limit else None
    return SuppressionPage(sid=sid, total=int(total or 0), numbers=numbers, next_after=next_after)


def find_number(
    settings: Settings,
    number: str,
    *,
    account: str | None = None,
    sessions: sessionmaker[Session] | None = None,
) -> SuppressedNumber | None:
    """The number's entry on the account's list (an erased one too, with the key), or None."""
    (phone,) = _normalised([number], settings.default_region)
    sid = _sid(settings, account)
    hasher = phone_hasher(settings)
    with open_sessions(settings.database_url, sessions) as factory, factory() as session:
        row = session.get(Suppression, (sid, phone))
        if row is not None:
            return _number(row)
        erased = session.get(ErasedSuppression, (sid, hasher(phone))) if hasher else None
        if erased is None:
            return None
        return SuppressedNumber(sid, phone, erased.reason, erased.created_at)


def suppression_target(phone: str) -> str:
    return f"suppression:{phone}"


def _on_list(session: Session, sid: str, phones: Sequence[str]) -> set[str]:
    """Which of `phones` the account's list holds in clear now."""
    found: set[str] = set()
    for chunk in chunks(sorted(set(phones)), INSERT_CHUNK):
        where = (Suppression.sid == sid, Suppression.phone.in_(chunk))
        found.update(session.scalars(select(Suppression.phone).where(*where)))
    return found


def store_numbers(session: Session, sid: str, reason: str, phones: Iterable[str]) -> int:
    """Add E.164 numbers in the caller's transaction (COPY on PostgreSQL, chunked inserts on
    SQLite); returns how many were new."""
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(_CREATE_STAGE))
        driver_connection = session.connection().connection.driver_connection
        assert driver_connection is not None  # a pooled psycopg connection, checked out
        with driver_connection.cursor() as cursor, cursor.copy(_COPY_TO_STAGE) as copy:
            for phone in phones:
                copy.write_row((phone,))
        return rows_changed(
            session.execute(text(_FROM_STAGE), {"sid": sid, "reason": reason, "created_at": now})
        )
    insert_new = sqlite.insert(Suppression).on_conflict_do_nothing()
    added = 0
    for chunk in chunks(phones, INSERT_CHUNK):
        rows = [{"sid": sid, "phone": p, "reason": reason, "created_at": now} for p in chunk]
        added += rows_changed(session.connection().execute(insert_new, rows))
    return added


def add_from_callbacks(session: Session, message_ids: Iterable[str]) -> int:
    """Suppress the recipients of these messages on their campaign's account (callbacks of
    Meta's 131050: the user stopped marketing messages); returns how many were new."""
    wanted = sorted(set(message_ids))
    if not wanted:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    added = 0
    for chunk in chunks(wanted, INSERT_CHUNK):
        recipients = (
            select(
                Campaign.sid,
                Message.recipient,
                literal(MARKETING_OPT_OUT_REASON),
                literal(utcnow(), Suppression.created_at.type),
            )
            .join(Campaign, Campaign.id == Message.campaign_id)
            .where(Message.message_id.in_(chunk))
            .distinct()
        )
        statement = (
            insert(Suppression)
            .from_select(["sid", "phone", "reason", "created_at"], recipients)
            .on_conflict_do_nothing()
        )
        added += rows_changed(session.execute(statement))
    return added


def _normalised(numbers: Sequence[str], region: str | None) -> list[str]:
    if not numbers:
        raise SuppressionError("no number given: name at least one, e.g. +919812345678")
    region = check_region(region)
    phones, problems = [], []
    for raw in numbers:
        try:
            phones.append(normalise_phone(raw, region))
        except InvalidPhone as exc:
            problems.append(f"{excerpt(raw)!r}: {exc}")
    if problems:
        shown = "; ".join(problems[:10]) + ("; ..." if len(problems) > 10 else "")
        raise SuppressionError(f"{len(problems)} invalid number(s), nothing changed: {shown}")
    return phones


def _checked_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason or len(reason) > REASON_MAX or "\x00" in reason:
        raise SuppressionError(
            f"the reason must be 1 to {REASON_MAX} characters without NUL, e.g. 'asked by SMS'"
        )
    return reason


def _number(row: Suppression) -> SuppressedNumber:
    return SuppressedNumber(row.sid, row.phone, row.reason, row.created_at)


def _sid(settings: Settings, account: str | None) -> str:
    """The account named (any SID: its list may outlive its configuration), else the only
    one configured."""
    return account if account is not None else settings.account(None).sid
