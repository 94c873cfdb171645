"""Erasing a number on both backends: afterwards a dump of the whole database holds it in no
form; a suppressed number stays suppressed (enqueue and claim), only with the key; messages
being sent are left; settled messages keep their campaign's counts; bad input is refused."""

from __future__ import annotations

import sqlite3
import subprocess
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from stickerq.counts import campaign_counts
from stickerq.db import make_engine, make_session_factory
from stickerq.models import AuditEntry, Campaign, Message, UnknownCallback, utcnow
from stickerq.producer.api import enqueue_campaign
from stickerq.producer.callback_payloads import parse_callback
from stickerq.producer.callbacks import apply_callbacks
from stickerq.producer.erasure import ErasureError, erase_number
from stickerq.producer.idempotency import send_campaign_once
from stickerq.producer.request import CampaignRequest
from stickerq.producer.suppressions import add_numbers, find_number, remove_numbers
from stickerq.producer.window_views import show_windows
from stickerq.settings import Settings
from stickerq.states import CampaignStatus, MessageStatus
from stickerq.suppression_list import ErasureKeyMissing, phone_hasher
from stickerq.window_ledger import Inbound, record_inbound
from stickerq.worker.claims import claim
from stickerq.worker.results import AttemptRecord, MessageResult, write_results
from stickerq.worker.suppressed import drop_suppressed
from tests.conftest import STICKER_ID, make_settings
from tests.producer.test_callbacks import callback
from tests.worker.test_purge import finished_campaign

NUMBER, OTHER = "+919876501234", "+919876501235"
S1, S2 = "+919000000001", "+919000000002"  # business numbers the customers wrote to
FORMS = (NUMBER, NUMBER.removeprefix("+"), "9876501234")
KEY = "erasure-key-0123456789abcdef"


@pytest.fixture
def settings(database_url: str, redis_prefix: str) -> Settings:
    return make_settings(database_url, redis_prefix, "http://127.0.0.1:9", erasure_key=KEY)


@pytest.fixture
def factory(settings: Settings) -> sessionmaker[Session]:
    return make_session_factory(make_engine(settings.database_url))


def enqueue(settings: Settings, *numbers: str, name: str = "c") -> int:
    request = CampaignRequest(sticker_id=STICKER_ID, to=",".join(numbers), name=name)
    return enqueue_campaign(settings, request).campaign_id


def send(factory: sessionmaker[Session], campaign_id: int, status: MessageStatus) -> None:
    """What a worker does to the campaign's messages: claim, one request each, results."""
    with factory.begin() as session:
        pks = list(session.scalars(select(Message.id).where(Message.campaign_id == campaign_id)))
        claimed = claim(session, campaign_id, pks, "T-erase")
        results = [
            MessageResult(m.pk, status, [attempt(m.recipient)], 1, 0, message_id=f"mid-{m.pk}")
            for m in claimed
        ]
        write_results(session, "T-erase", results)


def attempt(recipient: str) -> AttemptRecord:
    """An answer whose detail quotes the message's own recipient."""
    return AttemptRecord(1, utcnow(), 80.0, 202, None, "sent", f"accepted for {recipient}")


def message_of(factory: sessionmaker[Session], campaign_id: int, recipient: str) -> Message:
    with factory() as session:
        return session.scalars(
            select(Message).where(
                Message.campaign_id == campaign_id, Message.recipient == recipient
            )
        ).one()


