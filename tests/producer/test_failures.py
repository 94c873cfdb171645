"""Failures, message history and requeue: the plain functions on SQLite and PostgreSQL, the
CLI with CliRunner, and E110 → failures → resume + requeue end to end with a real worker."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner, Result

from stickerq.cli import app
from stickerq.masking import mask_phone
from stickerq.models import Attempt, Campaign, Message, Pause
from stickerq.pauses import pause_keys
from stickerq.producer.api import enqueue_campaign
from stickerq.producer.failures import (
    FailureFilters,
    FilterError,
    MessageNotFound,
    failure_rows,
    failure_summary,
    message_history,
    parse_since,
    parse_status,
)
from stickerq.producer.request import CampaignRequest
from stickerq.producer.requeue import RequeueRefused, requeue
from stickerq.producer.views.failures import FailureRowView
from stickerq.queue import queued_tasks
from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from stickerq.states import CampaignStatus, MessageStatus
from tests.conftest import SENDER, STICKER_ID, make_settings, wait_until
from tests.helpers import Db

SID = "HXAP16XXXXXX97IN"
NOW = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
A, B, C, D, E = (f"+91981234{n:04d}" for n in range(5))


# --- rows made directly in the database ---------------------------------------------------------


def add_campaign(
    session: Session, status: CampaignStatus = CampaignStatus.COMPLETED, sender: str = SENDER
) -> Campaign:
    campaign = Campaign(
        name="spring", sid=SID, sender=sender, sticker_id=STICKER_ID, status=status,
        finished_at=NOW if status == CampaignStatus.COMPLETED else None,
    )  # fmt: skip
    session.add(campaign)
    session.flush()
    return campaign


def add_message(
    session: Session,
    campaign: Campaign,
    recipient: str,
    status: MessageStatus,
    code: str | None = None,
    detail: str | None = None,
    attempts: int = 1,
    at: datetime = NOW,
    **extra: object,
) -> Message:
    message = Message(
        campaign_id=campaign.id, recipient=recipient, status=status, attempts=attempts,
        last_error_code=code, last_error_detail=detail, last_attempt_at=at, **extra,
    )  # fmt: skip
    session.add(message)
    session.flush()
    for number in range(1, attempts + 1):
        session.add(
            Attempt(
                message_pk=message.id, number=number, action="retry",
                started_at=at - timedelta(seconds=attempts - number), latency_ms=12.5 * number,
                http_status=500 if number < attempts else 400, code=code,
            )
        )  # fmt: skip
    return message


@pytest.fixture
def seeded(sessions: sessionmaker[Session]) -> tuple[int, int]:
    """Campaign 1: parked E110 (x2), failed WA400, failed WA500, unknown, sent; campaign 2:
    parked E110 (an hour earlier) and unknown. Returns the campaign ids."""
    with sessions.begin() as session:
        first = add_campaign(session)
        add_message(session, first, A, MessageStatus.PARKED, "E110", "low balance")
        add_message(session, first, B, MessageStatus.PARKED, "E110", "low balance")
        add_message(session, first, C, MessageStatus.FAILED, "WA400", "bad payload")
        add_message(
            session, first, D, MessageStatus.FAILED, "WA500", "WA500 retries exhausted",
            attempts=3, delayed_retries=2,
        )  # fmt: skip
        add_message(session, first, E, MessageStatus.UNKNOWN, None, "no answer after sending")
        add_message(session, first, "+919812349999", MessageStatus.SENT, message_id="mid-1")
        second = add_campaign(session)
        add_message(session, second, A, MessageStatus.PARKED, "E110", "low balance",
                    at=NOW - timedelta(hours=1))  # fmt: skip
        add_message(session, second, B, MessageStatus.UNKNOWN, "WA202", "WA202 without a id")
        return first.id, second.id


def statuses(sessions: sessionmaker[Session], campaign_id: int) -> dict[str, str]:
    with sessions() as session:
        rows = session.execute(
            select(Message.recipient, Message.status).where(Message.campaign_id == campaign_id)
        ).all()
        return {recipient: status for recipient, status in rows}


@pytest.fixture
def unit_settings(database_url: str, redis_prefix: str) -> Settings:
    """The test's database and Redis; no worker runs, so nothing is sent."""
    return make_settings(database_url, redis_prefix, "http://127.0.0.1:9", batch_size=2)


