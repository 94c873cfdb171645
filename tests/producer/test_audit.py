"""The audit log on both backends: each change a person makes through the producer records one
entry (actor, action, target, parameters) in its own transaction; a refusal, a no-op or a
replay records none; beat's work records none; entries are read back filtered and bounded;
on PostgreSQL the table refuses updates and deletes but an erasure's; no secret is in it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text, true, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from stickerq.audit import allow_rewrite, record
from stickerq.db import make_engine, make_session_factory
from stickerq.models import AuditEntry, Message, Pause, utcnow
from stickerq.producer import lifecycle, senders, suppressions
from stickerq.producer.audit_log import AuditFilterError, read_audit
from stickerq.producer.erasure import erase_number, erased_hash
from stickerq.producer.failures import FilterError
from stickerq.producer.idempotency import send_campaign_once
from stickerq.producer.operations import resume_sending
from stickerq.producer.request import CampaignRequest, Timing
from stickerq.producer.requeue import RequeueRefused, requeue
from stickerq.producer.schedule import reschedule, stop_schedule
from stickerq.producer.send import send_campaign
from stickerq.producer.store import RecipientsRejected
from stickerq.producer.window_csv import WindowImportError
from stickerq.producer.window_import import import_windows
from stickerq.settings import Settings
from stickerq.states import CampaignStatus, MessageStatus, PauseScope
from stickerq.worker.purge import purge
from tests.conftest import SENDER, STICKER_ID, TEST_API_KEY, make_settings
from tests.worker.test_purge import finished_campaign

ALICE, BOB = "key:alice", "cli:bob@host"
A, B, C = "+919812300001", "+919812300002", "+919812300003"
ERASURE_KEY = "audit-erasure-key-0123456789"


@pytest.fixture
def audit_settings(database_url: str, redis_prefix: str) -> Settings:
    return make_settings(database_url, redis_prefix, "http://127.0.0.1:9", erasure_key=ERASURE_KEY)


@pytest.fixture
def factory(audit_settings: Settings) -> sessionmaker[Session]:
    return make_session_factory(make_engine(audit_settings.database_url))


def entries(factory: sessionmaker[Session]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """Every entry as (actor, action, target, params), oldest first."""
    with factory() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        return [(r.actor, r.action, r.target, json.loads(r.params)) for r in rows]


def campaign(settings: Settings, *numbers: str, actor: str = ALICE) -> int:
    request = CampaignRequest(sticker_id=STICKER_ID, to=",".join(numbers or (A, B)), name="spring")
    result, _ = send_campaign(settings, request, actor=actor)
    return result.campaign_id


def fail_messages(factory: sessionmaker[Session], campaign_id: int, code: str = "WA400") -> None:
    with factory.begin() as session:
        session.execute(
            update(Message)
            .where(Message.campaign_id == campaign_id)
            .values(status=MessageStatus.FAILED, last_error_code=code)
        )


def test_a_campaign_sent_now_is_recorded_with_its_parameters_and_a_rejected_one_is_not(
    audit_settings: Settings, factory: sessionmaker[Session]
) -> None:
    made = campaign(audit_settings, A, B, C)
    with pytest.raises(RecipientsRejected):
        campaign(audit_settings, A, "not a number")

    [(actor, action, target, params)] = entries(factory)
    assert (actor, action, target) == (ALICE, "campaign.created", f"campaign:{made}")
    assert params | {"valid_until": None} == {
        "name": "spring",
        "sid": audit_settings.kaleyra_sid,
        "sender": SENDER,
        "status": "queued",
        "sticker_id": STICKER_ID,
        "sticker_link": None,
        "wa_source": "api",
        "recipients": 3,
        "suppressed": 0,
        "invalid_skipped": 0,
        "in_window": False,
        "valid_until": None,
    }
    assert A not in json.dumps(params)  # the recipients are not in it


def test_an_idempotent_replay_records_the_campaign_once(
    audit_settings: Settings, factory: sessionmaker[Session]
) -> None:
    request = CampaignRequest(sticker_id=STICKER_ID, to=A)
    first = send_campaign_once(audit_settings, "key-1", request, actor=ALICE)
    again = send_campaign_once(audit_settings, "key-1", request, actor=BOB)

    assert (first.created, again.created) == (True, False)
    assert [(e[0], e[1]) for e in entries(factory)] == [(ALICE, "campaign.created")]


def test_a_schedule_records_its_campaign_and_itself_then_its_move_and_its_stop(
    audit_settings: Settings, factory: sessionmaker[Session]
) -> None:
    request = CampaignRequest(sticker_id=STICKER_ID, to=A)
    scheduled = send_campaign(
        audit_settings, request, Timing(every="0 9 * * *", tz="Asia/Kolkata"), actor=ALICE
    )[1]
    assert scheduled is not None and scheduled.schedule_id is not None
    at = (utcnow() + timedelta(days=3)).isoformat()
    reschedule(audit_settings, scheduled.campaign_id, at, actor=BOB)
    stop_schedule(audit_settings, scheduled.schedule_id, actor=BOB)
    stop_schedule(audit_settings, scheduled.schedule_id, actor=BOB)  # already: no entry

    found = entries(factory)
    assert [(e[0], e[1], e[2]) for e in found] == [
        (ALICE, "campaign.created", f"campaign:{scheduled.campaign_id}"),
        (ALICE, "schedule.created", f"schedule:{scheduled.schedule_id}"),
        (BOB, "campaign.rescheduled", f"campaign:{scheduled.campaign_id}"),
        (BOB, "schedule.stopped", f"schedule:{scheduled.schedule_id}"),
    ]
    assert found[0][3]["status"] == "scheduled"
    assert found[1][3] | {"first_run": ""} == {
        "cron": "0 9 * * *",
        "timezone": "Asia/Kolkata",
        "first_run": "",
        "template": f"campaign:{scheduled.campaign_id}",
    }
    assert found[3][3] == {"runs_still_scheduled": [scheduled.campaign_id]}


def test_pause_resume_cancel_are_recorded_and_no_ops_and_refusals_are_not(
    audit_settings: Settings, factory: sessionmaker[Session]
) -> None:
    made = campaign(audit_settings, actor=BOB)
    lifecycle.pause_campaign(audit_settings, made, "wrong sticker", actor=ALICE)
    lifecycle.pause_campaign(audit_settings, made, "again", actor=ALICE)  # already paused
    lifecycle.resume_campaign(audit_settings, made, actor=ALICE)
    lifecycle.resume_campaign(audit_settings, made, actor=ALICE)  # not paused
    lifecycle.cancel_campaign(audit_settings, made, actor=ALICE)
    with pytest.raises(lifecycle.CampaignStateError):
        lifecycle.pause_campaign(audit_settings, made, actor=ALICE)  # cancelled: refused

    target = f"campaign:{made}"
    assert entries(factory)[1:] == [
        (ALICE, "campaign.paused", target, {"reason": "wrong sticker"}),
        (ALICE, "campaign.resumed", target, {}),
        (ALICE, "campaign.cancelled", target, {"messages": 2}),
    ]


def test_an_entry_rolls_back_with_its_change(factory: sessionmaker[Session]) -> None:
    with pytest.raises(RuntimeError), factory.begin() as session:
        record(session, ALICE, "campaign.paused", "campaign:1", reason="x")
        raise RuntimeError("the change failed")
    assert entries(factory) == []


def test_a_requeue_records_each_chunk_with_its_counts_and_a_refused_one_nothing(
    audit_settings: Settings, factory: sessionmaker[Session]
) -> None:
    made = campaign(audit_settings, A, B, C)
    fail_messages(factory, made)
    with factory.begin() as session:
        session.add(Pause(scope=PauseScope.SENDER, sid=audit_settings.kaleyra_sid,
                          sender=SENDER, code="WA401", reason="not registered"))  # fmt: skip

    with pytest.raises(RequeueRefused):
        requeue(audit_settings, made, "failed", actor=ALICE)  # a pause holds them
    requeue(audit_settings, made, "failed", dry_run=True, actor=ALICE)
    assert len(entries(factory)) == 1  # only the campaign's creation

    result = requeue(audit_settings, made, "failed", code="WA400", resume=True, actor=ALICE)

    assert result.requeued == 3
    assert entries(factory)[1:] == [
        (ALICE, "pause.lifted", f"sender:{SENDER}", {"sid": audit_settings.kaleyra_sid}),
        (ALICE, "campaign.requeued", f"campaign:{made}",
         {"status": "failed", "code": "WA400", "requeued": 3}),
    ]  # fmt: skip


def test_a_requeue_with_a_new_deadline_records_it(
    audit_settings: Settings, factory: sessionmaker[Session]
) -> None:
    made = campaign(audit_settings)
    fail_messages(factory, made)
    requeue(audit_settings, made, "failed", valid_for="2h", actor=BOB)
    actions = [(e[0], e[1]) for e in entries(factory)[1:]]
    assert actions == [(BOB, "campaign.deadline_set"), (BOB, "campaign.requeued")]


def test_lifting_an_account_pause_is_recorded_and_lifting_none_is_not(
    audit_settings: Settings, factory: sessionmaker[Session]
) -> None:
    sid = audit_settings.kaleyra_sid
    resume_sending(audit_settings, actor=ALICE, account=sid)  # nothing paused
    with factory.begin() as session:
        session.add(Pause(scope=PauseScope.ACCOUNT, sid=sid, code="E110", reason="balance"))
    resume_sending(audit_settings, actor=ALICE, account=sid)
    assert entries(factory) == [(ALICE, "pause.lifted", f"account:{sid}", {"sid": sid})]


def test_suppressions_added_removed_and_imported(
    audit_settings: Settings, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    sid = audit_settings.kaleyra_sid
    suppressions.add_numbers(audit_settings, [A], "STOP", actor=ALICE)
    suppressions.add_numbers(audit_settings, [A, B], "STOP", actor=ALICE)  # A: already
    suppressions.remove_numbers(audit_settings, [A, C], actor=BOB)  # C: was not on it
    csv = tmp_path / "optouts.csv"
    csv.write_text(f"phone\n{B}\n{C}\nnope\n")
    suppressions.import_file(audit_settings, csv, "CRM", actor=BOB)
    with pytest.raises(suppressions.SuppressionError):
        suppressions.add_numbers(audit_settings, [A, "+91123"], actor=ALICE)  # refused

    assert entries(factory) == [
        (ALICE, "suppression.added", f"suppression:{A}", {"sid": sid, "reason": "STOP"}),
        (ALICE, "suppression.added", f"suppression:{B}", {"sid": sid, "reason": "STOP"}),
        (BOB, "suppression.removed", f"suppression:{A}", {"sid": sid}),
        (BOB, "suppressions.imported", f"account:{sid}",
         {"added": 1, "already": 1, "invalid": 1, "reason": "CRM"}),  # counts, no number
    ]  # fmt: skip


def test_sender_rates_set_and_reset(
    audit_settings: Settings, factory: sessionmaker[Session]
) -> None:
    senders.set_rate(audit_settings, SENDER, 20, actor=ALICE)
    senders.reset_rate(audit_settings, SENDER, actor=ALICE)
    senders.reset_rate(audit_settings, SENDER, actor=ALICE)  # no rate of its own: no change
    with pytest.raises(senders.SenderRateError):
        senders.set_rate(audit_settings, SENDER, 0, actor=ALICE)
    assert entries(factory) == [
        (ALICE, "sender_rate.set", f"sender:{SENDER}", {"rate_per_second": 20.0}),
        (ALICE, "sender_rate.reset", f"sender:{SENDER}", {}),
    ]


def test_a_hand_purge_is_recorded_and_beats_is_not(factory: sessionmaker[Session]) -> None:
    by_hand = finished_campaign(factory, 40, copies=1)
    purge(factory, true(), campaign_ids=[by_hand], actor=BOB)
    by_beat = finished_campaign(factory, 40, copies=1)
    purge(factory, true(), campaign_ids=[by_beat])
    assert entries(factory) == [(BOB, "campaign.purged", f"campaign:{by_hand}", {})]


def test_reading_filters_by_time_and_actor_newest_first_and_says_when_more_matched(
    audit_settings: Settings, factory: sessionmaker[Session]
) -> None:
    now = utcnow()
    with factory.begin() as session:  # written at those times (entries are never updated)
        for hours_ago, actor in ((30, ALICE), (3, ALICE), (2, BOB), (1, ALICE)):
            at = now - timedelta(hours=hours_ago)
            target = f"campaign:{hours_ago}"
            session.add(AuditEntry(at=at, actor=actor, action="x", target=target, params="{}"))

    def targets(**filters: Any) -> tuple[list[str], bool]:
        page = read_audit(audit_settings, now=now, **filters)
        return [entry.target for entry in page.entries], page.more

    assert targets() == (["campaign:1", "campaign:2", "campaign:3"], False)
    assert targets(since="2d") == (["campaign:1", "campaign:2", "campaign:3", "campaign:30"], False)
    assert targets(actor=ALICE) == (["campaign:1", "campaign:3"], False)
    assert targets(since="90m", actor=BOB) == ([], False)
    assert targets(limit=2) == (["campaign:1", "campaign:2"], True)
    since = (now - timedelta(hours=2, minutes=30)).isoformat()
    assert targets(since=since) == (["campaign:1", "campaign:2"], False)
    with pytest.raises(FilterError, match="--since"):
        read_audit(audit_settings, since="yesterday")
    with pytest.raises(AuditFilterError, match="--limit must be 1 to 1,000"):
        read_audit(audit_settings, limit=0)


def test_postgresql_refuses_changing_an_entry_but_in_an_erasure(pg_database: str) -> None:
    """A trigger of PostgreSQL (migration 0019); SQLite has only the code path."""
    factory = make_session_factory(make_engine(pg_database))
    with factory.begin() as session:
        record(session, ALICE, "suppression.added", f"suppression:{A}")
    for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="audit_log is append-only"), factory.begin() as s:
            s.execute(text(statement))
    with factory.begin() as session:
        allow_rewrite(session)
        session.execute(text("UPDATE audit_log SET target = 'suppression:hmac:00'"))
    # the pass ended with its transaction
    with factory.begin() as session, pytest.raises(DBAPIError, match="append-only"):
        session.execute(text("DELETE FROM audit_log"))
    assert [e[2] for e in entries(factory)] == ["suppression:hmac:00"]


def test_no_secret_is_in_any_entry(
    audit_settings: Settings, factory: sessionmaker[Session]
) -> None:
    link = "https://cdn.example.com/s.webp?X-Amz-Signature=secret-signature-1"
    request = CampaignRequest(sticker_link=link, to=A, no_check=True)
    send_campaign(audit_settings, request, actor=ALICE)
    made = campaign(audit_settings, A)
    lifecycle.pause_campaign(audit_settings, made, actor=ALICE)
    suppressions.add_numbers(audit_settings, [B], actor=ALICE)
    senders.set_rate(audit_settings, SENDER, 50, actor=ALICE)
    erase_number(audit_settings, B, actor=ALICE)

    with factory() as session:
        rows = session.execute(select(AuditEntry.target, AuditEntry.params)).all()
    written = json.dumps([list(row) for row in rows])
    assert "https://cdn.example.com/s.webp" in written
    for secret in (TEST_API_KEY, ERASURE_KEY, "secret-signature-1", B, B.removeprefix("+")):
        assert secret not in written
    assert lifecycle.show_campaign(factory, made).summary.status == CampaignStatus.PAUSED


def test_a_window_import_is_recorded_with_its_counts_and_a_refused_one_is_not(
    audit_settings: Settings, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    now = utcnow()
    good = tmp_path / "good.csv"
    good.write_text(f"from,wanumber,created_at\n{A},{SENDER},{now.isoformat()}\n")
    bad = tmp_path / "bad.csv"
    bad.write_text(f"from,wanumber,created_at\n{A},{SENDER},yesterday\n")
    import_windows(audit_settings, good, actor=BOB)
    with pytest.raises(WindowImportError):
        import_windows(audit_settings, bad, actor=BOB)
    assert entries(factory) == [
        (BOB, "windows.imported", "window_ledger",
         {"rows": 1, "pairs": 1, "customers": 1, "senders": 1}),
    ]  # fmt: skip


def test_an_erasure_without_the_key_leaves_erased_where_the_number_was(
    audit_settings: Settings, factory: sessionmaker[Session]
) -> None:
    keyless = audit_settings.model_copy(
        update={"erasure_key": type(audit_settings.erasure_key)("")}
    )
    made = campaign(keyless, A, B)
    with factory.begin() as session:  # a number in an entry's target and parameters
        record(session, ALICE, "campaign.paused", f"campaign:{made}", reason=f"{A} complained")

    result = erase_number(keyless, A, actor=BOB)

    assert result.removed["audit_log"] == 1
    assert entries(factory)[1:] == [
        (ALICE, "campaign.paused", f"campaign:{made}", {"reason": "[erased] complained"}),
        (BOB, "number.erased", "number:[erased]",
         {"removed": {"audit_log": 1, "messages": 1}, "left_sending": 0}),
    ]  # fmt: skip


def test_taking_an_erased_number_off_the_list_names_its_hash_not_the_number(
    audit_settings: Settings, factory: sessionmaker[Session]
) -> None:
    suppressions.add_numbers(audit_settings, [A], actor=ALICE)
    erase_number(audit_settings, A, actor=ALICE)
    suppressions.remove_numbers(audit_settings, [A], actor=BOB)

    hashed = erased_hash(audit_settings, A)
    assert entries(factory)[-1] == (
        BOB, "suppression.removed", f"suppression:{hashed}", {"sid": audit_settings.kaleyra_sid}
    )  # fmt: skip
    assert A.removeprefix("+") not in json.dumps(entries(factory))