def dump(database_url: str) -> str:
    """The whole database as SQL text: pg_dump, or SQLite's iterdump."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        with sqlite3.connect(url.database) as connection:
            return "\n".join(connection.iterdump())
    command = ["pg_dump", "--no-owner", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432)]
    command += ["-U", url.username or "postgres", url.database or ""]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def test_an_erased_number_is_in_no_table_in_any_form(
    settings: Settings, factory: sessionmaker[Session], database_url: str
) -> None:
    sent = enqueue(settings, NUMBER, OTHER, name=f"promo for {NUMBER}")
    pending = enqueue(settings, NUMBER, OTHER)
    idempotent = send_campaign_once(
        settings,
        f"retry-{FORMS[1]}",
        CampaignRequest(sticker_id=STICKER_ID, to=NUMBER, ref=f"ref {FORMS[2]}"),
    ).campaign_id
    once_more = send_campaign_once(
        settings, "key-without-it", CampaignRequest(sticker_id=STICKER_ID, to=f"{NUMBER},{OTHER}")
    ).campaign_id
    mine = f"mid-{message_of(factory, sent, NUMBER).id}"
    with factory.begin() as session:  # callbacks before the send's results: kept unknown
        early = [callback(mine, "delivered"), callback("mid-elsewhere", "failed", errors=[
            {"code": 131026, "title": f"undeliverable to {FORMS[1]}"}])]  # fmt: skip
        apply_callbacks(session, [parse_callback(c) for c in early])
    send(factory, sent, MessageStatus.SENT)
    send(factory, once_more, MessageStatus.SENT)
    with factory.begin() as session:
        apply_callbacks(session, [parse_callback(callback(mine, "read"))])
    add_numbers(settings, [NUMBER], f"replied STOP from {FORMS[2]}", actor="tester")
    add_numbers(settings, [OTHER], f"asked with {NUMBER} beside", actor="tester")
    wrote(factory, (S1, NUMBER), (S2, NUMBER), (S1, OTHER))
    with factory() as session:
        counted = {c: campaign_counts(session, c) for c in (sent, once_more)}
        unknown = session.scalars(select(UnknownCallback.error_detail)).all()
    before = dump(database_url)
    assert all(form in before for form in FORMS) and OTHER in before
    assert any(detail and FORMS[1] in detail for detail in unknown)
    # The audit log held it too: a suppression's target, a reason, a campaign's name.
    assert sum(FORMS[2] in entry for entry in audit_texts(factory)) == 3

    result = erase_number(settings, "+91 98765-01234", actor="tester")

    assert result.complete and result.found and result.left_sending == 0
    assert result.removed == {
        "suppressions": 2,  # its entry, hashed; another's reason cleaned
        "messages": 4,
        "attempts": 2,
        "unknown_callbacks": 2,  # its message_id's; the one whose text held it
        "idempotency_keys": 3,  # two request hashes erased, the key holding it deleted
        "campaigns": 2,  # a name and a ref
        "pauses": 0,
        "customer_windows": 2,  # it wrote to two business numbers
        "audit_log": 3,  # its keyed hash where the number was
    }
    after = dump(database_url)
    assert [line for line in after.splitlines() if FORMS[2] in line] == []
    assert KEY not in after
    hashed = f"hmac:{phone_hasher(settings)(NUMBER)}"  # type: ignore[misc]
    assert any(f"suppression:{hashed} " in text for text in audit_texts(factory))
    with factory() as session:
        erased = session.scalars(select(AuditEntry).where(AuditEntry.action == "number.erased"))
        (entry,) = erased.all()
    assert (entry.actor, entry.target) == ("tester", f"number:{hashed}")
    assert '"audit_log": 3' in entry.params and '"messages": 4' in entry.params
    assert OTHER in after and "[erased]" in after
    with factory() as session:
        # The campaigns sent it: their counts still say so (the pending one's does not).
        for campaign_id, counts in counted.items():
            assert campaign_counts(session, campaign_id) == counts
        assert campaign_counts(session, pending).by_status == {"pending": 1}
        assert session.get(Campaign, pending).recipient_count == 1  # type: ignore[union-attr]
        assert session.get(Campaign, idempotent).status == CampaignStatus.COMPLETED  # type: ignore[union-attr]
    # A retry of the idempotent request still answers its campaign: no second one.
    again = send_campaign_once(
        settings,
        "key-without-it",
        CampaignRequest(sticker_id=STICKER_ID, to=f"{NUMBER},{OTHER}"),
    )
    assert (again.campaign_id, again.created) == (once_more, False)
    assert not erase_number(settings, NUMBER, actor="tester").found  # nothing left, and it says so


def audit_texts(factory: sessionmaker[Session]) -> list[str]:
    """Every audit entry's target and parameters, one text an entry."""
    with factory() as session:
        rows = session.execute(select(AuditEntry.target, AuditEntry.params)).all()
    return [f"{target} {params}" for target, params in rows]


def wrote(factory: sessionmaker[Session], *pairs: tuple[str, str]) -> None:
    """Each (business number, customer) in the window ledger: the customer wrote lately."""
    with factory.begin() as session:
        record_inbound(session, [Inbound(s, c, utcnow(), "text") for s, c in pairs])