def queue_length(settings: Settings) -> int:
    return queued_tasks(redis.Redis.from_url(settings.redis_url), settings.redis_prefix)


# --- filters --------------------------------------------------------------------------------------


def test_parse_since_takes_durations_and_iso_datetimes_with_a_zone() -> None:
    assert parse_since("30m", now=NOW) == NOW - timedelta(minutes=30)
    assert parse_since("2h", now=NOW) == NOW - timedelta(hours=2)
    assert parse_since("1d", now=NOW) == NOW - timedelta(days=1)
    assert parse_since("1h30m", now=NOW) == NOW - timedelta(minutes=90)
    assert parse_since("2024-05-01T14:30:00+05:30") == NOW
    assert parse_since("2024-05-01T09:00:00Z") == NOW
    with pytest.raises(FilterError, match="no time zone"):
        parse_since("2024-05-01T09:00:00")
    with pytest.raises(FilterError, match="neither a duration"):
        parse_since("yesterday")


def test_parse_status_accepts_only_the_failure_states() -> None:
    assert parse_status("Parked") == MessageStatus.PARKED
    for status in ("sent", "pending", "nonsense"):
        with pytest.raises(FilterError, match="parked, failed, unknown"):
            parse_status(status)


def test_summary_counts_by_status_and_code(
    sessions: sessionmaker[Session], seeded: tuple[int, int]
) -> None:
    first, _ = seeded
    with sessions() as session:
        everything = failure_summary(session, FailureFilters())
        one_campaign = failure_summary(session, FailureFilters(campaign_id=first))
    assert [(r.status, r.code, r.count) for r in everything] == [
        ("parked", "E110", 3),
        ("failed", "WA400", 1),
        ("failed", "WA500", 1),
        ("unknown", None, 1),
        ("unknown", "WA202", 1),
    ]
    assert [(r.status, r.code, r.count) for r in one_campaign] == [
        ("parked", "E110", 2),
        ("failed", "WA400", 1),
        ("failed", "WA500", 1),
        ("unknown", None, 1),
    ]


def test_rows_follow_status_code_campaign_and_since_filters(
    sessions: sessionmaker[Session], seeded: tuple[int, int]
) -> None:
    first, second = seeded

    def rows(limit: int | None = None, **filters: object) -> list[tuple[int, str, str]]:
        with sessions() as session:
            found = failure_rows(session, FailureFilters(**filters), limit)  # type: ignore[arg-type]
            return [(row.campaign_id, row.recipient, row.code or "-") for row in found]

    assert rows(status=MessageStatus.PARKED) == [(first, A, "E110"), (first, B, "E110"),
                                                 (second, A, "E110")]  # fmt: skip
    assert rows(code="WA400") == [(first, C, "WA400")]
    assert rows(campaign_id=second) == [(second, A, "E110"), (second, B, "WA202")]
    assert rows(status=MessageStatus.PARKED, since=NOW - timedelta(minutes=30)) == [
        (first, A, "E110"),
        (first, B, "E110"),
    ]
    assert rows(since=NOW + timedelta(seconds=1)) == []
    assert len(rows()) == 7  # never the sent one
    assert rows(limit=2) == [(first, A, "E110"), (first, B, "E110")]


def test_unknown_rows_say_why_and_others_carry_kaleyras_message(
    sessions: sessionmaker[Session], seeded: tuple[int, int]
) -> None:
    with sessions() as session:
        found = {
            (row.campaign_id, row.recipient): row for row in failure_rows(session, FailureFilters())
        }
    first, second = seeded
    assert found[first, E].why_unknown == "no answer after sending"
    assert found[first, E].message is None
    assert found[first, A].message == "low balance"
    assert found[first, A].why_unknown is None
    shown = FailureRowView.of(found[second, B], recipient=mask_phone(B))
    assert shown.model_dump(mode="json") == {
        "campaign_id": second,
        "recipient": "+91******0001",
        "status": "unknown",
        "code": "WA202",
        "http_status": None,
        "message": None,
        "why_unknown": "WA202 without a id",
        "attempts": 1,
        "last_attempt_at": NOW.isoformat(),
    }


# --- history --------------------------------------------------------------------------------------


def test_history_shows_each_campaign_of_a_recipient_with_attempts_in_order(
    sessions: sessionmaker[Session], seeded: tuple[int, int]
) -> None:
    first, second = seeded
    with sessions.begin() as session:  # attempts written out of order still read in order
        pk = session.scalar(select(Message.id).where(Message.campaign_id == second))
        session.add(Attempt(message_pk=pk, number=3, action="park", started_at=NOW, code="E110"))
        session.add(Attempt(message_pk=pk, number=2, action="retry", started_at=NOW, code="WA500"))
    with sessions() as session:
        histories = message_history(session, A)
        without_plus = message_history(session, A.removeprefix("+"))
        by_message_id = message_history(session, "mid-1")
        retried = message_history(session, D)
    assert [h.campaign_id for h in histories] == [first, second]
    assert [h.campaign_id for h in without_plus] == [first, second]
    assert [a.number for a in histories[1].attempts] == [1, 2, 3]
    assert [(a.number, a.http_status, a.code, a.latency_ms) for a in histories[0].attempts] == [
        (1, 400, "E110", 12.5)
    ]
    [sent] = by_message_id
    assert (sent.recipient, sent.status, sent.message_id) == ("+919812349999", "sent", "mid-1")
    assert [a.number for a in retried[0].attempts] == [1, 2, 3]


def test_history_of_an_unknown_number_or_id_is_an_error(
    sessions: sessionmaker[Session], seeded: tuple[int, int]
) -> None:
    with sessions() as session, pytest.raises(MessageNotFound, match="no message to"):
        message_history(session, "+919876500000")


# --- requeue --------------------------------------------------------------------------------------


def test_requeue_moves_exactly_the_chosen_rows_and_reopens_the_campaign(
    unit_settings: Settings, sessions: sessionmaker[Session], seeded: tuple[int, int]
) -> None:
    first, second = seeded
    before = statuses(sessions, second)

    result = requeue(unit_settings, first, "failed", code="WA500", actor="tester")

    assert (result.requeued, result.batches, result.campaign_status) == (1, 1, "running")
    assert statuses(sessions, first) == {
        A: "parked", B: "parked", C: "failed", D: "pending", E: "unknown", "+919812349999": "sent",
    }  # fmt: skip
    assert statuses(sessions, second) == before
    with sessions() as session:
        message = session.scalars(select(Message).where(Message.recipient == D)).one()
        assert (message.delayed_retries, message.next_attempt_at) == (0, None)
        assert message.attempts == 3  # the history stays
        assert len(session.scalars(select(Attempt).where(Attempt.message_pk == message.id)).all())
        campaign = session.get(Campaign, first)
        assert campaign is not None
        assert (campaign.status, campaign.finished_at) == ("running", None)
    assert queue_length(unit_settings) == 1

    result = requeue(unit_settings, first, "parked", actor="tester")  # no code: every parked one
    assert (result.requeued, result.batches) == (2, 1)  # batch_size 2
    assert statuses(sessions, first)[A] == statuses(sessions, first)[B] == "pending"
    assert queue_length(unit_settings) == 2


def test_requeue_twice_finds_nothing_the_second_time(
    unit_settings: Settings, sessions: sessionmaker[Session], seeded: tuple[int, int]
) -> None:
    first, _ = seeded
    assert requeue(unit_settings, first, "unknown", actor="tester").requeued == 1
    again = requeue(unit_settings, first, "unknown", actor="tester")
    assert (again.requeued, again.batches) == (0, 0)
    assert queue_length(unit_settings) == 1