def test_the_number_leaves_the_window_ledger_as_a_customer(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    wrote(factory, (S1, NUMBER), (S2, NUMBER), (S1, OTHER), (NUMBER, OTHER))

    dry = erase_number(settings, NUMBER, dry_run=True, actor="tester")
    assert (dry.found, dry.removed["customer_windows"]) == (True, 2)
    assert len(show_windows(settings, NUMBER, sessions=factory).windows) == 2
    result = erase_number(settings, NUMBER, actor="tester")

    assert result.removed["customer_windows"] == 2 and result.found
    assert show_windows(settings, NUMBER, sessions=factory).windows == []
    others = show_windows(settings, OTHER, sessions=factory).windows
    assert {w.sender for w in others} == {S1, NUMBER}  # a business number's rows are not its own
    assert erase_number(settings, NUMBER, actor="tester").removed["customer_windows"] == 0


def test_a_suppressed_number_stays_suppressed_after_its_erasure(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    add_numbers(settings, [NUMBER], "STOP", actor="tester")
    assert erase_number(settings, NUMBER, actor="tester").removed["suppressions"] == 1

    entry = find_number(settings, NUMBER)
    assert entry is not None and entry.reason == "STOP"
    campaign_id = enqueue(settings, NUMBER, OTHER)
    assert [m.recipient for m in messages(factory, campaign_id)] == [OTHER]
    # A message stored without the enqueue's check (a recurring run's copy): the claim drops it.
    with factory.begin() as session:
        session.add(Message(campaign_id=campaign_id, recipient=NUMBER))
    hasher = phone_hasher(settings)
    with factory.begin() as session:
        pks = [m.id for m in messages(factory, campaign_id)]
        claimed = claim(session, campaign_id, pks, "T-late")
        kept = drop_suppressed(session, settings.kaleyra_sid, "T-late", claimed, hasher)
    assert [m.recipient for m in kept] == [OTHER]
    assert message_of(factory, campaign_id, NUMBER).status == MessageStatus.SUPPRESSED

    # Without the key nothing is sent to the account, and nothing is enqueued: said plainly.
    keyless = settings.model_copy(update={"erasure_key": type(settings.erasure_key)("")})
    with pytest.raises(ErasureKeyMissing, match="STICKERQ_ERASURE_KEY"):
        enqueue(keyless, OTHER)
    with factory.begin() as session, pytest.raises(ErasureKeyMissing):
        drop_suppressed(session, settings.kaleyra_sid, "T-late", claimed, None)

    assert (
        remove_numbers(settings, [NUMBER], actor="tester").removed == 1
    )  # it may get stickers again
    assert find_number(settings, NUMBER) is None
    assert enqueue(keyless, NUMBER) > campaign_id


def test_a_suppressed_number_is_not_erased_without_the_key(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    campaign_id = enqueue(settings, NUMBER)
    add_numbers(settings, [NUMBER], "STOP", actor="tester")
    keyless = settings.model_copy(update={"erasure_key": type(settings.erasure_key)("")})
    with pytest.raises(ErasureKeyMissing, match=r"nothing was erased.*openssl rand -hex 32"):
        erase_number(keyless, NUMBER, actor="tester")
    assert message_of(factory, campaign_id, NUMBER).status == MessageStatus.PENDING
    assert find_number(settings, NUMBER) is not None


def test_messages_being_sent_are_left_and_counted(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    sending = enqueue(settings, NUMBER, OTHER)
    settled = enqueue(settings, NUMBER)
    with factory.begin() as session:
        claim(session, sending, [m.id for m in messages(factory, sending)], "T-busy")

    dry = erase_number(settings, NUMBER, dry_run=True, actor="tester")
    assert (dry.removed["messages"], dry.left_sending, dry.complete) == (1, 1, False)
    assert len(messages(factory, settled)) == 1  # a dry run changes nothing
    result = erase_number(settings, NUMBER, actor="tester")
    assert (result.removed["messages"], result.left_sending, result.complete) == (1, 1, False)
    assert message_of(factory, sending, NUMBER).status == MessageStatus.SENDING
    assert messages(factory, settled) == []
    assert repr(result).count("1234") == 1 and NUMBER not in repr(result)


@pytest.mark.parametrize(
    ("number", "reason"),
    [("not a number", "only digits"), ("+91123", "too short"), ("", "empty")],
)
def test_bad_numbers_are_refused_with_the_reason(
    settings: Settings, number: str, reason: str
) -> None:
    with pytest.raises(ErasureError, match=reason):
        erase_number(settings, number, actor="tester")


def messages(factory: sessionmaker[Session], campaign_id: int) -> list[Any]:
    with factory() as session:
        return list(
            session.scalars(
                select(Message).where(Message.campaign_id == campaign_id).order_by(Message.id)
            )
        )


def test_erasing_from_a_campaign_being_purged_keeps_its_counts_once(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    """The purge marked it and its rows are going: the delete trigger leaves its counts alone,
    and the erasure must not give them back a second time."""
    campaign_id = finished_campaign(factory, days_ago=40, copies=1)
    with factory() as session:
        before = campaign_counts(session, campaign_id)
        recipient = session.scalars(
            select(Message.recipient).where(Message.campaign_id == campaign_id).limit(1)
        ).one()
    with factory.begin() as session:
        session.execute(
            update(Campaign).where(Campaign.id == campaign_id).values(messages_purged_at=utcnow())
        )
    assert erase_number(settings, recipient, actor="tester").removed["messages"] == 1
    with factory() as session:
        assert campaign_counts(session, campaign_id) == before