def test_two_requeues_at_once_move_each_message_once(
    unit_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:
        campaign = add_campaign(session)
        for n in range(40):
            add_message(session, campaign, f"+91981236{n:04d}", MessageStatus.UNKNOWN, attempts=0)
    with ThreadPoolExecutor(2) as pool:
        runs = list(
            pool.map(
                lambda _: requeue(unit_settings, campaign.id, "unknown", actor="tester"), range(2)
            )
        )
    assert sum(run.requeued for run in runs) == 40
    assert set(statuses(sessions, campaign.id).values()) == {"pending"}


def test_requeue_dry_run_counts_and_changes_nothing(
    unit_settings: Settings, sessions: sessionmaker[Session], seeded: tuple[int, int]
) -> None:
    first, _ = seeded
    before = statuses(sessions, first)
    result = requeue(unit_settings, first, "parked", code="E110", dry_run=True, actor="tester")
    assert (result.requeued, result.batches, result.dry_run) == (2, 0, True)
    assert result.campaign_status == "completed"
    assert statuses(sessions, first) == before
    assert queue_length(unit_settings) == 0


def test_requeue_is_refused_while_the_account_is_paused_unless_resume_lifts_it(
    unit_settings: Settings, sessions: sessionmaker[Session], seeded: tuple[int, int]
) -> None:
    first, _ = seeded
    with sessions.begin() as session:
        session.add(Pause(scope="account", sid=SID, code="E110", reason="low balance"))
    mirror, _ = pause_keys(unit_settings.redis_prefix, SID, SENDER)
    client = redis.Redis.from_url(unit_settings.redis_url)
    client.set(mirror, "E110")
    before = statuses(sessions, first)

    with pytest.raises(RequeueRefused) as refused:
        requeue(unit_settings, first, "parked", code="E110", actor="tester")
    assert "account HXAP16XXXXXX97IN paused after E110" in str(refused.value)
    assert "--resume" in str(refused.value)
    assert statuses(sessions, first) == before
    dry = requeue(
        unit_settings, first, "parked", dry_run=True, actor="tester"
    )  # a dry run tells, not refuses
    assert [p["code"] for p in dry.pauses] == ["E110"]

    result = requeue(unit_settings, first, "parked", code="E110", resume=True, actor="tester")
    assert (result.requeued, result.pauses_lifted) == (2, 1)
    with sessions() as session:
        assert session.scalars(select(Pause).where(Pause.resumed_at.is_(None))).all() == []
    assert client.exists(mirror) == 0


def test_requeue_is_refused_for_a_sender_pause_and_a_cancelled_campaign(
    unit_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:
        paused = add_campaign(session)
        add_message(session, paused, A, MessageStatus.PARKED, "WA401")
        session.add(Pause(scope="sender", sid=SID, sender=SENDER, code="WA401", reason="x"))
        other_sender = add_campaign(session, sender="+919000000002")
        add_message(session, other_sender, A, MessageStatus.FAILED, "WA400")
        cancelled = add_campaign(session, status=CampaignStatus.CANCELLED, sender="+919000000002")
        add_message(session, cancelled, A, MessageStatus.FAILED, "WA400")
    with pytest.raises(RequeueRefused, match=re.escape(f"sender {SENDER} paused after WA401")):
        requeue(unit_settings, paused.id, "parked", actor="tester")
    assert (
        requeue(unit_settings, other_sender.id, "failed", actor="tester").requeued == 1
    )  # not its sender
    with pytest.raises(RequeueRefused, match="cancelled"):
        requeue(unit_settings, cancelled.id, "failed", actor="tester")
    with pytest.raises(FilterError, match="not one of"):
        requeue(unit_settings, paused.id, "sent", actor="tester")


# --- CLI ------------------------------------------------------------------------------------------


@pytest.fixture
def cli_settings(pg_database: str, redis_prefix: str) -> Settings:
    return make_settings(pg_database, redis_prefix, "http://127.0.0.1:9", batch_size=5)


@pytest.fixture
def pg_sessions(cli_settings: Settings) -> Iterator[sessionmaker[Session]]:
    db = Db(cli_settings)
    yield db.sessions
    db.close()


def run(settings: Settings, *args: str) -> Result:
    """The CLI with exactly these settings as STICKERQ_* variables, and wide rich output."""
    env: dict[str, str | None] = {key: None for key in os.environ if key.startswith("STICKERQ_")}
    env.update(settings.as_environment(), COLUMNS="200")
    return CliRunner().invoke(app, list(args), env=env)


def assert_clean_exit(result: Result, code: int) -> None:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output


def test_failures_cli_masks_recipients_filters_and_prints_json(
    cli_settings: Settings, pg_sessions: sessionmaker[Session]
) -> None:
    with pg_sessions.begin() as session:
        campaign = add_campaign(session)
        add_message(session, campaign, A, MessageStatus.PARKED, "E110", "low balance")
        add_message(session, campaign, B, MessageStatus.UNKNOWN, None, "no answer after sending")
        add_message(session, campaign, C, MessageStatus.FAILED, "WA400", "bad payload")

    table = run(cli_settings, "failures", "--campaign", str(campaign.id))
    assert_clean_exit(table, 0)
    assert "3 message(s) by status and code" in table.stdout
    assert mask_phone(A) in table.stdout and A not in table.stdout
    assert "no answer after sending" in table.stdout
    shown = run(cli_settings, "failures", "--show-numbers")
    assert A in shown.stdout

    as_json = run(cli_settings, "failures", "--status", "unknown", "--since", "3650d", "--json")
    assert_clean_exit(as_json, 0)
    document = json.loads(as_json.stdout)
    assert list(document) == ["filters", "summary", "total", "truncated", "rows"]
    assert document["filters"]["status"] == "unknown"
    assert document["summary"] == [{"status": "unknown", "code": None, "count": 1}]
    [row] = document["rows"]
    assert (row["recipient"], row["why_unknown"]) == (mask_phone(B), "no answer after sending")

    limited = json.loads(run(cli_settings, "failures", "--limit", "1", "--json").stdout)
    assert (limited["total"], len(limited["rows"]), limited["truncated"]) == (3, 1, True)
    empty = run(cli_settings, "failures", "--code", "WA999")
    assert_clean_exit(empty, 0)
    assert "no parked, failed, unknown or expired messages match" in empty.stdout


@pytest.mark.parametrize("command", [["failures"], ["messages", "show"], ["requeue"]], ids=" ".join)
def test_commands_have_help_naming_their_json_keys(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert_clean_exit(result, 0)
    assert f" {' '.join(command)} [OPTIONS]" in result.output
    assert "--json" in result.output and "keys" in result.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["failures", "--status", "sent"], "not one of parked, failed, unknown"),
        (["failures", "--since", "2024-05-01T09:00"], "no time zone"),
        (["messages", "show", "+919876500000"], "no message to"),
        (["requeue", "--campaign", "424242", "--status", "parked"], "no campaign 424242"),
        (["requeue", "--campaign", "1", "--status", "delivered"], "not one of"),
    ],
    ids=["bad-status", "naive-since", "unknown-message", "unknown-campaign", "requeue-status"],
)
def test_cli_bad_input_exits_2_with_a_readable_error(
    cli_settings: Settings, args: list[str], expected: str
) -> None:
    result = run(cli_settings, *args)
    assert_clean_exit(result, 2)
    assert expected in result.stderr.replace("\n", "")
    assert result.stdout == ""


def test_messages_show_and_requeue_cli(
    cli_settings: Settings, pg_sessions: sessionmaker[Session]
) -> None:
    with pg_sessions.begin() as session:
        campaign = add_campaign(session)
        add_message(session, campaign, A, MessageStatus.PARKED, "E110", "low balance", attempts=2)
        session.add(Pause(scope="account", sid=SID, code="E110", reason="low balance"))

    shown = run(cli_settings, "messages", "show", A, "--json")
    assert_clean_exit(shown, 0)
    [history] = json.loads(shown.stdout)["messages"]
    assert history["recipient"] == mask_phone(A)
    assert [(a["number"], a["http_status"], a["code"], a["latency_ms"]) for a in history[
        "attempts"]] == [(1, 500, "E110", 12.5), (2, 400, "E110", 25.0)]  # fmt: skip
    table = run(cli_settings, "messages", "show", A, "--show-numbers")
    assert_clean_exit(table, 0)
    assert A in table.stdout and "2 attempt(s)" in table.stdout

    args = ["requeue", "--campaign", str(campaign.id), "--status", "parked", "--code", "E110"]
    refused = run(cli_settings, *args)
    assert_clean_exit(refused, 2)
    assert "--resume" in refused.stderr
    dry = run(cli_settings, *args, "--dry-run")
    assert_clean_exit(dry, 0)
    assert "would requeue 1 parked E110 message(s)" in dry.stdout
    assert "needs --resume" in dry.stdout
    done = run(cli_settings, *args, "--resume", "--json")
    assert_clean_exit(done, 0)
    document = json.loads(done.stdout)
    assert (document["requeued"], document["batches"], document["pauses_lifted"]) == (1, 1, 1)
    again = run(cli_settings, *args)
    assert_clean_exit(again, 0)
    assert "requeued 0 parked E110 message(s)" in again.stdout


# --- end to end ---------------------------------------------------------------------------------


def test_e110_parked_messages_are_listed_then_resume_and_requeue_send_each_exactly_once(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable[[Settings], None]
) -> None:
    settings = settings.model_copy(update={"in_flight": 2, "batch_size": 10})
    sandbox.configure(balance=10)
    run_worker(settings)
    db = Db(settings)
    recipients = [f"+91981235{n:04d}" for n in range(30)]
    campaign_id = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to=",".join(recipients))
    ).campaign_id

    def paused_and_still() -> bool:
        in_flight = [m for m in db.messages(campaign_id) if m.status == MessageStatus.SENDING]
        return bool(db.active_pauses()) and not in_flight

    wait_until(paused_and_still)
    parked = {m.recipient for m in db.messages(campaign_id) if m.status == MessageStatus.PARKED}
    assert parked

    listed = run(settings, "failures", "--status", "parked", "--code", "E110", "--json",
                 "--show-numbers")  # fmt: skip
    assert_clean_exit(listed, 0)
    rows = json.loads(listed.stdout)["rows"]
    assert {row["recipient"] for row in rows} == parked
    assert {(row["code"], row["http_status"], row["campaign_id"]) for row in rows} == {
        ("E110", 400, campaign_id)
    }

    sandbox.configure(balance=None)
    requeued = run(settings, "requeue", "--campaign", str(campaign_id), "--status", "parked",
                   "--code", "E110", "--resume")  # fmt: skip
    assert_clean_exit(requeued, 0)
    assert f"requeued {len(parked)} parked E110 message(s)" in requeued.stdout

    wait_until(lambda: db.campaign(campaign_id).status == CampaignStatus.COMPLETED)
    stats = sandbox.stats()
    assert sorted(stats["accepted"]) == sorted(recipients)
    assert set(stats["accepted"].values()) == {1}
    assert stats["accepted_total"] == 30
    assert {m.status for m in db.messages(campaign_id)} == {MessageStatus.SENT}
    one = sorted(parked)[0]
    history = json.loads(run(settings, "messages", "show", one, "--json").stdout)["messages"]
    assert [a["code"] for a in history[0]["attempts"]] == ["E110", "WA202"]
    again = requeue(settings, campaign_id, "parked", code="E110", actor="tester")
    assert again.requeued == 0
    db.close()


def test_unknown_messages_are_listed_with_why_they_are_unknown(
    settings: Settings, sandbox: SandboxServer, run_worker: Callable[[Settings], None]
) -> None:
    sandbox.script({A: ["DROP"], B: ["HTML_502"]})
    run_worker(settings)
    db = Db(settings)
    campaign_id = enqueue_campaign(
        settings, CampaignRequest(sticker_id=STICKER_ID, to=f"{A},{B},{C}")
    ).campaign_id
    wait_until(lambda: db.settled(campaign_id))

    listed = run(settings, "failures", "--status", "unknown", "--campaign", str(campaign_id),
                 "--json")  # fmt: skip
    assert_clean_exit(listed, 0)
    why = {row["recipient"]: row["why_unknown"] for row in json.loads(listed.stdout)["rows"]}
    assert set(why) == {mask_phone(A), mask_phone(B)}
    assert why[mask_phone(A)].startswith("no answer after sending")
    assert why[mask_phone(B)] == "HTTP 502 with a non-JSON body"
    table = run(settings, "failures", "--status", "unknown")
    assert "HTTP 502 with a non-JSON body" in table.stdout
    db.close()
